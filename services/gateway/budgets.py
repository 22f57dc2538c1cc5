"""What the gateway holds for callers at once, each bounded and refused at once when full.

- Decoded pixels (`PixelBudget`): an image that must be shrunk or turned is decoded, which costs
  about 8 bytes per pixel while it lasts; the pixels of images being decoded are counted per
  request (one Tag, BatchTag or StreamTag call), per caller and for the whole gateway.
- Open streams per caller (`StreamSlots`): a StreamTag call holds little, but a caller opening
  thousands would hold the gateway's RPC slots from everyone else.

A refusal is a GatewayError, RESOURCE_EXHAUSTED with a retry delay and the limit in the message.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Hashable, Iterator

from services.gateway.contract import Code, GatewayError

# What an overloaded gateway tells clients to wait before retrying.
OVERLOAD_RETRY_SECONDS = 1.0


def _refuse(message: str) -> GatewayError:
    return GatewayError(Code.RESOURCE_EXHAUSTED, message, retry_after=OVERLOAD_RETRY_SECONDS)


class PixelBudget:
    """Decoded pixels in flight per request, per caller and in all. Thread-safe: images are
    decoded on a thread pool."""

    def __init__(self, total: int, per_caller: int, per_request: int) -> None:
        self.total, self.per_caller, self.per_request = total, per_caller, per_request
        self._lock = threading.Lock()
        self._in_flight = 0
        self._callers: Counter[str] = Counter()
        self._requests: Counter[Hashable] = Counter()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def reserve(self, caller: str, request: Hashable, pixels: int) -> Iterator[None]:
        """Holds `pixels` for the block, or raises GatewayError at once when a limit would pass."""
        with self._lock:
            checks: tuple[tuple[int, int, str], ...] = (
                (self._requests[request], self.per_request, "this request"),
                (self._callers[caller], self.per_caller, "this caller"),
                (self._in_flight, self.total, "the gateway"),
            )
            for held, limit, whose in checks:
                if held + pixels > limit:
                    raise _refuse(
                        f"decoding this {pixels}-pixel image would pass the {limit} decoded pixels in "
                        f"flight allowed for {whose}; retry with backoff or send smaller images"
                    )
            self._requests[request] += pixels
            self._callers[caller] += pixels
            self._in_flight += pixels
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= pixels
                _take(self._requests, request, pixels)
                _take(self._callers, caller, pixels)


def _take(counter: Counter, key: Hashable, amount: int) -> None:
    counter[key] -= amount
    if counter[key] <= 0:
        del counter[key]


class StreamSlots:
    """StreamTag calls open per caller (event-loop only, so no lock)."""

    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self._open: Counter[str] = Counter()

    def open(self, caller: str) -> None:
        """Counts a new stream of `caller`, or raises GatewayError when it has its limit open."""
        if self._open[caller] >= self.per_caller:
            raise _refuse(
                f"this caller has {self.per_caller} StreamTag calls open, the limit; "
                "close one or use BatchTag"
            )
        self._open[caller] += 1

    def close(self, caller: str) -> None:
        _take(self._open, caller, 1)
