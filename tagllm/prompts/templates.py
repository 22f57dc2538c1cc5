"""Prompt styles: every sentence the engine sends to the model, and the hash that names them.

The built-in styles quote the TagLLM paper word for word (Appendix A, Table 4):

- `careful` (the default): its "carefully-designed" prompts, which every result of the paper
  uses and which it found better than the simple ones in all cases;
- `simple`: its "simple" prompts (the stray "?." of the yes/no prompt is the paper's own).

Concept-aligned disambiguation (CAD) asks the yes/no question about the description D_k in
place of the name and appends "C_k is a type of M_k." and "C_k does not refer to S_1, S_2,
..., or S_o." (the paper keeps the name C_k in both). A vocabulary may define its own named
styles; each kind it leaves out falls back to `careful`.

The instruction comes before the data (names, descriptions), so the prompts of one stage share
their start and the model server computes it once. Names and descriptions are data: control
characters, line breaks and braces are removed and their length is capped, so a vocabulary
cannot smuggle instructions or format fields into a prompt.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence

from tagllm.vocab.memo import PerVocabulary
from tagllm.vocab.model import Category, Vocabulary


class PromptKind(enum.StrEnum):
    OPEN_ENDED = "open_ended"
    MULTI_OPTION = "multi_option"  # {cls_list}: the names of one group (or of the vocabulary)
    YES_NO = "yes_no"  # {object}: the name, or with concept knowledge the description D_k
    SUPER_CATEGORY = "super_category"  # {name} is a type of {super_category}
    EXCLUSION = "exclusion"  # {name} does not refer to {similar}
    LIST_OR = "list_or"  # the word before the last of the similar names
    NONE_ANSWER = "none_answer"  # what a multi-option answer says when nothing listed is present


DEFAULT_STYLE = "careful"
_SHARED = {
    PromptKind.OPEN_ENDED: "What objects are in this image?",
    PromptKind.SUPER_CATEGORY: "{name} is a type of {super_category}.",
    PromptKind.EXCLUSION: "{name} does not refer to {similar}.",
    PromptKind.LIST_OR: "or",
    PromptKind.NONE_ANSWER: "NO",
}
_LIST_INSTRUCTIONS = (
    "From this list, output only the names of the objects that are present, separated by commas. "
    "Do not include any object that is not in the candidate list. "
    "If none of the candidate objects are present, output exactly NO."
)
BUILTIN_STYLES: dict[str, dict[PromptKind, str]] = {
    "careful": {
        **_SHARED,
        PromptKind.MULTI_OPTION: (
            "Carefully examine the image and decide which of the following candidate objects are "
            "present in the image. Candidates: {cls_list}. " + _LIST_INSTRUCTIONS
        ),
        PromptKind.YES_NO: (
            "Carefully examine the image and decide if it contains a {object}. Answer with only yes or no."
        ),
    },
    "simple": {
        **_SHARED,
        PromptKind.MULTI_OPTION: "What objects are in this image? Candidates: {cls_list}. "
        + _LIST_INSTRUCTIONS,
        PromptKind.YES_NO: "Is there a {object} in this image?. Answer with only yes or no.",
    },
}
# The fields each kind's template may use; a style using others is rejected.
FIELDS: dict[PromptKind, frozenset[str]] = {
    PromptKind.OPEN_ENDED: frozenset(),
    PromptKind.MULTI_OPTION: frozenset({"cls_list"}),
    PromptKind.YES_NO: frozenset({"object"}),
    PromptKind.SUPER_CATEGORY: frozenset({"name", "super_category"}),
    PromptKind.EXCLUSION: frozenset({"name", "similar"}),
    PromptKind.LIST_OR: frozenset(),
    PromptKind.NONE_ANSWER: frozenset(),
}
MAX_TEMPLATE_CHARS = 2000
MAX_INSERT_CHARS = 200
_STYLE_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,31}\Z")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\ufffd{}]")


def sanitize(text: str, limit: int = MAX_INSERT_CHARS) -> str:
    """Text made safe to insert into a prompt: one line, no control characters, bounded."""
    return " ".join(_UNSAFE.sub(" ", text).split())[:limit]


def check_template(kind: PromptKind, template: str) -> None:
    """Raises ValueError unless `template` is a string of bounded length using only its kind's
    fields, each plainly (no attribute, index, conversion or format spec)."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"prompt {kind.value!r} must be a non-empty string")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ValueError(
            f"prompt {kind.value!r} is {len(template)} characters; the limit is {MAX_TEMPLATE_CHARS}"
        )
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"prompt {kind.value!r} is not a valid template: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS[kind]:
            allowed = ", ".join(sorted(FIELDS[kind])) or "none"
            raise ValueError(f"prompt {kind.value!r} uses field {field[:40]!r}; allowed: {allowed}")
        if spec or conversion:
            raise ValueError(f"prompt {kind.value!r}: field {field!r} takes no format spec or conversion")


def _join_or(names: Sequence[str], word: str) -> str:
    """'A', 'A or B', 'A, B, or C': the paper's "S_1, S_2, ..., or S_o"."""
    if len(names) <= 2:
        return f" {word} ".join(names)
    return ", ".join(names[:-1]) + f", {word} " + names[-1]


@dataclasses.dataclass(frozen=True)
class Prompts:
    """The templates of one style, as they apply to one vocabulary."""

    style: str
    templates: Mapping[PromptKind, str]

    @classmethod
    def for_vocabulary(cls, vocabulary: Vocabulary | None = None, style: str = "") -> Prompts:
        """The prompts of `style` ('' = the vocabulary's default); ValueError for an unknown style."""
        return _styles_of(vocabulary).get(
            style or (vocabulary.prompt_style if vocabulary else "") or DEFAULT_STYLE
        )

    @functools.cached_property
    def hash(self) -> str:
        """Identifies the wording, every sentence of it; goes into every result's version stamp."""
        blob = json.dumps({k.value: v for k, v in sorted(self.templates.items())}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def none_answer(self) -> str:
        return self.templates[PromptKind.NONE_ANSWER]

    def open_ended(self) -> str:
        return self.templates[PromptKind.OPEN_ENDED]

    def multi_option(self, categories: Sequence[Category]) -> str:
        names = ", ".join(sanitize(c.display_name) for c in categories)
        return self.templates[PromptKind.MULTI_OPTION].format(cls_list=names)

    def yes_no(self, category: Category, vocabulary: Vocabulary, concept_knowledge: bool = False) -> str:
        """The bare-name question (binary prompting), or with concept knowledge the CAD question."""
        name = sanitize(category.display_name)
        if not concept_knowledge:
            return self.templates[PromptKind.YES_NO].format(object=name)
        description = sanitize(", ".join(category.descriptions)) if category.descriptions else name
        sentences = [self.templates[PromptKind.YES_NO].format(object=description)]
        if category.super_category:
            sentences.append(
                self.templates[PromptKind.SUPER_CATEGORY].format(
                    name=name, super_category=sanitize(category.super_category)
                )
            )
        similar = [sanitize(vocabulary.category(s).display_name) for s in category.similar]
        if similar:
            joined = _join_or(similar, self.templates[PromptKind.LIST_OR])
            sentences.append(self.templates[PromptKind.EXCLUSION].format(name=name, similar=joined))
        return " ".join(sentences)


@dataclasses.dataclass(frozen=True)
class PromptStyles:
    """The styles a vocabulary can be asked in: the built-ins and its own."""

    styles: Mapping[str, Prompts]

    def get(self, style: str) -> Prompts:
        if style not in self.styles:
            raise ValueError(f"unknown prompt style {style[:40]!r}; known: {', '.join(self.styles)}")
        return self.styles[style]


def build_styles(vocabulary: Vocabulary | None) -> PromptStyles:
    """All styles of `vocabulary`; ValueError naming the style and kind at fault."""
    styles = {name: Prompts(name, dict(templates)) for name, templates in BUILTIN_STYLES.items()}
    for name, overrides in (vocabulary.prompt_styles if vocabulary else {}).items():
        if not _STYLE_NAME.match(name) or name in BUILTIN_STYLES:
            raise ValueError(
                f"prompt style name {name[:40]!r} must match {_STYLE_NAME.pattern} and not be built in"
            )
        templates = dict(BUILTIN_STYLES[DEFAULT_STYLE])
        for key, template in overrides.items():
            try:
                kind = PromptKind(key)
            except ValueError:
                known = ", ".join(k.value for k in PromptKind)
                raise ValueError(
                    f"style {name!r}: unknown prompt kind {key[:40]!r}; known: {known}"
                ) from None
            try:
                check_template(kind, template)
            except ValueError as exc:
                raise ValueError(f"style {name!r}: {exc}") from None
            templates[kind] = template
        styles[name] = Prompts(name, templates)
    default = vocabulary.prompt_style if vocabulary else ""
    if default and default not in styles:
        raise ValueError(f"prompt_style {default[:40]!r} is not a style of the vocabulary")
    return PromptStyles(styles)


_styles_of = PerVocabulary(build_styles)
