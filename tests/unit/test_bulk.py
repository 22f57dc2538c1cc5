import csv
import json
import os
import threading
import time
from pathlib import Path

import pytest

from tagllm.bulk.annotate import AnnotateSettings, PerImageTagger, TagFailure, annotate
from tagllm.bulk.exports import export_run
from tagllm.bulk.formats import FORMATS
from tagllm.bulk.progress import Progress
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory, RunError
from tagllm.bulk.sources import Item, SourceError, in_shard, parse_shard, read_source
from tagllm.datasets.readers import read_coco
from tagllm.datasets.synthetic import generate
from tagllm.strategies import Label, TagResult, Usage, VersionInfo

FAST = AnnotateSettings(window=3, retries=2, backoff_seconds=0.001)
MANIFEST = {"vocabulary": "coco", "strategy": "tagllm"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic"), 12, seed=11, size=64)


def fake_result(labels, version="m/1") -> TagResult:
    return TagResult(
        # Scores that differ, so that exports must keep them for mAP to read back the same.
        labels=tuple(Label(name, round(0.55 + 0.1 * i, 2)) for i, name in enumerate(labels)),
        usage=Usage(mllm_calls=3, model_compute_seconds=0.5),
        stages=(),
        version=VersionInfo(version, "coco", "1.0+x", "abc", "tagllm"),
        candidates=tuple(labels),
    )


class Tagger(PerImageTagger):
    """Knows the truth; fails on purpose; records concurrency."""

    def __init__(self, truth, flaky=(), broken=(), delay=0.0):
        self.truth, self.flaky, self.broken, self.delay = truth, dict.fromkeys(flaky, 2), set(broken), delay
        self.calls, self.active, self.most_active = [], 0, 0
        self.lock = threading.Lock()

    def tag(self, item, reference):
        with self.lock:
            self.calls.append((item.image_id, reference))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            if item.image_id in self.broken:
                raise TagFailure("INVALID_ARGUMENT", "image: not a decodable image", retryable=False)
            with self.lock:
                if self.flaky.get(item.image_id, 0) > 0:
                    self.flaky[item.image_id] -= 1
                    raise TagFailure("UNAVAILABLE", "model server restarting", retryable=True)
            return fake_result(sorted(self.truth[item.image_id]))
        finally:
            with self.lock:
                self.active -= 1


def test_annotate_retries_lists_failures_and_resumes(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    broken = items[3].image_id
    tagger = Tagger(truth, flaky=[items[0].image_id], broken=[broken], delay=0.01)
    progress = Progress(len(items), stream=open("/dev/null", "w"))
    summary = annotate(items, run, tagger, settings=FAST, progress=progress)
    assert (summary.annotated, summary.failed) == (len(items) - 1, 1)
    assert tagger.most_active <= FAST.window
    assert (
        sum(1 for image, _ in tagger.calls if image == items[0].image_id) == 3
    )  # two failures, then success
    failures = run.failures()
    assert [(f["image"], f["code"], f["attempts"]) for f in failures] == [(broken, "INVALID_ARGUMENT", 1)]
    results = run.results()
    assert len(results) == len(items) - 1
    assert {r.image: r.label_names for r in results} == {
        i.image_id: set(truth[i.image_id]) for i in items if i.image_id != broken
    }
    # A second pass asks only for the image that failed; once it works nothing is listed.
    tagger2 = Tagger(truth)
    summary = annotate(
        items, run, tagger2, settings=FAST, progress=Progress(len(items), stream=open("/dev/null", "w"))
    )
    assert [image for image, _ in tagger2.calls] == [broken]
    assert (summary.already_done, summary.annotated, summary.failed) == (len(items) - 1, 1, 0)
    assert run.failures() == [] and len(run.results()) == len(items)


def test_references_travel_with_their_image(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    references = {image: sorted(labels) for image, labels in truth.items()}
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    tagger = Tagger(truth)
    annotate(items, run, tagger, references, FAST, Progress(len(items), stream=open("/dev/null", "w")))
    assert all(reference == references[image] for image, reference in tagger.calls)


def test_a_torn_last_line_is_cut_and_redone(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    whole = AnnotationRecord("a", "/a.png", fake_result(["cat"])).to_json()
    run.results_path.write_text(whole + "\n" + '{"image": "b", "lab')
    assert [r.image for r in run.results()] == ["a"]
    run.open(MANIFEST)
    assert run.results_path.read_text().endswith("\n") and len(run.results_path.read_text().splitlines()) == 1


def test_a_run_directory_refuses_another_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    with pytest.raises(RunError, match="strategy: 'tagllm' there, 'binary' now"):
        run.open({**MANIFEST, "strategy": "binary"})


def test_shards_partition_deterministically():
    ids = [f"img_{i}.jpg" for i in range(500)]
    shards = [[i for i in ids if in_shard(i, k, 4)] for k in range(4)]
    assert sorted(sum(shards, [])) == sorted(ids)
    assert all(60 < len(s) < 190 for s in shards)
    assert shards == [[i for i in ids if in_shard(i, k, 4)] for k in range(4)]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(SourceError):
            parse_shard(bad)


def test_sources_folder_list_and_coco(dataset, tmp_path):
    from_coco = read_source(dataset)
    from_folder = read_source(dataset.parent / "images")
    assert [i.image_id for i in from_coco] == [i.image_id for i in from_folder]
    assert all(i.path.exists() for i in from_coco)
    listing = dataset.parent / "list.txt"  # names relative to the list's folder
    listing.write_text("\n".join(str(i.path.relative_to(dataset.parent)) for i in from_coco[:3]) + "\n\n")
    assert [i.path for i in read_source(listing)] == [i.path for i in from_coco[:3]]
    elsewhere = tmp_path / "list.txt"  # absolute paths: outside the image root, read when allowed
    elsewhere.write_text("\n".join(str(i.path) for i in from_coco[:3]) + "\n")
    assert [i.path for i in read_source(elsewhere, allow_outside_root=True)] == [
        i.path for i in from_coco[:3]
    ]
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "missing")


@pytest.fixture()
def finished_run(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    annotate(
        items, run, Tagger(truth), settings=FAST, progress=Progress(len(items), stream=open("/dev/null", "w"))
    )
    return run, truth


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


def test_progress_line_reports_rate_eta_and_dollars():
    progress = Progress(10, done=2, gpu_price_per_hour=3600.0, stream=open("/dev/null", "w"))
    progress.advance(compute_seconds=0.5)
    line = progress.line()
    assert line.startswith("3/10 images") and "img/s" in line and "ETA" in line and "$0.5000" in line


def test_a_record_is_the_results_proto_json_and_reads_back_equal(tmp_path):
    from google.protobuf import json_format

    from tagllm.convert import result_from_proto
    from tagllm.v1 import common_pb2

    record = AnnotationRecord("a.png", "/data/a.png", fake_result(["cat", "dog"]))
    line = json.loads(record.to_json())
    assert AnnotationRecord.from_json(record.to_json()) == record
    assert (line["image"], line["path"], line["version"]["strategy"]) == (
        "a.png",
        "/data/a.png",
        "STRATEGY_TAGLLM",
    )
    message = json_format.ParseDict(
        {k: v for k, v in line.items() if k not in ("image", "path")}, common_pb2.TaggingResult()
    )
    assert result_from_proto(message) == record.result


# A results.jsonl line as runs wrote it before the record took the proto's field names.
OLD_LINE = (
    '{"image":"a.png","path":"/data/a.png","labels":[{"name":"cat","score":0.95,"provenance":{"group":"animals",'
    '"proposed":true,"verdict":"confirmed","verification_score":0.9,"reviewer":""}},{"name":"dog","score":1.0,'
    '"provenance":{"group":"","proposed":true,"verdict":null,"verification_score":null,"reviewer":""}}],'
    '"usage":{"calls":12,"requests":2,"prompt_tokens":900,"generated_tokens":14,"compute_seconds":0.5},'
    '"stages":[{"stage":"candidates","seconds":0.25,"compute_seconds":0.125}],"version":{"model":"m/1",'
    '"vocabulary":"coco","vocabulary_version":"1.0+x","prompt_hash":"abc","strategy":"multi_option"},'
    '"candidates":["cat","dog"],"dropped_answers":1,"verified":1,"confirmed":1,'
    '"verifications":[{"name":"cat","probability":0.9,"score":0.95,"confirmed":true}]}'
)


def test_a_record_written_before_the_proto_names_reads_back_and_resumes(tmp_path):
    from tagllm.strategies import Provenance, StageTiming, Verdict, Verification

    record = AnnotationRecord.from_json(OLD_LINE)
    result = record.result
    assert result.labels == (
        Label("cat", 0.95, Provenance("animals", True, Verdict.CONFIRMED, 0.9)),
        Label("dog", 1.0, Provenance(proposed=True)),
    )
    assert result.usage == Usage(12, 2, 900, 14, 0.5)
    assert result.stages == (StageTiming("candidates", 0.25, 0.125),)
    assert result.version == VersionInfo("m/1", "coco", "1.0+x", "abc", "multi_option")
    assert result.verifications == (Verification("cat", 0.9, 0.95, True),)
    assert (result.candidates, result.dropped_answers, result.verified, result.confirmed) == (
        ("cat", "dog"),
        1,
        1,
        1,
    )
    # A run of such lines resumes: the image already there is not asked again, the new line is the proto's.
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    run.results_path.write_text(OLD_LINE + "\n")
    items = [Item("a.png", tmp_path / "a.png"), Item("b.png", tmp_path / "b.png")]
    tagger = Tagger({"a.png": ["cat"], "b.png": ["dog"]})
    annotate(items, run, tagger, settings=FAST, progress=Progress(2, 1, stream=open("/dev/null", "w")))
    assert [image for image, _ in tagger.calls] == ["b.png"]
    assert [r.image for r in run.results()] == ["a.png", "b.png"] and run.results()[0] == record


def test_a_line_that_is_not_a_record_is_named(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    run.results_path.write_text('{"image": "a", "labels": []}\n')
    with pytest.raises(RunError, match="results.jsonl:1: not a result record"):
        run.results()


@pytest.mark.parametrize(
    "names", [["../secret.png"], ["/etc/passwd"], ["ok/../../secret.png"], ["link/outside.png"]]
)
def test_a_label_file_cannot_lead_a_run_outside_its_image_root(tmp_path, names):
    root = tmp_path / "data"
    (root / "ok").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)  # a link inside the root that leads out of it
    coco = root / "labels.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": n} for n in names], "categories": []}))
    with pytest.raises(SourceError, match="is outside the image root .*--allow-outside-root"):
        read_source(coco)
    listing = root / "list.txt"
    listing.write_text("\n".join(names))
    with pytest.raises(SourceError, match="outside the image root"):
        read_source(listing)
    assert len(read_source(coco, allow_outside_root=True)) == len(names)


def test_a_fifo_or_an_oversized_file_is_refused_without_waiting(tmp_path):
    from tagllm.bulk.annotate import read_image
    from tagllm.files import InputFileError, read_bytes

    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)  # nobody ever writes: a blocking read would wait forever
    with pytest.raises(TagFailure) as caught:
        read_image(Item("image.png", fifo))
    assert caught.value.code == "UNREADABLE" and "not a regular file" in caught.value.message
    assert not caught.value.retryable
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 101)
    with pytest.raises(InputFileError, match="101 bytes; the limit is 100 bytes"):
        read_bytes(big, 100)
    with pytest.raises(InputFileError, match="not a regular file"):
        read_bytes(tmp_path)


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


@pytest.mark.parametrize(
    "text, message",
    [
        (b"\xff\xfe not utf-8\n", "results.jsonl:1: not UTF-8 text"),
        (b'{"image": "a"\n', "results.jsonl:1: not valid JSON"),
        (b"[" * 100_000 + b"\n", "results.jsonl:1: JSON nested too deeply"),
        (b'{"image": "a", "labels": [{"name": "cat", "score": NaN}]}\n', "NaN is not a number JSON allows"),
        (b"null\n", "results.jsonl:1: not a result record"),
    ],
)
def test_every_damaged_results_line_is_named(tmp_path, text, message):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    run.results_path.write_bytes(text)
    with pytest.raises(ValueError, match=message):
        run.results()


def test_a_jsonl_export_written_before_the_proto_names_reads_back(tmp_path):
    from tagllm.bulk.predictions import read_predictions
    from tagllm.strategies import Verification

    old = json.loads(OLD_LINE)
    # What the JSONL export wrote then: no stages, counts or dropped answers.
    line = {k: old[k] for k in ("image", "path", "labels", "candidates", "verifications", "usage", "version")}
    export = tmp_path / "old.jsonl"
    export.write_text(json.dumps(line) + "\n")
    predictions = read_predictions(export)
    assert predictions.scores == {"a.png": {"cat": 0.95, "dog": 1.0}}
    assert predictions.usage["a.png"] == Usage(12, 2, 900, 14, 0.5)
    assert predictions.verifications["a.png"] == (Verification("cat", 0.9, 0.95, True),)
    assert predictions.versions[0]["prompt_template_hash"] == "abc"
