"""The gateway core, driven directly: its calls take a CallContext and a stand-in for the refiner
port; no gRPC anywhere (the servicer's conversions are tested in test_gateway_servicer.py, the
real chain in tests/e2e)."""

import asyncio
import subprocess
import sys

import pytest
import yaml

from services.gateway.contract import CallContext, Code, GatewayError, Refined, TagItem
from services.gateway.core import GatewayCore
from tagllm.settings import GatewaySettings, load_settings
from tagllm.strategies import StrategyOptions
from tests.conftest import png

RESULT = object()  # the refiner's result: the core passes it on untouched
PETS = yaml.safe_dump(
    {
        "name": "pets",
        "version": "1",
        "categories": [
            {"name": "cat", "super_category": "animal", "descriptions": ["domestic cat"]},
            {"name": "dog", "super_category": "animal", "descriptions": ["domestic dog"]},
        ],
    }
)


class Refiner:
    """Stands in for the refiner port. Answers at once unless `release` is cleared, then waits
    until it is set again (or the call is cancelled); `error` makes it fail instead."""

    def __init__(self):
        self.jobs = []
        self.timeouts = []
        self.cancelled = 0
        self.error: Exception | None = None
        self.release = asyncio.Event()
        self.release.set()

    async def refine(self, job, timeout):
        self.jobs.append(job)
        self.timeouts.append(timeout)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.error is not None:
            raise self.error
        return Refined(RESULT, model_version="m/1")


def item(content=None, **kwargs):
    return TagItem(image=content or png(), options=StrategyOptions(strategy="multi_option"), **kwargs)


def call(caller="anonymous", request_id="r", time_remaining=10.0):
    return CallContext(request_id=request_id, caller=caller, time_remaining=time_remaining, peer="test")


def gateway(**settings):
    refiner = Refiner()
    return GatewayCore(load_settings(GatewaySettings, "X_", **settings), refiner), refiner


def run(coroutine):
    return asyncio.run(coroutine)


async def until(condition):
    """Waits (bounded) for `condition()` to hold."""
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


class Stream:
    """A client's request stream: yields the given items, then (with `hang`) waits forever."""

    def __init__(self, items, hang=False):
        self.items, self.hang = list(items), hang

    def __aiter__(self):
        return self._messages()

    async def _messages(self):
        for each in self.items:
            yield each
        if self.hang:
            await asyncio.Event().wait()


def test_the_core_imports_no_grpc():
    program = (
        "import sys, services.gateway.core\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'grpc_health')))"
    )
    loaded = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_images_beyond_the_in_flight_limit_are_shed_at_once_with_a_retry_delay():
    async def scenario():
        core, refiner = gateway(max_in_flight=1)
        refiner.release.clear()
        first = asyncio.create_task(core.tag(item(), call(request_id="r1")))
        await until(lambda: refiner.jobs)
        with pytest.raises(GatewayError) as caught:
            await core.tag(item(png(40, 40)), call(request_id="r2"))
        refiner.release.set()
        assert (await first).result is RESULT
        assert (await core.tag(item(png(50, 50)), call(request_id="r3"))).result is RESULT
        return caught.value

    error = run(scenario())
    assert error.code == Code.RESOURCE_EXHAUSTED and "in flight" in str(error)
    assert error.retry_after == 1.0


def test_cache_serves_repeats_but_never_requests_with_references():
    async def scenario():
        core, refiner = gateway()
        first = await core.tag(item(image_id="i"), call(request_id="a"))
        second = await core.tag(item(image_id="i"), call(request_id="b"))
        assert not first.cached and second.cached and second.request_id == "b" and second.image_id == "i"
        await core.tag(item(reference=("cat", "cat")), call(request_id="c"))
        # A label repeated (one per box) is one label of the image.
        assert len(refiner.jobs) == 2 and refiner.jobs[1].reference == ("cat",)
        # An empty reference ("a human saw nothing") is a reference too.
        await core.tag(item(reference=()), call(request_id="d"))
        assert len(refiner.jobs) == 3 and refiner.jobs[2].reference == ()
        # Other options are another result.
        await core.tag(TagItem(image=png(), options=StrategyOptions(strategy="binary")), call())
        assert len(refiner.jobs) == 4

    run(scenario())


def test_the_refiner_gets_the_normalised_image_the_vocabulary_and_the_callers_time():
    async def scenario():
        core, refiner = gateway(default_timeout_seconds=60)
        await core.tag(item(), call(request_id="x", time_remaining=5.0))
        await core.tag(item(png(41, 41)), call(time_remaining=None))  # no deadline: the default
        await core.tag(item(png(42, 42)), call(time_remaining=500.0))  # never beyond the default
        return refiner

    refiner = run(scenario())
    job = refiner.jobs[0]
    assert job.image.startswith(b"\x89PNG") and job.vocabulary == "coco" and job.vocabulary_yaml == ""
    assert job.request_id == "x" and job.options.strategy == "multi_option" and job.reference is None
    assert refiner.timeouts == [5.0, 60, 60]


def test_a_client_that_goes_away_cancels_the_refiners_work():
    async def scenario():
        core, refiner = gateway()
        refiner.release.clear()
        task = asyncio.create_task(core.tag(item(), call()))
        await until(lambda: refiner.jobs)
        task.cancel()  # what gRPC does to the handler when the client's call ends
        with pytest.raises(asyncio.CancelledError):
            await task
        return core, refiner

    core, refiner = run(scenario())
    assert refiner.cancelled == 1 and core.in_flight == 0


def test_bad_requests_are_told_what_is_wrong_in_a_fixed_order():
    async def refused(core, each):
        with pytest.raises(GatewayError) as caught:
            await core.tag(each, call())
        return caught.value

    async def scenario():
        core, refiner = gateway()
        unknown = await refused(core, TagItem(image=png(), vocabulary="nope", options_problem="min_score"))
        options = await refused(core, TagItem(image=png(), options_problem="min_score must be in [0, 1]"))
        labels = await refused(core, item(reference=("cat", "unicorn")))
        image = await refused(core, item(b"not an image"))
        return refiner, unknown, options, labels, image

    refiner, unknown, options, labels, image = run(scenario())
    # The vocabulary first: an unreadable option of an unknown vocabulary is still NOT_FOUND.
    assert unknown.code == Code.NOT_FOUND and "RegisterVocabulary" in str(unknown)
    assert options.code == Code.INVALID_ARGUMENT and str(options) == "options: min_score must be in [0, 1]"
    assert labels.code == Code.INVALID_ARGUMENT and "unicorn" in str(labels) and "'cat'" not in str(labels)
    assert image.code == Code.INVALID_ARGUMENT and str(image).startswith("image: ")
    assert not refiner.jobs


class Unread(list):
    """A batch that fails the test if any of its items is read."""

    def __iter__(self):
        raise AssertionError("a batch over the limit was read")


def test_a_batch_answers_each_image_in_order_and_one_failure_fails_no_other():
    async def scenario():
        core, refiner = gateway(max_batch_images=3)
        answers = await core.batch(
            [item(image_id="a"), item(image_id="b", vocabulary="nope"), item(png(33, 33), image_id="c")],
            call(request_id="base"),
        )
        with pytest.raises(GatewayError) as too_many:
            await core.batch(Unread([item()] * 4), call())
        refiner.error = RuntimeError("a bug")
        crashed = await core.batch([item(png(34, 34), image_id="d")], call())
        return answers, too_many.value, crashed

    answers, too_many, crashed = run(scenario())
    assert [a.image_id for a in answers] == ["a", "b", "c"]
    assert answers[0].tagged.request_id == "base.0" and answers[2].tagged.request_id == "base.2"
    assert answers[1].tagged is None and answers[1].error.code == Code.NOT_FOUND
    assert too_many.code == Code.INVALID_ARGUMENT and "the limit is 3" in str(too_many)
    # An unexpected failure is that image's INTERNAL error, named but not described.
    assert crashed[0].error.code == Code.INTERNAL and str(crashed[0].error) == "internal error: RuntimeError"


def test_a_stream_keeps_at_most_its_window_in_flight():
    async def scenario():
        core, refiner = gateway(stream_window=2, cache_entries=0)
        refiner.release.clear()
        items = [item(png(30 + i, 30), image_id=str(i)) for i in range(5)]
        answers = []

        async def consume():
            async for answer in core.stream(Stream(items), call()):
                answers.append(answer)

        consumer = asyncio.create_task(consume())
        await until(lambda: len(refiner.jobs) == 2)
        await asyncio.sleep(0.2)  # time for a third read, were the window not full
        in_flight_while_held = len(refiner.jobs)
        refiner.release.set()
        await consumer
        return in_flight_while_held, answers

    in_flight, answers = run(scenario())
    assert in_flight == 2
    assert sorted(a.image_id for a in answers) == ["0", "1", "2", "3", "4"]
    assert all(a.tagged is not None and a.error is None for a in answers)


def test_an_idle_stream_is_ended_after_its_answers():
    async def scenario():
        core, _ = gateway(stream_idle_seconds=0.2)
        answers = []
        with pytest.raises(GatewayError) as caught:
            async for answer in core.stream(Stream([item()], hang=True), call()):
                answers.append(answer)
        return caught.value, answers

    error, answers = run(scenario())
    assert len(answers) == 1 and answers[0].tagged is not None
    assert error.code == Code.DEADLINE_EXCEEDED and "no message for 0.2 s" in str(error)


def test_a_stream_whose_answers_are_not_read_stops_reading_images():
    async def scenario():
        core, refiner = gateway(stream_window=2, cache_entries=0)
        items = [item(png(30 + i, 30)) for i in range(10)]
        answers = core.stream(Stream(items), call())
        first = await anext(answers)  # one answer taken; the client then reads no more
        await asyncio.sleep(0.3)
        read_while_unread = len(refiner.jobs)
        rest = [answer async for answer in answers]
        return first, read_while_unread, rest

    first, read_while_unread, rest = run(scenario())
    assert first.tagged is not None
    assert read_while_unread == 2  # the window: one answer with the client, one waiting
    assert len(rest) == 9 and all(a.tagged is not None for a in rest)


def test_a_caller_may_hold_only_so_many_streams_open():
    async def scenario():
        core, _ = gateway(max_streams_per_caller=2)
        held = [core.stream(Stream([], hang=True), call()) for _ in range(2)]
        waiting = [asyncio.create_task(anext(stream)) for stream in held]
        await until(lambda: core.streams._open["anonymous"] == 2)
        with pytest.raises(GatewayError) as third:
            await anext(core.stream(Stream([item()]), call()))
        other = [a async for a in core.stream(Stream([item()]), call(caller="someone else"))]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for stream in held:
            await stream.aclose()
        # The slots are free again.
        answers = [a async for a in core.stream(Stream([item()]), call())]
        return third.value, other, answers

    third, other, answers = run(scenario())
    assert third.code == Code.RESOURCE_EXHAUSTED and "2 StreamTag calls open" in str(third)
    assert third.retry_after == 1.0
    assert len(other) == 1 and other[0].tagged is not None
    assert len(answers) == 1 and answers[0].tagged is not None


def test_tag_is_refused_once_a_callers_quota_is_spent():
    async def scenario():
        core, _ = gateway(quota_requests_per_second=1)
        await core.tag(item(), call("k1"))
        await core.tag(item(), call("k1"))  # a burst of two seconds' worth
        with pytest.raises(GatewayError) as caught:
            await core.tag(item(), call("k1"))
        await core.tag(item(), call("k2"))  # another caller has buckets of its own
        return caught.value

    refused = run(scenario())
    assert refused.code == Code.RESOURCE_EXHAUSTED and "quota" in str(refused)
    assert 0 < refused.retry_after <= 1


def test_a_streams_images_are_charged_one_by_one():
    async def scenario():
        core, _ = gateway(quota_images_per_second=1, max_batch_images=1)
        # The opening charges a request only; the bucket holds two images.
        return [a async for a in core.stream(Stream([item(png(30 + i, 30)) for i in range(3)]), call())]

    answers = run(scenario())
    refused = [a.error for a in answers if a.error is not None]
    assert sum(a.tagged is not None for a in answers) == 2
    assert len(refused) == 1 and refused[0].code == Code.RESOURCE_EXHAUSTED


def test_an_image_refused_for_the_pixel_budget_is_resource_exhausted_and_holds_nothing():
    async def scenario():
        core, refiner = gateway(
            model_pixels=10_000,
            max_image_pixels=1_000_000,
            max_caller_pixels_in_flight=1_000_000,
            max_request_pixels_in_flight=1_000_000,
        )
        with core.pixels.reserve("anonymous", "elsewhere", 950_000):  # another request's decode
            (answer,) = await core.batch([item(png(1000, 1000))], call())
        assert answer.tagged is None and answer.error.code == Code.RESOURCE_EXHAUSTED
        assert "decoded pixels in flight" in str(answer.error) and not refiner.jobs
        assert core.pixels.in_flight == 0
        tagged = await core.tag(item(png(1000, 1000)), call())  # room again
        assert tagged.result is RESULT and core.pixels.in_flight == 0

    run(scenario())


def test_a_registered_vocabulary_is_listed_and_sent_along_with_its_images():
    async def scenario():
        core, refiner = gateway()
        registered = await core.register(PETS, replace=False, call=call())
        with pytest.raises(GatewayError) as again:
            await core.register(PETS, replace=False, call=call())
        replaced = await core.register(PETS, replace=True, call=call())
        with pytest.raises(GatewayError) as broken:
            await core.register("name: [broken", replace=False, call=call())
        await core.tag(item(vocabulary="pets", reference=("dog",)), call())
        return core, refiner, registered, replaced, again.value, broken.value

    core, refiner, registered, replaced, again, broken = run(scenario())
    assert registered.name == "pets" and replaced.full_version == registered.full_version
    assert again.code == Code.ALREADY_EXISTS and "set replace" in str(again)
    assert broken.code == Code.INVALID_ARGUMENT
    assert ("pets", False) in [(v.name, builtin) for v, builtin in core.vocabulary_list()]
    assert ("coco", True) in [(v.name, builtin) for v, builtin in core.vocabulary_list()]
    job = refiner.jobs[0]
    assert job.vocabulary == "pets" and "domestic dog" in job.vocabulary_yaml and job.reference == ("dog",)
