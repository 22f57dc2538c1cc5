"""Things derived from a vocabulary, built once per vocabulary content (requests are many)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from tagllm.vocab.model import Vocabulary

T = TypeVar("T")


class PerVocabulary(Generic[T]):
    """`build(vocabulary)`, remembered by the vocabulary's digest; forgets all past `size` entries."""

    def __init__(self, build: Callable[[Vocabulary | None], T], size: int = 256) -> None:
        self._build = build
        self._size = size
        self._built: dict[str, T] = {}

    def __call__(self, vocabulary: Vocabulary | None) -> T:
        key = vocabulary.digest if vocabulary is not None else ""
        value = self._built.get(key)
        if value is None:
            if len(self._built) >= self._size:
                self._built.clear()
            value = self._built[key] = self._build(vocabulary)
        return value
