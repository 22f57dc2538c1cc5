"""`annotate` through the gateway tagger: images over StreamTag (real gRPC over loopback, against a
scripted TaggingService), per-image retries that honour RetryInfo, a broken stream and an image
that gets no answer in time, each tried again on a new stream."""

import threading
import time
from concurrent import futures

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from tagllm.bulk.annotate import AnnotateSettings, annotate
from tagllm.bulk.gateway_tagger import GatewayTagger
from tagllm.bulk.progress import Progress
from tagllm.bulk.run import RunDirectory
from tagllm.bulk.sources import Item
from tagllm.client import TaggingClient, strategy_options
from tagllm.v1 import common_pb2, tagging_pb2, tagging_pb2_grpc
from tests.conftest import free_port, png

FAST = AnnotateSettings(window=3, retries=3, backoff_seconds=0.01)
RETRY_AFTER = 0.4


def busy(image_id: str) -> tagging_pb2.StreamTagResponse:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=int(RETRY_AFTER * 1e9))))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="model server busy", details=[detail])
    return tagging_pb2.StreamTagResponse(image_id=image_id, status=status)


def answer(image_id: str) -> tagging_pb2.StreamTagResponse:
    result = common_pb2.TaggingResult(
        labels=[common_pb2.Label(name=f"seen-{image_id}", score=0.5)],
        usage=common_pb2.Usage(mllm_calls=1),
        version=common_pb2.VersionStamp(vocabulary="coco", strategy=common_pb2.STRATEGY_TAGLLM),
    )
    return tagging_pb2.StreamTagResponse(
        image_id=image_id,
        status=status_pb2.Status(code=code_pb2.OK),
        response=tagging_pb2.TagResponse(result=result, image_id=image_id),
    )


class ScriptedGateway(tagging_pb2_grpc.TaggingServiceServicer):
    """Answers every image of a stream, except as scripted: `busy` images fail once with
    RetryInfo, the first stream breaks after `break_after` answers, `silent` images get no answer
    on the first stream."""

    def __init__(self, busy=(), break_after=0, silent=()) -> None:
        self.busy, self.break_after, self.silent = set(busy), break_after, set(silent)
        self.lock = threading.Lock()
        self.unary_calls, self.streams = 0, 0
        self.arrivals: dict[str, list[float]] = {}

    def Tag(self, request, context):
        with self.lock:
            self.unary_calls += 1
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "annotate must stream")

    def StreamTag(self, request_iterator, context):
        with self.lock:
            self.streams += 1
            first = self.streams == 1
        answered = 0
        for request in request_iterator:
            image = request.image.id
            assert request.image.content.startswith(b"\x89PNG") and request.vocabulary == "coco"
            with self.lock:
                self.arrivals.setdefault(image, []).append(time.monotonic())
                tries = len(self.arrivals[image])
            if first and image in self.silent:
                continue
            if image in self.busy and tries == 1:
                yield busy(image)
                continue
            yield answer(image)
            answered += 1
            if first and self.break_after and answered == self.break_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "gateway going away")


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    items = []
    for i in range(7):
        (folder / f"{i}.png").write_bytes(png(8 + i, 8))
        items.append(Item(f"{i}.png", folder / f"{i}.png"))
    return items


def run_against(gateway: ScriptedGateway, items, out, timeout: float = 30.0):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tagging_pb2_grpc.add_TaggingServiceServicer_to_server(gateway, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        with TaggingClient(f"127.0.0.1:{port}") as client:
            run = RunDirectory(out)
            run.open({"vocabulary": "coco"})
            tagger = GatewayTagger(client, "coco", strategy_options(), timeout=timeout)
            progress = Progress(len(items), stream=open("/dev/null", "w"))
            summary = annotate(items, run, tagger, settings=FAST, progress=progress)
    finally:
        server.stop(None)
    return run, summary


def assert_every_image_once(run, items):
    images = [r.image for r in run.results()]
    assert sorted(images) == sorted(i.image_id for i in items)
    assert len(run.results_path.read_text().splitlines()) == len(items)
    assert all(r.label_names == {f"seen-{r.image}"} for r in run.results())
    assert run.failures() == []


def test_images_go_over_one_stream_and_a_busy_image_waits_as_the_server_asks(images, tmp_path):
    gateway = ScriptedGateway(busy=["2.png"])
    run, summary = run_against(gateway, images, tmp_path / "run")
    assert (summary.annotated, summary.failed) == (len(images), 0)
    assert_every_image_once(run, images)
    assert gateway.unary_calls == 0 and gateway.streams >= 1
    first, second = gateway.arrivals["2.png"]
    assert second - first >= RETRY_AFTER  # RetryInfo, not the 10 ms backoff
    assert all(len(times) == 1 for image, times in gateway.arrivals.items() if image != "2.png")


def test_a_broken_stream_loses_and_repeats_no_image(images, tmp_path):
    gateway = ScriptedGateway(break_after=2)
    run, summary = run_against(gateway, images, tmp_path / "run")
    assert gateway.streams >= 2 and gateway.unary_calls == 0
    assert (summary.annotated, summary.failed) == (len(images), 0)
    assert_every_image_once(run, images)


def test_an_image_without_an_answer_in_time_is_tried_again_on_a_new_stream(images, tmp_path):
    gateway = ScriptedGateway(silent=["4.png"])
    run, summary = run_against(gateway, images, tmp_path / "run", timeout=0.5)
    assert len(gateway.arrivals["4.png"]) == 2 and gateway.streams >= 2
    assert (summary.annotated, summary.failed) == (len(images), 0)
    assert_every_image_once(run, images)


def test_an_image_that_stays_busy_is_listed_with_its_code_and_attempts(images, tmp_path):
    class AlwaysBusy(ScriptedGateway):
        def StreamTag(self, request_iterator, context):
            for request in request_iterator:
                yield busy(request.image.id) if request.image.id == "0.png" else answer(request.image.id)

    run, summary = run_against(AlwaysBusy(), images[:2], tmp_path / "run")
    assert (summary.annotated, summary.failed) == (1, 1)
    assert [(f["image"], f["code"], f["attempts"]) for f in run.failures()] == [("0.png", "UNAVAILABLE", 4)]
