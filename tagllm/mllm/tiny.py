"""Tiny, randomly initialised checkpoints of real MLLM architectures.

No machine here can download weights, so tests and the local stack build a checkpoint from a
config: a byte-level BPE tokenizer trained on a small corpus, the architecture's own image
processor and processor, a chat template, and random weights. The result is saved with
`save_pretrained` and loads through the same Auto classes as a real checkpoint. Its answers are
meaningless; every piece of plumbing around it is real.

Architectures plug in through `ARCHITECTURES`, a registry of builders. torch, tokenizers and
transformers are imported by the builders, so naming the architectures (CLI help) costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

# Words the tokenizer should know whole: prompt vocabulary, answers and common label names.
_CORPUS = """
yes no none Yes No None . , : ; ? ! ( ) - ' "
Which of the following are visible in the image? Answer with the names that are present,
separated by commas, or with none if none of them is present. Is there a in this image?
Answer yes or no. is a kind of does not mean List the objects you see in the image.
person bicycle car motorcycle airplane bus train truck boat traffic light fire hydrant
stop sign parking meter bench bird cat dog horse sheep cow elephant bear zebra giraffe
backpack umbrella handbag tie suitcase frisbee skis snowboard sports ball kite baseball bat
baseball glove skateboard surfboard tennis racket bottle wine glass cup fork knife spoon bowl
banana apple sandwich orange broccoli carrot hot dog pizza donut cake chair couch potted plant
bed dining table toilet tv laptop mouse remote keyboard cell phone microwave oven toaster sink
refrigerator book clock vase scissors teddy bear hair drier toothbrush aeroplane bottle
diningtable motorbike pottedplant sofa tvmonitor vehicle animal furniture food kitchen
electronic accessory outdoor sports indoor appliance computer wireless pointing device necktie
fruit citrus vegetable dessert appliance
"""


@dataclasses.dataclass(frozen=True)
class TinySpec:
    """What a tiny build needs beyond its architecture."""

    image_size: int = 224
    hidden_size: int = 32
    layers: int = 2
    vocab_size: int = 1024
    seed: int = 0
    # The vision tower's own size (0: as the text model's).
    vision_hidden_size: int = 0
    vision_layers: int = 0
    heads: int = 2
    # Key/value heads of the text model (grouped-query attention; 1 shares one key among all).
    kv_heads: int = 1
    # Text the tokenizer is trained on besides the built-in corpus (the prompts a model will see).
    corpus: tuple[str, ...] = ()


def _train_tokenizer(special_tokens: list[str], vocab_size: int, extra: tuple[str, ...] = ()) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [line for line in _CORPUS.splitlines() if line.strip()]
    tokenizer.train_from_iterator(corpus * 4 + list(extra), trainer=trainer)
    return tokenizer


def _wrap_tokenizer(tokenizer: Tokenizer, **special: str) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special)


_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] != 'user' %}</s>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _token_id(tokenizer: PreTrainedTokenizerFast, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(token_id, int):
        raise ValueError(f"{token!r} is not one token of the tokenizer")
    return token_id


def _build_qwen2_5_vl(spec: TinySpec, out: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from tagllm.mllm.processors import Qwen2_5_VLImageProcessor

    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    tokenizer = _wrap_tokenizer(
        _train_tokenizer(specials, spec.vocab_size, spec.corpus),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    pixels = spec.image_size * spec.image_size
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": pixels, "longest_edge": pixels})
    processor = Qwen2_5_VLImageProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=_QWEN_TEMPLATE
    )
    heads = spec.heads
    head_dim = spec.hidden_size // heads
    vision_hidden = spec.vision_hidden_size or spec.hidden_size
    vision_layers = spec.vision_layers or spec.layers
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": spec.hidden_size,
            "intermediate_size": spec.hidden_size * 2,
            "num_hidden_layers": spec.layers,
            "num_attention_heads": heads,
            "num_key_value_heads": spec.kv_heads,
            "max_position_embeddings": 4096,
            # mrope sections (temporal, height, width) must sum to head_dim / 2.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": _mrope_sections(head_dim // 2),
            },
            "bos_token_id": None,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": vision_layers,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_hidden * 2,
            "num_heads": heads,
            "out_hidden_size": spec.hidden_size,
            "fullatt_block_indexes": [vision_layers - 1],
        },
        image_token_id=_token_id(tokenizer, "<|image_pad|>"),
        video_token_id=_token_id(tokenizer, "<|video_pad|>"),
        vision_start_token_id=_token_id(tokenizer, "<|vision_start|>"),
        vision_end_token_id=_token_id(tokenizer, "<|vision_end|>"),
    )
    import torch

    torch.manual_seed(spec.seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    _set_generation_ids(model, tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _mrope_sections(half_head_dim: int) -> list[int]:
    temporal = half_head_dim // 4
    spatial = (half_head_dim - temporal) // 2
    return [temporal, spatial, half_head_dim - temporal - spatial]


def _build_llava(spec: TinySpec, out: Path) -> None:
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    tokenizer = _wrap_tokenizer(
        _train_tokenizer(specials, spec.vocab_size),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    patch = 14
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        # CLIP adds a class token; the default strategy drops it again.
        num_additional_image_tokens=1,
        chat_template=_LLAVA_TEMPLATE,
        image_token="<image>",
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=spec.hidden_size,
            intermediate_size=spec.hidden_size * 2,
            num_hidden_layers=spec.layers,
            num_attention_heads=2,
            image_size=spec.image_size,
            patch_size=patch,
            projection_dim=spec.hidden_size,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            intermediate_size=spec.hidden_size * 2,
            num_hidden_layers=spec.layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=_token_id(tokenizer, "<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    import torch

    torch.manual_seed(spec.seed)
    model = LlavaForConditionalGeneration(config).eval()
    _set_generation_ids(model, tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _set_generation_ids(model, tokenizer) -> None:
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False


ARCHITECTURES: dict[str, Callable[[TinySpec, Path], None]] = {
    "qwen2_5_vl": _build_qwen2_5_vl,
    "llava": _build_llava,
}
DEFAULT_ARCH = "qwen2_5_vl"


def build_tiny_model(arch: str, out: Path | str, spec: TinySpec | None = None) -> Path:
    """Write a random checkpoint of `arch` to `out` and return the directory."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    from tagllm.mllm.processors import register_processors

    register_processors()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ARCHITECTURES[arch](spec or TinySpec(), out)
    return out
