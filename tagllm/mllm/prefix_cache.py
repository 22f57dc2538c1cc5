"""A bounded LRU of prefilled image prefixes (KV caches), shared by the stages of one image.

TagLLM asks about one image twice (candidates, then verification). The chat header and the
image tokens are the same both times, and they are most of the prefill; keyed by the image's
hash and the header's hash, the second stage starts from the stored KV state instead of
encoding the image again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tagllm.caching import LRUCache


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


def prefix_cache(max_bytes: int) -> LRUCache[tuple[str, str], PrefixEntry]:
    """Image prefixes keyed by (image hash, chat-header hash), bounded by their bytes."""
    return LRUCache(max_bytes, size_of=lambda entry: entry.nbytes)
