"""The TagLLM method and the baselines it is compared against (DESIGN.md 4.2)."""

from __future__ import annotations

from tagllm.mllm.contract import MLLM, MLLMRequest, Mode
from tagllm.parsing import AnswerParser
from tagllm.strategies.base import (
    Label,
    Provenance,
    Run,
    StrategyName,
    StrategyOptions,
    TagResult,
    Verdict,
)
from tagllm.vocab.model import Category, Vocabulary

_TOKENS_PER_NAME = 6


def _answer_budget(names: int, options: StrategyOptions) -> int:
    return min(options.max_answer_tokens, _TOKENS_PER_NAME * names + 4)


def _verify(run: Run, image: bytes, categories: list[Category], stage: str, concept_knowledge: bool):
    """One yes/no prompt per category in one request; returns P(yes) per category name."""
    if not categories:
        return {}
    prompts = tuple(run.prompts.yes_no(c, run.vocabulary, concept_knowledge) for c in categories)
    response = run.ask(stage, MLLMRequest(image=image, prompts=prompts, mode=Mode.SCORE, max_new_tokens=1))
    return {c.name: r.yes_probability for c, r in zip(categories, response.results, strict=True)}


def _multi_option(run: Run, image: bytes, groups: list[tuple[str, list[Category]]], stage: str):
    """One constrained multi-option prompt per group in one request; returns (name -> group, dropped)."""
    parser = AnswerParser.for_vocabulary(run.vocabulary)
    request = MLLMRequest(
        image=image,
        prompts=tuple(run.prompts.multi_option(members) for _, members in groups),
        mode=Mode.GENERATE,
        max_new_tokens=max(_answer_budget(len(members), run.options) for _, members in groups),
        allowed_names=tuple(tuple(c.display_name for c in members) for _, members in groups),
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


class MultiOption:
    """One prompt listing the whole vocabulary; the answer's names are the labels."""

    name = StrategyName.MULTI_OPTION

    def tag(self, image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM) -> TagResult:
        run = Run(mllm, vocabulary, options)
        proposed, dropped = _multi_option(run, image, [("", list(vocabulary.categories))], "multi_option")
        labels = [Label(name, 1.0, Provenance(proposed=True)) for name in proposed]
        return run.result(labels, candidates=list(proposed), dropped=dropped)


class OpenEnded:
    """One free-form prompt; whatever the answer names that the vocabulary knows is a label."""

    name = StrategyName.OPEN_ENDED

    def tag(self, image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM) -> TagResult:
        run = Run(mllm, vocabulary, options)
        request = MLLMRequest(
            image=image, prompts=(run.prompts.open_ended(),), max_new_tokens=options.max_answer_tokens
        )
        answer = run.ask("open_ended", request).results[0].text
        parsed = AnswerParser.for_vocabulary(vocabulary).parse(answer, search_phrases=True)
        labels = [Label(name, 1.0, Provenance(proposed=True)) for name in parsed.labels]
        return run.result(labels, candidates=parsed.labels, dropped=len(parsed.dropped))


class Binary:
    """One yes/no prompt per category (exhaustive): the expensive baseline."""

    name = StrategyName.BINARY

    def tag(self, image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM) -> TagResult:
        run = Run(mllm, vocabulary, options)
        scores = _verify(run, image, list(vocabulary.categories), "binary", options.concept_knowledge)
        labels = []
        for category in vocabulary.categories:
            score = scores[category.name]
            if score >= category.threshold:
                provenance = Provenance(verdict=Verdict.CONFIRMED, verification_score=score)
                labels.append(Label(category.name, score, provenance))
        return run.result(labels, verified=len(scores), confirmed=len(labels))


class TagLLM:
    """Grouped multi-option candidates, then concept-aligned yes/no verification of each."""

    name = StrategyName.TAGLLM

    def tag(self, image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM) -> TagResult:
        run = Run(mllm, vocabulary, options)
        if options.grouping:
            groups = [(g.name, [vocabulary.category(n) for n in g.categories]) for g in vocabulary.groups]
        else:
            groups = [("", list(vocabulary.categories))]
        proposed, dropped = _multi_option(run, image, groups, "candidates")
        candidates = [c for c in vocabulary.categories if c.name in proposed]
        scores = _verify(run, image, candidates, "verification", options.concept_knowledge)
        labels = []
        for category in candidates:
            score = scores[category.name]
            confirmed = score >= category.threshold
            if confirmed:
                provenance = Provenance(
                    group=proposed[category.name],
                    proposed=True,
                    verdict=Verdict.CONFIRMED,
                    verification_score=score,
                )
                labels.append(Label(category.name, score, provenance))
        return run.result(
            labels,
            candidates=[c.name for c in candidates],
            dropped=dropped,
            verified=len(candidates),
            confirmed=len(labels),
        )


STRATEGIES = {s.name: s for s in (OpenEnded(), MultiOption(), Binary(), TagLLM())}


def tag_image(image: bytes, vocabulary: Vocabulary, options: StrategyOptions, mllm: MLLM) -> TagResult:
    """Tag one encoded image with the strategy the options name."""
    return STRATEGIES[options.strategy].tag(image, vocabulary, options, mllm)
