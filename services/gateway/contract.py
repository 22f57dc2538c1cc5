"""What the gateway core takes and gives, in its own types: no gRPC, no protobuf.

The servicer (`server.py`) builds these from the wire and turns the answers back into it; the
refiner is reached through the `Refiner` port, which `refiner_client.py` implements over gRPC.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from typing import Protocol

from tagllm.strategies import StrategyOptions


class Code(enum.Enum):
    """Why a call or one image failed. Each is named as the gRPC status it is answered with."""

    INVALID_ARGUMENT = enum.auto()
    NOT_FOUND = enum.auto()
    ALREADY_EXISTS = enum.auto()
    RESOURCE_EXHAUSTED = enum.auto()
    DEADLINE_EXCEEDED = enum.auto()
    CANCELLED = enum.auto()
    UNAVAILABLE = enum.auto()
    INTERNAL = enum.auto()


class GatewayError(Exception):
    """Ends a call (or one image of a batch or stream) with `code`; `retry_after` (seconds) is
    how long a client should wait before trying again, where waiting helps."""

    def __init__(self, code: Code, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


@dataclasses.dataclass(eq=False)  # compared by identity: pixel budgets count per call
class CallContext:
    """One call as the core sees it. Cancellation is the asyncio task's: when the client goes
    away the task running the call is cancelled, and with it everything the call started."""

    request_id: str
    # Who is calling, for quotas and budgets: never the key itself.
    caller: str = "anonymous"
    # Seconds left of the client's deadline when the call began; None (or 0): no deadline.
    time_remaining: float | None = None
    # The client's address, for logs.
    peer: str = ""


@dataclasses.dataclass(frozen=True)
class TagItem:
    """One image to tag, as the client sent it."""

    image: bytes
    image_id: str = ""
    vocabulary: str = ""  # '' is the default vocabulary
    options: StrategyOptions = dataclasses.field(default_factory=StrategyOptions)
    # Why the request's options could not be read ('' when they could); reported, like every
    # other problem of the request, once its vocabulary is known.
    options_problem: str = ""
    # Human labels for the image; None: none given (an empty tuple says "nothing in it").
    reference: tuple[str, ...] | None = None


class Batch(Protocol):
    """A batch's images: counted before any is read, so that a batch over the limit costs
    nothing to refuse (a list will do; the servicer converts each request as it is read)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[TagItem]: ...


@dataclasses.dataclass(frozen=True)
class Tagged:
    """One image's answer. `result` is the refiner's, passed on untouched."""

    result: object
    image_id: str
    request_id: str
    cached: bool


@dataclasses.dataclass(frozen=True)
class Answer:
    """One image of a batch or stream: tagged, or the error it got."""

    image_id: str
    tagged: Tagged | None = None
    error: GatewayError | None = None


@dataclasses.dataclass(frozen=True)
class RefineJob:
    """What the refiner is asked: a normalised image and everything it needs to tag it."""

    image: bytes
    vocabulary: str
    # A custom vocabulary's file, sent along so that the refiner stays stateless; '' for built-ins.
    vocabulary_yaml: str
    options: StrategyOptions
    request_id: str
    reference: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Refined:
    result: object
    # The model that answered, part of the result cache's key.
    model_version: str


class Refiner(Protocol):
    async def refine(self, job: RefineJob, timeout: float) -> Refined:
        """The refiner's answer, or GatewayError with the status to pass on."""
        ...
