"""Instruction data for the demo model: every prompt the engine sends, answered from a scene's
true labels.

The prompts come from the prompts module, for every style and every list the strategies send
(co-occurrence groups, the other partitions, the whole vocabulary), so the model learns exactly
the questions it will be asked; only the answers know the scene's truth.
"""

from __future__ import annotations

import dataclasses
import random

from tagllm.prompts import build_styles
from tagllm.vocab import Category, Vocabulary
from tagllm.vocab.partitions import PARTITIONS, partition

# How often each kind of question is drawn.
KIND_WEIGHTS = {
    "multi_option_group": 3,
    "multi_option_partition": 1,
    "multi_option_all": 1,
    "yes_no_concepts": 2,
    "yes_no_bare": 2,
    "open_ended": 1,
}


@dataclasses.dataclass(frozen=True)
class Example:
    kind: str
    prompt: str
    answer: str


class InstructionMaker:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.styles = list(build_styles(vocabulary).styles.values())
        self.groups = [[vocabulary.category(n) for n in g.categories] for g in vocabulary.groups]
        self.other_partitions = [
            [vocabulary.category(n) for n in g.categories]
            for name in PARTITIONS
            if name != "coop"
            for g in partition(vocabulary, name)
        ]
        self.everything = list(vocabulary.categories)

    def example(self, labels: tuple[str, ...], rng: random.Random) -> Example:
        kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        prompts = rng.choice(self.styles)
        present = set(labels)
        if kind.startswith("multi_option"):
            members = {
                "multi_option_group": lambda: rng.choice(self.groups),
                "multi_option_partition": lambda: rng.choice(self.other_partitions),
                "multi_option_all": lambda: self.everything,
            }[kind]()
            listed = [c.display_name for c in members if c.name in present]
            return Example(kind, prompts.multi_option(members), ", ".join(listed) or prompts.none_answer)
        if kind.startswith("yes_no"):
            category = self._asked(present, rng)
            prompt = prompts.yes_no(category, self.vocabulary, concept_knowledge=kind == "yes_no_concepts")
            return Example(kind, prompt, "yes" if category.name in present else "no")
        names = [c.display_name for c in self.everything if c.name in present]
        return Example(kind, prompts.open_ended(), ", ".join(names))

    def _asked(self, present: set[str], rng: random.Random) -> Category:
        """Half the questions about something present; the others often about a look-alike."""
        if present and rng.random() < 0.5:
            return self.vocabulary.category(rng.choice(sorted(present)))
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
            for members in [*self.groups, *self.other_partitions, self.everything]:
                lines.append(prompts.multi_option(members))
            for category in self.everything:
                lines.append(prompts.yes_no(category, self.vocabulary, False))
                lines.append(prompts.yes_no(category, self.vocabulary, True))
            lines.append(prompts.none_answer)
        lines.append(", ".join(c.display_name for c in self.everything))
        return lines + ["yes", "no", "yes no Yes No"] * 20
