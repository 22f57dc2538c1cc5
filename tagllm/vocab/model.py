"""The vocabulary: its data model, its limits and its plain (YAML) form. Reading and checking a
file is `validation.py`.

A vocabulary is YAML:

    name: coco                      # [a-z0-9_-], what requests name
    version: "1.0"
    description: ...
    categories:
      - name: mouse                 # the label returned; unique
        display_name: mouse         # what prompts show (default: name)
        synonyms: [computer mouse]  # answers that mean this category
        super_category: electronic device
        similar: [remote]           # up to 5 other categories of this vocabulary
        descriptions: [computer mouse, pointing device]   # up to 3 short phrases
        parent: null                # optional parent category name
        threshold: 0.5              # score needed to keep the label (after calibration)
        calibration: {method: platt, a: 1.0, b: 0.0}   # optional: P(yes) -> score (calibration.py)
        provenance: "..."           # optional: where this entry's knowledge came from
    groups:                         # co-occurrence partition (CooP); default: super-category chunks
      - {name: desk, categories: [laptop, mouse, keyboard]}
    partitions:                     # optional other partitions by name: the paper's DiscP, RandP
      discp: [{name: d1, categories: [laptop, cat, ...]}, ...]
    prompt_style: careful           # optional: the style requests get by default
    prompt_styles:                  # optional named styles; each kind falls back to `careful`
      terse: {yes_no: "Is there a {object}? Answer yes or no."}
    provenance: {source: "...", model: "...", date: "...", prompt_hash: "..."}   # optional
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml

from tagllm.vocab.calibration import Calibration

MAX_CATEGORIES = 2000
MAX_NAME_CHARS = 64
MAX_PHRASE_CHARS = 80
MAX_PROVENANCE_CHARS = 200
MAX_SIMILAR = 5
MAX_DESCRIPTIONS = 3
MAX_SYNONYMS = 20
DEFAULT_GROUP_SIZE = 12
VOCABULARY_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")  # \Z: no trailing newline, as $ allows


class VocabularyError(ValueError):
    """A vocabulary file that does not follow the schema; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Category:
    name: str
    display_name: str
    synonyms: tuple[str, ...] = ()
    super_category: str = ""
    similar: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()
    parent: str | None = None
    threshold: float = 0.5
    provenance: str = ""
    # Maps the model's P(yes) to the served score; None: the score is P(yes) itself.
    calibration: Calibration | None = None

    def score(self, yes_probability: float) -> float:
        """The served score of a yes/no answer about this category."""
        return yes_probability if self.calibration is None else self.calibration.apply(yes_probability)


@dataclasses.dataclass(frozen=True)
class Group:
    name: str
    categories: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    name: str
    version: str
    description: str
    categories: tuple[Category, ...]
    groups: tuple[Group, ...]
    # Whether the file gave the groups (else: super-category chunks).
    groups_given: bool = True
    partitions: dict[str, tuple[Group, ...]] = dataclasses.field(default_factory=dict)
    prompt_style: str = ""
    prompt_styles: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    provenance: dict[str, str] = dataclasses.field(default_factory=dict)
    # SHA-256 of the canonical content: two files with the same content share it.
    digest: str = ""
    source_text: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    @property
    def full_version(self) -> str:
        """Declared version plus content hash, so an edited file never passes for the old one."""
        return f"{self.version}+{self.digest[:8]}"

    def category(self, name: str) -> Category:
        for category in self.categories:
            if category.name == name:
                return category
        raise KeyError(name)

    def to_yaml(self) -> str:
        return yaml.safe_dump(to_plain(self), sort_keys=False, allow_unicode=True)


def default_groups(categories: list[Category] | tuple[Category, ...], size: int = DEFAULT_GROUP_SIZE):
    """Groups by super-category, split into chunks of at most `size` (for files without groups)."""
    by_super: dict[str, list[str]] = {}
    for category in categories:
        by_super.setdefault(category.super_category or "other", []).append(category.name)
    groups = []
    for super_category, members in by_super.items():
        chunks = [members[i : i + size] for i in range(0, len(members), size)]
        for n, chunk in enumerate(chunks):
            suffix = f" {n + 1}" if len(chunks) > 1 else ""
            groups.append(Group(f"{super_category}{suffix}", tuple(chunk)))
    return tuple(groups)


def to_plain(vocabulary: Vocabulary) -> dict[str, Any]:
    """The vocabulary as the YAML file would give it (fields at their defaults left out)."""
    categories = []
    for c in vocabulary.categories:
        entry: dict[str, Any] = {"name": c.name}
        if c.display_name != c.name:
            entry["display_name"] = c.display_name
        entry |= {
            "synonyms": list(c.synonyms),
            "super_category": c.super_category,
            "similar": list(c.similar),
            "descriptions": list(c.descriptions),
        }
        if c.parent is not None:
            entry["parent"] = c.parent
        if c.threshold != 0.5:
            entry["threshold"] = c.threshold
        if c.provenance:
            entry["provenance"] = c.provenance
        if c.calibration is not None:
            entry["calibration"] = c.calibration.to_plain()
        categories.append(entry)
    plain: dict[str, Any] = {
        "name": vocabulary.name,
        "version": vocabulary.version,
        "description": vocabulary.description,
        "categories": categories,
    }
    if vocabulary.groups_given:
        plain["groups"] = _plain_groups(vocabulary.groups)
    if vocabulary.partitions:
        plain["partitions"] = {k: _plain_groups(v) for k, v in vocabulary.partitions.items()}
    if vocabulary.prompt_style:
        plain["prompt_style"] = vocabulary.prompt_style
    if vocabulary.prompt_styles:
        plain["prompt_styles"] = {k: dict(v) for k, v in vocabulary.prompt_styles.items()}
    if vocabulary.provenance:
        plain["provenance"] = dict(vocabulary.provenance)
    return plain


def _plain_groups(groups: tuple[Group, ...]) -> list[dict[str, Any]]:
    return [{"name": g.name, "categories": list(g.categories)} for g in groups]
