"""Restricting generated answers to a list of names.

An allowed answer is `name, name, ... <eos>` with names from the list, no name twice, or the
prompt's word for "nothing listed is present" (the paper's prompts say `NO`). The constraint
walks token tries of the names (one for the first name, one for the names after ", ", since
byte-level BPE folds the space into the next word) and masks
every other token. A walker state (`_State`: trie node, names used, finished) is immutable;
`BatchConstraint` keeps one per row and advances it by each new token.
"""

from __future__ import annotations

import dataclasses
import typing

import torch


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

    def __init__(self, tokenizer, names: list[str], eos_token_id: int, none_answer: str = "none") -> None:
        self.names = sorted(set(names))
        self.none_answer = none_answer
        self.eos = eos_token_id
        comma = tokenizer(",", add_special_tokens=False)["input_ids"]
        if len(comma) != 1:
            raise ValueError("the tokenizer must encode ',' as one token")
        self.comma = comma[0]
        first_names = self.names + ([none_answer] if none_answer and none_answer not in self.names else [])
        self.first = _build_trie(tokenizer, first_names, "")
        self.next = _build_trie(tokenizer, self.names, " ")

    def start(self) -> _State:
        return _State(self.first, frozenset(), False)

    def advance(self, state: _State, token: int) -> _State:
        """The walker's state after one more generated token."""
        if state.finished or token == self.eos:
            return _State(None, state.used, True)
        node = state.node
        if node is None:  # after a complete name: only ',' continues
            return (
                _State(self.next, state.used, False)
                if token == self.comma
                else _State(None, state.used, True)
            )
        child = node.children.get(token)
        if child is None:
            if token == self.comma and node.name is not None and node.name != self.none_answer:
                return _State(self.next, state.used | {node.name}, False)
            return _State(None, state.used, True)
        if child.name is not None and not child.children:
            if child.name == self.none_answer:
                return _State(None, state.used, True)
            return _State(None, state.used | {child.name}, False)
        return _State(child, state.used, False)

    def allowed(self, state: _State) -> list[int]:
        """Token ids that may come next."""
        if state.finished:
            return [self.eos]
        node = state.node
        if node is None:
            return [self.comma, self.eos] if len(state.used) < len(self.names) else [self.eos]
        if node.name == self.none_answer:
            return [self.eos]
        allowed = [tok for tok, child in node.children.items() if child.names_below - state.used]
        if node.name is not None and node.name not in state.used:
            allowed.append(self.eos)
            if set(self.names) - state.used - {node.name}:
                allowed.append(self.comma)
        return allowed or [self.eos]

    def walk(self, answer: list[int]) -> _State:
        """The state after a whole answer."""
        state = self.start()
        for token in answer:
            state = self.advance(state, token)
        return state

    def allowed_tokens(self, answer: list[int]) -> list[int]:
        """Token ids that may follow the answer so far."""
        return self.allowed(self.walk(answer))


@dataclasses.dataclass(frozen=True)
class _State:
    node: _Node | None  # None: between names, or finished
    used: frozenset[str]
    finished: bool


class BatchConstraint:
    """One constraint (or none) per row of a batch; usable as a HF logits processor.

    Each row's walker state advances by the newest token only, and the mask of all rows is
    written with one scatter, so a step costs the rows' few allowed tokens, not the vocabulary.
    """

    def __init__(self, constraints: list[AllowedNamesConstraint | None], answer_start: int) -> None:
        self.constraints = constraints
        self.answer_start = answer_start
        self._states: list[_State | None] = [c.start() if c else None for c in constraints]
        self._seen = 0  # answer tokens the states account for

    def advance(self, rows: list[int], tokens: list[int]) -> None:
        """Each of `rows` generated its token of `tokens`."""
        for row, token in zip(rows, tokens, strict=True):
            constraint = self.constraints[row]
            state = self._states[row]
            if constraint is not None and state is not None:
                self._states[row] = constraint.advance(state, token)

    def apply(self, scores: torch.FloatTensor, rows: list[int]) -> torch.FloatTensor:
        """Masks `scores`, whose i-th line belongs to batch row `rows[i]`, to the allowed tokens."""
        lines, tokens, free = [], [], []
        for line, row in enumerate(rows):
            constraint, state = self.constraints[row], self._states[row]
            if constraint is None or state is None:
                free.append(line)
                continue
            allowed = constraint.allowed(state)
            lines += [line] * len(allowed)
            tokens += allowed
        if not lines:
            return scores
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[torch.tensor(lines, dtype=torch.long), torch.tensor(tokens, dtype=torch.long)] = True
        if free:
            mask[free] = True
        return typing.cast(torch.FloatTensor, scores.masked_fill(~mask, torch.finfo(scores.dtype).min))

    def _sync(self, input_ids: torch.LongTensor) -> None:
        length = input_ids.shape[1] - self.answer_start
        if length == self._seen:
            return
        if length == self._seen + 1:
            self.advance(list(range(len(self.constraints))), input_ids[:, -1].tolist())
        else:  # not called step by step: walk the whole answer again
            answers = input_ids[:, self.answer_start :].tolist()
            self._states = [c.walk(a) if c else None for c, a in zip(self.constraints, answers, strict=True)]
        self._seen = length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """The HF logits-processor protocol: `input_ids` holds every row's tokens so far."""
        if all(c is None for c in self.constraints):
            return scores
        self._sync(input_ids)
        return self.apply(scores, list(range(len(self.constraints))))
