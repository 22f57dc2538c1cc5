"""The TagLLM method and the baselines it is compared against."""

from __future__ import annotations

from tagllm.mllm.contract import MLLMRequest, Mode
from tagllm.parsing import AnswerParser
from tagllm.strategies.base import Label, Provenance, Run, TagResult, Verdict, Verification, register
from tagllm.vocab.model import Category
from tagllm.vocab.partitions import partition

_TOKENS_PER_NAME = 6


def _answer_budget(names: int, run: Run) -> int:
    return min(run.options.max_answer_tokens, _TOKENS_PER_NAME * names + 4)


def _verify(run: Run, image: bytes, categories: list[Category], stage: str) -> tuple[Verification, ...]:
    """One yes/no prompt per category in one request; each answer's P(yes), its calibrated score
    and whether that reaches the category's threshold."""
    if not categories:
        return ()
    prompts = tuple(run.prompts.yes_no(c, run.vocabulary, run.concept_knowledge) for c in categories)
    response = run.ask(stage, MLLMRequest(image=image, prompts=prompts, mode=Mode.SCORE, max_new_tokens=1))
    verifications = []
    for c, r in zip(categories, response.results, strict=True):
        score = c.score(r.yes_probability)
        verifications.append(Verification(c.name, r.yes_probability, score, score >= c.threshold))
    return tuple(verifications)


def _confirmed(verifications: tuple[Verification, ...], groups: dict[str, str]) -> list[Label]:
    """Labels of the candidates whose score reached their class threshold."""
    return [
        Label(
            v.name,
            v.score,
            Provenance(
                group=groups.get(v.name, ""),
                proposed=v.name in groups,
                verdict=Verdict.CONFIRMED,
                verification_score=v.yes_probability,
            ),
        )
        for v in verifications
        if v.confirmed
    ]


def _multi_option(
    run: Run, image: bytes, groups: list[tuple[str, list[Category]]], stage: str
) -> tuple[dict[str, str], int]:
    """One constrained multi-option prompt per group in one request; returns (name -> group, dropped)."""
    parser = AnswerParser.for_vocabulary(run.vocabulary)
    request = MLLMRequest(
        image=image,
        prompts=tuple(run.prompts.multi_option(members) for _, members in groups),
        mode=Mode.GENERATE,
        max_new_tokens=max(_answer_budget(len(members), run) for _, members in groups),
        allowed_names=tuple(tuple(c.display_name for c in members) for _, members in groups),
        none_answer=run.prompts.none_answer,
    )
    response = run.ask(stage, request)
    proposed: dict[str, str] = {}
    dropped = 0
    for (group, members), result in zip(groups, response.results, strict=True):
        parsed = parser.parse(result.text, allowed={c.name for c in members})
        dropped += len(parsed.dropped)
        for name in parsed.labels:
            proposed.setdefault(name, group)
    return proposed, dropped


@register
class OpenEnded:
    """One free-form prompt; whatever the answer names that the vocabulary knows is a label."""

    name = "open_ended"
    stages = ("open_ended",)
    concept_knowledge = False

    def tag(self, run: Run, image: bytes) -> TagResult:
        request = MLLMRequest(
            image=image, prompts=(run.prompts.open_ended(),), max_new_tokens=run.options.max_answer_tokens
        )
        answer = run.ask("open_ended", request).results[0].text
        parsed = AnswerParser.for_vocabulary(run.vocabulary).parse(answer, search_phrases=True)
        labels = [Label(name, 1.0, Provenance(proposed=True)) for name in parsed.labels]
        return run.result(labels, candidates=parsed.labels, dropped=len(parsed.dropped))


@register
class MultiOption:
    """One prompt listing the whole vocabulary; the answer's names are the labels."""

    name = "multi_option"
    stages = ("multi_option",)
    concept_knowledge = False

    def tag(self, run: Run, image: bytes) -> TagResult:
        everything = [("", list(run.vocabulary.categories))]
        proposed, dropped = _multi_option(run, image, everything, "multi_option")
        labels = [Label(name, 1.0, Provenance(proposed=True)) for name in proposed]
        return run.result(labels, candidates=list(proposed), dropped=dropped)


@register
class Binary:
    """One yes/no prompt per category (exhaustive): the expensive baseline, the paper's BP (the
    bare name unless concept knowledge is asked for)."""

    name = "binary"
    stages = ("binary",)
    concept_knowledge = False

    def tag(self, run: Run, image: bytes) -> TagResult:
        categories = list(run.vocabulary.categories)
        verifications = _verify(run, image, categories, "binary")
        return run.result(_confirmed(verifications, groups={}), verifications=verifications)


@register
class TagLLM:
    """Grouped multi-option candidates, then concept-aligned yes/no verification of each."""

    name = "tagllm"
    stages = ("candidates", "verification")
    concept_knowledge = True

    def tag(self, run: Run, image: bytes) -> TagResult:
        vocabulary = run.vocabulary
        if run.options.grouping:
            groups = [
                (g.name, [vocabulary.category(n) for n in g.categories])
                for g in partition(vocabulary, run.options.partition)
            ]
        else:
            groups = [("", list(vocabulary.categories))]
        proposed, dropped = _multi_option(run, image, groups, "candidates")
        candidates = [c for c in vocabulary.categories if c.name in proposed]
        verifications = _verify(run, image, candidates, "verification")
        return run.result(
            _confirmed(verifications, groups=proposed),
            candidates=[c.name for c in candidates],
            dropped=dropped,
            verifications=verifications,
        )
