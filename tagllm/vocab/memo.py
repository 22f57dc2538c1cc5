"""Things derived from a vocabulary, built once per vocabulary content (requests are many)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from tagllm.caching import LRUCache
from tagllm.vocab.model import Vocabulary

T = TypeVar("T")


class PerVocabulary(Generic[T]):
    """`build(vocabulary)`, remembered by the vocabulary's digest for the `size` most recent ones."""

    def __init__(self, build: Callable[[Vocabulary | None], T], size: int = 256) -> None:
        self._build = build
        self._built: LRUCache[str, T] = LRUCache(size)

    def __call__(self, vocabulary: Vocabulary | None) -> T:
        key = vocabulary.digest if vocabulary is not None else ""
        return self._built.get_or_build(key, lambda _: self._build(vocabulary))
