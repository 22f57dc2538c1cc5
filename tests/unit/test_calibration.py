"""Calibration measured (ECE, within-image AUC), fitted per class with shrinkage, thresholds for a
target, and the vocabulary's typed calibration field."""

import dataclasses
import math

import numpy as np
import pytest
import yaml
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tagllm.calibration.calibrate import VERSION_SUFFIX, calibrate_vocabulary
from tagllm.calibration.fit import FitSettings, fit_classes, fit_isotonic, fit_platt
from tagllm.calibration.measures import Sample, measure, reliability_bins, within_image_auc
from tagllm.calibration.thresholds import Target, choose_threshold
from tagllm.vocab import VocabularyError, builtin_vocabulary, parse_vocabulary
from tagllm.vocab.calibration import Calibration, logit, sigmoid
from tagllm.vocab.validation import revise

COCO = builtin_vocabulary("coco")


def synthetic(n: int, seed: int, sharpness: float = 3.0, shift: float = 0.0):
    """Overconfident scores: the truth follows sigmoid(z), the model says sigmoid(sharpness * z + shift)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    positives = rng.random(n) < 1 / (1 + np.exp(-z))
    scores = 1 / (1 + np.exp(-(sharpness * z + shift)))
    return scores.tolist(), positives.tolist()


def test_ece_of_ten_equal_width_bins_by_hand():
    # Bin [0.2, 0.3): scores 0.2, 0.2, 1 of 2 right (gap 0.3); bin [0.9, 1]: 0.9, 1.0, both right (gap 0.05).
    samples = [
        Sample("a", "x", 0.2, 0.2, True),
        Sample("a", "y", 0.2, 0.2, False),
        Sample("b", "x", 0.9, 0.9, True),
        Sample("b", "y", 1.0, 1.0, True),
    ]
    m = measure(samples)
    assert len(m.bins) == 10 and m.bins[9].count == 2 and m.bins[2].count == 2
    assert m.ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.05)


def test_a_constant_score_at_the_base_rate_is_calibrated_and_useless():
    rng = np.random.default_rng(0)
    positives = rng.random(2000) < 0.3
    samples = [
        Sample(f"i{i // 5}", f"c{i % 5}", 0.3, float(np.mean(positives)), bool(p))
        for i, p in enumerate(positives)
    ]
    m = measure(samples)
    assert m.ece < 1e-9
    assert m.auc == pytest.approx(0.5)


def test_within_image_auc_is_the_mean_of_each_images_roc_auc():
    rng = np.random.default_rng(1)
    samples, expected = [], []
    for image in range(20):
        scores = rng.random(8)
        labels = rng.random(8) < 0.4
        samples += [
            Sample(str(image), f"c{k}", s, s, bool(y))
            for k, (s, y) in enumerate(zip(scores, labels, strict=True))
        ]
        if 0 < labels.sum() < 8:
            expected.append(roc_auc_score(labels, scores))
    auc, images = within_image_auc(samples)
    assert images == len(expected)
    assert auc == pytest.approx(np.mean(expected))


def test_platt_without_prior_matches_unpenalised_logistic_regression():
    scores, positives = synthetic(3000, 2)
    fitted = fit_platt(scores, positives, strength=0.0)
    z = np.array([logit(s) for s in scores])[:, None]
    reference = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(z, positives)
    assert fitted.a == pytest.approx(reference.coef_[0][0], rel=1e-3)
    assert fitted.b == pytest.approx(reference.intercept_[0], abs=1e-3)
    assert fitted.a == pytest.approx(1 / 3, rel=0.15)  # it undoes the overconfidence


def test_a_rare_class_stays_near_the_global_map_and_a_common_one_follows_its_data():
    common = synthetic(4000, 3, sharpness=3.0)
    odd = synthetic(4000, 4, sharpness=1.0, shift=1.5)  # another class with a different miscalibration
    rare = (odd[0][:8], odd[1][:8])
    overall, maps = fit_classes({"common": common, "rare": rare}, FitSettings(method="platt"))
    assert abs(maps["rare"].a - overall.a) < 0.1 and abs(maps["rare"].b - overall.b) < 0.3
    _, alone = fit_classes({"common": common, "odd": odd}, FitSettings(method="platt"))
    assert alone["odd"].a == pytest.approx(1.0, abs=0.15) and alone["odd"].b == pytest.approx(-1.5, abs=0.2)


def test_isotonic_agrees_with_scikit_learn_and_is_chosen_where_data_is_enough():
    scores, positives = synthetic(3000, 5)
    ours = fit_isotonic(scores, positives)
    reference = IsotonicRegression(out_of_bounds="clip").fit(scores, positives)
    grid = np.linspace(0.02, 0.98, 49)
    assert np.abs(np.array([ours.apply(g) for g in grid]) - reference.predict(grid)).mean() < 0.02
    assert list(ours.x) == sorted(ours.x) and list(ours.y) == sorted(ours.y) and len(ours.x) <= 64
    _, maps = fit_classes({"many": (scores, positives), "few": (scores[:50], positives[:50])})
    assert maps["many"].method == "isotonic" and maps["few"].method == "platt"


def test_calibration_lowers_ece_on_held_out_data_and_keeps_the_order():
    fit_scores, fit_y = synthetic(3000, 6)
    test_scores, test_y = synthetic(3000, 7)
    _, maps = fit_classes({"c": (fit_scores, fit_y)}, FitSettings(method="platt"))
    before = [
        Sample(str(i // 6), "c", s, s, y) for i, (s, y) in enumerate(zip(test_scores, test_y, strict=True))
    ]
    after = [dataclasses.replace(s, score=maps["c"].apply(s.probability)) for s in before]
    assert measure(before).ece > 0.1
    assert measure(after).ece < 0.03
    assert measure(after).auc == pytest.approx(measure(before).auc, abs=1e-9)


def test_best_f1_threshold_counts_positives_never_verified_as_missed():
    scores = [0.9, 0.8, 0.6, 0.4, 0.3]
    positives = [True, True, False, True, False]
    # Keeping the top 2: F1 = 4 / (2 + 3) = 0.8; top 4: 6 / (4 + 3) = 0.857 -> threshold between 0.4 and 0.3.
    assert choose_threshold(scores, positives, 3, Target("f1")) == pytest.approx(0.35)
    # Top 1 or all four tie at F1 2/3 with only the verified positives; with 5 gold positives (3
    # never proposed, missed whatever the threshold) keeping all four wins: 4/9 against 1/3.
    mixed, truth = [0.9, 0.5, 0.45, 0.4], [True, False, False, True]
    assert choose_threshold(mixed, truth, 2, Target("f1")) == pytest.approx(0.7)
    assert choose_threshold(mixed, truth, 5, Target("f1")) == pytest.approx(0.2)
    assert choose_threshold(scores, positives, 3, Target.parse("precision:1")) == pytest.approx(0.7)
    assert choose_threshold(scores, [False] * 5, 0, Target("f1")) is None
    assert choose_threshold([0.5, 0.4], [False, True], 1, Target.parse("precision:0.9")) == 1.0
    with pytest.raises(ValueError, match="precision:P"):
        Target.parse("recall:0.5")


def test_reliability_bins_put_a_score_of_one_in_the_last_bin():
    bins = reliability_bins([0.0, 0.05, 1.0], [False, False, True])
    assert bins[0].count == 2 and bins[-1].count == 1 and bins[-1].positive_rate == 1.0


def test_the_vocabulary_carries_a_validated_calibration_and_a_new_version():
    plain = {"method": "platt", "a": 0.5, "b": -1.0}
    category = dataclasses.replace(COCO.categories[0], calibration=Calibration("platt", a=0.5, b=-1.0))
    revised = revise(COCO, categories=[category, *COCO.categories[1:]])
    assert revised.full_version != COCO.full_version
    again = parse_vocabulary(revised.to_yaml())
    assert again.categories[0].calibration == category.calibration and again.digest == revised.digest
    assert again.categories[0].score(0.7) == pytest.approx(sigmoid(0.5 * math.log(0.7 / 0.3) - 1.0))
    assert again.categories[1].score(0.7) == 0.7
    for bad, message in [
        ({"method": "platt", "a": -1.0, "b": 0.0}, "must be in"),
        ({"method": "sigmoid"}, "must be 'platt' or 'isotonic'"),
        ({"method": "isotonic", "x": [0.2, 0.1], "y": [0.1, 0.2]}, "non-decreasing"),
        ({"method": "isotonic", "x": [0.1], "y": [1.5]}, "must be in"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "c": 2}, "unknown keys"),
        ({"method": "platt", "a": float("nan"), "b": 0.0}, "finite"),
    ]:
        data = yaml.safe_load(revised.to_yaml())
        data["categories"][0]["calibration"] = bad
        with pytest.raises(
            VocabularyError, match=f"x.yaml: categories\\[0\\] \\(person\\).calibration.*{message}"
        ):
            parse_vocabulary(yaml.safe_dump(data), source="x.yaml")
    assert plain == category.calibration.to_plain()


def test_calibrate_vocabulary_fits_maps_and_thresholds_and_bumps_the_version():
    rng = np.random.default_rng(8)
    samples, gold = [], {}
    for image in range(600):
        truth = set()
        for name in ("person", "cup", "dog"):
            z = rng.normal(0, 1.5)
            positive = bool(rng.random() < 1 / (1 + np.exp(-z)))
            if positive:
                truth.add(name)
            p = float(1 / (1 + np.exp(-3 * z)))
            samples.append(Sample(str(image), name, p, p, positive))
        gold[str(image)] = truth
    report = calibrate_vocabulary(COCO, samples, gold, Target("f1"))
    vocabulary = report.vocabulary
    assert vocabulary.version == COCO.version + VERSION_SUFFIX
    assert report.after.ece < report.before.ece / 3
    person = vocabulary.category("person")
    assert person.calibration is not None and person.calibration.method == "isotonic"
    never_seen = vocabulary.category("toaster")
    assert never_seen.calibration is not None and never_seen.calibration.method == "platt"
    assert never_seen.threshold == pytest.approx(report.pooled_threshold)
    # A second calibration refits on the raw P(yes) and does not stack suffixes.
    again = calibrate_vocabulary(vocabulary, samples, gold, Target("f1")).vocabulary
    assert again.version == vocabulary.version
    with pytest.raises(ValueError, match="no verified candidates"):
        calibrate_vocabulary(COCO, [], gold, Target("f1"))
