"""The gateway's own limits, with a stand-in refiner (the real chain is tested in tests/e2e)."""

import threading
from concurrent import futures

import grpc
import pytest

from services.common.settings import load_settings
from services.gateway.server import GatewaySettings, TagError, TaggingServicer
from tagllm.client import strategy_options
from tagllm.internal.v1 import refinement_pb2
from tagllm.v1 import common_pb2, tagging_pb2
from tests.conftest import png


class Refiner:
    """Stands in for the refiner's stub: `Refine.future(...)` answers at once."""

    def __init__(self):
        self.requests = []
        self.Refine = self

    def future(self, request, timeout, metadata):
        self.requests.append(request)
        done = futures.Future()
        done.set_result(
            refinement_pb2.RefineResponse(
                result=common_pb2.TaggingResult(
                    labels=[common_pb2.Label(name="cat", score=0.9)],
                    usage=common_pb2.Usage(mllm_calls=1),
                    version=common_pb2.VersionStamp(model="m/1"),
                )
            )
        )
        return done


def request(content=None, **kwargs):
    return tagging_pb2.TagRequest(
        image=tagging_pb2.Image(content=content or png()), options=strategy_options("multi_option"), **kwargs
    )


def servicer(**settings):
    refiner = Refiner()
    return TaggingServicer(load_settings(GatewaySettings, "X_", **settings), refiner), refiner


def test_images_beyond_the_in_flight_limit_are_refused():
    gateway, refiner = servicer(max_in_flight=1)
    assert gateway._slots.acquire(blocking=False)  # one image is in flight
    with pytest.raises(TagError) as caught:
        gateway.tag_one(request(), 10, "r1")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "in flight" in str(caught.value)
    gateway._slots.release()
    assert gateway.tag_one(request(), 10, "r2").result.labels[0].name == "cat"


def test_cache_serves_repeats_but_never_requests_with_references():
    gateway, refiner = servicer()
    first = gateway.tag_one(request(), 10, "a")
    second = gateway.tag_one(request(), 10, "b")
    assert not first.cached and second.cached and second.request_id == "b"
    gateway.tag_one(request(reference=common_pb2.ReferenceLabels(labels=["cat"])), 10, "c")
    assert len(refiner.requests) == 2 and list(refiner.requests[1].reference.labels) == ["cat"]
    # An empty reference ("a human saw nothing") is a reference too.
    gateway.tag_one(request(reference=common_pb2.ReferenceLabels()), 10, "d")
    assert len(refiner.requests) == 3 and refiner.requests[2].HasField("reference")


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="MAX_IN_FLIGHT"):
        load_settings(GatewaySettings, "X_", max_in_flight=0)
    with pytest.raises(ValueError, match="STREAM_WINDOW"):
        load_settings(GatewaySettings, "X_", environ={"X_STREAM_WINDOW": "0"})


def test_a_gateway_that_requires_keys_does_not_start_without_them():
    with pytest.raises(ValueError, match="REQUIRE_API_KEYS is set but TAGLLM_GATEWAY_API_KEYS is empty"):
        load_settings(GatewaySettings, "X_", require_api_keys=True)
    assert load_settings(GatewaySettings, "X_", require_api_keys=True, api_keys=("k",)).api_keys == ("k",)


def test_a_client_that_goes_away_cancels_the_refiners_work():
    class Context:
        def __init__(self):
            self.callbacks = []

        def add_callback(self, callback):
            self.callbacks.append(callback)
            return True

    class PendingCall:
        """A refiner call that answers only when cancelled, as grpc's future does then."""

        def __init__(self):
            self.ended = threading.Event()

        def cancel(self):
            self.ended.set()
            return True

        def cancelled(self):
            return self.ended.is_set()

        def result(self):
            self.ended.wait(10)
            raise grpc.FutureCancelledError()

    class Pending(Refiner):
        def future(self, request, timeout, metadata):
            self.pending = PendingCall()
            return self.pending

    gateway, _ = servicer()
    pending = Pending()
    gateway.refiner = pending
    context = Context()
    worker = futures.ThreadPoolExecutor(1).submit(gateway.tag_one, request(), 10, "r", context)
    while not context.callbacks:
        threading.Event().wait(0.01)
    for callback in context.callbacks:  # gRPC runs them when the client's call ends
        callback()
    with pytest.raises(TagError) as caught:
        worker.result(timeout=10)
    assert caught.value.code == grpc.StatusCode.CANCELLED and pending.pending.cancelled()
