"""Restricting generated answers to a list of names.

An allowed answer is `name, name, ... <eos>` with names from the list, no name twice, or the
single word `none`. The constraint walks token tries of the names (one for the first name, one
for the names after ", ", since byte-level BPE folds the space into the next word) and masks
every other token. It is stateless: each step re-reads the answer so far, which stays short.
"""

from __future__ import annotations

import dataclasses

import torch

NONE_ANSWER = "none"


@dataclasses.dataclass
class _Node:
    children: dict[int, _Node] = dataclasses.field(default_factory=dict)
    # Name completed at this node, if any.
    name: str | None = None
    # All names whose token path passes through this node.
    names_below: set[str] = dataclasses.field(default_factory=set)


def _build_trie(tokenizer, names: list[str], prefix: str) -> _Node:
    root = _Node()
    for name in names:
        ids = tokenizer(prefix + name, add_special_tokens=False)["input_ids"]
        node = root
        node.names_below.add(name)
        for token in ids:
            node = node.children.setdefault(token, _Node())
            node.names_below.add(name)
        node.name = name
    return root


class AllowedNamesConstraint:
    """Masks logits so that an answer can only list `names` (a HF logits processor).

    `answer_start` is the column of the first generated token in `input_ids`; columns before it
    are prompt. Rows of one batch may use different constraints through `BatchConstraint`.
    """

    def __init__(self, tokenizer, names: list[str], eos_token_id: int, allow_none: bool = True) -> None:
        self.names = sorted(set(names))
        self.eos = eos_token_id
        comma = tokenizer(",", add_special_tokens=False)["input_ids"]
        if len(comma) != 1:
            raise ValueError("the tokenizer must encode ',' as one token")
        self.comma = comma[0]
        first_names = self.names + ([NONE_ANSWER] if allow_none else [])
        self.first = _build_trie(tokenizer, first_names, "")
        self.next = _build_trie(tokenizer, self.names, " ")

    def allowed_tokens(self, answer: list[int]) -> list[int]:
        """Token ids that may follow the answer so far."""
        used: set[str] = set()
        node = self.first
        for token in answer:
            if token == self.eos:
                return [self.eos]
            if node is None:  # after a complete name: only ',' continues
                if token != self.comma:
                    return [self.eos]
                node = self.next
                continue
            child = node.children.get(token)
            if child is None:
                if token == self.comma and node.name is not None and node.name != NONE_ANSWER:
                    used.add(node.name)
                    node = self.next
                    continue
                return [self.eos]
            node = child
            if node.name is not None and not node.children:
                used.add(node.name)
                if node.name == NONE_ANSWER:
                    return [self.eos]
                node = None
        if node is None:
            return [self.comma, self.eos] if len(used) < len(self.names) else [self.eos]
        allowed = [tok for tok, child in node.children.items() if child.names_below - used]
        if node.name == NONE_ANSWER:
            return [self.eos]
        if node.name is not None and node.name not in used:
            remaining = set(self.names) - used - {node.name}
            allowed.append(self.eos)
            if remaining:
                allowed.append(self.comma)
        return allowed or [self.eos]


class BatchConstraint:
    """Applies one constraint (or none) per row of a batch; usable as a HF logits processor."""

    def __init__(self, constraints: list[AllowedNamesConstraint | None], answer_start: int) -> None:
        self.constraints = constraints
        self.answer_start = answer_start

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if all(c is None for c in self.constraints):
            return scores
        mask = torch.zeros_like(scores, dtype=torch.bool)
        for row, constraint in enumerate(self.constraints):
            if constraint is None:
                mask[row] = True
                continue
            answer = input_ids[row, self.answer_start :].tolist()
            mask[row, constraint.allowed_tokens(answer)] = True
        return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
