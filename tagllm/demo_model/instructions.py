"""Instruction data for the demo model: every prompt the engine sends, answered from a scene's
true labels.

The prompts come from the prompts module, in every style, so the model learns exactly the
questions it will be asked; only the answers know the scene's truth. Each training scene gives
several rows (`InstructionMaker.examples`):

- yes/no questions in pairs: one about a class that is drawn, one about a class that is not
  (half the time one it is easily taken for). Within a pair neither the image alone nor the
  name alone tells the answer; only the two together do, so the model must bind the name it
  is asked to what it sees. Only the decision token is learnt (`decision_only`): the end of
  the answer is trivial and would dilute the signal.
- list answers: a multi-option prompt over a random subset of the vocabulary (1 to all
  names, in vocabulary order or shuffled), over one group of a partition the engine serves
  (co-occurrence groups, DiscP or RandP, each partition equally often, so none of their
  lists is trained more than another's), or over the whole vocabulary, or the open-ended
  prompt. Random subsets make the answer depend on which names were listed. Half of the
  served and random lists are drawn to list something the scene shows (`SHOWN_LIST_SHARE`).

Training asks list questions alone first (`DemoRecipe.list_steps`): a yes/no pair carries no
signal until the language model reads the image tokens at all, and list answers teach that
reading fast; the pairs then bind the name to it.
"""

from __future__ import annotations

import dataclasses
import random

from tagllm.prompts import build_styles
from tagllm.vocab import Category, Vocabulary
from tagllm.vocab.partitions import PARTITIONS, partition

# How a list row of a scene is drawn.
LIST_KIND_WEIGHTS = {
    "multi_option_subset": 3,
    "multi_option_served": 3,
    "multi_option_all": 1,
    "open_ended": 1,
}
YES_NO_PAIRS = 2
# The share of served and random lists drawn to list something the scene shows. Left to
# chance, three served lists in four answer "NO" (a scene shows one or two themes of five),
# and the model learnt to answer "NO" to every grouped list, with P(NO) 0.7 to 0.9 even where
# the group's objects were drawn; the candidates stage needs recall first, and verification
# takes the false candidates out.
SHOWN_LIST_SHARE = 0.7
# List rows beside the pairs: as many list rows as pairs keep the lists from being unlearnt
# (with one list row to four yes/no rows, grouped lists came out empty).
LIST_ROWS = 2


@dataclasses.dataclass(frozen=True)
class Example:
    kind: str
    prompt: str
    answer: str
    # Learn only the first answer token (yes/no), not the rest.
    decision_only: bool = False


class InstructionMaker:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.styles = list(build_styles(vocabulary).styles.values())
        self.everything = list(vocabulary.categories)
        self.served = {
            name: [[vocabulary.category(n) for n in g.categories] for g in partition(vocabulary, name)]
            for name in PARTITIONS
        }

    def examples(
        self, labels: tuple[str, ...], rng: random.Random, pairs: int = YES_NO_PAIRS, lists: int = LIST_ROWS
    ) -> list[Example]:
        """The rows one scene trains: `pairs` yes/no pairs, then `lists` list answers."""
        rows = []
        for _ in range(pairs):
            rows.extend(self.yes_no_pair(labels, rng))
        rows.extend(self.list_answer(labels, rng) for _ in range(lists))
        return rows

    def yes_no_pair(self, labels: tuple[str, ...], rng: random.Random) -> list[Example]:
        present = set(labels)
        prompts = rng.choice(self.styles)
        concepts = rng.random() < 0.5
        kind = "yes_no_concepts" if concepts else "yes_no_bare"
        asked = [self._present(present, rng), self._absent(present, rng)]
        return [
            Example(
                kind,
                prompts.yes_no(c, self.vocabulary, concept_knowledge=concepts),
                "yes" if c.name in present else "no",
                decision_only=True,
            )
            for c in asked
        ]

    def list_answer(self, labels: tuple[str, ...], rng: random.Random) -> Example:
        kind = rng.choices(list(LIST_KIND_WEIGHTS), weights=list(LIST_KIND_WEIGHTS.values()))[0]
        prompts = rng.choice(self.styles)
        present = set(labels)
        if kind == "open_ended":
            names = [c.display_name for c in self.everything if c.name in present]
            return Example(kind, prompts.open_ended(), ", ".join(names))
        if kind == "multi_option_served":
            groups = self.served[rng.choice(PARTITIONS)]
            if present and rng.random() < SHOWN_LIST_SHARE:
                groups = [g for g in groups if any(c.name in present for c in g)]
            members = rng.choice(groups)
        elif kind == "multi_option_all":
            members = self.everything
        else:
            members = self._subset(rng, present if rng.random() < SHOWN_LIST_SHARE else set())
        listed = [c.display_name for c in members if c.name in present]
        return Example(kind, prompts.multi_option(members), ", ".join(listed) or prompts.none_answer)

    def _subset(self, rng: random.Random, shown: set[str]) -> list[Category]:
        """A random subset of the vocabulary; it lists one of `shown` (if any is given)."""
        members = rng.sample(self.everything, rng.randint(1, len(self.everything)))
        if shown and not any(c.name in shown for c in members):
            members[rng.randrange(len(members))] = self.vocabulary.category(rng.choice(sorted(shown)))
        if rng.random() < 0.5:  # served lists keep the vocabulary's order
            order = {c.name: i for i, c in enumerate(self.everything)}
            members.sort(key=lambda c: order[c.name])
        return members

    def _present(self, present: set[str], rng: random.Random) -> Category:
        if not present:
            return self._absent(present, rng)
        return self.vocabulary.category(rng.choice(sorted(present)))

    def _absent(self, present: set[str], rng: random.Random) -> Category:
        """A class not drawn; half the time one that a drawn class is easily taken for."""
        absent = [c for c in self.everything if c.name not in present]
        taken_for = {s for name in present for s in self.vocabulary.category(name).similar}
        look_alikes = [c for c in absent if c.name in taken_for or set(c.similar) & present]
        pool = look_alikes if look_alikes and rng.random() < 0.5 else absent
        return rng.choice(pool)

    def corpus(self) -> list[str]:
        """Text for the tokenizer: every prompt once per style, and the answer words."""
        lines = []
        for prompts in self.styles:
            lines.append(prompts.open_ended())
            for members in [
                *([self.vocabulary.category(n) for n in g.categories] for g in self.vocabulary.groups),
                self.everything,
            ]:
                lines.append(prompts.multi_option(members))
            for category in self.everything:
                lines.append(prompts.yes_no(category, self.vocabulary, False))
                lines.append(prompts.yes_no(category, self.vocabulary, True))
            lines.append(prompts.none_answer)
        lines.append(", ".join(c.display_name for c in self.everything))
        return lines + ["yes", "no", "yes no Yes No"] * 20
