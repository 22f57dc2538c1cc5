"""The gateway's own limits, with a stand-in refiner (the real chain is tested in tests/e2e)."""

import asyncio

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from services.common.grpc_server import ServiceError
from services.gateway.budgets import PixelBudget
from services.gateway.quota import QuotaExceeded, Quotas
from services.gateway.server import GatewaySettings, TaggingServicer
from tagllm.client import strategy_options
from tagllm.internal.v1 import refinement_pb2
from tagllm.settings import load_settings
from tagllm.v1 import common_pb2, tagging_pb2
from tests.conftest import png

REPLY = refinement_pb2.RefineResponse(
    result=common_pb2.TaggingResult(
        labels=[common_pb2.Label(name="cat", score=0.9)],
        usage=common_pb2.Usage(mllm_calls=1),
        version=common_pb2.VersionStamp(model="m/1"),
    )
)


class Refiner:
    """Stands in for the refiner's asyncio stub. Answers at once unless `hold` is set, then
    waits until it is cleared (or the call is cancelled)."""

    def __init__(self):
        self.requests = []
        self.cancelled = 0
        self.release = asyncio.Event()
        self.release.set()
        self.Refine = self

    async def __call__(self, request, timeout, metadata):
        self.requests.append(request)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return REPLY


class Context:
    def __init__(self, metadata=()):
        self.metadata = metadata

    def time_remaining(self):
        return 10.0

    def invocation_metadata(self):
        return self.metadata


class Aborted(Exception):
    pass


class AbortingContext(Context):
    """A context whose abort ends the handler, as gRPC's does, and keeps what it was told."""

    async def abort(self, code, message, trailing_metadata=()):
        self.code, self.message, self.trailing = code, message, trailing_metadata
        raise Aborted()


def request(content=None, **kwargs):
    return tagging_pb2.TagRequest(
        image=tagging_pb2.Image(content=content or png()), options=strategy_options("multi_option"), **kwargs
    )


def servicer(**settings):
    refiner = Refiner()
    return TaggingServicer(load_settings(GatewaySettings, "X_", **settings), refiner), refiner


def run(coroutine):
    return asyncio.run(coroutine)


def test_images_beyond_the_in_flight_limit_are_shed_at_once_with_a_retry_delay():
    async def scenario():
        gateway, refiner = servicer(max_in_flight=1)
        refiner.release.clear()
        first = asyncio.create_task(gateway.tag_one(request(), 10, "r1"))
        while not refiner.requests:
            await asyncio.sleep(0.001)
        with pytest.raises(ServiceError) as caught:
            await gateway.tag_one(request(png(40, 40)), 10, "r2")
        refiner.release.set()
        assert (await first).result.labels[0].name == "cat"
        assert (await gateway.tag_one(request(png(50, 50)), 10, "r3")).result.labels[0].name == "cat"
        return caught.value

    error = run(scenario())
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "in flight" in str(error)
    status = error.to_status()
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay.ToMilliseconds() == 1000


def test_cache_serves_repeats_but_never_requests_with_references():
    async def scenario():
        gateway, refiner = servicer()
        first = await gateway.tag_one(request(), 10, "a")
        second = await gateway.tag_one(request(), 10, "b")
        assert not first.cached and second.cached and second.request_id == "b"
        await gateway.tag_one(request(reference=common_pb2.ReferenceLabels(labels=["cat"])), 10, "c")
        assert len(refiner.requests) == 2 and list(refiner.requests[1].reference.labels) == ["cat"]
        # An empty reference ("a human saw nothing") is a reference too.
        await gateway.tag_one(request(reference=common_pb2.ReferenceLabels()), 10, "d")
        assert len(refiner.requests) == 3 and refiner.requests[2].HasField("reference")

    run(scenario())


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="MAX_IN_FLIGHT"):
        load_settings(GatewaySettings, "X_", max_in_flight=0)
    with pytest.raises(ValueError, match="STREAM_WINDOW"):
        load_settings(GatewaySettings, "X_", environ={"X_STREAM_WINDOW": "0"})
    with pytest.raises(ValueError, match="STREAM_IDLE_SECONDS"):
        load_settings(GatewaySettings, "X_", stream_idle_seconds=0)


def test_a_gateway_that_requires_keys_does_not_start_without_them(tmp_path):
    with pytest.raises(
        ValueError, match="REQUIRE_API_KEYS is set but TAGLLM_GATEWAY_API_KEYS.* holds no key"
    ):
        load_settings(GatewaySettings, "X_", require_api_keys=True)
    assert load_settings(GatewaySettings, "X_", require_api_keys=True, api_keys=("k",)).api_keys == ("k",)
    # Keys from a file (a mounted Secret): an empty one is no key at all, a missing one an error.
    keys = tmp_path / "keys"
    keys.write_text("\n")
    with pytest.raises(ValueError, match="holds no key"):
        load_settings(GatewaySettings, "X_", require_api_keys=True, api_keys_file=str(keys))
    keys.write_text("alpha, beta\ngamma\n")
    settings = load_settings(GatewaySettings, "X_", environ={"X_API_KEYS_FILE": str(keys), "X_API_KEYS": "k"})
    assert settings.api_keys == ("k", "alpha", "beta", "gamma")
    with pytest.raises(ValueError, match="cannot read"):
        load_settings(GatewaySettings, "X_", api_keys_file=str(tmp_path / "absent"))


def test_a_client_that_goes_away_cancels_the_refiners_work():
    async def scenario():
        gateway, refiner = servicer()
        refiner.release.clear()
        task = asyncio.create_task(gateway.tag_one(request(), 10, "r"))
        while not refiner.requests:
            await asyncio.sleep(0.001)
        task.cancel()  # what gRPC does to the handler when the client's call ends
        with pytest.raises(asyncio.CancelledError):
            await task
        return gateway, refiner

    gateway, refiner = run(scenario())
    assert refiner.cancelled == 1 and gateway.in_flight == 0


class Stream:
    """A client's request stream: yields the given requests, then waits `idle_after` forever."""

    def __init__(self, requests, hang=False):
        self.requests, self.hang = list(requests), hang

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        for item in self.requests:
            yield item
        if self.hang:
            await asyncio.Event().wait()


def test_a_stream_keeps_at_most_its_window_in_flight():
    async def scenario():
        gateway, refiner = servicer(stream_window=2, cache_entries=0)
        refiner.release.clear()
        items = [request(png(30 + i, 30)) for i in range(5)]
        answers = []

        async def consume():
            async for answer in gateway.StreamTag(Stream(items), Context()):
                answers.append(answer)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        in_flight_while_held = len(refiner.requests)
        refiner.release.set()
        await consumer
        return in_flight_while_held, answers

    in_flight, answers = run(scenario())
    assert in_flight == 2
    assert len(answers) == 5 and all(a.status.code == code_pb2.OK for a in answers)


def test_an_idle_stream_is_ended_after_its_answers():
    async def scenario():
        gateway, _ = servicer(stream_idle_seconds=0.2)
        context, answers = AbortingContext(), []
        with pytest.raises(Aborted):
            async for answer in gateway.StreamTag(Stream([request()], hang=True), context):
                answers.append(answer)
        return context, answers

    context, answers = run(scenario())
    assert len(answers) == 1 and answers[0].status.code == code_pb2.OK
    assert context.code == grpc.StatusCode.DEADLINE_EXCEEDED and "no message for 0.2 s" in context.message


def test_a_new_callers_first_charge_passes_on_a_real_clock():
    quotas = Quotas(requests_per_second=0.01, images_per_second=0)
    quotas.charge("a", requests=1)
    with pytest.raises(QuotaExceeded) as caught:
        quotas.charge("a", requests=1)
    assert 99 < caught.value.retry_after <= 100


def test_quotas_refuse_whole_charges_with_the_time_to_wait():
    now = [0.0]
    quotas = Quotas(requests_per_second=2, images_per_second=4, burst_seconds=1, clock=lambda: now[0])
    quotas.charge("a", requests=1, images=4)
    with pytest.raises(QuotaExceeded) as caught:
        quotas.charge("a", requests=1, images=1)  # the images bucket is empty
    assert caught.value.retry_after == pytest.approx(0.25)
    quotas.charge("b", requests=1, images=1)  # another caller has buckets of its own
    now[0] = 0.25
    quotas.charge("a", requests=1, images=1)  # the refused charge took no request token
    with pytest.raises(QuotaExceeded, match="requests per second"):
        quotas.charge("a", requests=1)
    with pytest.raises(QuotaExceeded, match="burst"):
        quotas.charge("c", images=5)


def test_tag_is_refused_once_a_callers_quota_is_spent():
    async def scenario():
        gateway, _ = servicer(api_keys=("k1", "k2"), quota_requests_per_second=1)
        first = AbortingContext([("authorization", "Bearer k1")])
        await gateway.Tag(request(), first)
        await gateway.Tag(request(), first)  # a burst of two seconds' worth
        with pytest.raises(Aborted):
            await gateway.Tag(request(), first)
        await gateway.Tag(request(), AbortingContext([("authorization", "Bearer k2")]))
        return first

    refused = run(scenario())
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in refused.message
    assert dict(refused.trailing)["grpc-status-details-bin"]


def test_decoded_pixels_are_bounded_per_request_per_caller_and_in_all():
    budget = PixelBudget(total=100, per_caller=60, per_request=40)
    with budget.reserve("a", "r1", 40):
        with pytest.raises(ServiceError, match="40 decoded pixels in flight allowed for this request"):
            budget.reserve("a", "r1", 1).__enter__()
        with budget.reserve("a", "r2", 20):
            with pytest.raises(ServiceError, match="60 decoded pixels in flight allowed for this caller"):
                budget.reserve("a", "r3", 1).__enter__()
            with budget.reserve("b", "r4", 40):
                with pytest.raises(ServiceError) as caught:
                    budget.reserve("c", "r5", 1).__enter__()
                assert budget.in_flight == 100
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and caught.value.retry_after == 1.0
    assert "allowed for the gateway" in str(caught.value)
    assert budget.in_flight == 0  # and every refusal took nothing
    with budget.reserve("a", "r1", 40), budget.reserve("a", "r2", 20):
        pass


def test_a_budget_smaller_than_one_image_is_refused_at_start():
    with pytest.raises(ValueError, match="MAX_CALLER_PIXELS_IN_FLIGHT must be at least"):
        load_settings(GatewaySettings, "X_", max_image_pixels=1000, max_caller_pixels_in_flight=999)


def test_an_image_refused_for_the_pixel_budget_is_resource_exhausted_and_holds_nothing():
    async def scenario():
        gateway, refiner = servicer(
            model_pixels=10_000,
            max_image_pixels=1_000_000,
            max_caller_pixels_in_flight=1_000_000,
            max_request_pixels_in_flight=1_000_000,
        )
        with gateway.pixels.reserve("anonymous", "elsewhere", 950_000):  # another request's decode
            status, response = await gateway._tag_to_status(
                request(png(1000, 1000)), 10, "r", Context(), call="this"
            )
        assert response is None and status.code == code_pb2.RESOURCE_EXHAUSTED
        assert "decoded pixels in flight" in status.message and not refiner.requests
        assert gateway.pixels.in_flight == 0
        response = await gateway.tag_one(request(png(1000, 1000)), 10, "r2")  # room again
        assert response.result.labels[0].name == "cat" and gateway.pixels.in_flight == 0

    run(scenario())


def test_a_stream_whose_answers_are_not_read_stops_reading_images():
    async def scenario():
        gateway, refiner = servicer(stream_window=2, cache_entries=0)
        items = [request(png(30 + i, 30)) for i in range(10)]
        answers = gateway.StreamTag(Stream(items), Context())
        first = await anext(answers)  # one answer taken; the client then reads no more
        await asyncio.sleep(0.3)
        read_while_unread = len(refiner.requests)
        rest = [answer async for answer in answers]
        return first, read_while_unread, rest

    first, read_while_unread, rest = run(scenario())
    assert first.status.code == code_pb2.OK
    assert read_while_unread == 2  # the window: one answer with the client, one waiting
    assert len(rest) == 9 and all(a.status.code == code_pb2.OK for a in rest)


def test_a_caller_may_hold_only_so_many_streams_open():
    async def scenario():
        gateway, _ = servicer(max_streams_per_caller=2)
        held = [gateway.StreamTag(Stream([], hang=True), Context()) for _ in range(2)]
        waiting = [asyncio.create_task(anext(stream)) for stream in held]
        await asyncio.sleep(0.1)
        third = AbortingContext()
        with pytest.raises(Aborted):
            await anext(gateway.StreamTag(Stream([request()]), third))
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for stream in held:
            await stream.aclose()
        # The slots are free again.
        answers = [a async for a in gateway.StreamTag(Stream([request()]), Context())]
        return third, answers

    third, answers = run(scenario())
    assert third.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 StreamTag calls open" in third.message
    assert len(answers) == 1 and answers[0].status.code == code_pb2.OK
