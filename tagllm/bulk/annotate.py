"""Annotating a dataset: a bounded window of images in flight on a stream, retries, durable
results.

A tagger answers a stream of images (`Tagger.stream`): the gateway's StreamTag, or a model in
this process. `annotate` feeds it from a schedule that holds at most `window` images in flight,
sends an image that failed in a way worth retrying again after its wait, and writes each result
as it comes (completion order). When a stream ends, or breaks, with images unanswered, those
are tried again on a new one: no image is lost, and none is written twice.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent import futures
from typing import Any, Protocol

from tagllm.bulk.progress import Progress
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.bulk.sources import Item
from tagllm.datasets.images import MAX_IMAGE_FILE_BYTES
from tagllm.files import InputFileError, read_bytes
from tagllm.strategies import TagResult

# Images in flight on one stream: the model server's dynamic batch (`tagllm up --max-batch-size`)
# and the gateway's StreamTag window (TAGLLM_GATEWAY_STREAM_WINDOW) are 8 by default, so 8 keeps
# a batch full without images waiting at the gateway.
DEFAULT_WINDOW = 8


class TagFailure(Exception):
    """Tagging one image failed; `retryable` says whether trying again may help."""

    def __init__(self, code: str, message: str, retryable: bool, retry_after: float = 0.0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        # The server's own advice (google.rpc.RetryInfo): wait at least this long.
        self.retry_after = retry_after


class StreamBroken(Exception):
    """The stream itself failed: `failure` is what each image of `images` (every image in flight
    when None) gets; the others in flight are tried again as images the stream left unanswered."""

    def __init__(self, failure: TagFailure, images: frozenset[str] | None = None) -> None:
        super().__init__(str(failure))
        self.failure = failure
        self.images = images


@dataclasses.dataclass(frozen=True)
class Work:
    item: Item
    # The image's human labels, or None.
    reference: list[str] | None
    # Which try this is, from 1.
    attempt: int = 1


Outcome = tuple[Work, TagResult | TagFailure]


class Tagger(Protocol):
    def stream(self, work: Iterable[Work], window: int) -> Iterator[Outcome]:
        """Tags the images of `work` (an iterable that blocks until the schedule lets the next go,
        read on a thread of the tagger's own) and yields each outcome as it is done. Raises
        StreamBroken when the stream as a whole fails."""
        ...


class PerImageTagger:
    """A tagger of one image at a time (`tag`), run `window` at once on threads."""

    def tag(self, item: Item, reference: list[str] | None) -> TagResult:
        """The result, or TagFailure."""
        raise NotImplementedError

    def stream(self, work: Iterable[Work], window: int) -> Iterator[Outcome]:
        outcomes: deque[futures.Future] = deque()
        ready = threading.Condition()
        fed = threading.Event()
        pending: set[futures.Future] = set()

        def run(job: Work) -> Outcome:
            try:
                return job, self.tag(job.item, job.reference)
            except TagFailure as failure:
                return job, failure

        def done(future: futures.Future) -> None:
            with ready:
                pending.discard(future)
                outcomes.append(future)
                ready.notify()

        def feed(executor: futures.ThreadPoolExecutor) -> None:
            try:
                for job in work:
                    future = executor.submit(run, job)
                    with ready:
                        pending.add(future)
                    future.add_done_callback(done)
            finally:
                with ready:
                    fed.set()
                    ready.notify()

        with futures.ThreadPoolExecutor(max_workers=window, thread_name_prefix="annotate") as executor:
            feeder = threading.Thread(target=feed, args=(executor,), name="annotate-feed", daemon=True)
            feeder.start()
            while True:
                with ready:
                    while not outcomes and not (fed.is_set() and not pending):
                        ready.wait()
                    if not outcomes:
                        break
                    finished = outcomes.popleft()
                yield finished.result()  # a failure that is no TagFailure (a bug) ends the run
            feeder.join()


@dataclasses.dataclass(frozen=True)
class AnnotateSettings:
    window: int = DEFAULT_WINDOW
    retries: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


@dataclasses.dataclass(frozen=True)
class Summary:
    images: int
    already_done: int
    annotated: int
    failed: int


class _Schedule:
    """Images to send (new ones, and retries once their wait is over), at most `window` of them
    out at once."""

    def __init__(self, work: Iterable[Work], settings: AnnotateSettings) -> None:
        self.settings = settings
        self.ready: deque[Work] = deque(work)
        self.waiting: list[tuple[float, int, Work]] = []  # (when, tie-break, work)
        self.out: dict[str, Work] = {}
        self.changed = threading.Condition()
        self.order = itertools.count()
        self.stream = 0  # the stream being fed; an older one's feed stops

    def unfinished(self) -> bool:
        with self.changed:
            return bool(self.ready or self.waiting or self.out)

    def feed(self) -> Iterator[Work]:
        """The work of a new stream; ends when all is done or the next stream opens."""
        with self.changed:
            self.stream += 1
            stream = self.stream
        while True:
            with self.changed:
                while True:
                    if stream != self.stream or not (self.ready or self.waiting or self.out):
                        return
                    now = time.monotonic()
                    while self.waiting and self.waiting[0][0] <= now:
                        self.ready.append(heapq.heappop(self.waiting)[2])
                    if self.ready and len(self.out) < self.settings.window:
                        job = self.ready.popleft()
                        self.out[job.item.image_id] = job
                        break
                    wait = self.waiting[0][0] - now if self.waiting else None
                    self.changed.wait(wait)
            yield job

    def answered(self, job: Work, retry: TagFailure | None = None) -> None:
        """`job` is out no more; with `retry`, it goes again after exponential backoff with jitter
        (so that many clients do not retry in lockstep), never sooner than the server asked."""
        with self.changed:
            self.out.pop(job.item.image_id, None)
            if retry is not None:
                backoff = min(
                    self.settings.backoff_seconds * 2 ** (job.attempt - 1), self.settings.max_backoff_seconds
                )
                asked = min(retry.retry_after, self.settings.max_backoff_seconds)
                when = time.monotonic() + max(backoff * (0.5 + random.random()), asked)
                again = dataclasses.replace(job, attempt=job.attempt + 1)
                heapq.heappush(self.waiting, (when, next(self.order), again))
            self.changed.notify_all()

    def in_flight(self) -> list[Work]:
        with self.changed:
            return list(self.out.values())

    def close_stream(self) -> None:
        """Ends the current stream's feed (a feed waiting for room returns)."""
        with self.changed:
            self.stream += 1
            self.changed.notify_all()


# The failure of an image a stream ended without answering (it is tried again).
UNANSWERED = TagFailure("ABORTED", "the stream ended before answering this image", retryable=True)


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
    schedule = _Schedule(
        (Work(item, references.get(item.image_id) if references is not None else None) for item in todo),
        settings,
    )
    failures: list[dict[str, Any]] = []
    annotated = 0

    with run.results_path.open("a", encoding="utf-8") as handle:

        def settle(job: Work, outcome: TagResult | TagFailure) -> None:
            nonlocal annotated
            if isinstance(outcome, TagResult):
                run.append_result(
                    handle, AnnotationRecord(job.item.image_id, str(job.item.path.resolve()), outcome)
                )
                schedule.answered(job)
                annotated += 1
                progress.advance(outcome.usage.model_compute_seconds)
            elif outcome.retryable and job.attempt <= settings.retries:
                schedule.answered(job, retry=outcome)
            else:
                schedule.answered(job)
                failures.append(_failure_record(job, outcome))
                progress.advance(failed=True)

        while schedule.unfinished():
            try:
                for job, outcome in tagger.stream(schedule.feed(), settings.window):
                    settle(job, outcome)
            except StreamBroken as broken:
                for job in schedule.in_flight():
                    if broken.images is None or job.item.image_id in broken.images:
                        settle(job, broken.failure)
            finally:
                schedule.close_stream()
            for job in schedule.in_flight():  # sent, and the stream ended without their answers
                settle(job, UNANSWERED)
    run.write_failures(sorted(failures, key=lambda f: f["image"]))
    return Summary(len(items), len(items) - len(todo), annotated, len(failures))


def _failure_record(job: Work, failure: TagFailure) -> dict[str, Any]:
    return {
        "image": job.item.image_id,
        "path": str(job.item.path.resolve()),
        "code": failure.code,
        "message": failure.message,
        "attempts": job.attempt,
    }


def read_image(item: Item) -> bytes:
    """The image file's bytes; TagFailure UNREADABLE (not worth retrying) where it cannot be read."""
    try:
        return read_bytes(item.path, MAX_IMAGE_FILE_BYTES)
    except InputFileError as exc:
        raise TagFailure("UNREADABLE", str(exc), retryable=False) from None
