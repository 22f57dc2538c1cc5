"""Several requests answered together by one model: each gets what it gets alone."""

import io

import numpy as np
import pytest
from PIL import Image

from tagllm.mllm.contract import ErrorKind, MLLMError, MLLMRequest, MLLMResponse, Mode
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.prompts import Prompts
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")
PROMPTS = Prompts.for_vocabulary(COCO)
GROUPS = [[COCO.category(n) for n in g.categories] for g in COCO.groups[:3]]


def noise(seed: int, width: int = 96, height: int = 64) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def stage1(image: bytes, max_new_tokens: int = 12) -> MLLMRequest:
    return MLLMRequest(
        image,
        tuple(PROMPTS.multi_option(g) for g in GROUPS),
        Mode.GENERATE,
        max_new_tokens=max_new_tokens,
        allowed_names=tuple(tuple(c.display_name for c in g) for g in GROUPS),
    )


def stage2(image: bytes, count: int = 4) -> MLLMRequest:
    return MLLMRequest(image, tuple(PROMPTS.yes_no(c, COCO) for c in COCO.categories[:count]), Mode.SCORE)


def mixed_batch() -> list[MLLMRequest]:
    """Generate and score, constrained and free, different limits, image sizes and prompt counts,
    and one image asked about twice."""
    return [
        stage1(noise(1)),
        stage2(noise(2), 5),
        MLLMRequest(noise(3), ("Describe the image.",), Mode.GENERATE, max_new_tokens=6),
        stage2(noise(1), 3),
        stage1(noise(4, 80, 120), max_new_tokens=20),
        stage2(noise(5, 120, 80), 2),
    ]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "llava"])
def model_dir(request, tiny_model_dirs):
    return tiny_model_dirs[request.param]


def assert_same(a: MLLMResponse, b: MLLMResponse) -> None:
    assert len(a.results) == len(b.results)
    for x, y in zip(a.results, b.results, strict=True):
        assert x.text == y.text
        assert x.yes_probability == pytest.approx(y.yes_probability, abs=1e-4)
        assert (x.prompt_tokens, x.generated_tokens) == (y.prompt_tokens, y.generated_tokens)


def test_a_batch_answers_each_request_as_it_is_answered_alone(model_dir):
    batched = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    alone = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    requests = mixed_batch()
    outcomes = batched.run_batch(requests)
    for request, outcome in zip(requests, outcomes, strict=True):
        assert isinstance(outcome, MLLMResponse), outcome
        assert_same(outcome, alone.run(request))
        assert outcome.compute_seconds > 0


def test_small_row_batches_across_requests_give_the_same_answers(model_dir):
    model = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    requests = mixed_batch()
    whole = model.run_batch(requests)
    model.max_batch_rows = 4  # chunks that cut through requests
    for a, b in zip(whole, model.run_batch(requests), strict=True):
        assert isinstance(a, MLLMResponse) and isinstance(b, MLLMResponse)
        assert_same(a, b)


def test_images_of_one_size_are_prefilled_in_one_forward_pass(model_dir):
    model = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    prefills = []
    hook = model.model.register_forward_pre_hook(
        lambda _, args, kwargs: (
            prefills.append(len(kwargs["input_ids"])) if kwargs.get("pixel_values") is not None else None
        ),
        with_kwargs=True,
    )
    try:
        model.run_batch([stage2(noise(seed)) for seed in (11, 12, 13)])
        assert prefills == [3]
        prefills.clear()
        images = [noise(11), noise(12, 200, 160)]
        # Qwen2.5-VL gives a bigger image more tokens (two passes); LLaVA resizes every image.
        lengths = {model.image_prefix_tokens(image) for image in images}
        prefills.clear()
        model.run_batch([stage2(image) for image in images])
        assert prefills == ([1, 1] if len(lengths) == 2 else [2])
    finally:
        hook.remove()


def test_a_bad_request_gets_its_own_error_and_the_others_their_answers(model_dir):
    model = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    good = [stage1(noise(21)), stage2(noise(22))]
    outcomes = model.run_batch([good[0], MLLMRequest(b"not an image", ("x",)), good[1]])
    assert isinstance(outcomes[1], ValueError) and "not a decodable image" in str(outcomes[1])
    for request, outcome in zip(good, (outcomes[0], outcomes[2]), strict=True):
        assert isinstance(outcome, MLLMResponse)
        assert_same(outcome, model.run(request))


def test_a_cancelled_request_is_dropped_while_decoding_and_the_rest_go_on(model_dir):
    model = TransformersMLLM(model_dir, prefix_cache_bytes=0)
    long = MLLMRequest(noise(31), ("Describe the image.", "List the objects."), max_new_tokens=40)
    others = [stage1(noise(32)), stage2(noise(33))]
    asked = []

    def gone() -> bool:  # wanted through the prefill and the first decoding steps, then not
        asked.append(1)
        return len(asked) > 3

    outcomes = model.run_batch([long, *others], [gone, lambda: False, lambda: False])
    assert isinstance(outcomes[0], MLLMError) and outcomes[0].kind is ErrorKind.CANCELLED
    assert len(asked) == 4  # asked no more once dropped
    for request, outcome in zip(others, outcomes[1:], strict=True):
        assert isinstance(outcome, MLLMResponse)
        assert_same(outcome, model.run(request))


def test_a_batch_fills_and_uses_the_image_prefix_cache(tiny_model_dirs):
    model = TransformersMLLM(tiny_model_dirs["qwen2_5_vl"])
    images = [noise(41), noise(42)]
    model.run_batch([stage1(image) for image in images])
    assert (model.prefix_cache.hits, model.prefix_cache.misses) == (0, 2)
    second = model.run_batch([stage2(image) for image in images])
    assert (model.prefix_cache.hits, model.prefix_cache.misses) == (2, 2)
    fresh = TransformersMLLM(tiny_model_dirs["qwen2_5_vl"], prefix_cache_bytes=0)
    for image, outcome in zip(images, second, strict=True):
        assert isinstance(outcome, MLLMResponse)
        assert_same(outcome, fresh.run(stage2(image)))
