"""Parsing free or listed answers into category names of a vocabulary.

Rules: case and surrounding punctuation are ignored; articles and counts in front are dropped;
plural forms map to singular ones; names, display names and synonyms all count; "NO" (the
paper's word), "none", "nothing" and the like mean an empty answer; a category is reported once.
Names outside the vocabulary, or outside the list a prompt allowed, are dropped and counted.

An answer is read from left to right: where a vocabulary term starts, the longest one wins, so a
name that contains a separator ("Cabinet/shelf", "Monitor/TV", "salt and pepper", "knife, fork")
is one label, never two pieces; elsewhere the answer splits on commas, semicolons, line breaks,
"/", "&", "|", " and " and sentence ends.

Free-form answers (`search_phrases`) also find terms inside longer pieces ("a red car" -> car),
except in a piece that negates: a term after "no", "not", "without", "neither" or "nor" in its
piece ("there is no car") names nothing.
"""

from __future__ import annotations

import dataclasses
import re

from tagllm.vocab.memo import PerVocabulary
from tagllm.vocab.model import Vocabulary

_SEPARATOR = re.compile(r",|;|\n|\band\b|/|&|\||\.(?:\s|$)")
_GAP = re.compile(r"(?:[\s,;/&|]|\band\b|\.(?:\s|$))+")
_IRREGULAR = {"mice": "mouse", "children": "child", "men": "man", "women": "woman", "geese": "goose"}
_LEADING = re.compile(r"^(?:(?:a|an|the|some|several|many|two|three|four|five|\d+)\s+)+")
_NONE = {"none", "nothing", "no objects", "no object", "none of them", "none of the above", "n/a", "no"}
_NEGATIONS = {"no", "not", "without", "neither", "nor", "isn't", "aren't"}
_STRIP = " \t.!?:\"'`()[]{}*-_"
_WORD_CHAR = re.compile(r"\w")


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
        # Terms by first character, longest first: "baseball bat" wins over "baseball".
        self._starting: dict[str, list[str]] = {}
        for term in sorted(self._terms, key=lambda t: (-len(t), t)):
            self._starting.setdefault(term[0], []).append(term)

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
        text = _normalize(answer)
        if text in _NONE:
            return ParsedAnswer((), (), True)

        def found(name: str, piece: str) -> None:
            if allowed is not None and name not in allowed:
                dropped.append(piece)
            elif name not in labels:
                labels.append(name)

        position = 0
        while position < len(text):
            gap = _GAP.match(text, position)
            if gap:
                position = gap.end()
                continue
            leading = _LEADING.match(text[position:])
            start = position + (leading.end() if leading else 0)
            term = self._term_at(text, start)
            if term is not None:
                found(self._terms[term], term)
                position = start + len(term)
                continue
            separator = _SEPARATOR.search(text, position)
            end = separator.start() if separator else len(text)
            piece = _normalize(text[position:end])
            position = max(end, position + 1)
            if not piece or piece in _NONE:
                continue
            name = self.lookup(piece)
            names = [name] if name is not None else self._search(piece) if search_phrases else []
            if not names:
                dropped.append(piece)
            for name in names:
                found(name, piece)
        return ParsedAnswer(tuple(labels), tuple(dropped), False)

    def _term_at(self, text: str, start: int) -> str | None:
        """The longest vocabulary term at `start` that ends at a word boundary, if any."""
        for term in self._starting.get(text[start : start + 1], ()):
            end = start + len(term)
            if text.startswith(term, start) and not (end < len(text) and _WORD_CHAR.match(text[end])):
                return term
        return None

    def _search(self, piece: str) -> list[str]:
        words = piece.split()
        found: list[str] = []
        used = [False] * len(words)
        for size in range(len(words), 0, -1):
            for start in range(len(words) - size + 1):
                if any(used[start : start + size]):
                    continue
                name = self.lookup(" ".join(words[start : start + size]))
                if name is not None and not _NEGATIONS & set(words[:start]):
                    found.append(name)
                    used[start : start + size] = [True] * size
        return found


def _build_parser(vocabulary: Vocabulary | None) -> AnswerParser:
    if vocabulary is None:
        raise ValueError("an answer parser needs a vocabulary")
    return AnswerParser(vocabulary)


_parsers = PerVocabulary(_build_parser)


def indistinct_names(vocabulary: Vocabulary) -> list[str]:
    """Warnings about names an answer cannot tell apart: a term that reads as "nothing", or one
    made of other categories' terms joined by a separator ("knife, fork" beside "knife" and
    "fork": a listed answer naming both reads as the one category)."""
    terms = {
        _normalize(t): c.name for c in vocabulary.categories for t in (c.name, c.display_name, *c.synonyms)
    }
    warnings = []
    for term, name in sorted(terms.items()):
        if term in _NONE:
            warnings.append(f"{name!r}: the answer {term!r} reads as 'nothing listed is present'")
        parts = [_normalize(p) for p in _SEPARATOR.split(term)]
        if len(parts) > 1 and all(terms.get(p) not in (None, name) for p in parts):
            others = sorted({terms[p] for p in parts})
            warnings.append(f"{name!r}: an answer naming {others} reads as this one category")
    return warnings
