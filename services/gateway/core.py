"""The gateway's work, free of gRPC: admission, quotas and budgets, the vocabulary, the image's
checks and normalisation, the result cache, the refiner call, StreamTag's window and vocabulary
registration. The servicer (`server.py`) converts the wire to these calls and back.

Every entry point is a coroutine on the server's event loop and takes the call's `CallContext`;
failures are `GatewayError`s. Image preparation and vocabulary parsing run on thread pools of
their own, so neither blocks the loop nor waits behind the other.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.logs import get_logger
from services.gateway.budgets import OVERLOAD_RETRY_SECONDS, PixelBudget, StreamSlots
from services.gateway.contract import (
    Answer,
    Batch,
    CallContext,
    Code,
    GatewayError,
    Refined,
    RefineJob,
    Refiner,
    Tagged,
    TagItem,
)
from services.gateway.quota import QuotaExceeded, Quotas
from services.gateway.streaming import answer_stream
from tagllm.caching import LRUCache
from tagllm.imaging import ImageLimits, ImageRejected, PixelAdmission, normalize_image
from tagllm.prompts import build_styles
from tagllm.strategies import check_options
from tagllm.vocab import Vocabulary, VocabularyError, VocabularyRegistry

if TYPE_CHECKING:  # the settings module also checks TLS files, with gRPC
    from tagllm.settings import GatewaySettings

log = get_logger("gateway")


class GatewayCore:
    """The public API's behaviour. `refiner` may be set after construction (the gRPC one is made
    on the server's event loop)."""

    def __init__(self, settings: GatewaySettings, refiner: Refiner | None = None) -> None:
        self.settings = settings
        self.refiner = refiner
        self.vocabularies = VocabularyRegistry(
            store=Path(settings.vocabulary_dir) if settings.vocabulary_dir else None
        )
        self.limits = ImageLimits(
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            model_pixels=settings.model_pixels,
            max_jpeg_scans=settings.max_jpeg_scans,
        )
        self.cache: LRUCache[tuple, Refined] = LRUCache(settings.cache_entries)
        self.in_flight = 0
        self.quotas = Quotas(
            settings.quota_requests_per_second,
            settings.quota_images_per_second,
            min_image_burst=settings.max_batch_images,
        )
        self.pixels = PixelBudget(
            settings.max_pixels_in_flight,
            settings.max_caller_pixels_in_flight,
            settings.max_request_pixels_in_flight,
        )
        self.streams = StreamSlots(settings.max_streams_per_caller)
        self._model_version = ""
        # Threads are started as work comes, so two pools cost nothing idle.
        self._preparing = futures.ThreadPoolExecutor(settings.workers, thread_name_prefix="prepare")
        self._registering = futures.ThreadPoolExecutor(settings.workers, thread_name_prefix="register")

    # -- the calls -------------------------------------------------------------------------

    async def tag(self, item: TagItem, call: CallContext) -> Tagged:
        """One image (Tag): its request and image are charged to the caller's quota."""
        self._charge(call, requests=1, images=1)
        return await self._tag_one(item, call, call.request_id)

    async def batch(self, items: Batch, call: CallContext) -> list[Answer]:
        """Each image's answer, in order (BatchTag). Raises GatewayError only for the whole batch:
        too many images, or the quota."""
        if len(items) > self.settings.max_batch_images:
            raise GatewayError(
                Code.INVALID_ARGUMENT,
                f"{len(items)} images in one batch; the limit is {self.settings.max_batch_images}",
            )
        self._charge(call, requests=1, images=len(items))
        return list(
            await asyncio.gather(
                *(self._answer(item, call, f"{call.request_id}.{i}") for i, item in enumerate(items))
            )
        )

    async def stream(self, items: AsyncIterable[TagItem], call: CallContext) -> AsyncIterator[Answer]:
        """Each image's answer as it is done (StreamTag; flow control in `streaming.py`). Raises
        GatewayError when the stream is refused, or after its answers when it went idle."""

        def answer(item: TagItem, request_id: str) -> Awaitable[Answer]:
            return self._answer(item, call, request_id, charge=True)

        self._charge(call, requests=1)
        self.streams.open(call.caller)
        try:
            async for result in answer_stream(
                items, answer, call.request_id, self.settings.stream_window, self.settings.stream_idle_seconds
            ):
                yield result
        finally:
            self.streams.close(call.caller)

    def vocabulary_list(self) -> list[tuple[Vocabulary, bool]]:
        """Every vocabulary a request can name, with whether it is built in."""
        return self.vocabularies.all()

    async def register(self, yaml_text: str, replace: bool, call: CallContext) -> Vocabulary:
        self._charge(call, requests=1)
        loop = asyncio.get_running_loop()
        # Parsing and checking a large vocabulary takes a while: off the event loop.
        vocabulary = await loop.run_in_executor(self._registering, self._register, yaml_text, replace)
        log.info(
            "vocabulary registered",
            vocabulary=vocabulary.name,
            version=vocabulary.full_version,
            caller=call.caller,
            peer=call.peer,
        )
        return vocabulary

    # -- one image -------------------------------------------------------------------------

    async def _answer(
        self, item: TagItem, call: CallContext, request_id: str, charge: bool = False
    ) -> Answer:
        """One image of a batch or stream: never raises for its own failure, so that one image
        cannot fail the others."""
        try:
            if charge:
                self._charge(call, images=1)
            return Answer(item.image_id, tagged=await self._tag_one(item, call, request_id))
        except GatewayError as exc:
            return Answer(item.image_id, error=exc)
        except Exception as exc:
            log.exception("tag failed", request_id=request_id, peer=call.peer)
            error = GatewayError(Code.INTERNAL, f"internal error: {type(exc).__name__}")
            return Answer(item.image_id, error=error)

    async def _tag_one(self, item: TagItem, call: CallContext, request_id: str) -> Tagged:
        """Tags one image or raises GatewayError. Cancelling the task (gRPC does when the client
        goes away) cancels the refiner's call too."""
        if self.in_flight >= self.settings.max_in_flight:  # shed at once rather than queue
            raise GatewayError(
                Code.RESOURCE_EXHAUSTED,
                f"more than {self.settings.max_in_flight} images in flight; retry with backoff",
                retry_after=OVERLOAD_RETRY_SECONDS,
            )
        self.in_flight += 1
        try:
            return await self._tag_admitted(item, call, request_id)
        finally:
            self.in_flight -= 1

    async def _tag_admitted(self, item: TagItem, call: CallContext, request_id: str) -> Tagged:
        loop = asyncio.get_running_loop()
        admit = functools.partial(self.pixels.reserve, call.caller, call)
        work = functools.partial(contextvars.copy_context().run, self._prepare, item, request_id, admit)
        job, version = await loop.run_in_executor(self._preparing, work)
        # Requests with references go through, so the agreement metrics see every one of them.
        key = None
        if job.reference is None:
            key = (hashlib.sha256(job.image).digest(), job.vocabulary, version, job.options)
        cached = self.cache.get((*key, self._model_version)) if key else None
        refined = cached if cached is not None else await self._refine(job, call)
        if key and cached is None:
            self._model_version = refined.model_version
            self.cache.put((*key, refined.model_version), refined)
        return Tagged(refined.result, item.image_id, request_id, cached=cached is not None)

    def _prepare(self, item: TagItem, request_id: str, admit: PixelAdmission) -> tuple[RefineJob, str]:
        """The refiner's job (and the vocabulary's version), or GatewayError for bad input."""
        try:
            vocabulary = self.vocabularies.get(item.vocabulary)
        except KeyError:
            known = ", ".join(v.name for v, _ in self.vocabularies.all())
            message = f"unknown vocabulary {item.vocabulary[:64]!r}; known: {known[:500]}"
            raise GatewayError(Code.NOT_FOUND, message + " (RegisterVocabulary adds one)") from None
        try:  # validated here; the refiner applies them
            if item.options_problem:
                raise ValueError(item.options_problem)
            check_options(item.options, vocabulary)
        except ValueError as exc:
            raise GatewayError(Code.INVALID_ARGUMENT, f"options: {str(exc)[:300]}") from None
        reference = item.reference
        unknown = sorted(set(reference or ()) - set(vocabulary.names))
        if unknown:
            shown = [name[:64] for name in unknown[:10]]  # what is echoed stays short
            raise GatewayError(
                Code.INVALID_ARGUMENT,
                f"{len(unknown)} reference labels not in vocabulary {vocabulary.name!r}: {shown}",
            )
        try:
            image = normalize_image(item.image, self.limits, admit)
        except ImageRejected as exc:
            raise GatewayError(Code.INVALID_ARGUMENT, f"image: {exc}") from None
        job = RefineJob(
            image=image.png,
            vocabulary=vocabulary.name,
            vocabulary_yaml="" if self.vocabularies.is_builtin(vocabulary.name) else vocabulary.source_text,
            options=item.options,
            request_id=request_id,
            # A label repeated (one per box of a crowd photo) is one label of the image.
            reference=None if reference is None else tuple(dict.fromkeys(reference)),
        )
        return job, vocabulary.full_version

    async def _refine(self, job: RefineJob, call: CallContext) -> Refined:
        if self.refiner is None:
            raise GatewayError(Code.UNAVAILABLE, "refiner: not connected yet")
        return await self.refiner.refine(job, self._timeout(call))

    def _timeout(self, call: CallContext) -> float:
        default = self.settings.default_timeout_seconds
        return min(call.time_remaining, default) if call.time_remaining else default

    def _charge(self, call: CallContext, requests: int = 0, images: int = 0) -> None:
        try:
            self.quotas.charge(call.caller, requests=requests, images=images)
        except QuotaExceeded as exc:
            raise GatewayError(Code.RESOURCE_EXHAUSTED, str(exc), exc.retry_after) from None

    def _register(self, yaml_text: str, replace: bool) -> Vocabulary:
        try:
            return self.vocabularies.register(yaml_text, replace=replace, check=build_styles)
        except VocabularyError as exc:
            raise GatewayError(Code.INVALID_ARGUMENT, str(exc)[:1000]) from None
        except FileExistsError as exc:
            raise GatewayError(
                Code.ALREADY_EXISTS, f"{str(exc)[:300]}; set replace to overwrite it"
            ) from None
        except OverflowError as exc:
            raise GatewayError(Code.RESOURCE_EXHAUSTED, str(exc)[:300]) from None
