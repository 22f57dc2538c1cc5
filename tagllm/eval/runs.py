"""Annotation runs scored against human labels: what `tagllm eval` computes and reports.

Gold category names are mapped to the vocabulary's before scoring: through an explicit label
map first, then the vocabulary's names, display names and synonyms (case, plurals, "_" for " "
do not matter), so `Pizza`, `sports_ball` and `tvmonitor` count as `pizza`, `sports ball` and
`tv`. A gold category that maps to nothing is an error naming it, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tagllm.bulk.predictions import read_predictions
from tagllm.calibration.calibrate import samples_from_results
from tagllm.calibration.measures import measure
from tagllm.datasets.readers import LabelledSet, read_labels
from tagllm.eval.metrics import evaluate
from tagllm.eval.report import RunEvaluation
from tagllm.files import InputFileError, read_text
from tagllm.metrics.cost import gpu_dollars
from tagllm.parsing import AnswerParser
from tagllm.vocab import Vocabulary
from tagllm.vocab.strict_yaml import StrictYamlError, load_strict_yaml

LABEL_MAP_BYTES = 16 * 1024 * 1024


class EvalError(ValueError):
    """The gold labels cannot be scored against the runs; the message says why and what to do."""


def read_label_map(path: str | Path) -> dict[str, str]:
    """A JSON or YAML mapping of gold category name -> vocabulary category name."""
    try:
        data = load_strict_yaml(read_text(path, LABEL_MAP_BYTES), LABEL_MAP_BYTES, max_depth=4)
    except InputFileError as exc:
        raise EvalError(str(exc)) from None
    except StrictYamlError as exc:
        raise EvalError(f"{path}: not a readable label map ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise EvalError(f"{path}: a label map maps gold names to vocabulary names, e.g. {{tvmonitor: tv}}")
    return data


def map_gold(
    labelled: LabelledSet, vocabulary: Vocabulary, label_map: Mapping[str, str] | None = None
) -> tuple[dict[str, set[str]], list[str]]:
    """(image -> vocabulary names, the vocabulary categories the gold file covers).

    Raises EvalError naming the gold categories that map to nothing."""
    parser = AnswerParser.for_vocabulary(vocabulary)
    known = set(vocabulary.names)
    mapping: dict[str, str] = {}
    unmatched = []
    for name in labelled.categories:
        target = (label_map or {}).get(name) or parser.lookup(name) or parser.lookup(name.replace("_", " "))
        if target is None or target not in known:
            unmatched.append(name)
        else:
            mapping[name] = target
    if unmatched:
        raise EvalError(
            f"{len(unmatched)} gold categories are not in vocabulary {vocabulary.name!r}: {unmatched[:20]}; "
            "map them with --label-map FILE (JSON or YAML: gold name -> vocabulary name)"
        )
    gold = {image: {mapping[n] for n in names} for image, names in labelled.labels.items()}
    return gold, list(dict.fromkeys(mapping[n] for n in labelled.categories))


def evaluate_run(
    path: str | Path, gold: dict[str, set[str]], categories: list[str], gpu_price_per_hour: float
) -> RunEvaluation:
    """Quality and cost per image of a run directory (or an export of one) over the gold file's
    images and categories; cost is zero for exports that do not keep usage."""
    predictions = read_predictions(path)
    scores = {image: labels for image, labels in predictions.scores.items() if image in gold}
    usage = [u for image, u in predictions.usage.items() if image in gold]
    n = max(len(scores), 1)
    compute = sum(u.model_compute_seconds for u in usage) / n
    samples = samples_from_results(predictions.verifications.items(), gold)
    return RunEvaluation(
        name=Path(path).name,
        scores=evaluate(scores, gold, categories),
        missing=len(gold) - len(scores),
        calls_per_image=sum(u.mllm_calls for u in usage) / n,
        tokens_per_image=sum(u.prompt_tokens + u.generated_tokens for u in usage) / n,
        compute_seconds_per_image=compute,
        dollars_per_image=gpu_dollars(compute, gpu_price_per_hour),
        predictions=scores,
        versions=predictions.versions,
        paths=predictions.paths,
        calibration=measure(samples) if samples else None,
    )


def evaluate_runs(
    run_paths: list[str],
    gold_path: str,
    gpu_price_per_hour: float,
    vocabulary: Vocabulary,
    label_map: Mapping[str, str] | None = None,
) -> tuple[list[RunEvaluation], dict[str, set[str]]]:
    """Every run against the gold file, in the vocabulary's names; raises DatasetError, RunError or
    EvalError for inputs that cannot be scored."""
    gold, categories = map_gold(read_labels(gold_path), vocabulary, label_map)
    runs = [evaluate_run(path, gold, categories, gpu_price_per_hour) for path in run_paths]
    for run in runs:
        if gold and run.missing == len(gold):
            raise EvalError(
                f"run {run.name} has no result for any image of {gold_path}; are they the same images?"
            )
    return runs, gold


def summary(runs: list[RunEvaluation]) -> list[dict[str, Any]]:
    """The headline numbers of each run, for `--json`."""
    return [
        {
            "run": run.name,
            "missing": run.missing,
            "calls_per_image": run.calls_per_image,
            "dollars_per_image": run.dollars_per_image,
            **{k: getattr(run.scores, k) for k in ("op", "orec", "of1", "cp", "cr", "cf1", "map", "images")},
            "verified": run.calibration.samples if run.calibration else 0,
            "ece": run.calibration.ece if run.calibration else None,
            "within_image_auc": run.calibration.auc if run.calibration else None,
        }
        for run in runs
    ]
