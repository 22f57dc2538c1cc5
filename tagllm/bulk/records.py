"""One line of `RUN/results.jsonl`: an image and its tagging result, as typed data.

On disk it is one JSON object: `image`, `path` and the fields of `TagResult.to_dict()`
(`labels` with `name`, `score` and `provenance`, `usage`, `stages`, `version` with the strategy
spelled as the registry spells it, `candidates`, `verified`, `confirmed`, `dropped_answers`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tagllm.strategies import TagResult


@dataclasses.dataclass(frozen=True)
class AnnotationRecord:
    # The image's id within its source (its path relative to the source root).
    image: str
    # Absolute path the image was read from.
    path: str
    result: TagResult

    @property
    def scores(self) -> dict[str, float]:
        return {label.name: label.score for label in self.result.labels}

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset(label.name for label in self.result.labels)

    def to_json(self) -> str:
        return json.dumps(
            {"image": self.image, "path": self.path, **self.result.to_dict()}, separators=(",", ":")
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
