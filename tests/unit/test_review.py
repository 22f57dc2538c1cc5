"""The uncertain band, the cost plan, Label Studio tasks and answers, the merge of reviews into a
run, and `tagllm calibrate` / `tagllm review plan` on a run directory."""

import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

from tagllm.bulk.records import Review
from tagllm.cli.main import main
from tagllm.eval.runs import evaluate_runs
from tagllm.review.band import Band, expected_errors, select
from tagllm.review.plan import plan_band
from tagllm.review.tasks import labeling_config, reviews_from_export, task
from tagllm.vocab import builtin_vocabulary, load_vocabulary
from tests.runs import record, write_gold, write_run

COCO = builtin_vocabulary("coco")


RECORDS = [
    record("a.jpg", {"person": 0.95, "cup": 0.55}),  # cup uncertain, kept
    record("b.jpg", {"dog": 0.3, "cat": 0.05}),  # dog uncertain, dropped
    record("c.jpg", {"person": 0.99, "cat": 0.02}),  # sure of everything
]


def test_the_band_selects_images_with_an_uncertain_candidate_most_expected_errors_first():
    band = Band.parse("0.2:0.8")
    assert 0.2 in band and 0.8 in band and 0.81 not in band
    assert expected_errors(RECORDS[0].result.verifications) == pytest.approx(0.05 + 0.45)
    assert [r.image for r in select(RECORDS, band)] == ["a.jpg", "b.jpg"]
    assert [r.image for r in select(RECORDS, band, max_images=1)] == ["a.jpg"]
    reviewed = RECORDS[0].reviewed(Review("a.jpg", ("person",), "label-studio:1"))
    assert [r.image for r in select([reviewed, *RECORDS[1:]], band)] == ["b.jpg"]
    for bad in ("0.8:0.2", "half", "0:2"):
        with pytest.raises(ValueError, match="band"):
            Band.parse(bad)


def test_the_plan_counts_people_expected_quality_and_cost():
    plan = plan_band(RECORDS, Band(0.2, 0.8), gpu_price_per_hour=3.6, human_price_per_image=0.05)
    assert (plan.images, plan.to_people) == (3, 2)
    alone = plan.model_alone
    assert alone.right == pytest.approx(0.95 + 0.55 + 0.99)
    assert alone.wrong == pytest.approx(0.05 + 0.45 + 0.01)
    assert alone.missed == pytest.approx(0.3 + 0.05 + 0.02)
    # a and b reviewed: their candidates' expected positives become right labels, their errors go.
    merged = plan.merged
    assert merged.right == pytest.approx(0.95 + 0.55 + 0.3 + 0.05 + 0.99)
    assert merged.wrong == pytest.approx(0.01) and merged.missed == pytest.approx(0.02)
    assert merged.f1 > alone.f1
    assert plan.gpu_dollars == pytest.approx(3 * 0.36 * 3.6 / 3600) and plan.human_dollars == pytest.approx(
        0.1
    )


def test_a_task_shows_the_models_labels_and_every_score_and_the_config_lists_the_vocabulary():
    config = ElementTree.fromstring(labeling_config(COCO))
    choices = [c.get("value") for c in config.iter("Choice")]
    assert choices == list(COCO.names)
    made = task(RECORDS[0], Band(0.2, 0.8), "/data/local-files/?d=a.jpg")
    assert made["data"]["image_id"] == "a.jpg" and made["data"]["image"].endswith("a.jpg")
    assert made["data"]["scores"].startswith("cup 0.55 kept (uncertain)")
    assert made["predictions"][0]["result"][0]["value"]["choices"] == ["person", "cup"]


def test_answers_read_back_take_each_tasks_latest_submitted_annotation():
    def answer(id_, choices, updated, cancelled=False):
        result = [{"from_name": "tags", "to_name": "image", "type": "choices", "value": {"choices": choices}}]
        return {
            "id": id_,
            "result": result,
            "updated_at": updated,
            "was_cancelled": cancelled,
            "completed_by": 7,
        }

    exported = [
        {"id": 1, "data": {"image_id": "a.jpg"}, "annotations": [
            answer(10, ["person"], "2026-01-01T10:00"), answer(11, ["person", "dog"], "2026-01-01T11:00"),
            answer(12, ["cat"], "2026-01-01T12:00", cancelled=True)]},
        {"id": 2, "data": {"image_id": "b.jpg"}, "annotations": []},
    ]  # fmt: skip
    (review,) = reviews_from_export(exported, 5, COCO)
    assert review == Review(
        "a.jpg", ("dog", "person"), "label-studio:7", "label-studio", 5, 1, 11, "2026-01-01T11:00"
    )
    exported[0]["annotations"][1]["result"][0]["value"]["choices"] = ["unicorn"]
    with pytest.raises(ValueError, match="unicorn"):
        reviews_from_export(exported, 5, COCO)


def test_a_review_overrides_the_model_with_provenance_and_eval_scores_the_merge(tmp_path):
    run = write_run(tmp_path / "run", RECORDS)
    gold = write_gold(tmp_path / "gold.csv", {"a.jpg": {"person"}, "b.jpg": {"dog"}, "c.jpg": {"person"}})
    before, _ = evaluate_runs([str(run.path)], str(gold), 2.5, COCO)
    run.append_reviews(
        [Review("a.jpg", ("person",), "label-studio:7"), Review("b.jpg", ("cat",), "label-studio:7")]
    )
    run.append_reviews([Review("b.jpg", ("dog",), "label-studio:8", task=2)])  # the later answer wins
    merged = {r.image: r for r in run.results()}
    assert {label.name for label in merged["b.jpg"].result.labels} == {"dog"}
    dog = merged["b.jpg"].result.labels[0]
    assert (
        dog.score == 1.0 and dog.provenance.reviewer == "label-studio:8" and merged["b.jpg"].review.task == 2
    )
    person = merged["a.jpg"].result.labels[0]
    assert person.provenance.verification_score == 0.95 and person.provenance.reviewer == "label-studio:7"
    assert merged["a.jpg"].result.verifications == RECORDS[0].result.verifications
    assert merged["c.jpg"].review is None
    assert [r.result for r in run.results(merged=False)] == [r.result for r in RECORDS]
    after, _ = evaluate_runs([str(run.path)], str(gold), 2.5, COCO)
    assert before[0].scores.of1 < 1.0 and after[0].scores.of1 == 1.0
    assert after[0].calibration.samples == 6


def calibration_run(tmp_path, images=400, seed=0):
    rng = np.random.default_rng(seed)
    records, gold = [], {}
    for i in range(images):
        verified, truth = {}, set()
        for name in ("person", "cup", "dog"):
            z = rng.normal(0, 1.5)
            if rng.random() < 1 / (1 + np.exp(-z)):
                truth.add(name)
            verified[name] = float(1 / (1 + np.exp(-3 * z)))
        records.append(record(f"{i}.jpg", verified))
        gold[f"{i}.jpg"] = truth
    return write_run(tmp_path / "run", records), write_gold(tmp_path / "gold.csv", gold)


def test_calibrate_writes_a_registerable_vocabulary_whose_scores_are_calibrated(tmp_path, capsys):
    run, gold = calibration_run(tmp_path)
    out = tmp_path / "coco-calibrated.yaml"
    assert (
        main(
            ["calibrate", str(run.path), "--gold", str(gold), "--out", str(out), "--target", "precision:0.8"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| served scores |" in printed and "| calibrated |" in printed
    vocabulary = load_vocabulary(out)
    assert vocabulary.name == "coco-calibrated" and vocabulary.version.endswith("-calibrated")
    assert all(c.calibration is not None for c in vocabulary.categories)
    assert vocabulary.category("person").threshold != 0.5
    assert vocabulary.provenance["calibration_source"] == str(run.path)
    named = tmp_path / "named.yaml"
    assert (
        main(["calibrate", str(run.path), "--gold", str(gold), "--out", str(named), "--source", "200 images"])
        == 0
    )
    assert load_vocabulary(named).provenance["calibration_source"] == "200 images"
    assert main(["eval", "--pred", str(run.path), "--gold", str(gold), "--vocab", "coco"]) == 0
    report = capsys.readouterr().out
    assert "ECE" in report and "10 equal-width score bins" in report


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--target", "recall"], "precision:P"),
        (["--gold", "missing.csv"], "missing.csv"),
    ],
)
def test_calibrate_errors_are_one_line_and_exit_2(tmp_path, capsys, arguments, message):
    run, gold = calibration_run(tmp_path, images=5)
    argv = ["calibrate", str(run.path), "--gold", str(gold), "--out", str(tmp_path / "v.yaml"), *arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_review_plan_prints_each_band(tmp_path, capsys):
    run = write_run(tmp_path / "run", RECORDS)
    assert (
        main(
            [
                "review",
                "plan",
                str(run.path),
                "--band",
                "0.2:0.8",
                "--band",
                "0.4:0.6",
                "--human-price",
                "0.1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| 0.2:0.8 | 2 | 66.7% |" in out and "| 0.4:0.6 | 1 | 33.3% |" in out


def test_an_unreachable_label_studio_or_a_run_never_pushed_is_a_one_line_error(tmp_path, capsys):
    from tagllm.stack.ports import free_port

    run = write_run(tmp_path / "run", RECORDS)
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert main(["review", "push", str(run.path), "--url", nowhere, "--token", "t"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach Label Studio" in err and err.count("\n") == 1
    assert not run.review_manifest_path.exists()
    assert main(["review", "pull", str(run.path), "--url", nowhere, "--token", "t"]) == 2
    assert "no review.json" in capsys.readouterr().err
    assert main(["review", "push", str(run.path), "--url", "ftp://x", "--token", "t"]) == 2
    assert "must start with http" in capsys.readouterr().err
