"""The paper's metrics against an independent computation (scikit-learn) on random data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from tagllm.eval.metrics import average_precision, evaluate

CLASSES = [f"c{i}" for i in range(7)]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(5, 60), st.floats(0.05, 0.6))
def test_metrics_match_scikit_learn(seed, images, density):
    rng = np.random.default_rng(seed)
    truth = rng.random((images, len(CLASSES))) < density
    scores = np.round(rng.random((images, len(CLASSES))), 2)  # rounding makes ties
    predicted = scores > 0.5
    gold = {f"i{n}": {c for c, t in zip(CLASSES, truth[n], strict=True) if t} for n in range(images)}
    predictions = {
        f"i{n}": {c: float(s) for c, s, p in zip(CLASSES, scores[n], predicted[n], strict=True) if p}
        for n in range(images)
    }
    result = evaluate(predictions, gold, CLASSES)
    kwargs = {"zero_division": 0}
    assert result.op == pytest.approx(precision_score(truth, predicted, average="micro", **kwargs))
    assert result.orec == pytest.approx(recall_score(truth, predicted, average="micro", **kwargs))
    assert result.of1 == pytest.approx(f1_score(truth, predicted, average="micro", **kwargs))
    assert result.cp == pytest.approx(precision_score(truth, predicted, average="macro", **kwargs))
    assert result.cr == pytest.approx(recall_score(truth, predicted, average="macro", **kwargs))
    cp, cr = result.cp, result.cr
    assert result.cf1 == pytest.approx(2 * cp * cr / (cp + cr) if cp + cr else 0.0)
    per_class_f1 = f1_score(truth, predicted, average=None, **kwargs)
    assert [r.f1 for r in result.classes] == pytest.approx(list(per_class_f1))
    # mAP over classes with a positive; a label's score counts only where it was predicted.
    masked = np.where(predicted, scores, 0.0)
    expected = [
        average_precision_score(truth[:, k], masked[:, k]) for k in range(len(CLASSES)) if truth[:, k].any()
    ]
    if expected:
        assert result.map == pytest.approx(float(np.mean(expected)))


def test_average_precision_edge_cases():
    assert average_precision([0.9, 0.1], [False, False]) is None
    assert average_precision([0.9, 0.8, 0.1], [True, True, False]) == pytest.approx(1.0)
    assert average_precision([0.5, 0.5], [True, False]) == pytest.approx(0.5)


def test_missing_predictions_count_as_empty():
    result = evaluate({}, {"a": {"c0"}, "b": set()}, CLASSES)
    assert result.orec == 0 and result.op == 0 and result.images == 2
