"""Predictions read back from a run directory or from any file `tagllm export` writes.

Every format keeps each label's score, so `eval` scores an export exactly as the run it came
from: the run directory and JSONL also carry usage (MLLM calls, tokens, model seconds); COCO,
CSV and Label Studio files carry labels and scores only. The run directory and JSONL keep every
verified candidate's P(yes) and served score too, which calibration is measured on.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from tagllm.bulk.exports import CSV_STAMP
from tagllm.bulk.run import RunDirectory, RunError
from tagllm.files import InputFileError, parse_json, read_json, read_text
from tagllm.strategies import Usage, Verification


@dataclasses.dataclass(frozen=True)
class Predictions:
    # image -> {category: score}
    scores: dict[str, dict[str, float]]
    # image -> what answering it cost, where the format keeps it
    usage: dict[str, Usage]
    # What produced the labels (model, vocabulary version, prompt hash, strategy), each once.
    versions: tuple[dict[str, str], ...] = ()
    # image -> the file it was read from, where the format keeps it
    paths: dict[str, str] = dataclasses.field(default_factory=dict)
    # image -> every yes/no answer, kept or dropped, where the format keeps them
    verifications: dict[str, tuple[Verification, ...]] = dataclasses.field(default_factory=dict)


def _unique(versions) -> tuple[dict[str, str], ...]:
    return tuple(json.loads(v) for v in sorted({json.dumps(x, sort_keys=True) for x in versions}))


def _from_run(path: Path) -> Predictions:
    records = RunDirectory(path).results()
    return Predictions(
        {r.image: r.scores for r in records},
        {r.image: r.result.usage for r in records},
        _unique(dataclasses.asdict(r.result.version) for r in records),
        {r.image: r.path for r in records if r.path},
        {r.image: r.result.verifications for r in records},
    )


def _from_jsonl(path: Path) -> Predictions:
    scores, usage, versions, paths, verifications = {}, {}, [], {}, {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = parse_json(line, f"{path}:{number}")
            scores[data["image"]] = {label["name"]: float(label["score"]) for label in data["labels"]}
            if data.get("usage"):
                usage[data["image"]] = Usage(**data["usage"])
            versions.append(data.get("version") or {})
            if data.get("path"):
                paths[data["image"]] = data["path"]
            if "verifications" in data:
                verifications[data["image"]] = tuple(Verification(**v) for v in data["verifications"])
        except InputFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            raise RunError(f"{path}:{number}: not an export line ({str(exc)[:200]})") from None
    return Predictions(scores, usage, _unique(versions), paths, verifications)


def _from_csv(path: Path) -> Predictions:
    rows = list(csv.DictReader(io.StringIO(read_text(path), newline="")))
    if rows and "image" not in rows[0]:
        raise RunError(f"{path}: not a TagLLM CSV export (no 'image' column)")
    stamp = {"image", *CSV_STAMP}
    return Predictions(
        {
            row["image"]: {k: float(v) for k, v in row.items() if k not in stamp and v not in ("", None)}
            for row in rows
        },
        {},
    )


def _from_coco(data: dict[str, Any]) -> Predictions:
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {i["id"]: i["file_name"] for i in data["images"]}
    scores: dict[str, dict[str, float]] = {name: {} for name in files.values()}
    for annotation in data["annotations"]:
        scores[files[annotation["image_id"]]][names[annotation["category_id"]]] = float(
            annotation.get("score", 1.0)
        )
    return Predictions(scores, {}, tuple(data.get("info", {}).get("versions", ())))


def _from_labelstudio(tasks: list[dict[str, Any]]) -> Predictions:
    scores = {}
    for task in tasks:
        image = task["data"].get("image_id") or task["data"]["image"]
        results = task["predictions"][0]["result"] if task.get("predictions") else []
        scores[image] = {r["value"]["choices"][0]: float(r.get("score", 1.0)) for r in results}
    return Predictions(scores, {})


def read_predictions(path: str | Path) -> Predictions:
    """A run directory, or a JSONL, CSV, COCO or Label Studio export; RunError if it is none."""
    path = Path(path)
    if path.is_dir():
        return _from_run(path)
    try:
        if path.suffix == ".jsonl":
            return _from_jsonl(path)
        if path.suffix == ".csv":
            return _from_csv(path)
        data = read_json(path)
        if isinstance(data, dict) and "annotations" in data:
            return _from_coco(data)
        if isinstance(data, list):
            return _from_labelstudio(data)
    except (InputFileError, RunError):
        raise
    except csv.Error as exc:
        raise RunError(f"{path}: not a readable CSV export: {exc}") from None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        raise RunError(f"{path}: not a readable export ({type(exc).__name__}: {str(exc)[:200]})") from None
    raise RunError(f"{path}: neither a run directory nor a JSONL, CSV, COCO or Label Studio export")
