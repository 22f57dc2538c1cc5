"""The MLLM contract over Triton's KServe v2 gRPC API (model `mllm`), across replicas.

With several Triton replicas, every request about one image goes to the same replica
(rendezvous hashing on the image's hash), so the replica's image-prefix cache serves the second
stage; adding or removing a replica moves only the images that hashed to it. The load bounds the
affinity: a replica with far more of this client's calls in flight than the least-loaded one
(more than twice as many, plus `affinity_slack`) is passed over for the image's next replica, so a
slow replica sheds new images instead of queueing them. A replica that is unavailable is skipped
for the next one in that image's order, and put last in every order for a few seconds. A replica
whose queue is full refuses at once; the next one is tried, and when every replica refuses the
call fails OVERLOADED (retry after a moment). The replicas are a fixed list or follow a DNS name
(`tagllm.mllm.replicas`).
"""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from tagllm.mllm.contract import NO_CONTEXT, CallContext, ErrorKind, MLLMError, MLLMRequest, MLLMResponse
from tagllm.mllm.replicas import ReplicaWatcher, parse_target, resolve
from tagllm.mllm.tensors import INPUTS, MODEL_NAME, OUTPUTS, request_to_arrays, response_from_arrays

_KINDS = {
    "StatusCode.INVALID_ARGUMENT": ErrorKind.INVALID_INPUT,
    "StatusCode.UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "StatusCode.RESOURCE_EXHAUSTED": ErrorKind.UNAVAILABLE,
    "StatusCode.DEADLINE_EXCEEDED": ErrorKind.DEADLINE,
}


INPUT_SPECS = {spec.name: spec for spec in INPUTS}
# How often a waiting call looks whether its caller is still there.
_CANCEL_POLL_SECONDS = 0.05
# A replica that answered UNAVAILABLE goes last in every image's order for this long.
_DOWN_SECONDS = 5.0
# What Triton says when a model's queue (config.pbtxt's max_queue_size) is full.
_QUEUE_FULL = "Exceeds maximum queue size"


def _default_channel_options() -> list[tuple[str, int]]:
    """tritonclient's own channel options (passing any replaces them all)."""
    keepalive = triton_grpc.KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", triton_grpc.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", triton_grpc.MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
    ]


def replica_order(urls: list[str], image: bytes) -> list[int]:
    """Indices of `urls`, the image's preferred replica first (highest random weight)."""
    key = hashlib.sha256(image).digest()
    weights = [hashlib.sha256(url.encode() + key).digest() for url in urls]
    return sorted(range(len(urls)), key=lambda i: weights[i], reverse=True)


def bounded_load_order(order: list[str], load: dict[str, int], slack: int) -> list[str]:
    """`order` (an image's replicas, preferred first) with the replicas whose load is far above
    the least-loaded one's (more than twice it, plus `slack`) moved to the end, each part keeping
    the image's order: an image stays on its replica unless that replica is much busier."""
    least = min((load.get(url, 0) for url in order), default=0)
    bound = 2 * least + slack
    within = [url for url in order if load.get(url, 0) <= bound]
    return within + [url for url in order if load.get(url, 0) > bound]


class TritonMLLM:
    """Thread-safe client; `timeout` caps every call (seconds), the caller's deadline may shorten it.

    `urls`: a replica target (`host:port,...`, `dns:///name:port`, `dns://server/name:port`; see
    `tagllm.mllm.replicas`) or a list of addresses. A DNS name is looked up again every
    `refresh_seconds`. `credentials` (gRPC channel credentials) turn on TLS to every replica,
    whose certificates must name `server_name` (default: the DNS name of the target);
    `probe_timeout` bounds each replica's readiness check, so a hung server reads as not ready.
    `affinity_slack`: how many more calls in flight than twice the least-loaded replica's an
    image's replica may have before the image goes to its next replica.
    """

    def __init__(
        self,
        urls: str | list[str],
        timeout: float = 120.0,
        model_name: str = MODEL_NAME,
        credentials: object | None = None,
        probe_timeout: float = 2.0,
        refresh_seconds: float = 5.0,
        server_name: str = "",
        affinity_slack: int = 4,
    ) -> None:
        # parse_target refuses an empty list.
        target = parse_target(urls if isinstance(urls, str) else ",".join(urls))
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self._credentials = credentials
        # The name the replicas' certificates carry; replicas found by name carry that name.
        self._server_name = server_name or target.name
        self._lock = threading.Lock()
        self._clients: dict[str, triton_grpc.InferenceServerClient] = {}
        # Clients of replicas that went away, closed once no call can still be using them.
        self._retired: list[tuple[float, triton_grpc.InferenceServerClient]] = []
        self._down_until: dict[str, float] = {}
        # This client's calls in flight per replica: the load that bounds affinity.
        self._in_flight: dict[str, int] = {}
        self.affinity_slack = affinity_slack
        self._version = ""
        self._watcher: ReplicaWatcher | None = None
        if target.dynamic:
            self._watcher = ReplicaWatcher(target, self._set_replicas, refresh_seconds)
            self._watcher.refresh()  # none found yet is fine: the next lookups may find some
            self._watcher.start()
        else:
            self._set_replicas(resolve(target))

    @property
    def urls(self) -> list[str]:
        """The replicas now."""
        with self._lock:
            return list(self._clients)

    def _set_replicas(self, urls: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            current = self._clients
            self._clients = {url: current.get(url) or self._client(url) for url in urls}
            gone = [client for url, client in current.items() if url not in self._clients]
            self._retired += [(now + self.timeout, client) for client in gone]
            self._down_until = {url: t for url, t in self._down_until.items() if url in self._clients}
            expired = [c for until, c in self._retired if until <= now]
            self._retired = [(until, c) for until, c in self._retired if until > now]
        for client in expired:
            client.close()

    def _client(self, url: str) -> triton_grpc.InferenceServerClient:
        if self._credentials is None or not self._server_name:
            return triton_grpc.InferenceServerClient(url=url, creds=self._credentials)
        # Replicas found by name are dialled by address: their certificates name the Service.
        options = _default_channel_options() + [("grpc.ssl_target_name_override", self._server_name)]
        return triton_grpc.InferenceServerClient(url=url, creds=self._credentials, channel_args=options)

    @property
    def version(self) -> str:
        return self._version

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse:
        inputs = []
        for name, array in request_to_arrays(request).items():
            tensor = triton_grpc.InferInput(name, list(array.shape), INPUT_SPECS[name].wire_type)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(spec.name) for spec in OUTPUTS]
        with self._lock:
            clients = dict(self._clients)
        if not clients:
            message = f"no model-server replica: {self.target.name} has no address"
            raise MLLMError(message, ErrorKind.UNAVAILABLE)
        urls = list(clients)
        now = time.monotonic()
        with self._lock:
            load = dict(self._in_flight)
        # The image's own order, bounded by load, replicas recently down last (a stable sort
        # keeps the rest).
        order = sorted(
            bounded_load_order(
                [urls[i] for i in replica_order(urls, request.image)], load, self.affinity_slack
            ),
            key=lambda url: self._down_until.get(url, 0.0) > now,
        )
        error: MLLMError | None = None
        overloaded: MLLMError | None = None
        for url in order:
            context.check()  # before each replica: the caller may have gone or run out of time
            remaining = context.remaining()
            timeout = self.timeout if remaining is None else min(self.timeout, remaining)
            try:
                result = self._counted_infer(url, clients[url], inputs, outputs, context, timeout)
            except InferenceServerException as exc:
                message = exc.message() or ""
                if _QUEUE_FULL in message:  # refused at once; the replica itself is fine
                    overloaded = MLLMError(f"model server {url}: {message}", ErrorKind.OVERLOADED)
                    continue
                kind = _KINDS.get(str(exc.status() or ""), ErrorKind.INTERNAL)
                error = MLLMError(f"model server {url}: {message}", kind)
                if kind is ErrorKind.UNAVAILABLE:
                    self._down_until[url] = time.monotonic() + _DOWN_SECONDS
                    continue  # try the image's next replica
                raise error from exc
            self._down_until.pop(url, None)
            arrays: dict[str, np.ndarray] = {spec.name: result.as_numpy(spec.name) for spec in OUTPUTS}
            response = response_from_arrays(arrays)
            self._version = response.model_version or self._version
            return response
        if overloaded is not None:  # every replica that answered had a full queue
            raise MLLMError(f"every model-server queue is full ({overloaded})", ErrorKind.OVERLOADED)
        assert error is not None
        raise error

    def _counted_infer(self, url: str, client, inputs, outputs, context: CallContext, timeout: float):
        with self._lock:
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
        try:
            return self._infer(client, inputs, outputs, context, timeout)
        finally:
            with self._lock:
                self._in_flight[url] -= 1
                if not self._in_flight[url]:
                    del self._in_flight[url]

    def _infer(self, client, inputs, outputs, context: CallContext, timeout: float):
        """One inference call, cancelled as soon as the caller goes away or runs out of time:
        the server then drops the request, and this thread is free at once."""
        done = threading.Event()
        outcome: dict = {}

        def finished(result, error) -> None:
            outcome.update(result=result, error=error)
            done.set()

        call = client.async_infer(
            self.model_name,
            inputs,
            finished,
            outputs=outputs,
            request_id=context.request_id,
            client_timeout=timeout,
        )
        while not done.wait(_CANCEL_POLL_SECONDS):
            try:
                context.check()
            except MLLMError:
                call.cancel()
                raise
        if outcome["error"] is not None:
            raise outcome["error"]
        return outcome["result"]

    def ready(self) -> bool:
        """Ready when at least one replica serves the model."""
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            try:
                if client.is_model_ready(self.model_name, client_timeout=self.probe_timeout):
                    return True
            except InferenceServerException:
                continue
        return False

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        with self._lock:
            clients = [*self._clients.values(), *(c for _, c in self._retired)]
            self._clients, self._retired = {}, []
        for client in clients:
            client.close()
