"""A small client of the public TaggingService, for the CLI and for Python users."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from tagllm.convert import reference_to_proto, strategy_options
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tagllm.vocab.registry import DEFAULT_VOCABULARY

__all__ = [
    "TaggingClient",
    "channel_credentials",
    "open_channel",
    "retry_delay",
    "strategy_options",
    "tag_request",
]
# Trailing metadata holding the full google.rpc.Status, details included.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def retry_delay(error: grpc.RpcError) -> float:
    """Seconds the server asked to wait (google.rpc.RetryInfo in the status details), else 0."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    entry: Any
    for entry in trailing or ():
        key, value = tuple(entry)  # (key, value): sync calls' metadata and grpc.aio's alike
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_retry_delay(status_pb2.Status.FromString(value))
            except DecodeError:
                return 0.0
    return 0.0


def status_retry_delay(status: status_pb2.Status) -> float:
    """Seconds a status's RetryInfo asks to wait (one image's status in a stream), else 0."""
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return 0.0


def status_code(status: status_pb2.Status) -> grpc.StatusCode:
    """The gRPC code of a google.rpc.Status (UNKNOWN for a number gRPC does not define)."""
    return next((code for code in grpc.StatusCode if code.value[0] == status.code), grpc.StatusCode.UNKNOWN)


def tag_request(
    image: bytes | Path,
    vocabulary: str = DEFAULT_VOCABULARY,
    options: common_pb2.StrategyOptions | None = None,
    image_id: str = "",
    reference_labels: Sequence[str] | None = None,
) -> tagging_pb2.TagRequest:
    """`reference_labels` (human labels; [] means none of the vocabulary) feed agreement metrics."""
    content = Path(image).read_bytes() if isinstance(image, Path) else image
    return tagging_pb2.TagRequest(
        image=tagging_pb2.Image(content=content, id=image_id),
        vocabulary=vocabulary,
        options=options or strategy_options(),
        reference=reference_to_proto(reference_labels),
    )


def read_pem(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def channel_credentials(ca: str, cert: str = "", key: str = "") -> grpc.ChannelCredentials | None:
    """TLS credentials for calls (verifying the server with the CA bundle `ca`, presenting the
    client certificate `cert` with its `key` when given), or None for plaintext (no CA)."""
    if not ca:
        if cert or key:
            raise ValueError("a client certificate needs the CA that verifies the server (--ca)")
        return None
    if bool(cert) != bool(key):
        raise ValueError("a client certificate and its key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(ca),
        private_key=read_pem(key) if key else None,
        certificate_chain=read_pem(cert) if cert else None,
    )


def open_channel(
    address: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]] = (),
    asynchronous: bool = False,
):
    """A channel to `address`: TLS when `credentials` are given, else plaintext."""
    if asynchronous:
        if credentials is None:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(address, credentials, options=options)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


class TaggingClient:
    def __init__(
        self,
        address: str,
        api_key: str | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
        credentials: grpc.ChannelCredentials | None = None,
    ):
        """`credentials` (from `channel_credentials`) turn on TLS; without them the channel is
        plaintext."""
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self.channel = open_channel(address, credentials, options)
        self.stub = tagging_pb2_grpc.TaggingServiceStub(self.channel)
        self.metadata = [("authorization", f"Bearer {api_key}")] if api_key else []

    def tag(
        self,
        image: bytes | Path,
        vocabulary: str = DEFAULT_VOCABULARY,
        options: common_pb2.StrategyOptions | None = None,
        image_id: str = "",
        reference_labels: list[str] | None = None,
        timeout: float | None = 300.0,
    ) -> tagging_pb2.TagResponse:
        """One image (see `tag_request`) over the unary Tag call."""
        request = tag_request(image, vocabulary, options, image_id, reference_labels)
        return self.stub.Tag(request, timeout=timeout, metadata=self.metadata)

    def stream(self, requests: Iterable[tagging_pb2.TagRequest], timeout: float | None = None):
        """Images over one StreamTag call: the call, an iterator of StreamTagResponse in completion
        order (keyed by image id) that `cancel()` ends. `requests` is read on a gRPC thread, as
        the gateway's flow control lets the next image in; with no `timeout`, the gateway gives
        each image its own default deadline."""
        return self.stub.StreamTag(iter(requests), timeout=timeout, metadata=self.metadata)

    def reachable(self, timeout: float = 5.0) -> bool:
        """Whether a connection to the gateway comes up within `timeout` seconds."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
        return True

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TaggingClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def describe_rpc_error(error: grpc.RpcError, address: str) -> str:
    """`CODE: details`, with what to do where the cause is plain."""
    code, details = error.code(), error.details() or ""
    text = f"{code.name}: {details}"
    if code is grpc.StatusCode.UNAVAILABLE and ("connect" in details or "Connection refused" in details):
        return f"cannot reach the gateway at {address}: is the stack running? Start it with `tagllm up`"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return text + " (pass the key with --api-key)"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return text + " (allow more time with --timeout)"
    return text
