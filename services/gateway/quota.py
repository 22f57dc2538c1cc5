"""Per-caller quotas: requests and images per second, as token buckets.

A caller is its API key (or everyone together when the gateway has no keys). A bucket holds at
most `burst_seconds` worth of its rate, refills continuously, and a charge it cannot cover is
refused whole with the seconds until it could be: the client's retry delay.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable


@dataclasses.dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` tokens are there (0: now). Refills; takes nothing."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        return max(0.0, (amount - self.tokens) / self.rate)


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Quotas:
    """`requests_per_second` and `images_per_second` per caller; 0 turns a quota off."""

    def __init__(
        self,
        requests_per_second: float,
        images_per_second: float,
        burst_seconds: float = 2.0,
        min_image_burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"requests": requests_per_second, "images": images_per_second}
        self.burst_seconds = burst_seconds
        # A batch as large as the gateway allows must fit in a full bucket.
        self.min_burst = {"requests": 1.0, "images": float(min_image_burst)}
        self.clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, caller: str, kind: str) -> TokenBucket | None:
        rate = self.limits[kind]
        if rate <= 0:
            return None
        bucket = self._buckets.get((caller, kind))
        if bucket is None:
            capacity = max(rate * self.burst_seconds, self.min_burst[kind])
            bucket = self._buckets[(caller, kind)] = TokenBucket(rate, capacity, capacity, self.clock())
        return bucket

    def charge(self, caller: str, requests: int = 0, images: int = 0) -> None:
        """Takes the request and image tokens, or raises QuotaExceeded having taken none."""
        wanted = [(kind, amount) for kind, amount in (("requests", requests), ("images", images)) if amount]
        buckets = [(kind, amount, self._bucket(caller, kind)) for kind, amount in wanted]
        now = self.clock()  # not before a new bucket's own time
        for kind, amount, bucket in buckets:
            if bucket is None:
                continue
            if amount > bucket.capacity:
                raise QuotaExceeded(
                    f"{amount} {kind} at once exceed this caller's burst of {bucket.capacity:g}", 1.0
                )
            wait = bucket.wait_for(amount, now)
            if wait:
                raise QuotaExceeded(
                    f"quota of {bucket.rate:g} {kind} per second exceeded; retry in {wait:.2f} s", wait
                )
        # Taken only once every bucket can pay, so a refused charge costs nothing.
        for _, amount, bucket in buckets:
            if bucket is not None:
                bucket.tokens -= amount


def caller_of(metadata) -> str:
    """Who is calling, for quotas and logs: a short digest of the bearer token (never the key)."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            return hashlib.sha256(value.encode()).hexdigest()[:12]
    return "anonymous"
