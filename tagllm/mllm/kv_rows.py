"""KV caches of several requests as rows of one batch, and back.

A request's prefix (chat header, image, the instructions its prompts share) is a KV cache of
batch 1 whose length differs from request to request. To run the suffixes of several requests
in one forward pass, each row gets its request's prefix left-padded to the longest one; the pads
are masked out and every position id is explicit, so a row computes what it would alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The KV state every prompt of one request starts from."""

    cache: Any  # a DynamicCache of batch 1, never mutated
    length: int  # tokens in it
    next_position: int  # position id of the token after it


def split_batch(cache, config) -> list[Any]:
    """One cache of batch 1 per row of a batched cache."""
    layers = [(keys, values) for keys, values, *_ in cache]
    rows = layers[0][0].shape[0]
    return [
        DynamicCache(ddp_cache_data=[(k[i : i + 1], v[i : i + 1]) for k, v in layers], config=config)
        for i in range(rows)
    ]


def stack_rows(prefixes: Sequence[Prefix], owners: Sequence[int], config) -> tuple[Any, torch.Tensor]:
    """A cache with one row per entry of `owners` (an index into `prefixes`), each prefix
    left-padded to the longest, and its attention mask (1 where a row has a real token)."""
    width = max(p.length for p in prefixes)
    index = torch.tensor(list(owners), dtype=torch.long)
    layers = []
    for layer in zip(*((kv[:2] for kv in p.cache) for p in prefixes), strict=True):
        keys = torch.cat([F.pad(k, (0, 0, width - k.shape[-2], 0)) for k, _ in layer])
        values = torch.cat([F.pad(v, (0, 0, width - v.shape[-2], 0)) for _, v in layer])
        index = index.to(keys.device)
        layers.append((keys.index_select(0, index), values.index_select(0, index)))
    mask = torch.zeros((len(prefixes), width), dtype=torch.long)
    for i, prefix in enumerate(prefixes):
        mask[i, width - prefix.length :] = 1
    return DynamicCache(ddp_cache_data=layers, config=config), mask[index.cpu()]


def concat_inputs(inputs: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Processor outputs of the same token length as one batch (pixel tensors joined on their
    first axis, which is how every processor lays out several images)."""
    return {key: torch.cat([item[key] for item in inputs]) for key in inputs[0].keys()}
