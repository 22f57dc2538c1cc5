"""Bulk commands as a user runs them, through the real stack: annotate (killed and resumed),
eval, train, compare on the synthetic dataset."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tagllm.datasets.synthetic import generate
from tests.conftest import run_cli, scraped_total

pytestmark = pytest.mark.e2e


def tagllm(*args, timeout=300, check=True):
    result = run_cli(*args, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return generate(root, 40, seed=21, size=96)


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_annotate_killed_and_restarted_loses_and_duplicates_nothing(stack, synthetic, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "tagllm.cli.main", "annotate", str(synthetic), "--out", str(out),
            "--strategy", "binary", "--window", "2", "--address", stack.settings.gateway_address]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(lines(out / "results.jsonl")) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = len(lines(out / "results.jsonl"))
    assert 8 <= before < 40, "kill the run while it is half done"

    tagllm(
        "annotate",
        synthetic,
        "--out",
        out,
        "--strategy",
        "binary",
        "--address",
        stack.settings.gateway_address,
    )
    records = [json.loads(line) for line in lines(out / "results.jsonl")]
    images = [r["image"] for r in records]
    assert len(images) == len(set(images)) == 40
    assert all(r["usage"]["mllm_calls"] == 80 for r in records)
    assert (out / "failures.jsonl").read_text() == ""


def test_annotate_streams_its_images_and_makes_no_unary_tag_call(stack, synthetic, tmp_path):
    """The gateway's own RPC counters are the evidence: StreamTag while annotate runs, no Tag."""
    metrics = f"http://{stack.settings.host}:{stack.settings.gateway_metrics_port}/metrics"

    def handled(method):  # the gateway serves TaggingService alone; health is never counted
        return scraped_total(metrics, "tagllm_grpc_server_handled_total", f'grpc_method="{method}"')

    before = {method: handled(method) for method in ("Tag", "StreamTag")}
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "tagllm.cli.main", "annotate", str(synthetic), "--out", str(out),
            "--strategy", "multi_option", "--address", stack.settings.gateway_address]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    streaming = 0.0
    deadline = time.monotonic() + 120
    while not streaming and process.poll() is None and time.monotonic() < deadline:
        streaming = scraped_total(metrics, "tagllm_grpc_server_in_flight", 'grpc_method="StreamTag"')
        time.sleep(0.05)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors[-2000:]
    assert streaming >= 1, "no StreamTag call was open while annotate ran"
    assert handled("StreamTag") > before["StreamTag"]
    assert handled("Tag") == before["Tag"]
    assert len(lines(out / "results.jsonl")) == 40 and (out / "failures.jsonl").read_text() == ""


def test_annotate_eval_train_compare(stack, synthetic, tmp_path):
    gateway = stack.settings.gateway_address
    runs = {}
    for strategy in ("tagllm", "multi_option"):
        runs[strategy] = tmp_path / strategy
        tagllm("annotate", synthetic, "--out", runs[strategy], "--strategy", strategy, "--address", gateway,
               "--reference", synthetic)  # fmt: skip
    report = tmp_path / "report.html"
    summary = tmp_path / "eval.json"
    output = tagllm("eval", "--pred", runs["multi_option"], runs["tagllm"], "--gold", synthetic,
                    "--html", report, "--json", summary).stdout  # fmt: skip
    assert "| tagllm |" in output and "| multi_option |" in output
    numbers = {row["run"]: row for row in json.loads(summary.read_text())}
    assert numbers["multi_option"]["calls_per_image"] == 1.0
    assert numbers["tagllm"]["calls_per_image"] >= 11
    assert all(0 <= numbers[r][k] <= 1 for r in numbers for k in ("op", "orec", "of1", "cp", "cr", "cf1"))
    html = report.read_text()
    assert html.count("<svg") >= 3 and "<script" not in html
    # Summary, calibration, per-class F1, provenance and examples (with the images the runs recorded).
    assert html.count("<table") == 5 and "ECE" in html and html.count('src="data:image/jpeg;base64,') == 4

    trained = {}
    common = ["--val", synthetic, "--backbone", "tiny", "--image-size", 64, "--epochs", 2, "--batch-size", 16,
              "--lr", "3e-3"]  # fmt: skip
    for name, labels in (
        ("human", synthetic),
        ("baseline", runs["multi_option"]),
        ("tagllm", runs["tagllm"]),
    ):
        trained[name] = tmp_path / f"train_{name}"
        tagllm("train", "--labels", labels, "--out", trained[name], *common)
        result = json.loads((trained[name] / "result.json").read_text())
        assert 0 <= result["val_map"] <= 1 and result["train_images"] == 40
    table = tagllm("compare", "--human", trained["human"], "--baseline", trained["baseline"],
                   "--tagllm", trained["tagllm"]).stdout  # fmt: skip
    assert "| human |" in table and "Share of the gap" in table


def test_ablation_writes_every_row_through_the_stack_and_resumes(stack, synthetic, tmp_path):
    from tagllm.eval.ablation import ROWS

    out = tmp_path / "ablation"
    args = ["ablation", synthetic, "--out", out, "--limit", 3, "--address", stack.settings.gateway_address]
    first = tagllm(*args, timeout=600)
    table = (out / "ablation.md").read_text()
    assert first.stdout == table + "\n"  # print adds a line end
    for row in ROWS:
        line = next(line for line in table.splitlines() if line.startswith(f"| {row.name} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[-1] == "0", f"{row.name}: images missing"  # every image answered
        assert float(cells[-3]) >= 1  # MLLM calls per image
    calls = {
        row.slug: [json.loads(x)["usage"]["mllm_calls"] for x in lines(out / row.slug / "results.jsonl")]
        for row in ROWS
    }
    assert all(len(v) == 3 for v in calls.values())
    assert calls["bp"] == [80, 80, 80] and calls["mop"] == [1, 1, 1] and calls["oep"] == [1, 1, 1]
    styles = {
        json.loads(x)["version"]["prompt_template_hash"]
        for x in lines(out / "tagllm-simple-prompts" / "results.jsonl")
    }
    default = {
        json.loads(x)["version"]["prompt_template_hash"] for x in lines(out / "cad-tagllm" / "results.jsonl")
    }
    assert len(styles) == len(default) == 1 and styles != default
    # A second run finds every row done and asks the model nothing more.
    again = tagllm(*args, timeout=300)
    assert again.stdout == table + "\n"
    assert all(len(lines(out / row.slug / "results.jsonl")) == 3 for row in ROWS)


def test_a_subset_vocabulary_is_made_registered_and_used(stack, synthetic, tmp_path):
    vocabulary = tmp_path / "coco-small.yaml"
    made = tagllm("vocab", "subset", "coco", "--labels", synthetic, "--min-positives", 3, "--out", vocabulary)
    assert "categories kept" in made.stderr
    registered = tagllm("vocab", "register", vocabulary, "--address", stack.settings.gateway_address)
    assert registered.stdout.startswith("registered coco-") and "categories" in registered.stdout
    again = tagllm("vocab", "register", vocabulary, "--address", stack.settings.gateway_address, check=False)
    assert again.returncode == 1 and "ALREADY_EXISTS" in again.stderr
    name = registered.stdout.split()[1]
    image = next((synthetic.parent / "images").iterdir())
    tagged = tagllm("tag", image, "--vocab", name, "--strategy", "multi_option", "--json",
                    "--address", stack.settings.gateway_address)  # fmt: skip
    assert json.loads(tagged.stdout)["version"]["vocabulary"] == name
