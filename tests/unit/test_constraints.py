import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoProcessor

from tagllm.mllm.constraints import AllowedNamesConstraint
from tagllm.mllm.processors import register_processors
from tagllm.parsing import AnswerParser
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")
PARSER = AnswerParser(COCO)


@pytest.fixture(scope="module")
def tokenizer(qwen_dir):
    register_processors()
    return AutoProcessor.from_pretrained(qwen_dir).tokenizer


def walk(constraint, rng, limit=200):
    answer = []
    for _ in range(limit):
        allowed = constraint.allowed_tokens(answer)
        token = rng.choice(allowed)
        answer.append(token)
        if token == constraint.eos:
            return answer
    raise AssertionError("answer never ended")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(list(COCO.names)), min_size=1, max_size=12, unique=True),
    st.integers(0, 10**6),
    st.sampled_from(["NO", "none"]),
)
def test_every_allowed_walk_is_a_valid_answer(tokenizer, names, seed, none_answer):
    constraint = AllowedNamesConstraint(tokenizer, names, tokenizer.eos_token_id, none_answer)
    answer = walk(constraint, random.Random(seed))
    text = tokenizer.decode(answer, skip_special_tokens=True)
    parsed = PARSER.parse(text, allowed=set(names))
    assert parsed.dropped == (), text
    if text.strip() == none_answer:
        assert parsed.said_none
    else:
        pieces = [p.strip() for p in text.split(",")]
        assert len(pieces) == len(set(pieces)), "a name was repeated"
        assert set(pieces) <= set(names)


def test_all_names_listed_then_only_end(tokenizer):
    names = ["car", "cat", "carrot"]
    constraint = AllowedNamesConstraint(tokenizer, names, tokenizer.eos_token_id, none_answer="")
    ids = tokenizer("car, carrot, cat", add_special_tokens=False)["input_ids"]
    for i in range(len(ids)):
        assert ids[i] in constraint.allowed_tokens(ids[:i])
    assert constraint.allowed_tokens(ids) == [tokenizer.eos_token_id]
    assert tokenizer("none", add_special_tokens=False)["input_ids"][0] not in constraint.allowed_tokens([])


def test_a_name_cannot_repeat(tokenizer):
    constraint = AllowedNamesConstraint(tokenizer, ["dog", "cat"], tokenizer.eos_token_id)
    ids = tokenizer("dog,", add_special_tokens=False)["input_ids"]
    dog_again = tokenizer(" dog", add_special_tokens=False)["input_ids"][0]
    assert dog_again not in constraint.allowed_tokens(ids)


def test_batch_constraint_steps_agree_with_walking_from_scratch(tokenizer):
    import torch

    from tagllm.mllm.constraints import BatchConstraint

    eos = tokenizer.eos_token_id
    constraints = [
        AllowedNamesConstraint(tokenizer, ["car", "carrot", "cat"], eos),
        None,
        AllowedNamesConstraint(tokenizer, ["dog"], eos),
    ]
    answers = [
        tokenizer("carrot, car", add_special_tokens=False)["input_ids"],
        [5, 6, 7],
        tokenizer("dog", add_special_tokens=False)["input_ids"],
    ]
    width = max(len(a) for a in answers)
    padded = torch.tensor([a + [eos] * (width - len(a)) for a in answers])
    stepwise = BatchConstraint(constraints, answer_start=0)
    for step in range(width + 1):
        scores = stepwise(padded[:, :step], torch.zeros(3, len(tokenizer)))
        jumped = BatchConstraint(constraints, answer_start=0)(
            padded[:, :step], torch.zeros(3, len(tokenizer))
        )
        assert torch.equal(scores, jumped)
        for row, constraint in enumerate(constraints):
            allowed = set((scores[row] == 0).nonzero().flatten().tolist())
            if constraint is None:
                assert len(allowed) == len(tokenizer)
            else:
                assert allowed == set(constraint.allowed_tokens(padded[row, :step].tolist()))
