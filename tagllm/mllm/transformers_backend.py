"""The MLLM contract served in-process by a Hugging Face image-text-to-text checkpoint.

Two execution paths answer the same request with the same texts and probabilities:

- `shared_prefix=True` (default): the image is processed and encoded once per request. The
  prompt prefix they all share (chat header, image, the common start of the instructions) is
  prefilled once into a KV cache; the suffixes run batched over copies of that cache, in one
  forward for `score` and one greedy decoding loop for `generate`. The header-and-image part
  is kept in a bounded cache (`prefix_cache_bytes`), so the next request about the same image
  (TagLLM's second stage) does not encode the image again.
- `shared_prefix=False` (the naive reference): every prompt is a full `generate` or forward
  with the image, as a plain transformers user would write it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, DynamicCache
from transformers.processing_utils import ProcessorMixin

from tagllm.mllm.constraints import AllowedNamesConstraint, BatchConstraint
from tagllm.mllm.contract import NO_CONTEXT, CallContext, MLLMRequest, MLLMResponse, Mode, PromptResult
from tagllm.mllm.prefix_cache import PrefixEntry, cache_bytes, prefix_cache
from tagllm.mllm.processors import register_processors

# Stands in for the prompt while the chat template is rendered, to split head from tail.
_SENTINEL = "\ue000"
_YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
_NO_WORDS = ("no", "No", " no", " No", "NO")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TransformersMLLM:
    """Loads any checkpoint that `AutoProcessor` + `AutoModelForImageTextToText` can load."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        shared_prefix: bool = True,
        max_batch_rows: int = 32,
        threads: int | None = None,
        prefix_cache_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} is not a checkpoint directory (no config.json)")
        if threads:
            torch.set_num_threads(threads)
        register_processors()
        self.processor = AutoProcessor.from_pretrained(model_dir)
        # AutoProcessor silently falls back to the bare tokenizer when it cannot resolve the class.
        if not isinstance(self.processor, ProcessorMixin) or not hasattr(self.processor, "image_processor"):
            raise ValueError(f"{model_dir}: no multimodal processor could be loaded")
        if not self.processor.chat_template:
            raise ValueError(f"{model_dir}: the processor has no chat template")
        self.tokenizer = self.processor.tokenizer
        self.model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=_DTYPES[dtype])
        # transformers types `to` through a decorator that mypy reads as taking a model.
        self.model.to(device).eval()  # type: ignore[arg-type]
        self.device = torch.device(device)
        self.shared_prefix = shared_prefix
        self.max_batch_rows = max_batch_rows
        self._version = f"{self.model.config.model_type}/{model_dir.name}"
        self._eos_ids = _as_list(self.model.generation_config.eos_token_id) or [self.tokenizer.eos_token_id]
        self._pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self._eos_ids[0]
        )
        self._yes_ids = _single_token_ids(self.tokenizer, _YES_WORDS)
        self._no_ids = _single_token_ids(self.tokenizer, _NO_WORDS)
        if not self._yes_ids or not self._no_ids:
            raise ValueError(f"{model_dir}: the tokenizer has no single-token 'yes'/'no'")
        conversation: Any = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": _SENTINEL}]}
        ]
        rendered = self.processor.apply_chat_template(
            conversation,
            add_generation_prompt=True,
            tokenize=False,
        )
        self._head, self._tail = rendered.split(_SENTINEL)
        self._head_hash = hashlib.sha256(self._head.encode()).hexdigest()[:16]
        self._prefix_cache_bytes = prefix_cache_bytes
        self.prefix_cache = prefix_cache(prefix_cache_bytes)
        # One model instance computes one request at a time (its rope state is per forward).
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self._version

    def warm_up(self) -> None:
        """One call of each mode on a blank image, so that the first real request pays for no
        lazy set-up (CUDA context, kernel choice, allocator growth). The prefix cache starts empty
        afterwards: its counters describe real traffic only."""
        blank = io.BytesIO()
        Image.new("RGB", (64, 64), "white").save(blank, format="PNG")
        for mode in (Mode.GENERATE, Mode.SCORE):
            self.run(MLLMRequest(image=blank.getvalue(), prompts=("Warm-up.",), mode=mode, max_new_tokens=2))
        self.prefix_cache = prefix_cache(self._prefix_cache_bytes)

    def run(self, request: MLLMRequest, context: CallContext = NO_CONTEXT) -> MLLMResponse:
        """Answers in-process; the context's deadline is the caller's business (nothing to cancel)."""
        # Decoded on first use: a request whose image prefix is cached never needs the pixels.
        image = functools.cache(lambda: decode_image(request.image))
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            constraints = self._constraints(request)
            if self.shared_prefix:
                results = self._run_shared(image, request, constraints)
            else:
                results = [
                    self._run_single(image(), prompt, request, constraint)
                    for prompt, constraint in zip(request.prompts, constraints, strict=True)
                ]
            seconds = time.perf_counter() - start
        return MLLMResponse(results=tuple(results), compute_seconds=seconds, model_version=self._version)

    def image_prefix_tokens(self, image: bytes) -> int:
        """Tokens of the chat header and the image that every prompt about `image` starts with."""
        with self._lock, torch.inference_mode():
            return self._image_prefix(lambda: decode_image(image), image).length

    # -- shared prefix path ------------------------------------------------------------------

    def _image_prefix(self, image: Callable[[], Image.Image], image_bytes: bytes) -> PrefixEntry:
        """The KV state of the chat header and the image, from the cache or prefilled now."""
        key = (hashlib.sha256(image_bytes).hexdigest(), self._head_hash)
        entry = self.prefix_cache.get(key)
        if entry is not None:
            return entry
        inputs = self.processor(images=[image()], text=[self._head], return_tensors="pt").to(self.device)
        cache = DynamicCache(config=self.model.config)
        self.model(**inputs, cache=cache, use_cache=True)
        length = inputs["input_ids"].shape[1]
        # Multimodal rotary models (Qwen-VL) shift text positions after the image by rope_deltas.
        deltas = getattr(getattr(self.model, "model", None), "rope_deltas", None)
        next_position = length + (int(deltas.reshape(-1)[0]) if deltas is not None else 0)
        entry = PrefixEntry(cache, length, next_position, cache_bytes(cache))
        self.prefix_cache.put(key, entry)
        return entry

    def _split_prompts(self, prompts: tuple[str, ...]) -> tuple[list[int], list[list[int]]] | None:
        """Token ids of the text all prompts share and of each one's rest, or None.

        BPE may merge across a cut; a cut counts only where the pieces are the prompt's own
        tokens. Tried in order: the shared start cut at a line end or before a word, then nothing
        shared but the image.
        """
        head_ids = self._text_ids(self._head)
        full_ids = [self._text_ids(self._head + prompt + self._tail) for prompt in prompts]
        for common in dict.fromkeys(_shared_starts(prompts)):
            common_ids = self._text_ids(common) if common else []
            suffix_ids = [self._text_ids(prompt[len(common) :] + self._tail) for prompt in prompts]
            if all(head_ids + common_ids + s == f for s, f in zip(suffix_ids, full_ids, strict=True)):
                return common_ids, suffix_ids
        return None

    def _run_shared(self, image, request: MLLMRequest, constraints) -> list[PromptResult]:
        split = self._split_prompts(request.prompts)
        if split is None:
            return [
                self._run_single(image(), p, request, c)
                for p, c in zip(request.prompts, constraints, strict=True)
            ]
        common_ids, suffix_ids = split
        entry = self._image_prefix(image, request.image)
        cache = copy.deepcopy(entry.cache)
        prefix_len, next_position = entry.length, entry.next_position
        if common_ids:  # the instructions every prompt of this stage starts with
            ids = torch.tensor([common_ids], device=self.device)
            positions = torch.arange(next_position, next_position + len(common_ids), device=self.device)[None]
            mask = torch.ones((1, prefix_len + len(common_ids)), dtype=torch.long, device=self.device)
            self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
            )
            prefix_len += len(common_ids)
            next_position += len(common_ids)

        results: list[PromptResult] = []
        for lo in range(0, len(suffix_ids), self.max_batch_rows):
            rows = slice(lo, lo + self.max_batch_rows)
            results += self._run_suffixes(
                cache, prefix_len, next_position, suffix_ids[rows], constraints[rows], request
            )
        return results

    def _run_suffixes(self, prefix_cache, prefix_len, next_position, suffix_ids, constraints, request):
        rows = len(suffix_ids)
        width = max(len(s) for s in suffix_ids)
        # Pads sit between the prefix and each suffix, so every row ends in the same column.
        ids = torch.full((rows, width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((rows, prefix_len + width), dtype=torch.long)
        mask[:, :prefix_len] = 1
        positions = torch.full((rows, width), next_position, dtype=torch.long)
        for row, suffix in enumerate(suffix_ids):
            pad = width - len(suffix)
            ids[row, pad:] = torch.tensor(suffix)
            mask[row, prefix_len + pad :] = 1
            positions[row, pad:] = torch.arange(next_position, next_position + len(suffix))
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(rows)
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        logits = (
            self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
            )
            .logits[:, -1, :]
            .float()
        )
        yes = self._yes_probability(logits)
        prompt_tokens = [prefix_len + len(s) for s in suffix_ids]
        if request.mode is Mode.SCORE:
            return [
                PromptResult(text="", yes_probability=p, prompt_tokens=n, generated_tokens=0)
                for p, n in zip(yes, prompt_tokens, strict=True)
            ]

        processor = BatchConstraint(list(constraints), answer_start=0)
        eos = torch.tensor(self._eos_ids, device=self.device)
        generated: list[list[int]] = [[] for _ in range(rows)]
        active = list(range(rows))  # rows still generating; finished ones leave the batch
        last_positions = positions[:, -1:]
        for step in range(request.max_new_tokens):
            tokens = processor.apply(logits, active).argmax(dim=-1)
            chosen = tokens.tolist()
            for row, token in zip(active, chosen, strict=True):
                generated[row].append(token)
            processor.advance(active, chosen)
            if step == request.max_new_tokens - 1:
                break
            going = (~torch.isin(tokens, eos)).nonzero().flatten()
            if going.numel() == 0:
                break
            if going.numel() < len(active):
                # Most group answers end early ("none"): stop computing their rows.
                cache.batch_select_indices(going)
                mask, last_positions, tokens = mask[going], last_positions[going], tokens[going]
                active = [active[i] for i in going.tolist()]
            mask = torch.cat(
                [mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)], dim=1
            )
            last_positions = last_positions + 1
            logits = (
                self.model(
                    input_ids=tokens[:, None],
                    attention_mask=mask,
                    position_ids=last_positions,
                    cache=cache,
                    use_cache=True,
                )
                .logits[:, -1, :]
                .float()
            )
        return [self._result(generated[row], yes[row], prompt_tokens[row]) for row in range(rows)]

    # -- naive path --------------------------------------------------------------------------

    def _run_single(self, image, prompt: str, request: MLLMRequest, constraint) -> PromptResult:
        text = self._head + prompt + self._tail
        inputs = self.processor(images=[image], text=[text], return_tensors="pt").to(self.device)
        prompt_len = inputs["input_ids"].shape[1]
        if request.mode is Mode.SCORE:
            logits = self.model(**inputs).logits[:, -1, :].float()
            return PromptResult("", self._yes_probability(logits)[0], prompt_len, 0)
        out = self.model.generate(
            **inputs,
            max_new_tokens=request.max_new_tokens,
            do_sample=False,
            num_beams=1,
            logits_processor=[BatchConstraint([constraint], answer_start=prompt_len)],
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id,
            output_logits=True,
            return_dict_in_generate=True,
        )
        yes = self._yes_probability(out.logits[0].float())[0]
        return self._result(out.sequences[0, prompt_len:].tolist(), yes, prompt_len)

    # -- shared helpers ----------------------------------------------------------------------

    def _constraints(self, request: MLLMRequest) -> list[AllowedNamesConstraint | None]:
        if request.allowed_names is None or request.mode is Mode.SCORE:
            return [None] * len(request.prompts)
        return [
            AllowedNamesConstraint(self.tokenizer, list(names), self._eos_ids[0], request.none_answer)
            if names
            else None
            for names in request.allowed_names
        ]

    def _text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _yes_probability(self, logits: torch.Tensor) -> list[float]:
        probs = torch.softmax(logits, dim=-1)
        yes = probs[:, self._yes_ids].sum(dim=-1)
        no = probs[:, self._no_ids].sum(dim=-1)
        return (yes / (yes + no).clamp_min(1e-30)).tolist()

    def _result(self, tokens: list[int], yes_probability: float, prompt_tokens: int) -> PromptResult:
        answer: list[int] = []
        for token in tokens:
            answer.append(token)
            if token in self._eos_ids:
                break
        text = self.tokenizer.decode(answer, skip_special_tokens=True).strip()
        return PromptResult(text, yes_probability, prompt_tokens, len(answer))


def decode_image(data: bytes) -> Image.Image:
    """Decode encoded image bytes into RGB; raises ValueError for anything that is not an image."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # PIL raises many types for bad data
        raise ValueError(f"not a decodable image: {exc}") from exc
    return image.convert("RGB")


def _shared_starts(prompts: tuple[str, ...]) -> list[str]:
    """Where the shared start of `prompts` may end: after its last line break or before its last
    space (byte-level BPE folds a space into the next word), and nothing at all."""
    common = os.path.commonprefix(list(prompts)) if len(prompts) > 1 else ""
    cuts = [common[: common.rfind("\n") + 1] if "\n" in common else "", common[: max(common.rfind(" "), 0)]]
    return [*sorted(filter(None, cuts), key=len, reverse=True), ""]


def _single_token_ids(tokenizer, words) -> list[int]:
    ids = set()
    for word in words:
        encoded = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return sorted(ids)


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
