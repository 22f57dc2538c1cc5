"""Which images go to people: those with a verified candidate whose served score falls in the
uncertain band, most expected errors first.

With calibrated scores, a kept candidate of score s is wrong with probability 1 - s and a dropped
one is a missed label with probability s; an image's expected errors are their sum over its
verified candidates. Candidates no question was asked about carry no probability and no
expected error (their errors are not seen here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from tagllm.bulk.records import AnnotationRecord
from tagllm.strategies import Verification


@dataclasses.dataclass(frozen=True)
class Band:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise ValueError(f"band {self.low}:{self.high}: need 0 <= LOW <= HIGH <= 1")

    @classmethod
    def parse(cls, text: str) -> Band:
        try:
            low, high = (float(part) for part in text.split(":"))
        except ValueError:
            raise ValueError(f"band {text[:40]!r}: write LOW:HIGH, e.g. 0.2:0.8") from None
        return cls(low, high)

    def __contains__(self, score: float) -> bool:
        return self.low <= score <= self.high

    def __str__(self) -> str:
        return f"{self.low:g}:{self.high:g}"


def expected_errors(verifications: Iterable[Verification]) -> float:
    return sum((1.0 - v.score) if v.confirmed else v.score for v in verifications)


def uncertain(verifications: Sequence[Verification], band: Band) -> list[Verification]:
    return [v for v in verifications if v.score in band]


def select(records: Iterable[AnnotationRecord], band: Band, max_images: int = 0) -> list[AnnotationRecord]:
    """Records with a verified candidate in the band and no review yet, most expected errors
    first; at most `max_images` of them (0: all)."""
    chosen = [r for r in records if r.review is None and uncertain(r.result.verifications, band)]
    chosen.sort(key=lambda r: (-expected_errors(r.result.verifications), r.image))
    return chosen[:max_images] if max_images else chosen
