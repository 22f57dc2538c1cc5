"""Annotation runs scored against human labels: what `tagllm eval` computes and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tagllm.bulk.run import RunDirectory
from tagllm.datasets.readers import read_labels
from tagllm.eval.metrics import evaluate
from tagllm.eval.report import RunEvaluation
from tagllm.metrics.cost import gpu_dollars


def evaluate_run(
    run_path: str | Path, gold: dict[str, set[str]], categories: list[str], gpu_price_per_hour: float
) -> RunEvaluation:
    """Quality and cost per image of one run over the gold file's images and categories."""
    results = [r for r in RunDirectory(run_path).results() if r.image in gold]
    predictions = {r.image: r.scores for r in results}
    n = max(len(results), 1)
    compute = sum(r.result.usage.compute_seconds for r in results) / n
    return RunEvaluation(
        name=Path(run_path).name,
        scores=evaluate(predictions, gold, categories),
        missing=len(gold) - len(results),
        calls_per_image=sum(r.result.usage.calls for r in results) / n,
        tokens_per_image=sum(r.result.usage.prompt_tokens + r.result.usage.generated_tokens for r in results)
        / n,
        compute_seconds_per_image=compute,
        dollars_per_image=gpu_dollars(compute, gpu_price_per_hour),
        predictions=predictions,
    )


def evaluate_runs(
    run_paths: list[str], gold_path: str, gpu_price_per_hour: float
) -> tuple[list[RunEvaluation], dict[str, set[str]]]:
    """Every run against the gold file; raises DatasetError or RunError for unreadable inputs."""
    gold_set = read_labels(gold_path)
    gold = {image: set(labels) for image, labels in gold_set.labels.items()}
    categories = list(gold_set.categories)
    return [evaluate_run(path, gold, categories, gpu_price_per_hour) for path in run_paths], gold


def summary(runs: list[RunEvaluation]) -> list[dict[str, Any]]:
    """The headline numbers of each run, for `--json`."""
    return [
        {
            "run": run.name,
            "missing": run.missing,
            "calls_per_image": run.calls_per_image,
            "dollars_per_image": run.dollars_per_image,
            **{k: getattr(run.scores, k) for k in ("op", "orec", "of1", "cp", "cr", "cf1", "map", "images")},
        }
        for run in runs
    ]
