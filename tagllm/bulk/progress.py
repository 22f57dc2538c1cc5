"""The progress bar of long runs (tqdm): done/total, images per second, ETA, dollars so far."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR, gpu_dollars


class Progress:
    def __init__(
        self,
        total: int,
        done: int = 0,
        gpu_price_per_hour: float = DEFAULT_GPU_PRICE_PER_HOUR,
        stream: TextIO | None = None,
    ) -> None:
        self.failed = 0
        self.dollars = 0.0
        self.gpu_price_per_hour = gpu_price_per_hour
        stream = stream or sys.stderr
        # A terminal gets a live bar; a log file a line every 10 seconds.
        interval = 0.2 if stream.isatty() else 10.0
        self.bar = tqdm(
            total=total,
            initial=done,
            unit="img",
            file=stream,
            mininterval=interval,
            maxinterval=max(interval, 10.0),
            dynamic_ncols=True,
            bar_format="{n_fmt}/{total_fmt} images |{bar:20}| {rate_fmt}  ETA {remaining}{postfix}",
        )
        self._update_postfix()

    def advance(self, compute_seconds: float = 0.0, failed: bool = False) -> None:
        self.failed += int(failed)
        self.dollars += gpu_dollars(compute_seconds, self.gpu_price_per_hour)
        self._update_postfix()
        self.bar.update(1)
        if self.bar.n >= (self.bar.total or 0):
            self.bar.close()

    def _update_postfix(self) -> None:
        failed = f"{self.failed} failed, " if self.failed else ""
        self.bar.set_postfix_str(f"{failed}${self.dollars:.4f} model time", refresh=False)

    def line(self) -> str:
        """The bar's text as it would print now."""
        return str(self.bar)

    def close(self) -> None:
        self.bar.close()
