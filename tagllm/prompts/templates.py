"""Prompt templates and the rules for inserting vocabulary text into them.

Every prompt starts with the instruction and ends with the data (names, descriptions), so the
prompts of one stage share their first lines and the model server can compute that prefix
once. Names and descriptions are data: control characters and line breaks are removed and
their length is capped, so a vocabulary cannot smuggle instructions into a prompt.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import re
import string

from tagllm.vocab.memo import PerVocabulary
from tagllm.vocab.model import Category, Vocabulary


class PromptKind(enum.StrEnum):
    OPEN_ENDED = "open_ended"
    MULTI_OPTION = "multi_option"
    YES_NO = "yes_no"  # concept-aligned: descriptions, super-category, exclusions
    YES_NO_PLAIN = "yes_no_plain"  # bare category name (ablation without concept knowledge)


DEFAULT_TEMPLATES: dict[PromptKind, str] = {
    PromptKind.OPEN_ENDED: (
        "List the kinds of objects you can see in the image.\nAnswer with short names separated by commas."
    ),
    PromptKind.MULTI_OPTION: (
        "Which of the listed objects are visible in the image? Answer with their names exactly as "
        'listed, separated by commas, or with "none" if none of them is visible.\n'
        "Objects: {options}"
    ),
    PromptKind.YES_NO: (
        "Answer the question with yes or no.\n"
        'Is there "{concept}" in the image? "{concept}" is a kind of {super_category}.{exclusion}'
    ),
    PromptKind.YES_NO_PLAIN: "Answer the question with yes or no.\nIs there a {name} in the image?",
}
# Fields each kind's template may use; an override using others is rejected.
_FIELDS: dict[PromptKind, set[str]] = {
    PromptKind.OPEN_ENDED: set(),
    PromptKind.MULTI_OPTION: {"options"},
    PromptKind.YES_NO: {"concept", "super_category", "exclusion", "name"},
    PromptKind.YES_NO_PLAIN: {"name"},
}
MAX_INSERT_CHARS = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\ufffd{}]")


def sanitize(text: str, limit: int = MAX_INSERT_CHARS) -> str:
    """Text made safe to insert into a prompt: one line, no control characters, bounded."""
    return " ".join(_UNSAFE.sub(" ", text).split())[:limit]


@dataclasses.dataclass(frozen=True)
class Prompts:
    """The templates in effect for one vocabulary (defaults plus the vocabulary's overrides)."""

    templates: dict[PromptKind, str]

    @classmethod
    def for_vocabulary(cls, vocabulary: Vocabulary | None = None) -> Prompts:
        return _prompts_for(vocabulary)

    @classmethod
    def _build(cls, vocabulary: Vocabulary | None) -> Prompts:
        templates = dict(DEFAULT_TEMPLATES)
        for key, template in (vocabulary.prompts if vocabulary else {}).items():
            try:
                kind = PromptKind(key)
            except ValueError:
                raise ValueError(
                    f"unknown prompt kind {key!r}; known: {[k.value for k in PromptKind]}"
                ) from None
            used = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            if used - _FIELDS[kind]:
                raise ValueError(f"prompt {key!r} uses unknown fields {sorted(used - _FIELDS[kind])}")
            templates[kind] = template
        return cls(templates)

    @functools.cached_property
    def hash(self) -> str:
        """Identifies the wording; goes into every result's version stamp."""
        blob = json.dumps({k.value: v for k, v in sorted(self.templates.items())}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def open_ended(self) -> str:
        return self.templates[PromptKind.OPEN_ENDED]

    def multi_option(self, categories: list[Category] | tuple[Category, ...]) -> str:
        options = ", ".join(sanitize(c.display_name) for c in categories)
        return self.templates[PromptKind.MULTI_OPTION].format(options=options)

    def yes_no(self, category: Category, vocabulary: Vocabulary, concept_knowledge: bool = True) -> str:
        name = sanitize(category.display_name)
        if not concept_knowledge or not (category.descriptions or category.super_category):
            return self.templates[PromptKind.YES_NO_PLAIN].format(name=name)
        concept = sanitize(", ".join(category.descriptions) if category.descriptions else name)
        similar = [sanitize(vocabulary.category(s).display_name) for s in category.similar]
        exclusion = f' "{concept}" does not mean {", ".join(similar)}.' if similar else ""
        return self.templates[PromptKind.YES_NO].format(
            concept=concept,
            super_category=sanitize(category.super_category or "object"),
            exclusion=exclusion,
            name=name,
        )


_prompts_for = PerVocabulary(Prompts._build)
