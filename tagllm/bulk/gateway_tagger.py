"""The tagger `annotate` uses in production: the public gateway's StreamTag over gRPC."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator

import grpc

from tagllm.bulk.annotate import Outcome, StreamBroken, TagFailure, Work, read_image
from tagllm.client import TaggingClient, retry_delay, status_code, status_retry_delay, tag_request
from tagllm.convert import result_from_proto
from tagllm.strategies import TagResult
from tagllm.v1 import common_pb2, tagging_pb2

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}


def _failure(code: grpc.StatusCode, message: str, retry_after: float) -> TagFailure:
    return TagFailure(code.name, message, retryable=code in RETRYABLE, retry_after=retry_after)


def _outcome(answer: tagging_pb2.StreamTagResponse) -> TagResult | TagFailure:
    code = status_code(answer.status)
    if code is not grpc.StatusCode.OK:
        return _failure(code, answer.status.message, status_retry_delay(answer.status))
    try:
        return result_from_proto(answer.response.result)
    except ValueError as exc:  # a strategy this client does not know
        return TagFailure("UNKNOWN", str(exc), retryable=False)


class GatewayTagger:
    def __init__(
        self,
        client: TaggingClient,
        vocabulary: str,
        options: common_pb2.StrategyOptions,
        timeout: float = 300.0,
    ) -> None:
        self.client = client
        self.vocabulary = vocabulary
        self.options = options
        # Seconds one image may wait for its answer; then the stream is cancelled and the images
        # that waited too long fail with DEADLINE_EXCEEDED (and are tried again).
        self.timeout = timeout

    def stream(self, work: Iterable[Work], window: int) -> Iterator[Outcome]:
        """One StreamTag call; `window` is the schedule's, which keeps the images in flight."""
        # What the threads report: ("outcome", (work, outcome)), ("answer", response), ("end", error).
        events: queue.Queue = queue.Queue()
        sent: dict[str, tuple[Work, float]] = {}
        lock = threading.Lock()

        def requests() -> Iterator[tagging_pb2.TagRequest]:
            for job in work:
                try:
                    content = read_image(job.item)
                except TagFailure as failure:
                    events.put(("outcome", (job, failure)))
                    continue
                with lock:
                    sent[job.item.image_id] = (job, time.monotonic())
                yield tag_request(content, self.vocabulary, self.options, job.item.image_id, job.reference)

        call = self.client.stream(requests())

        def read() -> None:
            try:
                for answer in call:
                    events.put(("answer", answer))
                events.put(("end", None))
            except grpc.RpcError as exc:
                events.put(("end", exc))

        threading.Thread(target=read, name="annotate-stream", daemon=True).start()
        overdue: frozenset[str] = frozenset()
        try:
            while True:
                with lock:
                    oldest = min((at for _, at in sent.values()), default=None)
                wait = (
                    None if oldest is None or overdue else max(0.0, oldest + self.timeout - time.monotonic())
                )
                try:
                    kind, value = events.get(timeout=wait)
                except queue.Empty:
                    now = time.monotonic()
                    with lock:
                        overdue = frozenset(i for i, (_, at) in sent.items() if now - at >= self.timeout)
                    call.cancel()
                    continue
                if kind == "outcome":
                    yield value
                elif kind == "answer":
                    with lock:
                        job, _ = sent.pop(value.image_id, (None, 0.0))
                    if job is not None:  # an id this stream never sent is no answer of its
                        yield job, _outcome(value)
                elif value is None:
                    return
                elif overdue:
                    message = f"no answer within {self.timeout:g} s (allow more with --timeout)"
                    raise StreamBroken(TagFailure("DEADLINE_EXCEEDED", message, retryable=True), overdue)
                else:
                    raise StreamBroken(_failure(value.code(), value.details() or "", retry_delay(value)))
        finally:
            call.cancel()  # a consumer that stops early ends the call; no-op after it ended
