"""Exports of a finished run: every format reads back with the run's scores, and no export is
left torn by an interruption."""

import csv
import json

import pytest

from tagllm.bulk.exports import export_run
from tagllm.bulk.formats import FORMATS
from tagllm.bulk.records import AnnotationRecord
from tagllm.datasets.readers import read_coco


def test_coco_export_reads_back_with_our_reader_and_pycocotools(finished_run, tmp_path):
    from pycocotools.coco import COCO

    run, truth = finished_run
    out = export_run(run, "coco", tmp_path / "coco.json")
    assert read_coco(out).labels == truth
    coco = COCO(str(out))
    person_like = coco.getCatIds(catNms=["clock"])
    images = {coco.imgs[i]["file_name"] for i in coco.getImgIds(catIds=person_like)}
    assert images == {image for image, labels in truth.items() if "clock" in labels}
    assert json.loads(out.read_text())["info"]["versions"][0]["model"] == "m/1"


def test_csv_jsonl_and_labelstudio_exports(finished_run, tmp_path):
    run, truth = finished_run
    rows = list(csv.DictReader(export_run(run, "csv", tmp_path / "x.csv").open()))
    stamp = {"image", "model", "vocabulary_version", "prompt_template_hash", "strategy"}
    assert {r["image"]: {k for k, v in r.items() if v and k not in stamp} for r in rows} == truth
    assert all(r["model"] == "m/1" and r["vocabulary_version"] == "1.0+x" for r in rows)
    lines = [
        json.loads(line) for line in export_run(run, "jsonl", tmp_path / "x.jsonl").read_text().splitlines()
    ]
    assert {line["image"]: {label["name"] for label in line["labels"]} for line in lines} == truth
    assert all(line["version"]["strategy"] == "STRATEGY_TAGLLM" for line in lines)
    out = export_run(run, "labelstudio", tmp_path / "ls.json", image_url_prefix="/data/local-files/?d=")
    tasks = json.loads(out.read_text())
    assert len(tasks) == len(truth)
    assert tasks[0]["data"]["image"] == "/data/local-files/?d=" + tasks[0]["data"]["image_id"]
    first = tasks[0]["predictions"][0]
    assert first["model_version"].startswith("m/1|coco@1.0+x")
    assert first["result"][0]["type"] == "choices" and first["result"][0]["from_name"] == "tags"
    config = (tmp_path / "ls.config.xml").read_text()
    assert (
        '<Choices name="tags" toName="image" choice="multiple"' in config
        and '<Choice value="clock"/>' in config
    )


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_export_reads_back_with_the_runs_scores(finished_run, tmp_path, fmt):
    from tagllm.eval.runs import evaluate_run

    run, truth = finished_run
    gold = {image: set(labels) for image, labels in truth.items()}
    categories = sorted({n for labels in truth.values() for n in labels})
    from_run = evaluate_run(run.path, gold, categories, 2.5)
    exported = evaluate_run(export_run(run, fmt, tmp_path / f"x{FORMATS[fmt].suffix}"), gold, categories, 2.5)
    assert exported.scores == from_run.scores and exported.predictions == from_run.predictions
    assert from_run.scores.map is not None and exported.missing == 0


def test_a_score_threshold_leaves_out_weaker_labels(finished_run, tmp_path):
    from tagllm.bulk.predictions import read_predictions

    run, _ = finished_run
    scores = read_predictions(export_run(run, "jsonl", tmp_path / "x.jsonl", min_score=0.6)).scores
    assert scores and all(s >= 0.6 for labels in scores.values() for s in labels.values())
    assert any(
        len(labels) < len(read_predictions(run.path).scores[image]) for image, labels in scores.items()
    )


def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    from tagllm.files import atomic_write

    target = tmp_path / "export.jsonl"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            handle.write("half of a ")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]
    with atomic_write(target) as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n" and oct(target.stat().st_mode & 0o777) != oct(0o600)


def test_an_export_interrupted_midway_leaves_no_torn_file(finished_run, tmp_path, monkeypatch):
    run, _ = finished_run
    out = tmp_path / "out.jsonl"
    real = AnnotationRecord.to_json
    calls = []

    def interrupt_later(record):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt  # Ctrl-C after a few lines were written
        return real(record)

    monkeypatch.setattr(AnnotationRecord, "to_json", interrupt_later)
    with pytest.raises(KeyboardInterrupt):
        export_run(run, "jsonl", out)
    assert list(tmp_path.glob("*out.jsonl*")) == []
