"""A bounded LRU of prefilled image prefixes (KV caches), shared by the stages of one image.

TagLLM asks about one image twice (candidates, then verification). The chat header and the
image tokens are the same both times, and they are most of the prefill; keyed by the image's
hash and the header's hash, the second stage starts from the stored KV state instead of
encoding the image again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any


@dataclasses.dataclass(frozen=True)
class PrefixEntry:
    cache: Any  # a transformers Cache holding batch 1; never mutated, copied before use
    length: int  # tokens in the prefix
    next_position: int  # position id of the token after it (Qwen-VL shifts text after images)
    nbytes: int


def cache_bytes(cache) -> int:
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None:
                total += tensor.numel() * tensor.element_size()
    return total


class PrefixCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], PrefixEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.bytes = 0

    def get(self, key: tuple[str, str]) -> PrefixEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, str], entry: PrefixEntry) -> None:
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._entries[key] = entry
            self.bytes += entry.nbytes
            while self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.nbytes
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
