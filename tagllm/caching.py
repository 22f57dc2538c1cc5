"""The one cache of the code base: a thread-safe LRU bounded by entries or by a size function.

Used for gateway results, parsed custom vocabularies, things built per vocabulary and the
model's image-prefix KV states. Every instance counts hits, misses and evictions, so a process
can export them (`services.common.cache_metrics` for gRPC services, the Triton model its own).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Keeps at most `max_size` worth of values, where each value weighs `size_of(value)` (1 by default)."""

    def __init__(self, max_size: int, size_of: Callable[[V], int] | None = None) -> None:
        self.max_size = max_size
        self._size_of = size_of or (lambda _: 1)
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: K, value: V) -> None:
        """Stores `value` unless it alone outweighs the whole cache; evicts the least recent."""
        weight = self._size_of(value)
        if weight > self.max_size:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._entries[key] = (value, weight)
            self.size += weight
            while self.size > self.max_size:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.size -= evicted
                self.evictions += 1

    def get_or_build(self, key: K, build: Callable[[K], V]) -> V:
        """The cached value, or `build(key)` stored; concurrent misses may both build."""
        value = self.get(key)
        if value is None:
            value = build(key)
            self.put(key, value)
        return value

    def stats(self) -> dict[str, int]:
        """Counters since creation, and what is held now (`size` in the unit of `size_of`)."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions, "size": self.size}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
