"""The partitions of a vocabulary that TagLLM's first stage can prompt with (the paper's ablation).

- `coop`: groups of categories that co-occur (the vocabulary's `groups`): the method's choice;
- `discp`: groups of categories that do not co-occur: the file's `partitions.discp` when it has
  one, else derived from `coop` by dealing each co-occurrence group's members out over all
  groups, so that no two members of one `coop` group share a `discp` group where avoidable;
- `randp`: a random partition with the same group sizes as `coop`, seeded by the category names
  and the group sizes, so that every request and replica sees the same one, and a new
  calibration or threshold (a new version of the same vocabulary) keeps it.
"""

from __future__ import annotations

import random

from tagllm.vocab.memo import PerVocabulary
from tagllm.vocab.model import Group, Vocabulary

PARTITIONS = ("coop", "discp", "randp")
DEFAULT_PARTITION = "coop"


def _dealt(vocabulary: Vocabulary) -> tuple[Group, ...]:
    count = len(vocabulary.groups)
    members: list[list[str]] = [[] for _ in range(count)]
    for index, name in enumerate(n for g in vocabulary.groups for n in g.categories):
        members[index % count].append(name)
    return tuple(Group(f"discp {i + 1}", tuple(m)) for i, m in enumerate(members) if m)


def _random(vocabulary: Vocabulary) -> tuple[Group, ...]:
    names = list(vocabulary.names)
    sizes = [len(group.categories) for group in vocabulary.groups]
    random.Random(f"{names}{sizes}").shuffle(names)
    groups, start = [], 0
    for i, group in enumerate(vocabulary.groups):
        groups.append(Group(f"randp {i + 1}", tuple(names[start : start + len(group.categories)])))
        start += len(group.categories)
    return tuple(groups)


def _discp(vocabulary: Vocabulary | None) -> tuple[Group, ...]:
    assert vocabulary is not None
    return vocabulary.partitions.get("discp") or _dealt(vocabulary)


def _randp(vocabulary: Vocabulary | None) -> tuple[Group, ...]:
    assert vocabulary is not None
    return vocabulary.partitions.get("randp") or _random(vocabulary)


_derived = {"discp": PerVocabulary(_discp), "randp": PerVocabulary(_randp)}


def partition(vocabulary: Vocabulary, name: str = DEFAULT_PARTITION) -> tuple[Group, ...]:
    """The groups of partition `name`; ValueError for an unknown one."""
    if name == "coop":
        return vocabulary.groups
    if name not in _derived:
        raise ValueError(f"unknown partition {name[:40]!r}; known: {', '.join(PARTITIONS)}")
    return _derived[name](vocabulary)
