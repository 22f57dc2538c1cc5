"""Parsing free or listed answers into category names of a vocabulary.

Rules: case and surrounding punctuation are ignored; articles and counts in front are dropped;
plural forms map to singular ones; names, display names and synonyms all count; "none" (and
"nothing", "no objects") means an empty answer; a category is reported once. Names outside
the vocabulary, or outside the list a prompt allowed, are dropped and counted.
"""

from __future__ import annotations

import dataclasses
import re

from tagllm.vocab.memo import PerVocabulary
from tagllm.vocab.model import Vocabulary

_SPLIT = re.compile(r",|;|\n|\band\b|/|\||\.(?:\s|$)")
_IRREGULAR = {"mice": "mouse", "children": "child", "men": "man", "women": "woman", "geese": "goose"}
_LEADING = re.compile(r"^(?:(?:a|an|the|some|several|many|two|three|four|five|\d+)\s+)+")
_NONE = {"none", "nothing", "no objects", "no object", "none of them", "none of the above", "n/a", "no"}
_STRIP = " \t.!?:\"'`()[]{}*-_"


@dataclasses.dataclass(frozen=True)
class ParsedAnswer:
    labels: tuple[str, ...]
    # Answer pieces that named nothing allowed (out of vocabulary or out of the prompt's list).
    dropped: tuple[str, ...]
    said_none: bool


def _singular(word: str) -> list[str]:
    forms = [_IRREGULAR[word]] if word in _IRREGULAR else []
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        forms.append(word[:-2])
    if word.endswith("ves") and len(word) > 4:
        forms += [word[:-3] + "f", word[:-3] + "fe"]
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return forms


def _normalize(text: str) -> str:
    return " ".join(text.lower().strip(_STRIP).split())


class AnswerParser:
    """Maps answers to the categories of one vocabulary."""

    @classmethod
    def for_vocabulary(cls, vocabulary: Vocabulary) -> AnswerParser:
        """One parser per vocabulary content, built on first use (requests are many)."""
        return _parsers(vocabulary)

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._terms: dict[str, str] = {}
        for category in vocabulary.categories:
            for term in (category.name, category.display_name, *category.synonyms):
                self._terms[_normalize(term)] = category.name
        # Longest terms first, so "baseball bat" wins over "baseball" when searching phrases.
        self._by_length = sorted(self._terms, key=lambda t: (-len(t), t))

    def lookup(self, piece: str) -> str | None:
        """The category a single answer piece names, if any."""
        text = _LEADING.sub("", _normalize(piece))
        if not text:
            return None
        if text in self._terms:
            return self._terms[text]
        words = text.split()
        for form in _singular(words[-1]):
            candidate = " ".join([*words[:-1], form])
            if candidate in self._terms:
                return self._terms[candidate]
        return None

    def parse(
        self, answer: str, allowed: set[str] | frozenset[str] | None = None, search_phrases: bool = False
    ) -> ParsedAnswer:
        """Labels named by `answer`; with `allowed`, only those categories count.

        `search_phrases` also finds vocabulary terms inside longer pieces ("a red car" -> car),
        for free-form answers.
        """
        labels: list[str] = []
        dropped: list[str] = []
        normalized = _normalize(answer)
        said_none = normalized in _NONE
        if said_none:
            return ParsedAnswer((), (), True)
        for raw_piece in _SPLIT.split(answer):
            piece = _normalize(raw_piece)
            if not piece or piece in _NONE:
                continue
            name = self.lookup(piece)
            found = [name] if name is not None else self._search(piece) if search_phrases else []
            if not found:
                dropped.append(piece)
                continue
            for name in found:
                if allowed is not None and name not in allowed:
                    dropped.append(piece)
                elif name not in labels:
                    labels.append(name)
        return ParsedAnswer(tuple(labels), tuple(dropped), False)

    def _search(self, piece: str) -> list[str]:
        words = piece.split()
        found: list[str] = []
        used = [False] * len(words)
        for size in range(len(words), 0, -1):
            for start in range(len(words) - size + 1):
                if any(used[start : start + size]):
                    continue
                name = self.lookup(" ".join(words[start : start + size]))
                if name is not None:
                    found.append(name)
                    used[start : start + size] = [True] * size
        return found


def _build_parser(vocabulary: Vocabulary | None) -> AnswerParser:
    if vocabulary is None:
        raise ValueError("an answer parser needs a vocabulary")
    return AnswerParser(vocabulary)


_parsers = PerVocabulary(_build_parser)
