"""Groups of co-occurring categories from measured co-occurrence.

Co-occurrence comes from label sets: human labels, or the answers of `multi_option` on a
sample of unlabelled images. Categories are clustered by average-linkage agglomeration on
the Jaccard similarity of their image sets, never letting a group grow past `max_size`.
Categories that co-occur with nothing are packed into groups of their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from tagllm.vocab.model import Group, Vocabulary


def cooccurrence(names: list[str], label_sets: Iterable[Iterable[str]]) -> tuple[list[int], list[list[int]]]:
    """Per-category image counts and the symmetric matrix of images with both categories."""
    index = {name: i for i, name in enumerate(names)}
    counts = [0] * len(names)
    matrix = [[0] * len(names) for _ in names]
    for labels in label_sets:
        present = sorted({index[n] for n in labels if n in index})
        for i in present:
            counts[i] += 1
        for i, j in itertools.combinations(present, 2):
            matrix[i][j] += 1
            matrix[j][i] += 1
    return counts, matrix


def cluster(names: list[str], counts: list[int], matrix: list[list[int]], max_size: int) -> list[list[str]]:
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    n = len(names)

    def similarity(i: int, j: int) -> float:
        union = counts[i] + counts[j] - matrix[i][j]
        return matrix[i][j] / union if union else 0.0

    sim = [[similarity(i, j) for j in range(n)] for i in range(n)]
    clusters: list[list[int]] = [[i] for i in range(n)]
    while True:
        best, pair = 0.0, None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            if len(clusters[a]) + len(clusters[b]) > max_size:
                continue
            linkage = sum(sim[i][j] for i in clusters[a] for j in clusters[b]) / (
                len(clusters[a]) * len(clusters[b])
            )
            if linkage > best:
                best, pair = linkage, (a, b)
        if pair is None:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    # Leftover singletons (no co-occurrence) share groups, most frequent first.
    merged = [c for c in clusters if len(c) > 1]
    singles = sorted((c[0] for c in clusters if len(c) == 1), key=lambda i: (-counts[i], i))
    merged += [singles[k : k + max_size] for k in range(0, len(singles), max_size)]
    groups = [sorted(c, key=lambda i: (-counts[i], i)) for c in merged]
    groups.sort(key=lambda g: (-sum(counts[i] for i in g), g[0]))
    return [[names[i] for i in g] for g in groups]


def groups_from_label_sets(
    vocabulary: Vocabulary, label_sets: Iterable[Iterable[str]], max_size: int = 10
) -> tuple[Group, ...]:
    names = list(vocabulary.names)
    counts, matrix = cooccurrence(names, label_sets)
    clustered = cluster(names, counts, matrix, max_size)
    used: set[str] = set()
    groups: list[Group] = []
    for members in clustered:
        name = members[0]
        if name in used:  # keep group names unique
            name = f"{name} {len(groups) + 1}"
        used.add(name)
        groups.append(Group(name, tuple(members)))
    return tuple(groups)
