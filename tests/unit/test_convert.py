"""Protobuf <-> library conversions come in pairs that read back what they wrote."""

import dataclasses

import pytest

from tagllm.convert import (
    options_from_proto,
    record_from_proto,
    record_to_proto,
    reference_to_proto,
    result_from_proto,
    result_to_proto,
    strategy_options,
)
from tagllm.strategies import (
    Label,
    Provenance,
    StageTiming,
    StrategyOptions,
    TagResult,
    Usage,
    Verdict,
    Verification,
    VersionInfo,
)
from tagllm.v1 import common_pb2

RESULT = TagResult(
    labels=(
        Label("cat", 0.75, Provenance("animals", True, Verdict.CONFIRMED, 0.75)),
        Label("dog", 1.0, Provenance(proposed=True, reviewer="label-studio:ann@example.com")),
    ),
    usage=Usage(
        mllm_calls=12, mllm_requests=2, prompt_tokens=900, generated_tokens=14, model_compute_seconds=0.5
    ),
    stages=(StageTiming("candidates", 0.25, 0.125), StageTiming("verification", 0.5, 0.375)),
    version=VersionInfo("qwen2_5_vl/x", "coco", "1.0+abc", "0123456789ab", "tagllm"),
    candidates=("cat", "dog", "cow"),
    dropped_answers=2,
    verified=3,
    confirmed=1,
    verifications=(
        Verification("cat", 0.75, 0.75, True),
        Verification("dog", 0.25, 0.125, False),
        Verification("cow", 0.5, 0.375, False),
    ),
)


def test_a_result_survives_the_wire():
    assert result_from_proto(result_to_proto(RESULT)) == RESULT


def test_a_record_carries_the_result_and_the_reference():
    record = record_to_proto(result_to_proto(RESULT), 80, 0.75, reference_to_proto(["cat"]), "r1")
    image = record_from_proto(record)
    assert image.result == RESULT and image.reference == ("cat",) and image.vocabulary_size == 80
    unreferenced = record_from_proto(record_to_proto(result_to_proto(RESULT), 80, 0.75, None, "r2"))
    assert unreferenced.reference is None
    nobody_saw_anything = record_from_proto(
        record_to_proto(result_to_proto(RESULT), 80, 0.75, reference_to_proto([]), "r3")
    )
    assert nobody_saw_anything.reference == ()
    with pytest.raises(ValueError, match="negative"):
        record_from_proto(record_to_proto(result_to_proto(RESULT), 80, -1.0, None, "r4"))
    out_of_range = result_to_proto(RESULT)
    out_of_range.verifications[0].score = 1.5
    with pytest.raises(ValueError, match="verification scores"):
        record_from_proto(record_to_proto(out_of_range, 80, 0.75, None, "r5"))


def test_options_left_unset_take_the_librarys_defaults():
    assert options_from_proto(strategy_options()) == StrategyOptions()
    options = options_from_proto(
        strategy_options("binary", grouping=False, concept_knowledge=False, max_answer_tokens=16)
    )
    assert options == StrategyOptions("binary", False, False, max_answer_tokens=16)
    with pytest.raises(ValueError, match="max_answer_tokens"):
        options_from_proto(strategy_options(max_answer_tokens=500))
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_options("bogus")


def test_library_options_survive_the_wire():
    from tagllm.convert import options_to_proto
    from tagllm.eval.ablation import ROWS

    for row in ROWS:
        assert options_from_proto(options_to_proto(row.options)) == row.options


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: setattr(r, "seconds", float("nan")), "finite"),
        (lambda r: setattr(r.result.usage, "model_compute_seconds", float("inf")), "finite"),
        (lambda r: setattr(r.result.stages[0], "seconds", -1.0), "not negative"),
        (lambda r: setattr(r.result.version, "vocabulary", "Bad Name!"), "no valid vocabulary"),
        (lambda r: setattr(r, "vocabulary_size", 100_000), "vocabulary_size"),
        (lambda r: r.result.candidates.extend(f"c{i}" for i in range(80)), "more labels than"),
        (lambda r: r.reference.labels.append("x" * 500), "at most 64 characters"),
        (lambda r: r.reference.labels.append("evil\u202ename"), "printable"),
    ],
)
def test_the_metrics_service_refuses_records_no_engine_could_send(change, message):
    record = record_to_proto(result_to_proto(RESULT), 80, 0.75, reference_to_proto(["cat"]), "r1")
    change(record)
    with pytest.raises(ValueError, match=message):
        record_from_proto(record)


def test_series_stay_bounded_by_vocabularies_and_classes():
    from prometheus_client import CollectorRegistry

    from tagllm.metrics import TaggingMetrics

    registry = CollectorRegistry()
    metrics = TaggingMetrics(registry, 2.5, 0.05, max_vocabularies=2)

    def record(vocabulary, labels, size=3):
        result = dataclasses.replace(
            RESULT,
            labels=tuple(Label(n, 0.9) for n in labels),
            version=dataclasses.replace(RESULT.version, vocabulary=vocabulary),
        )
        return record_from_proto(
            record_to_proto(result_to_proto(result), size, 0.1, reference_to_proto(labels), "r")
        )

    metrics.observe(record("pets", ["cat", "dog"]))
    metrics.observe(record("pets", ["cow"]))
    metrics.observe(record("pets", ["yak"]))  # a fourth class in a 3-class vocabulary: no new series
    assert (
        registry.get_sample_value(
            "tagllm_class_true_positives_total", {"strategy": "tagllm", "vocabulary": "pets", "label": "cow"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "tagllm_class_true_positives_total", {"strategy": "tagllm", "vocabulary": "pets", "label": "yak"}
        )
        is None
    )
    metrics.observe(record("farm", ["cow"]))
    with pytest.raises(ValueError, match="more than 2 vocabularies"):
        metrics.observe(record("zoo", ["lion"]))
    assert (
        registry.get_sample_value("tagllm_images_total", {"strategy": "tagllm", "vocabulary": "zoo"}) is None
    )


def test_agreement_per_score_band_counts_verified_candidates_of_referenced_images():
    from prometheus_client import CollectorRegistry

    from tagllm.metrics import TaggingMetrics

    registry = CollectorRegistry()
    metrics = TaggingMetrics(registry, 2.5, 0.05)
    metrics.prepare("coco", ["cat", "dog", "cow"])

    def sample(name, band):
        labels = {"strategy": "tagllm", "vocabulary": "coco", "band": band}
        return registry.get_sample_value(f"tagllm_band_{name}_total", labels)

    assert sample("verified", "0.0-0.1") == 0  # series exist before the first record
    message = record_to_proto(result_to_proto(RESULT), 80, 0.75, reference_to_proto(["cat", "cow"]), "r1")
    metrics.observe(record_from_proto(message))
    metrics.observe(record_from_proto(record_to_proto(result_to_proto(RESULT), 80, 0.75, None, "r2")))
    # cat 0.75 (right), dog 0.125 (wrong), cow 0.375 (right); the unreferenced record counts nowhere.
    assert (sample("verified", "0.7-0.8"), sample("agreed", "0.7-0.8")) == (1, 1)
    assert (sample("verified", "0.1-0.2"), sample("agreed", "0.1-0.2")) == (1, 0)
    assert (sample("verified", "0.3-0.4"), sample("agreed", "0.3-0.4")) == (1, 1)


@pytest.mark.parametrize(
    "library, message",
    [
        (TagResult, common_pb2.TaggingResult),
        (Label, common_pb2.Label),
        (Provenance, common_pb2.Provenance),
        (Usage, common_pb2.Usage),
        (StageTiming, common_pb2.StageTiming),
        (VersionInfo, common_pb2.VersionStamp),
        (Verification, common_pb2.Verification),
    ],
)
def test_the_library_result_has_the_protos_field_names(library, message):
    assert {f.name for f in dataclasses.fields(library)} == {f.name for f in message.DESCRIPTOR.fields}


def test_a_float_field_reads_back_as_the_decimal_written():
    message = result_to_proto(dataclasses.replace(RESULT, labels=(Label("cat", 0.95),)))
    assert message.labels[0].score != 0.95  # float32 on the wire
    assert result_from_proto(message).labels[0].score == 0.95
