"""A vocabulary cut down to the categories a dataset has enough positives of.

The paper evaluates Objects365 on the 251 classes with more than 100 positive images in a
~100k-image sample; `subset` makes the same cut from any label file. Groups, partitions and
similar categories keep only what remains.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

from tagllm.vocab.model import Group, Vocabulary
from tagllm.vocab.validation import revise


def positives(label_sets: Iterable[Iterable[str]]) -> Counter[str]:
    """Images per category."""
    counts: Counter[str] = Counter()
    for labels in label_sets:
        counts.update(set(labels))
    return counts


def _kept(groups: tuple[Group, ...], keep: set[str]) -> list[Group]:
    kept = [Group(g.name, tuple(n for n in g.categories if n in keep)) for g in groups]
    return [g for g in kept if g.categories]


def subset(vocabulary: Vocabulary, counts: Counter[str], min_positives: int, name: str = "") -> Vocabulary:
    """The categories with more than `min_positives` positive images; ValueError if none are left."""
    keep = {c.name for c in vocabulary.categories if counts[c.name] > min_positives}
    if not keep:
        raise ValueError(f"no category of {vocabulary.name} has more than {min_positives} positives")
    categories = [
        dataclasses.replace(
            c, similar=tuple(s for s in c.similar if s in keep), parent=c.parent if c.parent in keep else None
        )
        for c in vocabulary.categories
        if c.name in keep
    ]
    return revise(
        vocabulary,
        name=name or f"{vocabulary.name}-{len(keep)}",
        description=f"{vocabulary.description} ({len(keep)} categories, each over {min_positives} positives)",
        categories=categories,
        groups=_kept(vocabulary.groups, keep),
        partitions={k: tuple(_kept(v, keep)) for k, v in vocabulary.partitions.items()},
        provenance={
            **vocabulary.provenance,
            "subset": f"more than {min_positives} positives in a label file",
        },
    )
