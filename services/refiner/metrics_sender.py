"""Sends tagging records to the metrics service without ever blocking or failing tagging.

Records go into a bounded buffer; a background thread sends them in batches. When the metrics
service is down the batch stays buffered and the channel reconnects by itself; when the buffer
is full the oldest records are dropped and counted.
"""

from __future__ import annotations

import collections
import threading

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.logs import get_logger
from tagllm.client import open_channel
from tagllm.internal.v1 import metrics_pb2, metrics_pb2_grpc

log = get_logger("metrics-sender")


class MetricsSender:
    def __init__(
        self,
        address: str,
        registry: CollectorRegistry,
        capacity: int = 10_000,
        batch_size: int = 256,
        interval_seconds: float = 0.5,
        timeout_seconds: float = 2.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._buffer: collections.deque[metrics_pb2.TaggingRecord] = collections.deque()
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._channel = open_channel(address, credentials)
        self._stub = metrics_pb2_grpc.MetricsServiceStub(self._channel)
        self.sent = Counter("tagllm_metrics_records_sent", "Records delivered.", registry=registry)
        self.dropped = Counter(
            "tagllm_metrics_records_dropped", "Records dropped: buffer full.", registry=registry
        )
        self.failures = Counter(
            "tagllm_metrics_send_failures", "Failed sends (kept, retried).", registry=registry
        )
        Gauge(
            "tagllm_metrics_records_buffered", "Records waiting to be sent.", registry=registry
        ).set_function(lambda: len(self._buffer))
        self._thread = threading.Thread(target=self._run, name="metrics-sender", daemon=True)
        self._thread.start()

    def submit(self, record: metrics_pb2.TaggingRecord) -> None:
        """Never blocks on the network; drops the oldest record when the buffer is full."""
        with self._lock:
            if len(self._buffer) >= self._capacity:
                self._buffer.popleft()
                self.dropped.inc()
            self._buffer.append(record)
            if len(self._buffer) >= self._batch_size:
                self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Sends what is buffered; False when the service could not be reached."""
        while True:
            with self._lock:
                batch = [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]
            if not batch:
                return True
            try:
                self._stub.Record(metrics_pb2.RecordRequest(records=batch), timeout=self._timeout)
            except grpc.RpcError as exc:
                self.failures.inc()
                log.info(
                    "metrics service unreachable; keeping records", code=exc.code().name, buffered=len(batch)
                )
                return False
            with self._lock:
                # Drops made room meanwhile? Only remove what is still at the front.
                for record in batch:
                    if self._buffer and self._buffer[0] is record:
                        self._buffer.popleft()
            self.sent.inc(len(batch))

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
        self._channel.close()
