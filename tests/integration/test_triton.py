"""A real Triton server (the bundled binary) serving a tiny Qwen2.5-VL as model `mllm`."""

import os
import re
import time
import urllib.request

import pytest

from tagllm.mllm.contract import ErrorKind, MLLMError, MLLMRequest, Mode
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.mllm.triton_client import TritonMLLM
from tagllm.stack.triton import TritonSettings, model_ready, triton_process
from tests.conftest import free_port, png, scraped_total, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def triton(qwen_dir, tmp_path_factory):
    settings = TritonSettings(
        model_dir=qwen_dir, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()
    )
    process = triton_process(settings, tmp_path_factory.mktemp("triton"))
    process.start()
    try:
        process.wait_until(lambda: model_ready(settings), 180, "serving model mllm")
        yield settings
    finally:
        process.stop()
    assert not process.running


@pytest.fixture(scope="module")
def client(triton):
    client = TritonMLLM(f"{triton.host}:{triton.grpc_port}", timeout=60)
    yield client
    client.close()


def test_answers_match_the_in_process_model(client, qwen_dir):
    request = MLLMRequest(
        png(), ("Is there a cat?\nAnswer yes or no.", "Is there a dog?\nAnswer yes or no."), Mode.SCORE
    )
    served = client.run(request)
    local = TransformersMLLM(qwen_dir).run(request)
    assert [round(r.yes_probability, 4) for r in served.results] == [
        round(r.yes_probability, 4) for r in local.results
    ]
    assert served.model_version == local.model_version
    assert served.compute_seconds > 0


def test_constrained_generation_through_triton(client):
    request = MLLMRequest(
        png(), ("Which?\nObjects: cat, dog",), allowed_names=(("cat", "dog"),), max_new_tokens=8
    )
    text = client.run(request).results[0].text
    assert text == "none" or set(t.strip() for t in text.split(",")) <= {"cat", "dog"}


def test_bad_image_is_an_invalid_input_error(client):
    with pytest.raises(MLLMError) as caught:
        client.run(MLLMRequest(b"definitely not an image", ("x",)))
    assert caught.value.kind is ErrorKind.INVALID_INPUT
    assert "not a decodable image" in str(caught.value)
    # The model keeps serving after a bad request.
    assert client.run(MLLMRequest(png(), ("x",), max_new_tokens=2)).results


def test_triton_metrics_count_requests_of_model_mllm(client, triton):
    def successes() -> float:
        url = f"http://{triton.host}:{triton.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        match = re.search(r'nv_inference_request_success\{model="mllm",version="1"\} (\S+)', text)
        assert match, "Triton exports no request counter for model mllm"
        return float(match.group(1))

    before = successes()
    for _ in range(3):
        client.run(MLLMRequest(png(), ("x",), max_new_tokens=2))
    # Triton counts a request after its response has left, so the count may trail a moment.
    wait_until(lambda: successes() >= before + 3, 10, "Triton counting the three requests")
    assert successes() == before + 3


def test_unreachable_server_is_retryable():
    client = TritonMLLM(f"127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(MLLMError) as caught:
        client.run(MLLMRequest(png(), ("x",)))
    assert caught.value.retryable
    assert not client.ready()


def test_prefix_cache_hits_are_exported_by_triton(client, triton):
    def cache_metric(name: str) -> float:
        text = (
            urllib.request.urlopen(f"http://{triton.host}:{triton.metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )
        match = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M)
        assert match, f"Triton exports no {name}"
        return float(match.group(1))

    image = png(77, 55, (5, 6, 7))
    before = cache_metric("tagllm_prefix_cache_hits_total")
    client.run(MLLMRequest(image, ("Question one?\nAnswer yes or no.",), Mode.SCORE))
    client.run(MLLMRequest(image, ("Question two?\nAnswer yes or no.",), Mode.SCORE))
    # The model reports its cache before it hands its responses back, so no wait is needed.
    assert cache_metric("tagllm_prefix_cache_hits_total") == before + 1
    assert cache_metric("tagllm_prefix_cache_bytes") > 0


def test_requests_of_one_image_stick_to_one_replica_and_fail_over(triton):
    from tagllm.mllm.triton_client import replica_order

    live = f"{triton.host}:{triton.grpc_port}"
    dead = f"127.0.0.1:{free_port()}"
    urls = [dead, live]
    images = [png(20 + i, 20) for i in range(40)]
    preferred = [replica_order(urls, image)[0] for image in images]
    assert preferred == [replica_order(urls, image)[0] for image in images]  # stable
    assert 5 < preferred.count(0) < 35  # spread over both
    # Images that prefer the dead replica are still answered, by the live one.
    client = TritonMLLM(",".join(urls), timeout=30)
    image = images[preferred.index(0)]
    assert client.run(MLLMRequest(image, ("x",), max_new_tokens=2)).results
    assert client.ready()
    # One more replica moves only the images that now prefer it.
    more = [*urls, "127.0.0.1:1"]
    moved = sum(replica_order(more, image)[0] != p for image, p in zip(images, preferred, strict=True))
    assert all(replica_order(more, image)[0] == 2 for image, p in zip(images, preferred, strict=True)
               if replica_order(more, image)[0] != p)  # fmt: skip
    assert moved < len(images)


def test_a_hung_server_reads_as_not_ready_and_a_killed_ones_shared_memory_is_removed(qwen_dir, tmp_path):
    import signal
    from pathlib import Path

    from tagllm.stack.triton import shm_prefix

    settings = TritonSettings(
        model_dir=qwen_dir, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()
    )
    process = triton_process(settings, tmp_path)
    client = TritonMLLM(f"{settings.host}:{settings.grpc_port}", probe_timeout=1.0)
    process.start()
    try:
        process.wait_until(lambda: model_ready(settings), 180, "serving model mllm")
        regions = sorted(p.name for p in Path("/dev/shm").glob(f"{shm_prefix(settings)}*"))
        assert regions, "the python backend's regions carry this server's prefix"
        assert client.ready()
        os.killpg(process.process.pid, signal.SIGSTOP)  # hung: the port accepts, nothing answers
        try:
            # Each probe is bounded by probe_timeout, not by a call's deadline; a probe answered
            # just before the stop took hold may still read ready once.
            wait_until(lambda: not client.ready(), 5, "a stopped server reading as not ready")
        finally:
            os.killpg(process.process.pid, signal.SIGCONT)
        assert client.ready()
        os.killpg(process.process.pid, signal.SIGKILL)  # a crash: nothing of its own clean-up runs
        process.process.wait(timeout=10)
        assert all((Path("/dev/shm") / name).exists() for name in regions)
        process.start()  # what the supervisor does: the dead server's regions go first
        assert not any((Path("/dev/shm") / name).exists() for name in regions)
        process.wait_until(lambda: model_ready(settings), 180, "serving model mllm again")
    finally:
        client.close()
        process.stop()
    assert not list(Path("/dev/shm").glob(f"{shm_prefix(settings)}*"))


def _metric(triton, name: str) -> float:
    return scraped_total(f"http://{triton.host}:{triton.metrics_port}/metrics", name, 'model="mllm"')


def test_a_caller_that_goes_away_cancels_the_work_in_the_model(client, triton):
    from tagllm.mllm.contract import CallContext

    prompts = tuple(f"Describe object number {i} in detail." for i in range(80))
    request = MLLMRequest(png(), prompts, Mode.GENERATE, max_new_tokens=128)
    dropped = _metric(triton, "tagllm_model_cancelled_requests_total")
    asked = []

    def is_active() -> bool:  # still there for the check before the call, gone at the first look
        asked.append(time.monotonic())
        return len(asked) < 2

    started = time.monotonic()
    with pytest.raises(MLLMError) as caught:
        client.run(request, CallContext("cancel-test", None, is_active))
    gone_after = time.monotonic() - started
    assert caught.value.kind is ErrorKind.CANCELLED
    # The server's own evidence: the model dropped the work between decoding steps (Triton only
    # drops requests still queued) and counted it.
    wait_until(lambda: _metric(triton, "tagllm_model_cancelled_requests_total") > dropped, 30,
               "the model counting the cancelled request as dropped")  # fmt: skip
    assert _metric(triton, "tagllm_model_cancelled_requests_total") == dropped + 1
    # A short call is answered promptly, not after the cancelled one's 80 x 128 tokens.
    start = time.monotonic()
    short = client.run(MLLMRequest(png(), prompts[:1], Mode.GENERATE, max_new_tokens=2))
    assert len(short.results) == 1
    print(f"cancelled after {gone_after * 1000:.0f} ms; next call {1000 * (time.monotonic() - start):.0f} ms")


def test_a_full_queue_is_refused_at_once_as_overloaded(qwen_dir, tmp_path):
    from concurrent import futures

    settings = TritonSettings(
        model_dir=qwen_dir, http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
        threads=1, max_queue_size=1,
    )  # fmt: skip
    process = triton_process(settings, tmp_path)
    client = TritonMLLM(f"{settings.host}:{settings.grpc_port}", timeout=60)
    process.start()
    try:
        process.wait_until(lambda: model_ready(settings), 180, "serving model mllm")
        config = (tmp_path / "model_repository" / "mllm" / "config.pbtxt").read_text()
        assert "default_queue_policy { max_queue_size: 1 }" in config

        def one(index: int) -> tuple[str, float]:
            started = time.monotonic()
            request = MLLMRequest(
                png(64 + index, 48), ("What is shown?",) * 8, Mode.GENERATE, max_new_tokens=16
            )
            try:
                client.run(request)
                return "ok", time.monotonic() - started
            except MLLMError as exc:
                return exc.kind.value, time.monotonic() - started

        with futures.ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(one, range(8)))
    finally:
        client.close()
        process.stop()
    kinds = [kind for kind, _ in outcomes]
    # One runs, one waits; the rest are refused as OVERLOADED (retryable), nothing else.
    assert set(kinds) == {"ok", ErrorKind.OVERLOADED.value}, outcomes
    assert kinds.count("ok") >= 2
    refused = [round(seconds, 3) for kind, seconds in outcomes if kind != "ok"]
    print(f"refused after {refused} s; answered after {[round(s, 3) for k, s in outcomes if k == 'ok']} s")


def test_concurrent_requests_are_batched_and_each_answered_as_alone(client, triton, qwen_dir):
    from concurrent.futures import ThreadPoolExecutor

    questions = ("Is there a cat?\nAnswer yes or no.", "Is there a dog?\nAnswer yes or no.")
    requests = [
        MLLMRequest(png(40 + 8 * i, 50, (10 * i, 90, 200)), questions[: 1 + i % 2], Mode.SCORE)
        if i % 2
        else MLLMRequest(
            png(40 + 8 * i, 50, (10 * i, 90, 200)), ("Which?\nObjects: cat, dog",), max_new_tokens=6
        )
        for i in range(8)
    ]
    requests.insert(3, MLLMRequest(b"not an image", ("x",)))
    executions = _metric(triton, "nv_inference_exec_count")

    def ask(request):
        try:
            return client.run(request)
        except MLLMError as exc:
            return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        outcomes = list(pool.map(ask, requests))
    assert isinstance(outcomes[3], MLLMError) and outcomes[3].kind is ErrorKind.INVALID_INPUT
    local = TransformersMLLM(qwen_dir, prefix_cache_bytes=0)
    for request, outcome in zip(requests, outcomes, strict=True):
        if request.image == b"not an image":
            continue
        alone = local.run(request)
        assert [r.text for r in outcome.results] == [r.text for r in alone.results]
        assert [round(r.yes_probability, 4) for r in outcome.results] == [
            round(r.yes_probability, 4) for r in alone.results
        ]
    # Fewer model executions than requests: Triton handed the model several at once.
    assert _metric(triton, "nv_inference_exec_count") - executions < len(requests)


def test_two_instances_run_in_processes_of_their_own_with_a_share_of_the_cores_and_answer_as_in_process(
    qwen_dir, tmp_path
):
    from concurrent import futures
    from pathlib import Path

    settings = TritonSettings(
        model_dir=qwen_dir,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        instances=2,
    )
    process = triton_process(settings, tmp_path)
    client = TritonMLLM(f"{settings.host}:{settings.grpc_port}", timeout=120)
    process.start()
    try:
        process.wait_until(lambda: model_ready(settings), 180, "serving model mllm")
        stubs = [
            pid
            for pid in (p.name for p in Path("/proc").iterdir() if p.name.isdigit())
            if _parent(pid) == process.process.pid and b"triton_python_backend_stub" in _proc(pid, "cmdline")
        ]
        assert len(stubs) == 2, stubs  # one process per instance
        threads = max(1, len(os.sched_getaffinity(0)) // 2)  # the cores shared out
        assert all(
            f"OMP_NUM_THREADS={threads}".encode() in _proc(pid, "environ").split(b"\0") for pid in stubs
        )
        requests = [
            MLLMRequest(
                png(60 + i, 60, (30 * i, 80, 200)), ("Is there a cat?\nAnswer yes or no.",), Mode.SCORE
            )
            for i in range(8)
        ]
        local = TransformersMLLM(qwen_dir)
        in_process = [local.run(request).results[0].yes_probability for request in requests]
        alone = [client.run(request).results[0].yes_probability for request in requests]
        with futures.ThreadPoolExecutor(8) as pool:
            together = [r.results[0].yes_probability for r in pool.map(client.run, requests)]
        assert alone == pytest.approx(in_process, abs=1e-4)
        assert together == pytest.approx(alone, abs=1e-5)
    finally:
        client.close()
        process.stop()


def _proc(pid: str, name: str) -> bytes:
    try:
        return open(f"/proc/{pid}/{name}", "rb").read()
    except OSError:  # gone, or not ours to read
        return b""


def _parent(pid: str) -> int:
    stat = _proc(pid, "stat").decode(errors="replace")
    return int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else -1
