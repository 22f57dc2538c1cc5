"""Annotating a dataset: a bounded window of requests in flight, retries, durable results."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

from tagllm.bulk.progress import Progress
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.bulk.sources import Item
from tagllm.strategies import TagResult


class TagFailure(Exception):
    """Tagging one image failed; `retryable` says whether trying again may help."""

    def __init__(self, code: str, message: str, retryable: bool, retry_after: float = 0.0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        # The server's own advice (google.rpc.RetryInfo): wait at least this long.
        self.retry_after = retry_after


# Tags one image (with its reference labels, or None); raises TagFailure when it cannot.
Tagger = Callable[[Item, list[str] | None], TagResult]


@dataclasses.dataclass(frozen=True)
class AnnotateSettings:
    window: int = 8
    retries: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclasses.dataclass(frozen=True)
class Summary:
    images: int
    already_done: int
    annotated: int
    failed: int


def _attempt(
    item: Item, reference: list[str] | None, tagger: Tagger, settings: AnnotateSettings
) -> tuple[Item, TagResult | None, dict[str, Any] | None]:
    delay = settings.backoff_seconds
    for attempt in range(1, settings.retries + 2):
        try:
            return item, tagger(item, reference), None
        except TagFailure as failure:
            asked = min(failure.retry_after, settings.max_backoff_seconds)
            if not failure.retryable or attempt > settings.retries:
                record = {
                    "image": item.image_id,
                    "path": str(item.path.resolve()),
                    "code": failure.code,
                    "message": failure.message,
                    "attempts": attempt,
                }
                return item, None, record
        # Exponential backoff with jitter, so N workers do not retry in lockstep; never sooner
        # than the server asked.
        time.sleep(max(delay * (0.5 + random.random()), asked))
        delay = min(delay * 2, settings.max_backoff_seconds)
    raise AssertionError("unreachable")


def _bounded(executor, work: Iterable, window: int, submit) -> Iterator[futures.Future]:
    """Completed futures, keeping at most `window` submitted at once."""
    pending: set[futures.Future] = set()
    for job in work:
        pending.add(submit(executor, job))
        if len(pending) >= window:
            finished, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            yield from finished
    while pending:
        finished, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
        yield from finished


def annotate(
    items: list[Item],
    run: RunDirectory,
    tagger: Tagger,
    references: dict[str, list[str]] | None = None,
    settings: AnnotateSettings = AnnotateSettings(),
    progress: Progress | None = None,
) -> Summary:
    done = {record.image for record in run.results()}
    todo = [item for item in items if item.image_id not in done]
    progress = progress or Progress(len(items), len(items) - len(todo))
    failures = []
    annotated = 0

    def submit(executor, item: Item):
        reference = references.get(item.image_id) if references is not None else None
        return executor.submit(_attempt, item, reference, tagger, settings)

    with (
        run.results_path.open("a", encoding="utf-8") as handle,
        futures.ThreadPoolExecutor(max_workers=settings.window, thread_name_prefix="annotate") as executor,
    ):
        for future in _bounded(executor, todo, settings.window, submit):
            item, result, failure = future.result()
            if result is None:
                failures.append(failure)
                progress.advance(failed=True)
                continue
            run.append_result(handle, AnnotationRecord(item.image_id, str(item.path.resolve()), result))
            annotated += 1
            progress.advance(result.usage.compute_seconds)
    run.write_failures(sorted(failures, key=lambda f: f["image"]))
    return Summary(len(items), len(items) - len(todo), annotated, len(failures))
