"""One line of `RUN/results.jsonl`: an image and its tagging result, as typed data.

On disk it is one JSON object: `image`, `path` and the fields of `TagResult.to_dict()`
(`labels` with `name`, `score` and `provenance`, `usage`, `stages`, `version` with the strategy
spelled as the registry spells it, `candidates`, `verified`, `confirmed`, `dropped_answers`,
`verifications`: every yes/no answer with its P(yes), served score and whether it was kept).

A person's review of an image (`RUN/reviews.jsonl`, one `Review` a line) is merged into the
record when the run is read: the reviewer's labels replace the model's, each with the reviewer in
its provenance; the model's verifications stay as they were, for calibration.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tagllm.strategies import Label, Provenance, TagResult


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
            {"image": self.image, "path": self.path, **self.result.to_dict()}, separators=(",", ":")
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
        return cls(image, path, TagResult.from_dict(data))
