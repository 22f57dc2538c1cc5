import pytest

from tagllm.mllm.contract import MLLMRequest, Mode
from tagllm.mllm.transformers_backend import TransformersMLLM
from tagllm.parsing import AnswerParser
from tagllm.prompts import Prompts
from tagllm.vocab import builtin_vocabulary
from tests.conftest import png

COCO = builtin_vocabulary("coco")
PROMPTS = Prompts.for_vocabulary(COCO)
GROUPS = [[COCO.category(n) for n in g.categories] for g in COCO.groups[:4]]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "llava"])
def models(request, tiny_model_dirs):
    path = tiny_model_dirs[request.param]
    return TransformersMLLM(path), TransformersMLLM(path, shared_prefix=False)


def requests():
    image = png(120, 80)
    multi = tuple(PROMPTS.multi_option(g) for g in GROUPS)
    allowed = tuple(tuple(c.display_name for c in g) for g in GROUPS)
    yes_no = tuple(PROMPTS.yes_no(c, COCO) for c in COCO.categories[:7])
    return [
        MLLMRequest(image, multi, Mode.GENERATE, max_new_tokens=12),
        MLLMRequest(image, multi, Mode.GENERATE, max_new_tokens=24, allowed_names=allowed),
        MLLMRequest(image, yes_no, Mode.SCORE),
        MLLMRequest(image, ("Describe the image.",), Mode.GENERATE, max_new_tokens=5),
    ]


@pytest.mark.parametrize("index", range(4))
def test_shared_prefix_path_matches_the_naive_path(models, index):
    fast, naive = models
    request = requests()[index]
    a, b = fast.run(request), naive.run(request)
    assert len(a.results) == len(b.results) == len(request.prompts)
    for x, y in zip(a.results, b.results, strict=True):
        assert x.text == y.text
        assert x.yes_probability == pytest.approx(y.yes_probability, abs=1e-4)
        assert (x.prompt_tokens, x.generated_tokens) == (y.prompt_tokens, y.generated_tokens)
    assert a.compute_seconds > 0 and a.model_version == b.model_version


def test_chunked_batches_give_the_same_answers(models):
    fast, _ = models
    request = requests()[2]
    whole = fast.run(request)
    fast.max_batch_rows = 2
    try:
        chunked = fast.run(request)
    finally:
        fast.max_batch_rows = 32
    for x, y in zip(whole.results, chunked.results, strict=True):
        assert x.yes_probability == pytest.approx(y.yes_probability, abs=1e-4)


def test_constrained_answers_name_only_allowed_names(models):
    fast, _ = models
    request = requests()[1]
    parser = AnswerParser(COCO)
    for group, result in zip(GROUPS, fast.run(request).results, strict=True):
        parsed = parser.parse(result.text, allowed={c.name for c in group})
        assert parsed.dropped == (), result.text
        assert parsed.said_none or parsed.labels, result.text


def test_scores_are_probabilities(models):
    fast, _ = models
    for result in fast.run(requests()[2]).results:
        assert 0.0 <= result.yes_probability <= 1.0
        assert result.generated_tokens == 0


def test_undecodable_image_is_a_value_error(models):
    fast, _ = models
    with pytest.raises(ValueError, match="not a decodable image"):
        fast.run(MLLMRequest(b"not an image", ("x",)))


def test_loader_rejects_a_directory_without_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        TransformersMLLM(tmp_path)


def test_processor_and_chat_template_survive_save_and_reload(tiny_model_dirs):
    for path in tiny_model_dirs.values():
        model = TransformersMLLM(path)
        assert type(model.processor).__name__ != "PreTrainedTokenizerFast"
        assert model.processor.chat_template
        assert model.version.startswith(model.model.config.model_type)


def test_second_stage_reuses_the_image_prefix_with_the_same_answers(tiny_model_dirs):
    path = tiny_model_dirs["qwen2_5_vl"]
    cached = TransformersMLLM(path)
    stage1, _, stage2, _ = requests()
    first = cached.run(stage1)
    assert (cached.prefix_cache.hits, cached.prefix_cache.misses) == (0, 1)
    second = cached.run(stage2)
    assert (cached.prefix_cache.hits, cached.prefix_cache.misses) == (1, 1)
    assert cached.prefix_cache.size > 0
    fresh = TransformersMLLM(path, prefix_cache_bytes=0)
    for a, b in ((first, fresh.run(stage1)), (second, fresh.run(stage2))):
        for x, y in zip(a.results, b.results, strict=True):
            assert x.text == y.text and x.yes_probability == pytest.approx(y.yes_probability, abs=1e-5)
    assert fresh.prefix_cache.hits == 0 and len(fresh.prefix_cache) == 0


def test_prefix_cache_is_bounded_by_bytes():
    from tagllm.mllm.prefix_cache import PrefixEntry, prefix_cache

    cache = prefix_cache(max_bytes=100)
    for i in range(5):
        cache.put((f"image{i}", "h"), PrefixEntry(None, 1, 1, 40))
    assert len(cache) == 2 and cache.size == 80 and cache.evictions == 3
    assert cache.get(("image0", "h")) is None and cache.get(("image4", "h")) is not None
    cache.put(("huge", "h"), PrefixEntry(None, 1, 1, 1000))
    assert cache.get(("huge", "h")) is None


def test_the_instruction_before_the_list_is_computed_once(models):
    fast, _ = models
    for prompts in (
        tuple(PROMPTS.multi_option(g) for g in GROUPS),
        tuple(PROMPTS.yes_no(c, COCO) for c in COCO.categories[:5]),
    ):
        split = fast._split_prompts(prompts)
        assert split is not None
        common_ids, suffix_ids = split
        shared = fast.tokenizer.decode(common_ids)
        assert shared.startswith("Carefully examine the image and decide") and len(common_ids) > 8
        assert all(len(s) < len(fast._text_ids(p)) for s, p in zip(suffix_ids, prompts, strict=True))
