"""One line of `RUN/results.jsonl`: an image and its tagging result, as typed data.

On disk it is one JSON object: `image`, `path` and the fields of the `tagllm.v1.TaggingResult`
message in its JSON mapping with the proto's field names (`labels` with `name`, `score` and
`provenance`, `usage`, `stages`, `version` with the strategy as its enum name `STRATEGY_<NAME>`,
`candidates`, `verified`, `confirmed`, `dropped_answers`, `verifications`: every yes/no answer with
its P(yes), served score and whether it was kept): what the gateway answers, as protobuf writes
it. Lines written before the record took the proto's names (`usage.calls`, `version.prompt_hash`,
`verifications[].probability`, the strategy as the registry spells it) are read as well.

A person's review of an image (`RUN/reviews.jsonl`, one `Review` a line) is merged into the
record when the run is read: the reviewer's labels replace the model's, each with the reviewer in
its provenance; the model's verifications stay as they were, for calibration.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tagllm.convert import (
    result_from_proto,
    result_message_from_json,
    result_message_to_json,
    result_to_proto,
)
from tagllm.strategies import Label, Provenance, TagResult

# Library names of the fields that took the proto's names, per part of an older record.
_OLD_NAMES = {
    "usage": {"calls": "mllm_calls", "requests": "mllm_requests", "compute_seconds": "model_compute_seconds"},
    "stages": {"compute_seconds": "model_compute_seconds"},
    "version": {"prompt_hash": "prompt_template_hash"},
    "verifications": {"probability": "yes_probability"},
}


def result_from_data(data: dict[str, Any]) -> TagResult:
    """A result from its proto's JSON mapping, or from a record of the older names; ValueError or
    KeyError if it is neither."""
    missing = [key for key in ("labels", "usage", "version") if key not in data]
    if missing:
        raise KeyError(f"no {', '.join(missing)}")
    if "prompt_hash" in (data["version"] or {}):
        data = _renamed(data)
    return result_from_proto(result_message_from_json(data))


def _renamed(data: dict[str, Any]) -> dict[str, Any]:
    """An older record's result in the proto's names and enum spellings."""

    def rename(part: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
        return {names.get(key, key): value for key, value in part.items()}

    data = dict(data)
    for key in ("usage", "version"):
        data[key] = rename(data[key], _OLD_NAMES[key])
    for key in ("stages", "verifications"):
        data[key] = [rename(item, _OLD_NAMES[key]) for item in data.get(key, ())]
    data["version"]["strategy"] = f"STRATEGY_{str(data['version']['strategy']).upper()}"
    labels = []
    for label in data.get("labels", ()):
        provenance = {k: v for k, v in (label.get("provenance") or {}).items() if v is not None}
        if provenance.get("verdict"):
            provenance["verdict"] = f"VERDICT_{str(provenance['verdict']).upper()}"
        labels.append({**label, "provenance": provenance})
    data["labels"] = labels
    return data


@dataclasses.dataclass(frozen=True)
class Review:
    """A person's answer for one image: the vocabulary's labels it has, all of them."""

    image: str
    labels: tuple[str, ...]
    # Who answered, as the review tool names them (e.g. "label-studio:reviewer@example.com").
    reviewer: str
    # Where the answer lives: tool, project, task and annotation ids, and when it was last changed.
    source: str = "label-studio"
    project: int = 0
    task: int = 0
    annotation: int = 0
    updated_at: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Review:
        data = json.loads(line)
        return cls(**{**data, "labels": tuple(data["labels"])})


@dataclasses.dataclass(frozen=True)
class AnnotationRecord:
    # The image's id within its source (its path relative to the source root).
    image: str
    # Absolute path the image was read from.
    path: str
    result: TagResult
    # The review merged into `result`, if a person answered for this image.
    review: Review | None = None

    @property
    def scores(self) -> dict[str, float]:
        return {label.name: label.score for label in self.result.labels}

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset(label.name for label in self.result.labels)

    def to_json(self) -> str:
        """The model's record (a review lives in its own file and is never written here)."""
        return json.dumps(
            {"image": self.image, "path": self.path, **result_message_to_json(result_to_proto(self.result))},
            separators=(",", ":"),
        )

    def reviewed(self, review: Review) -> AnnotationRecord:
        """This record with the reviewer's labels in place of the model's."""
        model = {label.name: label for label in self.result.labels}
        labels = []
        for name in review.labels:
            before = model.get(name)
            provenance = before.provenance if before else Provenance()
            labels.append(Label(name, 1.0, dataclasses.replace(provenance, reviewer=review.reviewer)))
        labels.sort(key=lambda label: label.name)
        return dataclasses.replace(
            self, result=dataclasses.replace(self.result, labels=tuple(labels)), review=review
        )

    @classmethod
    def from_json(cls, line: str) -> AnnotationRecord:
        return cls.from_data(json.loads(line))

    @classmethod
    def from_data(cls, data: Any) -> AnnotationRecord:
        """From the line's parsed JSON; ValueError, KeyError or TypeError if it is no record."""
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        data = dict(data)
        image, path = data.pop("image"), data.pop("path", "")
        if not isinstance(image, str) or not isinstance(path, str):
            raise TypeError("image and path must be strings")
        return cls(image, path, result_from_data(data))
