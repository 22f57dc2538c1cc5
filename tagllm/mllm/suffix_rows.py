"""Suffixes of several requests' prompts as the rows of shared forward passes.

Every row starts from its request's prefix (a KV cache: header, image, shared instructions),
left-padded to the longest; one forward over all suffixes scores them, and the rows that
generate are decoded greedily together, each until its end of answer or its request's limit.
"""

from __future__ import annotations

from typing import Any

import torch

from tagllm.mllm.batch_jobs import Batch, Row
from tagllm.mllm.constraints import BatchConstraint
from tagllm.mllm.contract import Mode, PromptResult
from tagllm.mllm.kv_rows import stack_rows


class SuffixRows:
    """Mixed into the model class, whose loaded model and token ids these read."""

    model: Any
    device: torch.device
    tokenizer: Any
    _pad_id: int
    _eos_ids: list[int]
    _yes_ids: list[int]
    _no_ids: list[int]

    def _run_rows(self, rows: list[Row], batch: Batch) -> None:
        """Suffixes of one or more requests in one forward pass (which scores them), then greedy
        decoding of the rows that generate. Pads sit between each row's prefix and its suffix,
        so every row ends in the same column."""
        jobs = list(dict.fromkeys(row.job for row in rows))
        prefixes = [job.prefix for job in jobs if job.prefix is not None]
        assert len(prefixes) == len(jobs)
        cache, prefix_mask = stack_rows(prefixes, [jobs.index(row.job) for row in rows], self.model.config)
        width = max(len(row.suffix) for row in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.cat([prefix_mask, torch.zeros((len(rows), width), dtype=torch.long)], dim=1)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        prompt_tokens = []
        for r, row in enumerate(rows):
            assert row.job.prefix is not None
            pad, start = width - len(row.suffix), row.job.prefix.next_position
            ids[r, pad:] = torch.tensor(row.suffix)
            mask[r, prefix_mask.shape[1] + pad :] = 1
            positions[r] = start
            positions[r, pad:] = torch.arange(start, start + len(row.suffix))
            prompt_tokens.append(row.job.prefix.length + len(row.suffix))
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        logits = self._last_logits(ids, mask, positions, cache)
        yes = self._yes_probability(logits)
        generating = []
        for r, row in enumerate(rows):
            if row.job.request.mode is Mode.SCORE:
                row.job.results[row.prompt] = PromptResult("", yes[r], prompt_tokens[r], 0)
            else:
                generating.append(r)
        if not generating:
            return
        if len(generating) < len(rows):
            keep = torch.tensor(generating, device=self.device)
            cache.batch_select_indices(keep)
            logits, mask, positions = logits[keep], mask[keep], positions[keep]
        answers = self._decode([rows[r] for r in generating], logits, mask, positions[:, -1:], cache, batch)
        for r, tokens in zip(generating, answers, strict=True):
            if batch.is_live(rows[r].job):
                rows[r].job.results[rows[r].prompt] = self._result(tokens, yes[r], prompt_tokens[r])

    def _decode(self, rows: list[Row], logits, mask, last_positions, cache, batch: Batch) -> list[list[int]]:
        """Greedy tokens of each row until its end of answer or its request's limit; rows that
        are done, or whose request was cancelled, leave the batch."""
        processor = BatchConstraint([row.constraint for row in rows], answer_start=0)
        eos = set(self._eos_ids)
        generated: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))  # rows still generating
        while True:
            tokens = processor.apply(logits, active).argmax(dim=-1)
            chosen = tokens.tolist()
            for row, token in zip(active, chosen, strict=True):
                generated[row].append(token)
            processor.advance(active, chosen)
            batch.drop_cancelled(list(dict.fromkeys(rows[row].job for row in active)))
            going = [
                i
                for i, (row, token) in enumerate(zip(active, chosen, strict=True))
                if token not in eos
                and len(generated[row]) < rows[row].job.request.max_new_tokens
                and batch.is_live(rows[row].job)
            ]
            if not going:
                return generated
            if len(going) < len(active):
                # Most group answers end early ("none"): stop computing their rows.
                keep = torch.tensor(going, device=self.device)
                cache.batch_select_indices(keep)
                mask, last_positions, tokens = mask[keep], last_positions[keep], tokens[keep]
                active = [active[i] for i in going]
            mask = torch.cat(
                [mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)], dim=1
            )
            last_positions = last_positions + 1
            logits = self._last_logits(tokens[:, None], mask, last_positions, cache)

    def _last_logits(self, ids, mask, positions, cache) -> torch.Tensor:
        output = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
        )
        return output.logits[:, -1, :].float()

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
