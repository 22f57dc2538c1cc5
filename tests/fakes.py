"""A scripted MLLM that "sees" known labels, with the failure modes the TagLLM method targets.
The method beats the baselines against it by construction: tests that use it prove plumbing,
not merit.

It recognises prompts by building every prompt the engine may send from the prompts module,
so rewording a template changes nothing here.
"""

from __future__ import annotations

import dataclasses

from tagllm.mllm.contract import NO_CONTEXT, CallContext, MLLMRequest, MLLMResponse, Mode, PromptResult
from tagllm.prompts import Prompts, build_styles
from tagllm.vocab import Category, Vocabulary
from tagllm.vocab.partitions import PARTITIONS, partition


@dataclasses.dataclass
class ScriptedMLLM:
    """Answers from `truth[image]`, the label set each image shows.

    - `weak`: labels it omits from multi-option answers listing more than `long_list` names;
    - `cooccur`: label -> label it wrongly adds to a multi-option answer when the first is present
      and the second is listed;
    - `confusions`: label -> trigger: a yes/no question about the label gets "yes" when the trigger
      is present, unless the question (with concept knowledge) says the label is not the trigger.
    """

    vocabulary: Vocabulary
    truth: dict[bytes, set[str]]
    weak: set[str] = dataclasses.field(default_factory=set)
    long_list: int = 20
    cooccur: dict[str, str] = dataclasses.field(default_factory=dict)
    confusions: dict[str, str] = dataclasses.field(default_factory=dict)
    requests: list[MLLMRequest] = dataclasses.field(default_factory=list)
    contexts: list[CallContext] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        categories = list(self.vocabulary.categories)
        lists = [categories] + [
            [self.vocabulary.category(n) for n in g.categories]
            for name in PARTITIONS
            for g in partition(self.vocabulary, name)
        ]
        self._listed: dict[str, list[str]] = {}
        self._open_ended: set[str] = set()
        # yes/no prompt -> (category asked, names the prompt says it is not)
        self._asked: dict[str, tuple[str, set[str]]] = {}
        for prompts in build_styles(self.vocabulary).styles.values():
            self._listed.update(
                {prompts.multi_option(members): [c.name for c in members] for members in lists}
            )
            self._open_ended.add(prompts.open_ended())
            for category in categories:
                self._asked[prompts.yes_no(category, self.vocabulary, False)] = (category.name, set())
                self._asked.setdefault(
                    prompts.yes_no(category, self.vocabulary, True), (category.name, set(category.similar))
                )

    @property
    def version(self) -> str:
        return "scripted/1"

    def _display(self, name: str) -> str:
        return self.vocabulary.category(name).display_name

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse:
        self.requests.append(request)
        self.contexts.append(context)
        seen = self.truth[request.image]
        results = []
        for i, prompt in enumerate(request.prompts):
            if request.mode is Mode.SCORE:
                results.append(PromptResult("", self._yes(prompt, seen), len(prompt.split()), 0))
                continue
            if prompt in self._listed:
                listed = self._listed[prompt]
                answer = [
                    n for n in listed if n in seen and not (n in self.weak and len(listed) > self.long_list)
                ]
                answer += [
                    b for a, b in self.cooccur.items() if a in seen and b in listed and b not in answer
                ]
                text = ", ".join(self._display(n) for n in answer) or "none"
                if request.allowed_names is not None:
                    allowed = request.allowed_names[i]
                    assert {self._display(n) for n in answer} <= set(allowed)
            elif prompt in self._open_ended:
                text = "I can see " + " and ".join(f"a {self._display(n)}" for n in sorted(seen))
            else:
                raise AssertionError(f"not a prompt the engine builds: {prompt!r}")
            results.append(PromptResult(text, 0.5, len(prompt.split()), len(text.split()) + 1))
        return MLLMResponse(tuple(results), compute_seconds=0.01 * len(results), model_version=self.version)

    def _yes(self, prompt: str, seen: set[str]) -> float:
        if prompt not in self._asked:
            raise AssertionError(f"cannot tell which category is asked: {prompt!r}")
        asked, excluded = self._asked[prompt]
        if asked in seen:
            return 0.9
        trigger = self.confusions.get(asked)
        if trigger in seen and trigger not in excluded:
            return 0.8
        return 0.1


def category_prompt(vocabulary: Vocabulary, category: Category, concept_knowledge: bool = True) -> str:
    """The yes/no prompt the engine sends about `category`."""
    return Prompts.for_vocabulary(vocabulary).yes_no(category, vocabulary, concept_knowledge)
