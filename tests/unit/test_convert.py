"""Protobuf <-> library conversions come in pairs that read back what they wrote."""

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
    VersionInfo,
)

RESULT = TagResult(
    labels=(
        Label("cat", 0.75, Provenance("animals", True, Verdict.CONFIRMED, 0.75)),
        Label("dog", 1.0, Provenance(proposed=True)),
    ),
    usage=Usage(calls=12, requests=2, prompt_tokens=900, generated_tokens=14, compute_seconds=0.5),
    stages=(StageTiming("candidates", 0.25, 0.125), StageTiming("verification", 0.5, 0.375)),
    version=VersionInfo("qwen2_5_vl/x", "coco", "1.0+abc", "0123456789ab", "tagllm"),
    candidates=("cat", "dog", "cow"),
    dropped_answers=2,
    verified=3,
    confirmed=1,
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
