"""Built-in vocabularies shipped with the package, and a registry that adds custom ones."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from tagllm.caching import LRUCache
from tagllm.vocab.model import Vocabulary, VocabularyError
from tagllm.vocab.validation import load_vocabulary, parse_vocabulary

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
    """Built-ins plus vocabularies registered at run time (thread-safe).

    Without a store, registered vocabularies live in this process. With `store`, a directory
    (a volume every gateway replica mounts), each is a file there: registered through any replica,
    known to all, kept across restarts. A file's name is a digest of the vocabulary's name, so no
    name can reach outside the directory; files are written whole (a temporary file renamed), and
    a file changed by another replica is read again.
    """

    def __init__(self, max_custom: int = 256, store: Path | None = None) -> None:
        self._custom: dict[str, Vocabulary] = {}
        self._lock = threading.Lock()
        self._max_custom = max_custom
        self._store = store
        # Parsed store files by path, with the (mtime, size) they were parsed at.
        self._read: dict[Path, tuple[tuple[int, int], Vocabulary]] = {}
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> Vocabulary:
        """The vocabulary called `name` ('' means the default); KeyError if unknown."""
        name = name or DEFAULT_VOCABULARY
        if self._store is not None and name not in builtin_names():
            vocabulary = self._read_file(self._file(name))
            if vocabulary is None:
                raise KeyError(name)
            return vocabulary
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
        if self._store is not None:
            self._write_file(vocabulary, text, replace)
            return vocabulary
        with self._lock:
            if vocabulary.name in self._custom and not replace:
                raise FileExistsError(f"vocabulary {vocabulary.name!r} is already registered")
            if vocabulary.name not in self._custom and len(self._custom) >= self._max_custom:
                raise OverflowError(f"at most {self._max_custom} custom vocabularies can be registered")
            self._custom[vocabulary.name] = vocabulary
        return vocabulary

    def all(self) -> list[tuple[Vocabulary, bool]]:
        builtins = [(builtin_vocabulary(n), True) for n in builtin_names()]
        if self._store is not None:
            found = (self._read_file(path) for path in sorted(self._store.glob(f"*{_STORE_SUFFIX}")))
            return builtins + sorted(((v, False) for v in found if v is not None), key=lambda e: e[0].name)
        with self._lock:
            custom = list(self._custom.values())
        return builtins + [(v, False) for v in custom]

    # -- the store directory -----------------------------------------------------------------

    def _file(self, name: str) -> Path:
        assert self._store is not None
        return self._store / (hashlib.sha256(name.encode()).hexdigest()[:32] + _STORE_SUFFIX)

    def _read_file(self, path: Path) -> Vocabulary | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            known = self._read.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            vocabulary = parse_vocabulary(path.read_text(encoding="utf-8"), source=f"registered:{path.name}")
        except (OSError, UnicodeDecodeError, VocabularyError):
            return None  # damaged from outside, or removed meanwhile: as if never registered
        with self._lock:
            self._read[path] = (stamp, vocabulary)
        return vocabulary

    def _write_file(self, vocabulary: Vocabulary, text: str, replace: bool) -> None:
        assert self._store is not None
        final = self._file(vocabulary.name)
        if not final.exists() and len(list(self._store.glob(f"*{_STORE_SUFFIX}"))) >= self._max_custom:
            raise OverflowError(f"at most {self._max_custom} custom vocabularies can be registered")
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self._store, prefix=".incoming-", delete=False
        ) as partial:
            partial.write(text)
        try:
            if replace:
                os.replace(partial.name, final)
            else:
                # A hard link is created only where no file is: two replicas registering the
                # same name at once cannot both win.
                try:
                    os.link(partial.name, final)
                except FileExistsError:
                    raise FileExistsError(f"vocabulary {vocabulary.name!r} is already registered") from None
        finally:
            Path(partial.name).unlink(missing_ok=True)


_STORE_SUFFIX = ".vocabulary.yaml"
