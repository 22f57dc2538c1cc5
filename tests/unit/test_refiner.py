"""The refiner's own answers, with a stand-in model (the real chain is tested in tests/e2e)."""

import asyncio
import threading

import grpc
import pytest

from services.refiner.server import RefinementServicer
from tagllm.client import retry_delay
from tagllm.convert import strategy_options
from tagllm.internal.v1 import refinement_pb2
from tagllm.mllm.contract import NO_CONTEXT, ErrorKind, MLLMError
from tagllm.vocab import builtin_vocabulary
from tests.conftest import png
from tests.fakes import ScriptedMLLM


class Aborted(Exception):
    pass


class Context:
    code = None

    def time_remaining(self):
        return 10.0

    async def abort(self, code, message, trailing_metadata=()):
        self.code, self.message, self.trailing = code, message, trailing_metadata
        raise Aborted(message)


class Broken:
    version = "broken/1"

    def __init__(self, error):
        self.error = error

    def run(self, request, context=None):
        raise self.error


@pytest.mark.parametrize(
    "error, code",
    [
        (RuntimeError("a bug"), grpc.StatusCode.INTERNAL),
        (MLLMError("busy", ErrorKind.UNAVAILABLE), grpc.StatusCode.UNAVAILABLE),
        (MLLMError("gone", ErrorKind.CANCELLED), grpc.StatusCode.CANCELLED),
    ],
)
def test_a_failure_is_answered_with_its_own_status_never_as_a_retryable_or_ok(error, code):
    refiner = RefinementServicer(Broken(error))
    request = refinement_pb2.RefineRequest(
        image=png(), vocabulary="coco", options=strategy_options("multi_option")
    )
    context = Context()
    with pytest.raises(Aborted):
        asyncio.run(refiner.Refine(request, context))
    assert context.code == code
    if code is grpc.StatusCode.INTERNAL:
        assert "a bug" not in context.message  # details stay in the refiner's log


def test_full_model_queues_are_answered_resource_exhausted_with_retry_info():
    refiner = RefinementServicer(
        Broken(MLLMError("queues full", ErrorKind.OVERLOADED)), overload_retry_seconds=2.5
    )
    request = refinement_pb2.RefineRequest(
        image=png(), vocabulary="coco", options=strategy_options("multi_option")
    )
    context = Context()
    with pytest.raises(Aborted):
        asyncio.run(refiner.Refine(request, context))
    assert context.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), grpc.aio.Metadata(*context.trailing)
    )
    assert retry_delay(error) == 2.5  # read as the gateway reads it, from a grpc.aio error


class Held(ScriptedMLLM):
    """Sees a cat; its first call waits until released."""

    def __init__(self):
        super().__init__(builtin_vocabulary("coco"), {png(): {"cat"}})
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, request, context=NO_CONTEXT):
        self.entered.set()
        self.release.wait(10)
        return super().run(request, context)


@pytest.mark.parametrize("cancel", [True, False])
def test_a_cancelled_call_runs_no_further_stage(cancel):
    model = Held()
    refiner = RefinementServicer(model)
    request = refinement_pb2.RefineRequest(image=png(), vocabulary="coco", options=strategy_options("tagllm"))

    async def scenario():
        task = asyncio.create_task(refiner.Refine(request, Context()))
        await asyncio.to_thread(model.entered.wait, 10)
        if cancel:
            task.cancel()  # what gRPC does when the caller goes away
            with pytest.raises(asyncio.CancelledError):
                await task
        model.release.set()
        if not cancel:
            assert [label.name for label in (await task).result.labels] == ["cat"]

    asyncio.run(scenario())
    refiner._workers.shutdown(wait=True)  # the stage in progress ends; is another started?
    assert len(model.requests) == (1 if cancel else 2)
