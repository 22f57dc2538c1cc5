"""A results.jsonl line: the result's proto JSON, older lines still read, damaged lines named."""

import json

import pytest

from tagllm.bulk.annotate import annotate
from tagllm.bulk.progress import Progress
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory, RunError
from tagllm.bulk.sources import Item
from tagllm.strategies import Label, Usage, VersionInfo
from tests.unit.conftest import FAST, MANIFEST, Tagger, fake_result


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
