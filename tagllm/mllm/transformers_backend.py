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

`run_batch` answers several requests together (the model server's dynamic batches): images
whose inputs have one length are prefilled in one forward pass, and the suffixes of all
requests share batches (`tagllm.mllm.suffix_rows`), generate and score rows side by side. Each
request gets the answers it gets alone, or its own error; a cancelled one is dropped between
decoding steps."""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, DynamicCache
from transformers.processing_utils import ProcessorMixin

from tagllm.mllm.batch_jobs import Batch, Job, Row
from tagllm.mllm.constraints import AllowedNamesConstraint, BatchConstraint
from tagllm.mllm.contract import NO_CONTEXT, CallContext, MLLMRequest, MLLMResponse, Mode, PromptResult
from tagllm.mllm.kv_rows import Prefix, concat_inputs, split_batch
from tagllm.mllm.prefix_cache import PrefixEntry, cache_bytes, prefix_cache
from tagllm.mllm.processors import register_processors
from tagllm.mllm.suffix_rows import SuffixRows

# Stands in for the prompt while the chat template is rendered, to split head from tail.
_SENTINEL = "\ue000"
_YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
_NO_WORDS = ("no", "No", " no", " No", "NO")

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TransformersMLLM(SuffixRows):
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
        self.model.to(device).eval()
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
        outcome = self.run_batch([request])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def run_batch(
        self, requests: Sequence[MLLMRequest], cancelled: Sequence[Callable[[], bool]] | None = None
    ) -> list[MLLMResponse | Exception]:
        """Answers several requests together: their image prefills in shared forward passes, then
        all their prompts' suffixes in shared batches. Each request gets what it would alone, or
        its own error (an undecodable image fails that request only). `cancelled[i]()` is asked
        between batches and decoding steps; a request that says True is dropped with a CANCELLED
        error while the others go on."""
        checks = list(cancelled) if cancelled is not None else [_never] * len(requests)
        outcomes: list[Any] = [None] * len(requests)
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            jobs = []
            for index, request in enumerate(requests):
                try:
                    constraints = self._constraints(request)
                    split = self._split_prompts(request.prompts) if self.shared_prefix else None
                except Exception as exc:
                    outcomes[index] = exc
                    continue
                image = functools.cache(functools.partial(decode_image, request.image))
                jobs.append(Job(index, request, constraints, split, image, [None] * len(request.prompts)))
            batch = Batch(outcomes, checks)
            try:
                self._run_jobs(jobs, batch)
            except Exception as exc:  # a failure of the shared work fails every request still open
                for job in batch.live(jobs):
                    outcomes[job.index] = exc
            # Each request of a batch is charged an equal share of its time.
            seconds = (time.perf_counter() - start) / max(1, len(requests))
        for job in batch.live(jobs):
            results = tuple(r for r in job.results if r is not None)
            assert len(results) == len(job.results), "a prompt of an open request went unanswered"
            outcomes[job.index] = MLLMResponse(results, seconds, self._version)
        return outcomes

    def image_prefix_tokens(self, image: bytes) -> int:
        """Tokens of the chat header and the image that every prompt about `image` starts with."""
        with self._lock, torch.inference_mode():
            entry = self._image_prefixes([(image, functools.partial(decode_image, image))])[0]
        if isinstance(entry, Exception):
            raise entry
        return entry.length

    def _run_jobs(self, jobs: list[Job], batch: Batch) -> None:
        batch.drop_cancelled(jobs)
        alone = [job for job in batch.live(jobs) if job.split is None]
        for job in alone:  # the naive path, or prompts whose shared start cannot be cut
            try:
                for n, (prompt, constraint) in enumerate(
                    zip(job.request.prompts, job.constraints, strict=True)
                ):
                    if batch.drop_cancelled([job]):
                        break
                    job.results[n] = self._run_single(job.image(), prompt, job.request, constraint)
            except Exception as exc:
                batch.fail(job, exc)
        shared = [job for job in batch.live(jobs) if job.split is not None]
        if not shared:
            return
        entries = self._image_prefixes([(job.request.image, job.image) for job in shared])
        for job, entry in zip(shared, entries, strict=True):
            if isinstance(entry, Exception):
                batch.fail(job, entry)
            else:
                assert job.split is not None
                job.prefix = self._extend(
                    Prefix(entry.cache, entry.length, entry.next_position), job.split[0]
                )
        rows = [
            Row(job, n, suffix)
            for job in batch.live(shared)
            if job.split is not None
            for n, suffix in enumerate(job.split[1])
        ]
        for lo in range(0, len(rows), self.max_batch_rows):
            batch.drop_cancelled(shared)
            chunk = [row for row in rows[lo : lo + self.max_batch_rows] if batch.is_live(row.job)]
            if chunk:
                self._run_rows(chunk, batch)

    # -- shared prefix path ------------------------------------------------------------------

    def _image_prefixes(self, images: list[tuple[bytes, Callable[[], Image.Image]]]) -> list[Any]:
        """The KV state of the chat header and each image (or the error that image met), from the
        cache or prefilled now; images whose inputs have the same length share one forward."""
        keys = [(hashlib.sha256(data).hexdigest(), self._head_hash) for data, _ in images]
        found: dict[tuple[str, str], Any] = {}
        groups: dict[int, list[tuple[tuple[str, str], Any]]] = {}
        for key, (_, image) in zip(keys, images, strict=True):
            if key in found:
                continue
            found[key] = self.prefix_cache.get(key)
            if found[key] is not None:
                continue
            try:
                inputs = self.processor(images=[image()], text=[self._head], return_tensors="pt")
            except Exception as exc:
                found[key] = exc if isinstance(exc, ValueError) else ValueError(f"image not processed: {exc}")
                continue
            groups.setdefault(inputs["input_ids"].shape[1], []).append((key, inputs))
        for group in groups.values():
            for key, entry in zip((k for k, _ in group), self._prefill([i for _, i in group]), strict=True):
                self.prefix_cache.put(key, entry)
                found[key] = entry
        return [found[key] for key in keys]

    def _prefill(self, inputs: list[Any]) -> list[PrefixEntry]:
        """Prefills processor outputs of one length in one forward; one entry per image."""
        try:
            batch = concat_inputs(inputs)
        except RuntimeError:  # pixel tensors that do not stack (per-image tiling): one by one
            if len(inputs) == 1:
                raise
            return [entry for item in inputs for entry in self._prefill([item])]
        batch = {key: value.to(self.device) for key, value in batch.items()}
        cache = DynamicCache(config=self.model.config)
        self.model(**batch, cache=cache, use_cache=True)
        length = batch["input_ids"].shape[1]
        # Multimodal rotary models (Qwen-VL) shift text positions after the image by rope_deltas.
        deltas = getattr(getattr(self.model, "model", None), "rope_deltas", None)
        shifts = deltas.reshape(-1).tolist() if deltas is not None else [0] * len(inputs)
        return [
            PrefixEntry(row, length, length + int(shift), cache_bytes(row))
            for row, shift in zip(split_batch(cache, self.model.config), shifts, strict=True)
        ]

    def _extend(self, prefix: Prefix, ids: list[int]) -> Prefix:
        """The prefix with `ids` (the instructions every prompt of a request starts with) after it."""
        if not ids:
            return prefix
        cache = copy.deepcopy(prefix.cache)
        tokens = torch.tensor([ids], device=self.device)
        positions = torch.arange(prefix.next_position, prefix.next_position + len(ids), device=self.device)
        mask = torch.ones((1, prefix.length + len(ids)), dtype=torch.long, device=self.device)
        self.model(
            input_ids=tokens, attention_mask=mask, position_ids=positions[None], cache=cache, use_cache=True
        )
        return Prefix(cache, prefix.length + len(ids), prefix.next_position + len(ids))

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


def _never() -> bool:
    return False


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
