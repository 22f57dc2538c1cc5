"""The refiner's own answers, with a stand-in model (the real chain is tested in tests/e2e)."""

import grpc
import pytest

from services.refiner.server import RefinementServicer
from tagllm.convert import strategy_options
from tagllm.internal.v1 import refinement_pb2
from tagllm.mllm.contract import ErrorKind, MLLMError
from tests.conftest import png


class Aborted(Exception):
    pass


class Context:
    code = None

    def time_remaining(self):
        return 10.0

    def is_active(self):
        return True

    def abort(self, code, message):
        self.code, self.message = code, message
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
        refiner.Refine(request, context)
    assert context.code == code
    if code is grpc.StatusCode.INTERNAL:
        assert "a bug" not in context.message  # details stay in the refiner's log
