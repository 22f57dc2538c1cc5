"""The gateway's servicer and refiner client over real gRPC on loopback: requests become the core's
calls, its answers and errors become messages and statuses (RetryInfo included), and the refiner's
statuses reach the client. The behaviour behind them is tested on the core
(test_gateway_core.py); the whole chain in tests/e2e."""

import asyncio
import contextlib

import grpc
import pytest
import yaml
from google.rpc import code_pb2

from services.common.grpc_server import ServiceError, abort_for
from services.gateway.contract import Code
from services.gateway.core import GatewayCore
from services.gateway.refiner_client import GrpcRefiner
from services.gateway.server import GatewaySettings, TaggingServicer
from tagllm.client import retry_delay, strategy_options
from tagllm.convert import options_from_proto
from tagllm.internal.v1 import refinement_pb2, refinement_pb2_grpc
from tagllm.settings import load_settings
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tests.conftest import free_port, png

RESULT = common_pb2.TaggingResult(
    labels=[common_pb2.Label(name="cat", score=0.9)],
    usage=common_pb2.Usage(mllm_calls=1),
    version=common_pb2.VersionStamp(model="m/1"),
)


class Refiner(refinement_pb2_grpc.RefinementServiceServicer):
    """A refiner on the same loopback server: answers RESULT, or fails as `fail` says."""

    def __init__(self):
        self.requests = []
        self.fail: ServiceError | None = None

    async def Refine(self, request, context):
        self.requests.append(request)
        if self.fail is not None:
            await abort_for(context, self.fail)
        return refinement_pb2.RefineResponse(result=RESULT)


@contextlib.asynccontextmanager
async def serving(**settings):
    """A TaggingService and a stand-in refiner on one loopback server, and a client's stub."""
    settings = load_settings(GatewaySettings, "X_", **settings)
    address = f"127.0.0.1:{free_port()}"
    server = grpc.aio.server()
    server.add_insecure_port(address)
    refiner = Refiner()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            core = GatewayCore(settings, GrpcRefiner(refinement_pb2_grpc.RefinementServiceStub(channel)))
            refinement_pb2_grpc.add_RefinementServiceServicer_to_server(refiner, server)
            tagging_pb2_grpc.add_TaggingServiceServicer_to_server(
                TaggingServicer(core, keyed=bool(settings.api_keys)), server
            )
            await server.start()
            yield tagging_pb2_grpc.TaggingServiceStub(channel), refiner
    finally:  # after the channel, so that no call is cut by the server going away
        await server.stop(None)


def tag_request(content=None, vocabulary="", image_id="i", options=None, reference=None):
    request = tagging_pb2.TagRequest(
        image=tagging_pb2.Image(content=content or png(), id=image_id),
        vocabulary=vocabulary,
        options=options if options is not None else strategy_options("multi_option", grouping=False),
    )
    if reference is not None:
        request.reference.CopyFrom(common_pb2.ReferenceLabels(labels=reference))
    return request


def run(coroutine):
    return asyncio.run(coroutine)


def test_every_core_error_code_is_a_grpc_status():
    assert all(code.name in grpc.StatusCode.__members__ for code in Code)


def test_tag_converts_the_request_and_the_answer():
    async def scenario():
        async with serving() as (api, refiner):
            options = strategy_options("multi_option", grouping=False, min_score=0.25)
            response = await api.Tag(tag_request(options=options, reference=["cat", "cat"]), timeout=60)
            return response, refiner.requests, options

    response, requests, options = run(scenario())
    assert response.result == RESULT and response.image_id == "i" and response.request_id
    assert not response.cached
    (sent,) = requests
    assert options_from_proto(sent.options) == options_from_proto(options)
    assert sent.HasField("reference") and list(sent.reference.labels) == ["cat"]
    assert sent.vocabulary == "coco" and sent.request_id == response.request_id


def test_an_empty_reference_stays_a_reference_and_none_stays_none():
    async def scenario():
        async with serving(cache_entries=0) as (api, refiner):
            await api.Tag(tag_request(reference=[]), timeout=60)
            await api.Tag(tag_request(), timeout=60)
            return refiner.requests

    with_empty, without = run(scenario())
    assert with_empty.HasField("reference") and not with_empty.reference.labels
    assert not without.HasField("reference")


def test_a_refused_call_is_its_status_with_the_retry_delay():
    async def scenario():
        async with serving(api_keys=("k1", "k2"), quota_requests_per_second=1) as (api, _):
            first = [("authorization", "Bearer k1")]
            for _ in range(2):  # a burst of two seconds' worth
                await api.Tag(tag_request(), timeout=60, metadata=first)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await api.Tag(tag_request(), timeout=60, metadata=first)
            # The caller is told apart by its key.
            await api.Tag(tag_request(), timeout=60, metadata=[("authorization", "Bearer k2")])
            return caught.value

    refused = run(scenario())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in refused.details()
    assert 0 < retry_delay(refused) <= 1


def test_the_refiners_status_and_retry_delay_reach_the_client():
    async def scenario():
        async with serving(cache_entries=0) as (api, refiner):
            refiner.fail = ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, "model queue full", 2.5)
            with pytest.raises(grpc.aio.AioRpcError) as full:
                await api.Tag(tag_request(), timeout=60)
            refiner.fail = ServiceError(grpc.StatusCode.INTERNAL, "a bug")
            with pytest.raises(grpc.aio.AioRpcError) as broken:
                await api.Tag(tag_request(), timeout=60)
            return full.value, broken.value

    full, broken = run(scenario())
    assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and full.details() == "refiner: model queue full"
    assert retry_delay(full) == 2.5
    # What a client cannot act on reads as the refiner being unavailable.
    assert broken.code() == grpc.StatusCode.UNAVAILABLE and broken.details() == "refiner: a bug"


def test_a_batch_answers_each_image_with_its_status():
    async def scenario():
        async with serving(max_batch_images=2) as (api, _):
            batch = tagging_pb2.BatchTagRequest(
                requests=[tag_request(image_id="a"), tag_request(image_id="b", vocabulary="nope")]
            )
            response = await api.BatchTag(batch, timeout=60)
            batch.requests.append(tag_request())
            with pytest.raises(grpc.aio.AioRpcError) as too_many:
                await api.BatchTag(batch, timeout=60)
            return response, too_many.value

    response, too_many = run(scenario())
    ok, missing = response.results
    assert ok.status.code == code_pb2.OK and ok.response.image_id == "a" and ok.response.result == RESULT
    assert missing.status.code == code_pb2.NOT_FOUND and not missing.HasField("response")
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT and "the limit is 2" in too_many.details()


def test_a_stream_answers_each_image_and_ends_an_idle_stream_with_its_status():
    async def scenario():
        async with serving(stream_idle_seconds=0.3) as (api, _):
            call = api.StreamTag(timeout=60)
            bad = strategy_options("multi_option")
            bad.min_score = 2.0  # out of range: unreadable options are that image's error
            await call.write(tag_request(image_id="bad", options=bad))
            await call.write(tag_request(image_id="good"))
            answers = [await call.read(), await call.read()]
            with pytest.raises(grpc.aio.AioRpcError) as idle:
                await call.read()  # nothing more is sent
            return answers, idle.value

    answers, idle = run(scenario())
    by_id = {answer.image_id: answer for answer in answers}
    assert by_id["good"].status.code == code_pb2.OK and by_id["good"].response.result == RESULT
    assert by_id["bad"].status.code == code_pb2.INVALID_ARGUMENT
    assert by_id["bad"].status.message.startswith("options: min_score")
    assert idle.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "no message for 0.3 s" in idle.details()


def test_vocabularies_are_registered_and_listed():
    pets = yaml.safe_dump({"name": "pets", "categories": [{"name": "cat"}, {"name": "dog"}], "version": "1"})

    async def scenario():
        async with serving() as (api, _):
            registered = await api.RegisterVocabulary(tagging_pb2.RegisterVocabularyRequest(yaml=pets))
            with pytest.raises(grpc.aio.AioRpcError) as again:
                await api.RegisterVocabulary(tagging_pb2.RegisterVocabularyRequest(yaml=pets))
            listed = await api.ListVocabularies(tagging_pb2.ListVocabulariesRequest())
            return registered.vocabulary, again.value, listed.vocabularies

    registered, again, listed = run(scenario())
    assert (registered.name, registered.categories, registered.builtin) == ("pets", 2, False)
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS
    assert registered in listed and any(v.name == "coco" and v.builtin for v in listed)
