"""A scripted MLLM that "sees" known labels, with the failure modes the TagLLM method targets."""

from __future__ import annotations

import dataclasses
import re

from tagllm.mllm.contract import MLLMRequest, MLLMResponse, Mode, PromptResult
from tagllm.vocab import Vocabulary

_OPTIONS = re.compile(r"Objects: (.*)$", re.S)


@dataclasses.dataclass
class ScriptedMLLM:
    """Answers from `truth[image]`, the label set each image shows.

    - `weak`: labels it omits from multi-option answers listing more than `long_list` names;
    - `cooccur`: label -> label it wrongly adds to a multi-option answer when the first is present
      and the second is listed;
    - `confusions`: label -> trigger: a yes/no question about the label gets "yes" when the trigger
      is present, unless the prompt says the concept does not mean the trigger.
    """

    vocabulary: Vocabulary
    truth: dict[bytes, set[str]]
    weak: set[str] = dataclasses.field(default_factory=set)
    long_list: int = 20
    cooccur: dict[str, str] = dataclasses.field(default_factory=dict)
    confusions: dict[str, str] = dataclasses.field(default_factory=dict)
    requests: list[MLLMRequest] = dataclasses.field(default_factory=list)

    @property
    def version(self) -> str:
        return "scripted/1"

    def _display(self, name: str) -> str:
        return self.vocabulary.category(name).display_name

    def _by_display(self, display: str) -> str:
        return next(c.name for c in self.vocabulary.categories if c.display_name == display)

    def run(self, request: MLLMRequest) -> MLLMResponse:
        self.requests.append(request)
        seen = self.truth[request.image]
        results = []
        for i, prompt in enumerate(request.prompts):
            if request.mode is Mode.SCORE:
                results.append(PromptResult("", self._yes(prompt, seen), len(prompt.split()), 0))
                continue
            match = _OPTIONS.search(prompt)
            if match:
                listed = [self._by_display(d.strip()) for d in match.group(1).split(",")]
                answer = [
                    n for n in listed if n in seen and not (n in self.weak and len(listed) > self.long_list)
                ]
                answer += [
                    b for a, b in self.cooccur.items() if a in seen and b in listed and b not in answer
                ]
                text = ", ".join(self._display(n) for n in answer) or "none"
                if request.allowed_names is not None:
                    assert set(answer) <= {self._by_display(d) for d in request.allowed_names[i]}
            else:  # open-ended
                text = "I can see " + " and ".join(f"a {self._display(n)}" for n in sorted(seen))
            results.append(PromptResult(text, 0.5, len(prompt.split()), len(text.split()) + 1))
        return MLLMResponse(tuple(results), compute_seconds=0.01 * len(results), model_version=self.version)

    def _asked(self, prompt: str) -> str:
        for category in self.vocabulary.categories:
            if f"Is there a {category.display_name} in" in prompt:
                return category.name
            concept = ", ".join(category.descriptions)
            if category.descriptions and f'Is there "{concept}"' in prompt:
                return category.name
        raise AssertionError(f"cannot tell which category is asked: {prompt!r}")

    def _yes(self, prompt: str, seen: set[str]) -> float:
        asked = self._asked(prompt)
        if asked in seen:
            return 0.9
        trigger = self.confusions.get(asked)
        if trigger in seen and "does not mean" not in prompt:
            return 0.8
        if trigger in seen and self._display(trigger) not in prompt.split("does not mean", 1)[1]:
            return 0.8
        return 0.1
