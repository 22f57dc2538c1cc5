"""Vocabulary knowledge from a chat LLM, as the TagLLM paper prepared it (it asked GPT-4o).

Any endpoint that speaks OpenAI's chat-completions protocol serves (OpenAI, vLLM, Ollama,
llama.cpp, ...). The paper's prompts are sent word for word (Appendix A Table 5, Appendix C):

- groups: "Based on the co-occurrence relationships among the categories, please divide these
  n categories into m groups, ensuring that the categories within each group frequently
  co-occur." (CooP), or "... do not co-occur." (DiscP);
- super-category: "Which super-category does C_k belong to? For example, an apple is a type of
  fruit, and a car is a type of vehicle.";
- description: "Does a category name C_k have multiple meanings? If so, please provide several
  concise phrases that can help eliminate its ambiguity." (the top three phrases are kept).

The paper gives no wording for the similar categories ("up to five categories from the
vocabulary whose visual appearance is most similar"), so that prompt is ours. Each prompt is
followed by the list it is about and by an instruction on the answer's form, so the answer can
be read by a program: that part is ours too (`FORMAT_*`). What comes back is validated (every
category in exactly one group, similar names from the vocabulary) and written with provenance
(model, date, prompt hash) for a person to review.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import re
from collections.abc import Callable
from typing import Protocol

from tagllm.parsing import AnswerParser
from tagllm.prompts import sanitize
from tagllm.vocab.model import (
    MAX_DESCRIPTIONS,
    MAX_NAME_CHARS,
    MAX_PHRASE_CHARS,
    MAX_SIMILAR,
    Category,
    Group,
    Vocabulary,
)
from tagllm.vocab.validation import revise

# The paper's prompts, verbatim.
GROUPING_PROMPTS = {
    "coop": (
        "Based on the co-occurrence relationships among the categories, please divide these {n} categories "
        "into {m} groups, ensuring that the categories within each group frequently co-occur."
    ),
    "discp": (
        "Based on the co-occurrence relationships among the categories, please divide these {n} categories "
        "into {m} groups, ensuring that the categories within each group do not co-occur."
    ),
}
SUPER_CATEGORY_PROMPT = (
    "Which super-category does {name} belong to? For example, an apple is a type of fruit, and a car is a "
    "type of vehicle."
)
DESCRIPTION_PROMPT = (
    "Does a category name {name} have multiple meanings? If so, please provide several concise phrases that "
    "can help eliminate its ambiguity."
)
# Ours: the paper describes this question but does not quote it.
SIMILAR_PROMPT = (
    "Which categories of the list below are most similar to {name} in visual appearance? Choose up to five."
)
# Ours: the form of each answer, so that a program can read it.
FORMAT_GROUPS = (
    "Categories: {names}.\nAnswer with exactly {m} lines, one per group, each listing the category names of "
    "that group exactly as given, separated by commas. Use every category exactly once."
)
FORMAT_SUPER_CATEGORY = "Answer with the super-category only, in one to three words."
FORMAT_DESCRIPTION = (
    "Answer with up to three short phrases that say what {name} means in a photograph, one per line, "
    "most helpful first."
)
FORMAT_SIMILAR = (
    "List: {names}.\nAnswer with the chosen names exactly as listed, separated by commas, or NONE."
)
PROMPTS_HASH = hashlib.sha256(
    json.dumps(
        [
            GROUPING_PROMPTS,
            SUPER_CATEGORY_PROMPT,
            DESCRIPTION_PROMPT,
            SIMILAR_PROMPT,
            FORMAT_GROUPS,
            FORMAT_SUPER_CATEGORY,
            FORMAT_DESCRIPTION,
            FORMAT_SIMILAR,
        ]
    ).encode()
).hexdigest()[:12]


class KnowledgeError(ValueError):
    """The chat LLM's answers could not be made into a valid vocabulary."""


class Chat(Protocol):
    """Anything that answers one user message with text."""

    model: str

    def ask(self, prompt: str) -> str: ...


class OpenAIChat:
    """A chat-completions endpoint through the `openai` package (temperature 0, for repeatability)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 120.0) -> None:
        from openai import OpenAI

        self.model = model
        # Local servers (vLLM, Ollama) take any key; OpenAI's comes from OPENAI_API_KEY when not given.
        self._client = OpenAI(base_url=base_url, api_key=api_key or None, timeout=timeout, max_retries=2)

    def ask(self, prompt: str) -> str:
        response = self._client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": prompt}], temperature=0
        )
        return response.choices[0].message.content or ""


def _provenance(chat: Chat) -> str:
    """Where knowledge came from: the endpoint's model, the date, the hash of our prompts."""
    return f"chat LLM {chat.model[:60]}, {datetime.date.today().isoformat()}, prompts {PROMPTS_HASH}"


# "- ", "* ", "1. ", "2) ", "Group 3:" in front of a line.
_LINE_PREFIX = re.compile(r"^(?:[-*\u2022]|\d+[.)]|group\s*\d+\s*[:.)-])\s*", re.IGNORECASE)


def _lines(text: str) -> list[str]:
    return [_LINE_PREFIX.sub("", line.strip()).strip() for line in text.splitlines() if line.strip()]


def _groups_from(answer: str, vocabulary: Vocabulary, m: int, kind: str) -> tuple[Group, ...]:
    parser = AnswerParser(vocabulary)
    seen: set[str] = set()
    groups: list[Group] = []
    for line in _lines(answer):
        members = [n for n in parser.parse(line).labels if n not in seen]
        seen.update(members)
        if members:
            groups.append(Group(f"{kind} {len(groups) + 1}", tuple(members)))
    missing = [n for n in vocabulary.names if n not in seen]
    if missing:
        raise KnowledgeError(f"the answer leaves {len(missing)} categories in no group: {missing[:10]}")
    if not 1 <= len(groups) <= 2 * m:
        raise KnowledgeError(f"the answer has {len(groups)} groups; {m} were asked for")
    return tuple(groups)


def ask_groups(
    vocabulary: Vocabulary,
    chat: Chat,
    groups: int,
    kind: str = "coop",
    attempts: int = 3,
    log: Callable[[str], None] = lambda line: None,
) -> Vocabulary:
    """The vocabulary with the chat LLM's partition: as its `groups` (coop) or `partitions[kind]`."""
    if kind not in GROUPING_PROMPTS:
        raise ValueError(f"kind must be one of {sorted(GROUPING_PROMPTS)}")
    names = ", ".join(sanitize(c.display_name) for c in vocabulary.categories)
    n = len(vocabulary.categories)
    prompt = GROUPING_PROMPTS[kind].format(n=n, m=groups) + "\n" + FORMAT_GROUPS.format(names=names, m=groups)
    error: KnowledgeError | None = None
    for attempt in range(1, attempts + 1):
        try:
            partition = _groups_from(chat.ask(prompt), vocabulary, groups, kind)
        except KnowledgeError as exc:
            error = exc
            log(f"attempt {attempt}: {exc}")
            continue
        provenance = {**vocabulary.provenance, f"{kind}_groups": _provenance(chat)}
        if kind == "coop":
            return revise(vocabulary, groups=partition, provenance=provenance)
        return revise(
            vocabulary, partitions={**vocabulary.partitions, kind: partition}, provenance=provenance
        )
    raise KnowledgeError(f"no valid {kind} partition after {attempts} attempts: {error}")


def _phrase_lines(text: str, limit: int, max_items: int) -> list[str]:
    phrases: list[str] = []
    for line in _lines(text.replace(";", "\n")):
        phrase = sanitize(line, limit).strip(" .\"'")
        if phrase and phrase.lower() not in ("none", "no", "nothing") and phrase not in phrases:
            phrases.append(phrase)
    return phrases[:max_items]


def ask_concepts(
    vocabulary: Vocabulary, chat: Chat, log: Callable[[str], None] = lambda line: None
) -> Vocabulary:
    """The vocabulary with each category's super-category, similar categories and descriptions
    from the chat LLM; a category whose answer cannot be used keeps what the file had."""
    parser = AnswerParser(vocabulary)
    stamp = _provenance(chat)
    revised: list[Category] = []
    for index, category in enumerate(vocabulary.categories, start=1):
        name = sanitize(category.display_name)
        others = [c for c in vocabulary.categories if c.name != category.name]
        super_answer = chat.ask(SUPER_CATEGORY_PROMPT.format(name=name) + "\n" + FORMAT_SUPER_CATEGORY)
        description_answer = chat.ask(
            DESCRIPTION_PROMPT.format(name=name) + "\n" + FORMAT_DESCRIPTION.format(name=name)
        )
        similar_answer = chat.ask(
            SIMILAR_PROMPT.format(name=name)
            + "\n"
            + FORMAT_SIMILAR.format(names=", ".join(sanitize(o.display_name) for o in others))
        )
        super_category = next(iter(_phrase_lines(super_answer, MAX_NAME_CHARS, 1)), category.super_category)
        descriptions = _phrase_lines(description_answer, MAX_PHRASE_CHARS, MAX_DESCRIPTIONS)
        similar = parser.parse(similar_answer, allowed={o.name for o in others}).labels[:MAX_SIMILAR]
        revised.append(
            dataclasses.replace(
                category,
                super_category=super_category,
                descriptions=tuple(descriptions) or category.descriptions,
                similar=tuple(similar),
                provenance=stamp,
            )
        )
        log(f"{index}/{len(vocabulary.categories)} {category.name}: {super_category}; {len(similar)} similar")
    provenance = {**vocabulary.provenance, "concepts": stamp}
    return revise(vocabulary, categories=revised, provenance=provenance)
