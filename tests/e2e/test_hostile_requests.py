"""Hostile requests through the real stack over real gRPC: request fields, malformed messages,
authentication, streams, overload, quotas and what one caller may hold at once. Each gets its own
clear status, a short message, and the stack keeps serving."""

import asyncio
import io
import os
import threading
import time
from collections import Counter

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from PIL import Image, PngImagePlugin

from tagllm.client import retry_delay, strategy_options
from tagllm.loadtest import UNREAD_CLIENT_OPTIONS
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tests.conftest import TAGGING_SERVICE, health_status, png, tag_request, wait_until
from tests.e2e.conftest import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from tests.e2e.hostile import AUTH, KEY, encode, keyed_gateway, refused

pytestmark = pytest.mark.e2e


def _health(address: str) -> int:
    return health_status(address, TAGGING_SERVICE)


FIELDS = {
    "20000-character vocabulary name": (
        dict(vocabulary="v" * 20_000),
        grpc.StatusCode.NOT_FOUND,
        "unknown vocabulary",
    ),
    "1000 unknown 5000-character reference labels": (
        dict(reference=[f"{i}" + "x" * 5000 for i in range(1000)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "1000 reference labels not in vocabulary",
    ),
    "unknown strategy number": (
        dict(options=common_pb2.StrategyOptions(strategy=99)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "strategy",
    ),
    "unknown prompt style": (
        dict(options=strategy_options("tagllm", prompt_style="x" * 10_000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "prompt style",
    ),
    "unknown partition": (
        dict(options=strategy_options("tagllm", partition="nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "partition",
    ),
    "min_score not a number": (
        dict(options=strategy_options("tagllm", min_score=float("nan"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "min_score",
    ),
    "answer tokens beyond the cap": (
        dict(options=strategy_options("open_ended", max_answer_tokens=100_000)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "max_answer_tokens",
    ),
}


@pytest.mark.parametrize("case", list(FIELDS))
def test_hostile_fields_get_their_status_with_a_short_message(api, case):
    fields, code, message = FIELDS[case]
    error = refused(api.Tag, tag_request(**fields), timeout=60, metadata=AUTH)
    assert error.code() == code and message in error.details()


def test_a_batch_over_the_limit_is_refused_whole(api):
    batch = tagging_pb2.BatchTagRequest(requests=[tag_request()] * 65)
    error = refused(api.BatchTag, batch, timeout=60, metadata=AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "the limit is 64" in error.details()


@pytest.mark.parametrize(
    "method, kind",
    [("Tag", "unary_unary"), ("RegisterVocabulary", "unary_unary"), ("StreamTag", "stream_stream")],
)
def test_malformed_messages_are_invalid_argument(channel, method, kind):
    garbage = b"\x0a\xff\xff\xff\xff\x0f\x01"  # a field whose length runs past the end
    call = getattr(channel, kind)(f"/tagllm.v1.TaggingService/{method}")
    if kind == "unary_unary":
        error = refused(call, garbage, timeout=10, metadata=AUTH)
    else:
        error = refused(lambda: list(call(iter([garbage]), timeout=10, metadata=AUTH)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "malformed" in error.details()


AUTH_CASES = {
    "no key": [],
    "wrong key": [("authorization", "Bearer wrong")],
    "key without Bearer": [("authorization", KEY)],
    "Basic scheme": [("authorization", f"Basic {KEY}")],
    "key in another header": [("x-api-key", KEY)],
    "key with a suffix": [("authorization", f"Bearer {KEY}x")],
}


@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_requests_without_a_valid_bearer_key_are_unauthenticated(api, case):
    error = refused(api.Tag, tag_request(), timeout=30, metadata=AUTH_CASES[case])
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_idle_streams_without_a_key_are_refused_at_once_and_starve_nothing(api, hostile_gateway):
    never = threading.Event()

    def silent():
        never.wait()
        yield tag_request()

    streams = [api.StreamTag(silent(), timeout=60) for _ in range(64)]
    codes = set()
    for stream in streams:
        with pytest.raises(grpc.RpcError) as caught:
            next(stream)
        codes.add(caught.value.code())
    assert codes == {grpc.StatusCode.UNAUTHENTICATED}
    never.set()


def test_many_idle_keyed_streams_leave_tag_and_health_answering(api, hostile_gateway):
    never = threading.Event()

    def silent():
        never.wait()
        return
        yield

    streams = [api.StreamTag(silent(), timeout=60, metadata=AUTH) for _ in range(64)]
    try:
        started = time.monotonic()
        assert _health(hostile_gateway) == health_pb2.HealthCheckResponse.SERVING
        response = api.Tag(tag_request(png(41, 41)), timeout=30, metadata=AUTH)
        print(f"health + Tag beside 64 idle streams: {(time.monotonic() - started) * 1000:.0f} ms")
        assert response.result.usage.mllm_calls == 1
    finally:
        never.set()
        for stream in streams:
            stream.cancel()


def test_an_idle_stream_is_closed_after_its_answers(api):
    gate = threading.Event()

    def one_then_silence():
        yield tag_request(png(43, 43))
        gate.wait(30)

    answers = []
    with pytest.raises(grpc.RpcError) as caught:
        for answer in api.StreamTag(one_then_silence(), timeout=30, metadata=AUTH):
            answers.append(answer)
    gate.set()
    assert len(answers) == 1 and answers[0].status.code == 0
    assert (
        caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        and "no message for 2 s" in caught.value.details()
    )


def test_a_bad_image_in_a_stream_fails_alone(api):
    items = [tag_request(png(44, 44)), tag_request(b"junk"), tag_request(png(45, 45))]
    for i, item in enumerate(items):
        item.image.id = str(i)
    answers = {a.image_id: a.status.code for a in api.StreamTag(iter(items), timeout=60, metadata=AUTH)}
    assert answers == {"0": 0, "1": grpc.StatusCode.INVALID_ARGUMENT.value[0], "2": 0}


def test_overload_is_shed_at_once_with_a_retry_delay(api):
    # Four slots; a batch of 32 binary requests (80 questions each) keeps them busy.
    options = strategy_options("binary")
    batch = tagging_pb2.BatchTagRequest(
        requests=[tag_request(png(50 + i, 50), options=options) for i in range(32)]
    )
    outcome = api.BatchTag(batch, timeout=120, metadata=AUTH)
    statuses = [result.status for result in outcome.results]
    shed = [s for s in statuses if s.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]]
    assert shed and len(shed) < len(statuses)
    retry = error_details_pb2.RetryInfo()
    assert shed[0].details[0].Unpack(retry) and retry.retry_delay.seconds == 1
    assert "in flight" in shed[0].message


def test_a_spent_quota_is_resource_exhausted_with_retry_info(stack):
    # One request, then a wait of about 100 s.
    with keyed_gateway(stack, api_keys=(KEY,), quota_requests_per_second=0.01) as address:
        with grpc.insecure_channel(address) as channel:
            stub = tagging_pb2_grpc.TaggingServiceStub(channel)
            request = tagging_pb2.ListVocabulariesRequest()
            with pytest.raises(grpc.RpcError) as caught:
                for _ in range(2):  # the burst is one request
                    stub.Tag(tag_request(png(46, 46)), timeout=60, metadata=AUTH)
            listed = stub.ListVocabularies(request, timeout=10, metadata=AUTH)  # listing is free
    assert "coco" in {v.name for v in listed.vocabularies}
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "quota" in caught.value.details()
    assert 90 < retry_delay(caught.value) <= 100  # what annotate waits at least before retrying


# -- budgets: what one caller may hold at once --------------------------------------------------


def test_a_batch_of_flat_high_pixel_images_is_bounded_by_decoded_pixels(stack):
    # Each image is a few KB on the wire and 3.9 Mpx decoded; the request may decode one at a time.
    with (
        keyed_gateway(
            stack,
            max_image_pixels=MAX_IMAGE_PIXELS,
            max_request_pixels_in_flight=MAX_IMAGE_PIXELS,
            max_caller_pixels_in_flight=MAX_IMAGE_PIXELS,
            max_pixels_in_flight=2 * MAX_IMAGE_PIXELS,
        ) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = tagging_pb2_grpc.TaggingServiceStub(channel)
        flat = [encode(Image.new("RGB", (2000, 1950), (i, 90, 90))) for i in range(16)]
        batch = tagging_pb2.BatchTagRequest(requests=[tag_request(image) for image in flat])
        outcome = stub.BatchTag(batch, timeout=120, metadata=AUTH)
    codes = [result.status.code for result in outcome.results]
    refused = [
        r.status for r in outcome.results if r.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    ]
    assert set(codes) <= {0, grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]} and 0 in codes and refused
    assert "4000000 decoded pixels in flight allowed for this request" in refused[0].message
    retry = error_details_pb2.RetryInfo()
    assert refused[0].details[0].Unpack(retry) and retry.retry_delay.seconds == 1


def _padded_png(width: int, text_bytes: int) -> bytes:
    """A picture under the 28-pixel minimum side, so that the gateway re-encodes it (and the text
    chunk stays behind): heavy on the wire, cheap for the model."""
    info = PngImagePlugin.PngInfo()
    info.add_text("padding", os.urandom(text_bytes // 2).hex())
    out = io.BytesIO()
    Image.new("RGB", (width, 20), (30, 60, 90)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def test_a_stream_whose_answers_are_not_read_stops_taking_images(stack):
    # Small pictures (cheap to tag) of 1.5 MB each, in a text chunk: gRPC's buffers hold few.
    heavy = [_padded_png(20 + i % 40, 1_500_000) for i in range(64)]
    quick = strategy_options("open_ended", max_answer_tokens=4)  # one short model call each
    pulled = []

    def images():
        for i, content in enumerate(heavy):
            pulled.append(i)
            yield tag_request(content, options=quick)

    # A stream window of 8; the client's receive window holds a few answers only, as a client
    # whose buffers are full.
    with (
        keyed_gateway(stack, max_image_bytes=MAX_IMAGE_BYTES) as address,
        grpc.insecure_channel(address, options=UNREAD_CLIENT_OPTIONS) as channel,
    ):
        answers = tagging_pb2_grpc.TaggingServiceStub(channel).StreamTag(images(), timeout=300, metadata=AUTH)
        first = next(answers)  # then the client reads nothing for a while: a bound is watched
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(pulled) < len(heavy):
            time.sleep(0.2)
        held = len(pulled)
        rest = list(answers)
    # The window of 8, plus what the client's and the gateway's transports and sockets buffer
    # (seen: 14 to 26 of these 1.5 MB messages); without flow control the client sends all 64.
    assert first.status.code == 0 and held <= 40
    assert len(rest) == len(heavy) - 1 and all(a.status.code == 0 for a in rest)


def test_a_thousand_idle_streams_of_one_caller_leave_health_and_new_work_served(stack):
    async def scenario(address: str):
        async with grpc.aio.insecure_channel(address) as channel:
            stub = tagging_pb2_grpc.TaggingServiceStub(channel)
            calls = [stub.StreamTag(timeout=60, metadata=AUTH) for _ in range(1000)]
            # Refused ones raise here.
            await asyncio.gather(*(call.wait_for_connection() for call in calls), return_exceptions=True)
            # Refused streams end at once; the caller's 32 stay open and idle.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sum(call.done() for call in calls) < 1000 - 32:
                await asyncio.sleep(0.2)
            refused = [await call.code() for call in calls if call.done()]
            details = [await call.details() for call in calls if call.done()]
            # Another connection, as a readiness probe or another client has.
            served = await asyncio.to_thread(_health, address)
            with grpc.insecure_channel(address) as other:
                tagged = tagging_pb2_grpc.TaggingServiceStub(other).Tag(
                    tag_request(png(48, 48)), timeout=60, metadata=AUTH
                )
            for call in calls:
                call.cancel()
            return refused, details, served, tagged

    with keyed_gateway(stack, max_streams_per_caller=32, stream_idle_seconds=60) as address:
        refused, details, served, tagged = asyncio.run(scenario(address))
    # Every stream but the caller's 32 ended: refused by the gateway, or (opened before the client
    # knew of the 100 streams one connection may have) refused by HTTP/2 itself as UNAVAILABLE.
    assert len(refused) == 1000 - 32
    assert set(refused) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
    by_code = {code: d for code, d in zip(refused, details, strict=True)}
    print(f"streams refused: {Counter(c.name for c in refused)}; {by_code}")
    assert "32 StreamTag calls open" in by_code[grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert served == health_pb2.HealthCheckResponse.SERVING and tagged.result.usage.mllm_calls == 1


def test_the_rpc_limit_never_counts_health_checks(stack):
    never = threading.Event()

    def silent():
        never.wait()
        return
        yield

    def refused_listing(stub) -> grpc.RpcError | None:
        try:
            stub.ListVocabularies(tagging_pb2.ListVocabulariesRequest(), timeout=10, metadata=AUTH)
            return None  # the streams are still being opened
        except grpc.RpcError as exc:
            return exc

    with (
        keyed_gateway(stack, max_concurrent_rpcs=8, max_streams_per_caller=100) as address,
        grpc.insecure_channel(address) as channel,
    ):
        stub = tagging_pb2_grpc.TaggingServiceStub(channel)
        streams = [stub.StreamTag(silent(), timeout=60, metadata=AUTH) for _ in range(8)]
        try:
            error = wait_until(lambda: refused_listing(stub), 30, "a call refused beside 8 open streams")
            healthy = _health(address)
        finally:
            never.set()
            for stream in streams:
                stream.cancel()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than 8 RPCs open" in error.details()
    assert healthy == health_pb2.HealthCheckResponse.SERVING


def test_the_stack_still_serves_after_the_suite(api):
    assert api.Tag(tag_request(png(47, 47)), timeout=60, metadata=AUTH).result.usage.mllm_calls == 1
