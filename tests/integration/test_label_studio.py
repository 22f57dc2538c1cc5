"""The review round trip against a real Label Studio: push the uncertain band of a run, answer
its tasks through the API as a reviewer's Submit does, pull, and check the merge."""

import json

import pytest

from tagllm.bulk.run import RunDirectory
from tagllm.cli.main import main
from tagllm.eval.runs import evaluate_runs
from tagllm.review.labelstudio import LabelStudioClient, LabelStudioError
from tagllm.vocab import builtin_vocabulary, load_vocabulary
from tests.label_studio import label_studio
from tests.runs import record, write_gold, write_run

pytestmark = pytest.mark.integration
COCO = builtin_vocabulary("coco")
GOLD = {"a.jpg": {"person", "dog"}, "b.jpg": {"dog"}, "c.jpg": {"person"}, "d.jpg": {"cup"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with label_studio(tmp_path_factory.mktemp("label-studio")) as running:
        yield running


def test_push_answer_pull_merges_human_answers_over_the_model(server, tmp_path, capsys):
    run = write_run(
        tmp_path / "run",
        [
            record("a.jpg", {"person": 0.95, "cup": 0.55, "dog": 0.4}),  # cup wrong and dog missed: uncertain
            record("b.jpg", {"dog": 0.3, "cat": 0.05}),  # dog missed: uncertain
            record("c.jpg", {"person": 0.99, "cat": 0.02}),  # sure, and right
            record("d.jpg", {"cup": 0.9}),  # sure, and right
        ],
    )
    gold = write_gold(tmp_path / "gold.csv", GOLD)
    auth = ["--url", server.url, "--token", server.token]
    assert (
        main(["review", "push", str(run.path), *auth, "--band", "0.2:0.8", "--image-url-prefix", "/img/"])
        == 0
    )
    pushed = json.loads(run.review_manifest_path.read_text())
    assert pushed["images"] == ["a.jpg", "b.jpg"] and pushed["band"] == "0.2:0.8"
    assert "| 0.2:0.8 | 2 | 50.0% |" in capsys.readouterr().out

    client = LabelStudioClient(server.url, server.token)
    project = client.project(pushed["project"])
    assert '<Choice value="toothbrush"/>' in project["label_config"]
    tasks = {t["data"]["image_id"]: t for t in client.export_tasks(pushed["project"])}
    assert set(tasks) == {"a.jpg", "b.jpg"}
    (prediction,) = client.request("GET", f"/api/tasks/{tasks['a.jpg']['id']}/")["predictions"]
    assert prediction["result"][0]["value"]["choices"] == ["person", "cup"] and prediction["score"] == 0.55
    assert tasks["a.jpg"]["data"]["image"] == "/img/a.jpg"
    assert tasks["a.jpg"]["data"]["scores"].startswith(
        "cup 0.55 kept (uncertain); dog 0.40 dropped (uncertain)"
    )

    # The reviewer submits the image's labels, as the labeling page's Submit does.
    for image, item in tasks.items():
        choices = sorted(GOLD[image])
        client.annotate(
            item["id"],
            [{"from_name": "tags", "to_name": "image", "type": "choices", "value": {"choices": choices}}],
        )

    model_alone, _ = evaluate_runs([str(run.path)], str(gold), 2.5, COCO)
    refit = tmp_path / "coco-reviewed.yaml"
    assert main(["review", "pull", str(run.path), "--token", server.token, "--refit", str(refit)]) == 0
    assert "2 new or changed reviews" in capsys.readouterr().out
    reviews = RunDirectory(run.path).reviews()
    assert {image: set(r.labels) for image, r in reviews.items()} == {i: GOLD[i] for i in ("a.jpg", "b.jpg")}
    assert all(r.reviewer.startswith("label-studio:") and r.task and r.annotation for r in reviews.values())
    merged = {r.image: r for r in RunDirectory(run.path).results()}
    assert {label.name for label in merged["a.jpg"].result.labels} == {"person", "dog"}
    assert all(label.provenance.reviewer for label in merged["a.jpg"].result.labels)
    assert merged["c.jpg"].review is None and merged["c.jpg"].result.labels[0].provenance.reviewer == ""
    after, _ = evaluate_runs([str(run.path)], str(gold), 2.5, COCO)
    assert after[0].scores.of1 > model_alone[0].scores.of1 and after[0].scores.of1 == 1.0
    assert load_vocabulary(refit).version.endswith("-calibrated")

    # Pulling again changes nothing; a wrong token is a one-line error.
    assert main(["review", "pull", str(run.path), "--token", server.token]) == 0
    assert "0 new or changed reviews" in capsys.readouterr().out
    assert main(["review", "pull", str(run.path), "--token", "0" * 40]) == 2
    assert "HTTP 401" in capsys.readouterr().err
    with pytest.raises(LabelStudioError, match="HTTP 404"):
        LabelStudioClient(server.url, server.token).project(999_999)
