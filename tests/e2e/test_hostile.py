"""Hostile input, through the real stack over real gRPC: each case gets its own clear status, a
short message (no echoed megabytes), and the stack keeps serving.

The cases are those an outside attacker tried: images, request fields, malformed messages,
vocabularies, streams, authentication, overload, and the internal ports.
"""

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import yaml
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from PIL import Image, PngImagePlugin
from tritonclient.utils import InferenceServerException

from tagllm.client import retry_delay, strategy_options
from tagllm.internal.v1 import metrics_pb2, metrics_pb2_grpc, refinement_pb2, refinement_pb2_grpc
from tagllm.loadtest import UNREAD_CLIENT_OPTIONS
from tagllm.mllm.contract import MLLMRequest, Mode
from tagllm.mllm.tensors import INPUTS, MODEL_NAME, OUTPUTS, request_to_arrays
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tests.conftest import (
    TAGGING_SERVICE,
    free_port,
    health_status,
    in_process_gateway,
    png,
    scraped_total,
    tag_request,
    wait_until,
)
from tests.e2e.conftest import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from tests.hostile_images import many_scan_jpeg, other_formats

pytestmark = pytest.mark.e2e
# No status message may carry more than this (they echo at most a short prefix of the input).
MAX_MESSAGE = 1200
KEY = "hostile-suite-key"
AUTH = [("authorization", f"Bearer {KEY}")]


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _corrupted() -> bytes:
    data = bytearray(png(200, 200))
    data[60] ^= 0xFF  # inside the first data chunk: its checksum no longer matches
    return bytes(data)


def _gateway(stack, **settings):
    """Another in-process gateway before the session's refiner, with its own settings (keys and
    no cache unless told otherwise); its address once it says SERVING."""
    return in_process_gateway(
        stack.settings.refiner_address, **{"api_keys": (KEY, "other-key"), "cache_entries": 0, **settings}
    )


@pytest.fixture(scope="module")
def hostile_gateway(stack):
    """A gateway with keys, a small in-flight limit and a short stream idle time, before the
    session's refiner; in-process, on real gRPC."""
    with _gateway(
        stack, max_image_bytes=MAX_IMAGE_BYTES, max_in_flight=4, stream_idle_seconds=2.0,
        quota_requests_per_second=200,
    ) as address:  # fmt: skip
        yield address


@pytest.fixture(scope="module")
def channel(hostile_gateway):
    with grpc.insecure_channel(hostile_gateway) as channel:
        yield channel


@pytest.fixture(scope="module")
def api(channel):
    return tagging_pb2_grpc.TaggingServiceStub(channel)


def _health(address: str) -> int:
    return health_status(address, TAGGING_SERVICE)


def refused(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    assert len(caught.value.details() or "") <= MAX_MESSAGE
    return caught.value


IMAGES = {
    "empty": (b"\0", "not a decodable image"),
    "junk bytes": (b"hello, not an image", "not a decodable image"),
    "truncated png": (png(200, 200)[:100], "not a decodable image"),
    "corrupted checksum": (_corrupted(), "not a decodable image"),
    "1x400000 strip": (encode(Image.new("1", (1, 400_000))), "times the shorter"),
    "1x1003520 strip": (encode(Image.new("1", (1, 1_003_520))), "times the shorter"),
    "400000x1 strip": (encode(Image.new("1", (400_000, 1))), "times the shorter"),
    "60 Mpx decompression bomb": (encode(Image.new("1", (12_000, 5_000))), "pixels"),
    "over the byte limit": (b"\x89PNG" + b"\0" * (MAX_IMAGE_BYTES + 1), "bytes"),
    "gif bomb": (encode(Image.new("P", (7_000, 7_000)), "GIF"), "pixels"),
    # Formats beyond the documented six (EPS would reach Ghostscript): refused on their first bytes.
    **{f"{fmt} file": (data, "no format this server reads") for fmt, data in other_formats().items()},
    "progressive JPEG of 2000 scans": (many_scan_jpeg(2000), "more than 32 scans"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_hostile_images_are_invalid_argument(api, case):
    content, message = IMAGES[case]
    error = refused(api.Tag, tag_request(content), timeout=60, metadata=AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details()


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


def _vocabulary(**change) -> str:
    base = {"name": "hostile", "version": "1", "categories": [{"name": "cat"}, {"name": "dog"}]}
    base.update(change)
    return yaml.safe_dump(base, allow_unicode=True)


VOCABULARIES = {
    "yaml alias bomb": (
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        "aliases",
    ),
    "8 MB description": (_vocabulary(description="d" * 8_000_000), "larger than"),
    "100000 categories": (_vocabulary(categories=[{"name": f"c{i}"} for i in range(100_000)]), "larger than"),
    "right-to-left override in a name": (_vocabulary(categories=[{"name": "cat\u202e"}]), "bidirectional"),
    "zero-width space in a name": (_vocabulary(categories=[{"name": "c\u200bat"}]), "zero-width"),
    "control character in a name": (_vocabulary(categories=[{"name": "c\x07at"}]), "control"),
    "template with an unknown kind": (_vocabulary(prompt_styles={"x": {"evil": "Hi."}}), "evil"),
    "template reaching into an object": (
        _vocabulary(prompt_styles={"x": {"yes_no": "Is there {object.__class__}?"}}),
        "prompt",
    ),
    "template with an unbounded width": (
        _vocabulary(prompt_styles={"x": {"multi_option": "Pick: {cls_list:_>12000}"}}),
        "prompt",
    ),
    "not a mapping": ("- just\n- a list\n", "mapping"),
    "duplicate category names": (_vocabulary(categories=[{"name": "cat"}, {"name": "cat"}]), "cat"),
    "a name too long": (_vocabulary(categories=[{"name": "c" * 500}]), "name"),
    "nesting 20000 levels deep": ("name: deep\nx: " + "[" * 20_000 + "]" * 20_000, "nested deeper than 8"),
    "a number of 5000 digits": (_vocabulary() + "x: " + "9" * 5000 + "\n", "a number of 5000 characters"),
    "a key given twice": (_vocabulary() + "name: other\n", "key 'name' is given twice"),
    "a name with a trailing newline": (_vocabulary(name="hostile\n"), "name: must be"),
    "version 1.10 unquoted": (_vocabulary().replace("version: '1'", "version: 1.10"), "float 1.1"),
    "a description that is a list": (_vocabulary(description=["a", "b"]), "description: must be text"),
    "a description that is a mapping": (_vocabulary(description={"a": "b"}), "description: must be text"),
}


@pytest.mark.parametrize("case", list(VOCABULARIES))
def test_hostile_vocabularies_are_refused_at_registration(api, case):
    text, message = VOCABULARIES[case]
    started = time.monotonic()
    error = refused(
        api.RegisterVocabulary, tagging_pb2.RegisterVocabularyRequest(yaml=text), timeout=30, metadata=AUTH
    )
    elapsed = time.monotonic() - started
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details(), error.details()
    print(f"{case}: refused in {elapsed * 1000:.0f} ms")  # the figure BENCHMARKS.md reports


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
    with _gateway(stack, api_keys=(KEY,), quota_requests_per_second=0.01) as address:
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
        _gateway(
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
        _gateway(stack, max_image_bytes=MAX_IMAGE_BYTES) as address,
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

    with _gateway(stack, max_streams_per_caller=32, stream_idle_seconds=60) as address:
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
        _gateway(stack, max_concurrent_rpcs=8, max_streams_per_caller=100) as address,
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


def test_repeated_reference_labels_count_once_and_reach_the_metrics(api, stack):
    url = f"http://{stack.settings.scrape_targets().metrics_service}/metrics"
    before = scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"')
    invalid = scraped_total(url, "tagllm_metrics_records_invalid_total")
    crowd = ["person"] * 120 + ["dog"] * 3  # one label per box: more than coco's 80 categories
    response = api.Tag(tag_request(png(49, 49), reference=crowd), timeout=60, metadata=AUTH)
    assert response.result.usage.mllm_calls == 1
    # The refiner sends its record after answering.
    wait_until(lambda: scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"') > before,
               30, "the record reaching the metrics service")  # fmt: skip
    assert scraped_total(url, "tagllm_reference_images_total", 'vocabulary="coco"') == before + 1
    assert scraped_total(url, "tagllm_metrics_records_invalid_total") == invalid


# -- the internal ports: each service defends itself -------------------------------------------


def test_the_refiner_refuses_a_large_image_and_a_long_unknown_vocabulary(stack):
    with grpc.insecure_channel(stack.settings.refiner_address) as channel:
        refiner = refinement_pb2_grpc.RefinementServiceStub(channel)
        big = refinement_pb2.RefineRequest(image=png(2000, 1000), vocabulary="coco")
        error = refused(refiner.Refine, big, timeout=30)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        unknown = refinement_pb2.RefineRequest(image=png(), vocabulary="v" * 20_000)
        error = refused(refiner.Refine, unknown, timeout=30)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        garbage = channel.unary_unary("/tagllm.internal.v1.RefinementService/Refine")
        error = refused(garbage, b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def _record(named: str, **change) -> metrics_pb2.TaggingRecord:
    """A record of one image tagged with the vocabulary `named`, but for `change`."""
    result = common_pb2.TaggingResult(
        labels=[common_pb2.Label(name="cat", score=0.9)],
        version=common_pb2.VersionStamp(model="m/1", vocabulary=named, strategy=common_pb2.STRATEGY_BINARY),
    )
    record = metrics_pb2.TaggingRecord(result=result, vocabulary_size=80, seconds=0.1)
    for name, value in change.items():
        if name == "label":
            record.result.labels[0].name = value
        elif name == "vocabulary":
            record.result.version.vocabulary = value
        else:
            setattr(record, name, value)
    return record


POISONS = {
    "nan": dict(seconds=float("nan")),
    "negative": dict(seconds=-1.0),
    "infinite": dict(seconds=float("inf")),
    "bidi label": dict(label="cat\u202e"),
    "long label": dict(label="x" * 5000),
    "long vocabulary": dict(vocabulary="v" * 5000),
    "no categories": dict(vocabulary_size=0),
}


@pytest.mark.parametrize("case", list(POISONS))
def test_the_metrics_service_counts_no_poisoned_record(stack, case):
    # Each record names a vocabulary of its own, so that its series are told apart from the
    # records the refiner sends.
    clean, poisoned = (f"{kind}-{case.replace(' ', '-')}" for kind in ("clean", "poisoned"))
    poison = _record(poisoned, **POISONS[case])
    url = f"http://{stack.settings.scrape_targets().metrics_service}/metrics"
    invalid = scraped_total(url, "tagllm_metrics_records_invalid_total")
    with grpc.insecure_channel(stack.settings.metrics_address) as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        reply = stub.Record(metrics_pb2.RecordRequest(records=[poison, _record(clean)]), timeout=10)
    assert reply.accepted == 1  # the good record beside it counts
    # What /metrics exports (the Record call counts before it answers): the poisoned record is
    # counted as invalid and nowhere else, the good one as one image.
    assert scraped_total(url, "tagllm_metrics_records_invalid_total") == invalid + 1
    assert scraped_total(url, "tagllm_images_total", f'vocabulary="{clean}"') == 1
    exported = urllib.request.urlopen(url, timeout=5).read().decode()
    assert f'vocabulary="{poison.result.version.vocabulary}"' not in exported
    assert poison.result.labels[0].name == "cat" or poison.result.labels[0].name not in exported


def test_triton_caps_generation_itself(stack):
    arrays = request_to_arrays(MLLMRequest(png(), ("Name the objects.",), Mode.GENERATE, max_new_tokens=8))
    arrays["MAX_NEW_TOKENS"] = np.full_like(arrays["MAX_NEW_TOKENS"], 512)
    specs = {spec.name: spec for spec in INPUTS}
    client = triton_grpc.InferenceServerClient(stack.settings.triton_grpc_address)
    try:
        inputs = []
        for name, array in arrays.items():
            tensor = triton_grpc.InferInput(name, list(array.shape), specs[name].wire_type)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton_grpc.InferRequestedOutput(spec.name) for spec in OUTPUTS]
        with pytest.raises(InferenceServerException, match="max_new_tokens is 512"):
            client.infer(MODEL_NAME, inputs, outputs=outputs, client_timeout=60)
    finally:
        client.close()


def test_the_stack_still_serves_after_the_suite(api):
    assert api.Tag(tag_request(png(47, 47)), timeout=60, metadata=AUTH).result.usage.mllm_calls == 1


# -- bulk and eval files: the CLI as a user runs it ------------------------------------------------


def tagllm_cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "tagllm.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, lines
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]


@pytest.mark.parametrize("name", ["../outside.png", "/etc/hostname"], ids=["dot-dot", "absolute"])
def test_annotate_refuses_images_outside_the_root_a_coco_file_names(tmp_path, name):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(png())
    coco = root / "labels.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": name}], "categories": []}))
    result = tagllm_cli("annotate", coco, "--out", tmp_path / "run", "--address", f"127.0.0.1:{free_port()}")
    assert_one_line_error(result, coco, "outside the image root", "--allow-outside-root")
    assert not (tmp_path / "run").exists()


def test_a_fifo_in_the_image_list_never_hangs_a_run(stack, tmp_path):
    (tmp_path / "a.png").write_bytes(png(51, 51))
    os.mkfifo(tmp_path / "b.png")  # nobody writes to it
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\nb.png\n")
    result = tagllm_cli(
        "annotate", listing, "--out", tmp_path / "run", "--address", stack.settings.gateway_address
    )
    assert result.returncode == 1 and "1 annotated now" in result.stderr, result.stderr
    failures = [json.loads(line) for line in (tmp_path / "run" / "failures.jsonl").read_text().splitlines()]
    assert [(f["image"], f["code"]) for f in failures] == [("b.png", "UNREADABLE")]
    assert "not a regular file" in failures[0]["message"]


def _run_directory(path, results: bytes):
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"vocabulary": "coco"}))
    (path / "results.jsonl").write_bytes(results)
    return path


def test_export_names_a_corrupt_results_line(tmp_path):
    run = _run_directory(tmp_path / "run", b'{"image": "a", "labels": [}\n')
    result = tagllm_cli("export", run, "--format", "coco", "--out", tmp_path / "out.json")
    assert_one_line_error(result, run / "results.jsonl", ":1: not valid JSON")
    assert not (tmp_path / "out.json").exists()


GOLD_FILES = {
    "null annotations": (
        b'{"images": [], "categories": [], "annotations": null}',
        "'annotations' must be a list",
    ),
    "not UTF-8": (b'{"images": [{"id": 1, "file_name": "\xff.png"}], "categories": []}', "not UTF-8 text"),
    "an infinite id": (
        b'{"images": [{"id": 1e999, "file_name": "a.png"}], "categories": []}',
        "out of range",
    ),
    "Infinity": (
        b'{"images": [{"id": Infinity, "file_name": "a.png"}], "categories": []}',
        "Infinity is not",
    ),
    "deep nesting": (b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "a 5000-digit id": (b'{"images": [{"id": ' + b"9" * 5000 + b', "file_name": "a"}]}', "not valid JSON"),
}


@pytest.mark.parametrize("case", list(GOLD_FILES))
def test_eval_names_a_bad_gold_file_in_one_line(tmp_path, case):
    content, message = GOLD_FILES[case]
    gold = tmp_path / "gold.json"
    gold.write_bytes(content)
    run = _run_directory(tmp_path / "run", b"")
    result = tagllm_cli("eval", "--pred", run, "--gold", gold)
    assert_one_line_error(result, gold, message)


def test_eval_names_a_label_map_with_a_repeated_key(tmp_path):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps({"images": [], "categories": [{"id": 1, "name": "tvmonitor"}]}))
    label_map = tmp_path / "map.yaml"
    label_map.write_text("tvmonitor: tv\ntvmonitor: laptop\n")
    run = _run_directory(tmp_path / "run", b"")
    result = tagllm_cli("eval", "--pred", run, "--gold", gold, "--label-map", label_map)
    assert_one_line_error(result, label_map, "key 'tvmonitor' is given twice")
