"""Built-in vocabularies shipped with the package, and a registry that adds custom ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources

from tagllm.caching import LRUCache
from tagllm.vocab.model import Vocabulary, VocabularyError, load_vocabulary, parse_vocabulary

DEFAULT_VOCABULARY = "coco"


def builtin_names() -> list[str]:
    folder = resources.files("tagllm.vocab") / "builtin"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_builtin(name: str) -> Vocabulary:
    path = resources.files("tagllm.vocab") / "builtin" / f"{name}.yaml"
    return parse_vocabulary(path.read_text(encoding="utf-8"), source=f"builtin:{name}")


_builtins: LRUCache[str, Vocabulary] = LRUCache(64)


def builtin_vocabulary(name: str) -> Vocabulary:
    """A vocabulary shipped with the package, parsed once; KeyError if there is none of that name."""
    if name not in builtin_names():
        raise KeyError(name)
    return _builtins.get_or_build(name, _read_builtin)


def named_vocabulary(name_or_path: str) -> Vocabulary:
    """A built-in by name, else the vocabulary file at that path (VocabularyError if unreadable)."""
    if name_or_path in builtin_names():
        return builtin_vocabulary(name_or_path)
    return load_vocabulary(name_or_path)


class VocabularyRegistry:
    """Built-ins plus vocabularies registered at run time (thread-safe)."""

    def __init__(self, max_custom: int = 256) -> None:
        self._custom: dict[str, Vocabulary] = {}
        self._lock = threading.Lock()
        self._max_custom = max_custom

    def get(self, name: str) -> Vocabulary:
        """The vocabulary called `name` ('' means the default); KeyError if unknown."""
        name = name or DEFAULT_VOCABULARY
        with self._lock:
            if name in self._custom:
                return self._custom[name]
        return builtin_vocabulary(name)

    def is_builtin(self, name: str) -> bool:
        return (name or DEFAULT_VOCABULARY) in builtin_names()

    def register(
        self, text: str, replace: bool = False, check: Callable[[Vocabulary], object] | None = None
    ) -> Vocabulary:
        """Parses and stores a vocabulary; `check` may refuse it by raising ValueError."""
        vocabulary = parse_vocabulary(text, source="registered vocabulary")
        if check is not None:
            try:
                check(vocabulary)
            except VocabularyError:
                raise
            except ValueError as exc:
                raise VocabularyError(f"registered vocabulary: {exc}") from None
        if vocabulary.name in builtin_names():
            raise VocabularyError(f"{vocabulary.name!r} is a built-in vocabulary and cannot be replaced")
        with self._lock:
            if vocabulary.name in self._custom and not replace:
                raise FileExistsError(f"vocabulary {vocabulary.name!r} is already registered")
            if vocabulary.name not in self._custom and len(self._custom) >= self._max_custom:
                raise OverflowError(f"at most {self._max_custom} custom vocabularies can be registered")
            self._custom[vocabulary.name] = vocabulary
        return vocabulary

    def all(self) -> list[tuple[Vocabulary, bool]]:
        with self._lock:
            custom = list(self._custom.values())
        return [(builtin_vocabulary(n), True) for n in builtin_names()] + [(v, False) for v in custom]
