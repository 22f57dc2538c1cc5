"""What every export format shares: its registry entry, what a writer is given, what a reader
returns."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tagllm.bulk.records import AnnotationRecord
from tagllm.strategies import Usage, Verification

Records = list[AnnotationRecord]


@dataclasses.dataclass(frozen=True)
class ExportInput:
    """A run's records, sorted by image, with labels under the threshold already left out."""

    records: Records
    # The vocabulary's categories (a built-in's all, else those the records name), in order.
    categories: list[str]
    # Label Studio: prefix of each task's image URL before the image id.
    image_url_prefix: str = ""


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


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    name: str
    # How the file's name ends.
    suffix: str
    write: Callable[[ExportInput, Path], None]
    # Reads a file `write` wrote back; raises ValueError, KeyError, TypeError ... when it cannot.
    read: Callable[[Path], Predictions]
    # The JSON formats' top level (dict or list), where two share a suffix.
    top_level: type | None = None


def version(record: AnnotationRecord) -> dict[str, Any]:
    return dataclasses.asdict(record.result.version)


def unique_versions(versions: Iterable[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Each version once, in a stable order."""
    return tuple(json.loads(v) for v in sorted({json.dumps(x, sort_keys=True) for x in versions}))
