"""A progress line for long runs: done/total, images per second, ETA, dollars so far."""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    def __init__(self, total: int, done: int = 0, gpu_price_per_hour: float = 2.5, stream=None) -> None:
        self.total = total
        self.done = done
        self.failed = 0
        self.dollars = 0.0
        self.gpu_price_per_hour = gpu_price_per_hour
        self.stream = stream or sys.stderr
        self._start = time.monotonic()
        self._started_at = done
        self._last_print = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def advance(self, compute_seconds: float = 0.0, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        self.dollars += compute_seconds * self.gpu_price_per_hour / 3600.0
        now = time.monotonic()
        # A terminal gets a live line; a log file gets a line every 10 seconds.
        if self.done == self.total or now - self._last_print >= (0.2 if self._tty else 10.0):
            self._last_print = now
            self._print(end="\n" if self.done == self.total or not self._tty else "")

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.done - self._started_at) / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = _duration(eta) if eta != float("inf") else "?"
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.done}/{self.total} images{failed}  {rate:.2f} img/s  ETA {eta_text}  "
            f"${self.dollars:.4f} model time"
        )

    def _print(self, end: str) -> None:
        prefix = "\r" if self._tty else ""
        print(prefix + self.line(), end=end, file=self.stream, flush=True)
