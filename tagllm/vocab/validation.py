"""Reading a vocabulary file: strict YAML within bounds, then every field checked, with errors that
name the offending field (the schema is in `model.py`)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from tagllm.vocab.calibration import parse_calibration
from tagllm.vocab.model import (
    MAX_CATEGORIES,
    MAX_DESCRIPTIONS,
    MAX_NAME_CHARS,
    MAX_PHRASE_CHARS,
    MAX_PROVENANCE_CHARS,
    MAX_SIMILAR,
    MAX_SYNONYMS,
    VOCABULARY_NAME,
    Category,
    Group,
    Vocabulary,
    VocabularyError,
    default_groups,
    to_plain,
)
from tagllm.vocab.strict_yaml import StrictYamlError, load_strict_yaml

# Control characters, and the invisible ones that make text read otherwise than it is:
# bidirectional overrides and isolates, zero-width characters, line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
MAX_VOCABULARY_BYTES = 1024 * 1024
# The schema nests five levels deep (partitions -> name -> groups -> group -> categories).
MAX_YAML_DEPTH = 8


def load_vocabulary(path: str | Path) -> Vocabulary:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VocabularyError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_vocabulary(text, source=str(path))


def parse_vocabulary(text: str, source: str = "<vocabulary>") -> Vocabulary:
    try:
        data = load_strict_yaml(text, MAX_VOCABULARY_BYTES, MAX_YAML_DEPTH)
    except StrictYamlError as exc:
        raise VocabularyError(f"{source}: {exc}") from None
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: expected a mapping at the top level")
    return _build(data, source, text)


def _build(data: dict[str, Any], source: str, text: str) -> Vocabulary:
    def fail(where: str, message: str) -> VocabularyError:
        return VocabularyError(f"{source}: {where}: {message}")

    if "prompts" in data:
        raise fail("prompts", "was replaced by prompt_styles (named styles) and prompt_style (the default)")
    unknown = set(data) - {
        "name",
        "version",
        "description",
        "categories",
        "groups",
        "partitions",
        "prompt_style",
        "prompt_styles",
        "provenance",
    }
    if unknown:
        raise fail("top level", f"unknown keys {sorted(str(k)[:64] for k in unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not VOCABULARY_NAME.match(name):
        raise fail("name", "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit")
    version = data.get("version", "")
    if not isinstance(version, str):
        # YAML reads 1.10 as the number 1.1: a version is text, never converted.
        raise fail(
            "version",
            f"must be a string; YAML read it as {type(version).__name__} {str(version)[:32]}, "
            'so quote it as written (version: "1.10")',
        )
    version = _phrase(version, "version", fail, MAX_NAME_CHARS) if version.strip() else ""
    if not version:
        raise fail("version", "is required")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be text")
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise fail("categories", "must be a non-empty list")
    if len(raw_categories) > MAX_CATEGORIES:
        raise fail("categories", f"at most {MAX_CATEGORIES} categories are supported")

    categories = [_category(raw, f"categories[{i}]", fail) for i, raw in enumerate(raw_categories)]
    names = [c.name for c in categories]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise fail("categories", f"duplicate names {duplicates}")
    known = set(names)
    terms: dict[str, str] = {}
    for i, category in enumerate(categories):
        where = f"categories[{i}] ({category.name})"
        for other in category.similar:
            if other not in known:
                raise fail(where, f"similar category {other!r} is not a category of this vocabulary")
            if other == category.name:
                raise fail(where, "a category cannot be similar to itself")
        if category.parent is not None and category.parent not in known:
            raise fail(where, f"parent {category.parent!r} is not a category of this vocabulary")
        for term in {category.name, category.display_name, *category.synonyms}:
            key = term.lower()
            if terms.setdefault(key, category.name) != category.name:
                raise fail(where, f"{term!r} already names category {terms[key]!r}")

    groups = _groups(data.get("groups"), categories, fail, "groups")
    raw_partitions = data.get("partitions") or {}
    if not isinstance(raw_partitions, dict):
        raise fail("partitions", "must map partition names to lists of groups")
    partitions = {}
    for key, raw in raw_partitions.items():
        key = _phrase(key, "partitions", fail, MAX_NAME_CHARS)
        partitions[key] = _groups(raw, categories, fail, f"partitions.{key}")
    style = data.get("prompt_style") or ""
    if style:
        style = _phrase(style, "prompt_style", fail, MAX_NAME_CHARS)
    styles = data.get("prompt_styles") or {}
    if not isinstance(styles, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) and all(isinstance(t, str) for t in v.values())
        for k, v in styles.items()
    ):
        raise fail("prompt_styles", "must map style names to {prompt kind: template} mappings")
    provenance = data.get("provenance") or {}
    if not isinstance(provenance, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in provenance.items()
    ):
        raise fail("provenance", "must map keys to short texts")
    vocabulary = Vocabulary(
        name=name,
        version=version,
        description=description,
        categories=tuple(categories),
        groups=groups,
        groups_given=data.get("groups") is not None,
        partitions=partitions,
        prompt_style=style,
        prompt_styles={k: dict(v) for k, v in styles.items()},
        provenance={
            k: _phrase(v, f"provenance.{k[:64]}", fail, MAX_PROVENANCE_CHARS) for k, v in provenance.items()
        },
    )
    canonical = yaml.safe_dump(to_plain(vocabulary), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return dataclasses.replace(vocabulary, digest=digest, source_text=text)


def _category(raw: Any, where: str, fail) -> Category:
    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping")
    unknown = set(raw) - {f.name for f in dataclasses.fields(Category)}
    if unknown:
        raise fail(where, f"unknown keys {sorted(str(k)[:64] for k in unknown)}")
    name = _phrase(raw.get("name"), f"{where}.name", fail, MAX_NAME_CHARS)
    where = f"{where} ({name})"
    display = _phrase(raw.get("display_name", name), f"{where}.display_name", fail, MAX_NAME_CHARS)
    synonyms = _phrases(raw.get("synonyms"), f"{where}.synonyms", fail, MAX_SYNONYMS, MAX_NAME_CHARS)
    similar = _phrases(raw.get("similar"), f"{where}.similar", fail, MAX_SIMILAR, MAX_NAME_CHARS)
    descriptions = _phrases(raw.get("descriptions"), f"{where}.descriptions", fail, MAX_DESCRIPTIONS)
    super_category = raw.get("super_category") or ""
    if super_category:
        super_category = _phrase(super_category, f"{where}.super_category", fail, MAX_NAME_CHARS)
    parent = raw.get("parent")
    if parent is not None:
        parent = _phrase(parent, f"{where}.parent", fail, MAX_NAME_CHARS)
    threshold = raw.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
        raise fail(f"{where}.threshold", "must be a number in [0, 1]")
    provenance = raw.get("provenance") or ""
    if provenance:
        provenance = _phrase(provenance, f"{where}.provenance", fail, MAX_PROVENANCE_CHARS)
    calibration = parse_calibration(raw.get("calibration"), f"{where}.calibration", fail)
    return Category(
        name,
        display,
        synonyms,
        super_category,
        similar,
        descriptions,
        parent,
        float(threshold),
        provenance,
        calibration,
    )


def _phrase(value: Any, where: str, fail, limit: int = MAX_PHRASE_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(where, "must be a non-empty string")
    if _CONTROL.search(value):
        raise fail(
            where,
            "must not contain control characters (bidirectional or zero-width ones included) or line breaks",
        )
    value = " ".join(value.split())
    if len(value) > limit:
        raise fail(where, f"is longer than {limit} characters")
    return value


def _phrases(value: Any, where: str, fail, max_items: int, limit: int = MAX_PHRASE_CHARS) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(where, "must be a list")
    if len(value) > max_items:
        raise fail(where, f"at most {max_items} entries")
    return tuple(_phrase(v, f"{where}[{i}]", fail, limit) for i, v in enumerate(value))


def _groups(raw: Any, categories: list[Category], fail, field: str) -> tuple[Group, ...]:
    if raw is None:
        return default_groups(categories)
    if not isinstance(raw, list) or not raw:
        raise fail(field, "must be a non-empty list")
    seen: dict[str, str] = {}
    groups = []
    known = {c.name for c in categories}
    for i, entry in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"name", "categories"}:
            raise fail(where, "must be a mapping with 'name' and 'categories'")
        name = _phrase(entry.get("name"), f"{where}.name", fail, MAX_NAME_CHARS)
        members = entry.get("categories")
        if not isinstance(members, list) or not members:
            raise fail(f"{where} ({name})", "needs a non-empty list of categories")
        for member in members:
            if not isinstance(member, str) or member not in known:
                raise fail(f"{where} ({name})", f"{member!r} is not a category of this vocabulary")
            if member in seen:
                raise fail(f"{where} ({name})", f"{member!r} is already in group {seen[member]!r}")
            seen[member] = name
        groups.append(Group(name, tuple(members)))
    missing = [c.name for c in categories if c.name not in seen]
    if missing:
        raise fail(field, f"must partition the categories; not in any group: {missing}")
    return tuple(groups)


def revise(vocabulary: Vocabulary, **changes: Any) -> Vocabulary:
    """A validated copy with some fields replaced (and so a new content version)."""
    if "groups" in changes:
        changes = {**changes, "groups": tuple(changes["groups"]), "groups_given": True}
    if "categories" in changes:
        changes = {**changes, "categories": tuple(changes["categories"])}
    plain = to_plain(dataclasses.replace(vocabulary, **changes))
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    return parse_vocabulary(text, source=f"revised {vocabulary.name}")
