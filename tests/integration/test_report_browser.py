"""The HTML evaluation report, rendered by a real headless Chromium: axes labelled, AP on the
curves, provenance and example images present, and a screenshot that is not blank."""

import shutil
import subprocess

import pytest
from PIL import Image

from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory
from tagllm.datasets.readers import read_coco
from tagllm.datasets.synthetic import generate
from tagllm.eval.report import html_page
from tagllm.eval.runs import evaluate_runs
from tagllm.strategies import Label, TagResult, Usage, Verification, VersionInfo
from tagllm.vocab import builtin_vocabulary

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def run_of(path, items, truth, scored: bool):
    run = RunDirectory(path)
    run.open({"vocabulary": "coco", "strategy": "tagllm" if scored else "multi_option"})
    with run.results_path.open("a") as handle:
        for n, item in enumerate(items):
            labels = sorted(truth[item.image_id])[: 1 + n % 2] + (["cup"] if n % 3 == 0 else [])
            scores = [0.9 - 0.1 * i if scored else 1.0 for i in range(len(labels))]
            # The scored run also asked about a "dog" it dropped (wrong when the image has none).
            asked = [Verification(n, s, s, True) for n, s in zip(labels, scores, strict=True)]
            asked += [Verification("dog", 0.3, 0.3, False)] if scored and "dog" not in labels else []
            result = TagResult(
                tuple(Label(name, score) for name, score in zip(labels, scores, strict=True)),
                Usage(mllm_calls=12, model_compute_seconds=0.2 if scored else 0.05),
                (),
                VersionInfo("qwen2_5_vl/demo", "coco", "1.1+abc", "0123456789ab", run.manifest()["strategy"]),
                verifications=tuple(asked) if scored else (),
            )
            run.append_result(handle, AnnotationRecord(item.image_id, str(item.path), result))
    return run


def test_the_report_renders_in_chromium_with_axes_curves_provenance_and_examples(tmp_path):
    assert CHROMIUM, "Chromium is needed (scripts/setup installs Debian's chromium)"
    from tagllm.bulk.sources import read_source

    annotations = generate(tmp_path / "data", 30, seed=4, size=64)
    truth = read_coco(annotations).labels
    items = read_source(annotations)
    runs = [run_of(tmp_path / "tagllm", items, truth, True), run_of(tmp_path / "multi", items, truth, False)]
    evaluations, gold = evaluate_runs(
        [str(r.path) for r in runs], str(annotations), 2.5, builtin_vocabulary("coco")
    )
    page = tmp_path / "report.html"
    page.write_text(html_page(evaluations, gold, str(annotations), "2026-11-26 12:00 UTC"))

    dom = subprocess.run(
        [CHROMIUM, *FLAGS, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('class="axis"') >= 2 * 7  # two labelled axes on each PR plot and the cost plot
    assert "recall</text>" in html and "precision</text>" in html and "model seconds per image" in html
    assert "tagllm: AP " in html and "multi: one score for all: a point" in html
    assert "qwen2_5_vl/demo" in html and "0123456789ab" in html and str(annotations) in html
    assert html.count('src="data:image/jpeg;base64,') == 4 and 'class="missed"' in html
    assert 'class="reliability"' in html and "mean served score in the bin" in html
    assert "tagllm: ECE " in html and "multi: ECE" not in html  # multi-option labels have no probability

    shot = tmp_path / "report.png"
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--screenshot={shot}", "--window-size=1280,2800", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2800)
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or ()) > 50  # text, plots and pictures
