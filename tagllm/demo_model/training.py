"""Training the demo model from scratch: `tagllm model train-demo`.

Two phases, both on scenes of the world's training split (seeds the held-out split never uses):

1. vision: the vision tower and its merger learn to tell the world's classes apart, as a
   multi-label classifier. Seeing is learnt first, fast, without the language model in the way.
   The head is either linear over the strongest image tokens (`vision_head="linear"`), or
   scores each class by its name's own token embeddings in the language model (`"names"`,
   `name_scores`): a class is present where some image token lies close to its name, which
   puts seeing in the space where the language model reads names.
2. instructions: the language model learns to answer every prompt the engine sends (see
   `instructions.py`), with the loss on the answer tokens only; the vision tower stays as the
   first phase left it (`freeze_vision`). The inputs are built exactly as
   the serving path builds them: the processor's chat template, the image, the prompt.

Everything is seeded; the state is saved every `checkpoint_every` steps to OUT.training/ and a
run started again with the same recipe resumes there. The result is a checkpoint directory that
`AutoProcessor` + `AutoModelForImageTextToText` load, served by the same Triton model as any
other.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagllm.datasets.world import CLASSES, VOCABULARY_NAME, scene, split_seed
from tagllm.demo_model.instructions import InstructionMaker
from tagllm.demo_model.vision_heads import match_text_scale, max_pooled_linear, name_scores, name_token_ids
from tagllm.mllm.tiny import TinySpec, build_tiny_model
from tagllm.vocab import builtin_vocabulary


@dataclasses.dataclass(frozen=True)
class DemoRecipe:
    seed: int = 0
    image_size: int = 168  # 144 patches of 14 px, 36 image tokens after the 2x2 merge
    scene_size: int = 224  # drawn at this size; the processor resizes
    hidden_size: int = 192
    layers: int = 4
    # Four full heads (no shared keys): answering "is there a <name>?" needs one head to carry
    # the asked name to the answer and another to look it up among the image tokens.
    heads: int = 4
    kv_heads: int = 4
    vision_hidden_size: int = 128
    vision_layers: int = 4
    vocab_size: int = 1024
    vision_steps: int = 2500
    vision_batch: int = 32
    vision_lr: float = 2e-3
    # "names": image tokens learn the space of the names' embeddings, so that a name read in a
    # prompt can look itself up among them (lists learnt faster than with "linear": multi-option
    # OF1 0.46 against 0.35 after 1,000 list steps; both heads see alike: mAP 0.835 and 0.836).
    vision_head: str = "names"
    # Keep the vision tower and merger as the vision phase left them while the language model
    # learns to read them: early gradients of a random language model wreck what was seen
    # (measured at instruction step 2,000 on 40 held-out scenes: multi-option OF1 0.70 frozen,
    # 0.34 trained along).
    freeze_vision: bool = True
    # Scale the merger's output once, after the vision phase, so that image tokens enter the
    # language model at the norm of its text embeddings (they leave the vision phase some fifty
    # times larger, and would swamp whatever attention adds to them).
    match_text_scale: bool = True
    steps: int = 6500
    batch: int = 8  # scenes per step; each gives `InstructionMaker.examples` rows
    # The first `list_steps` instruction steps ask list questions only (`list_rows` per scene):
    # asked together from the start, yes/no pairs sat at chance (within-image AUC 0.57-0.61
    # over 1,500 steps) while the lists were learnt slowly (multi-option OF1 0.29 at step 1,500).
    list_steps: int = 4000
    list_rows: int = 2
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    threads: int = 2
    checkpoint_every: int = 100
    # Within-image AUC of P(yes) on validation scenes, logged every this many steps (0: never).
    track_every: int = 500

    def spec(self, corpus: tuple[str, ...]) -> TinySpec:
        return TinySpec(
            image_size=self.image_size,
            hidden_size=self.hidden_size,
            layers=self.layers,
            vocab_size=self.vocab_size,
            seed=self.seed,
            vision_hidden_size=self.vision_hidden_size,
            vision_layers=self.vision_layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            corpus=corpus,
        )


def _lr(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    import math

    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@dataclasses.dataclass(frozen=True)
class _Phase:
    name: str
    steps: int
    peak_lr: float
    parameters: list


class _StepBudget:
    """Steps left to this run; None: no limit."""

    def __init__(self, steps: int | None) -> None:
        self.left = steps

    def spend(self) -> bool:
        """Counts a step; True when the budget is spent."""
        if self.left is None:
            return False
        self.left -= 1
        return self.left <= 0


class TrainingStateError(ValueError):
    """The saved state in OUT.training/ cannot continue this run."""


class DemoTrainer:
    def __init__(
        self, out: Path, recipe: DemoRecipe = DemoRecipe(), log: Callable[[str], None] = print
    ) -> None:
        self.out = Path(out)
        self.recipe = recipe
        self.log = log
        self.work = self.out.parent / (self.out.name + ".training")
        self.vocabulary = builtin_vocabulary(VOCABULARY_NAME)
        self.maker = InstructionMaker(self.vocabulary)

    # -- setup and state ---------------------------------------------------------------------

    def _load(self):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from tagllm.mllm.processors import register_processors

        register_processors()
        initial = self.work / "initial"
        recipe_file = self.work / "recipe.json"
        recipe = dataclasses.asdict(self.recipe)
        # A field the saved run predates had its default value then.
        if recipe_file.exists():
            saved = {**dataclasses.asdict(DemoRecipe()), **json.loads(recipe_file.read_text())}
        else:
            saved = recipe
        if saved != recipe:
            raise TrainingStateError(f"{self.work} holds a run of another recipe; remove it to start over")
        if not (initial / "config.json").exists():
            self.work.mkdir(parents=True, exist_ok=True)
            build_tiny_model("qwen2_5_vl", initial, self.recipe.spec(tuple(self.maker.corpus())))
            recipe_file.write_text(json.dumps(recipe, indent=1))
        torch.manual_seed(self.recipe.seed)
        torch.set_num_threads(self.recipe.threads)
        processor = AutoProcessor.from_pretrained(initial)
        model = AutoModelForImageTextToText.from_pretrained(initial, dtype=torch.float32)
        return processor, model

    def _state_path(self) -> Path:
        return self.work / "state.pt"

    def _save_state(self, model, head, optimizer, phase: str, step: int) -> None:
        import torch

        state = {
            "phase": phase,
            "step": step,
            "model": model.state_dict(),
            "head": head.state_dict() if head is not None else None,
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        partial = self._state_path().with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self._state_path())  # a kill mid-write keeps the previous state

    def _saved_state(self) -> dict[str, Any] | None:
        import torch

        if not self._state_path().exists():
            return None
        return torch.load(self._state_path(), weights_only=False)

    # -- data -----------------------------------------------------------------------------------

    def _scenes(self, phase: str, step: int, count: int):
        return [
            scene(split_seed(f"train-{phase}", step * count + i), self.recipe.scene_size)
            for i in range(count)
        ]

    def _vision_batch(self, processor, step: int):
        import torch

        scenes = self._scenes("vision", step, self.recipe.vision_batch)
        pixels = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
        index = {c.name: i for i, c in enumerate(CLASSES)}
        targets = torch.zeros(len(scenes), len(CLASSES))
        for row, drawn in enumerate(scenes):
            for label in drawn.labels:
                targets[row, index[label]] = 1.0
        return pixels["pixel_values"], pixels["image_grid_thw"], targets

    def _instruction_batches(self, processor, step: int):
        """One step's rows as (inputs, labels to learn, -100 elsewhere) batches: the short yes/no
        rows apart from the long list rows, so that neither pads to the other's length."""
        import torch

        scenes = self._scenes("instructions", step, self.recipe.batch)
        head, tail = chat_parts(processor)
        eos = processor.tokenizer.eos_token
        rows: dict[bool, list] = {True: [], False: []}
        for i, drawn in enumerate(scenes):
            rng = random.Random(split_seed("train-prompts", step * self.recipe.batch + i))
            if step < self.recipe.list_steps:
                examples = [self.maker.list_answer(drawn.labels, rng) for _ in range(self.recipe.list_rows)]
            else:
                examples = self.maker.examples(drawn.labels, rng)
            for example in examples:
                rows[example.decision_only].append((example, drawn.image))
        batches = []
        for decision_only, chosen in rows.items():
            if not chosen:
                continue
            texts = [head + e.prompt + tail + e.answer + eos for e, _ in chosen]
            inputs = processor(
                images=[image for _, image in chosen], text=texts, return_tensors="pt", padding=True
            )
            labels = torch.full_like(inputs["input_ids"], -100)
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
            for row, (example, _) in enumerate(chosen):
                n = len(processor.tokenizer(example.answer + eos, add_special_tokens=False)["input_ids"])
                end = lengths[row]  # right padding: the answer ends the row's real tokens
                learnt = end - n + 1 if decision_only else end
                labels[row, end - n : learnt] = inputs["input_ids"][row, end - n : learnt]
            batches.append((inputs, labels))
        return batches

    # -- the two phases -------------------------------------------------------------------------

    def run(self, stop_after: int | None = None) -> Path | None:
        """Trains (resuming a saved state) and writes the checkpoint. `stop_after` ends this run
        after that many steps of either phase, state saved, returning None (to split the work)."""
        import torch

        r = self.recipe
        budget = _StepBudget(stop_after)
        processor, model = self._load()
        visual = model.model.visual
        if r.vision_head == "names":
            head = name_scores(model.get_input_embeddings(), name_token_ids(processor.tokenizer))
        else:
            head = max_pooled_linear(model.config.text_config.hidden_size, len(CLASSES))
        saved = self._saved_state()
        phase, start = ("vision", 0) if saved is None else (saved["phase"], saved["step"])
        if saved is not None:
            model.load_state_dict(saved["model"])
            if saved["head"] is not None:
                head.load_state_dict(saved["head"])
            torch.set_rng_state(saved["torch_rng"])
            self.log(f"resuming {phase} at step {start}")

        if phase == "vision":

            def vision_loss(step: int) -> tuple[Any, int]:
                pixel_values, grid, targets = self._vision_batch(processor, step)
                features = model.model.get_image_features(pixel_values, grid).pooler_output
                return torch.nn.functional.binary_cross_entropy_with_logits(head(features), targets), len(
                    targets
                )

            # The head holds the input embeddings: names and image tokens learn one space.
            vision = _Phase("vision", r.vision_steps, r.vision_lr, [*visual.parameters(), *head.parameters()])
            if not self._train(vision, model, head, start, saved, vision_loss, budget, last=False):
                return None
            start, saved = 0, None
            if r.match_text_scale:
                match_text_scale(model, self._vision_batch(processor, 0))

        if r.freeze_vision:
            visual.requires_grad_(False)

        def instruction_loss(step: int) -> tuple[Any, int]:
            batches = self._instruction_batches(processor, step)
            rows = sum(len(labels) for _, labels in batches)
            loss = sum(
                row_mean_loss(model(**inputs).logits, labels) * (len(labels) / rows)
                for inputs, labels in batches
            )
            return loss, rows

        instructions = _Phase(
            "instructions", r.steps, r.lr, [p for p in model.parameters() if p.requires_grad]
        )
        if not self._train(
            instructions, model, None, start, saved, instruction_loss, budget, last=True, processor=processor
        ):
            return None
        return self._export(processor, model)

    def _train(
        self, phase, model, head, start, saved, loss_of_step, budget, last: bool, processor=None
    ) -> bool:
        """Runs `phase` from step `start` (the optimizer's state from `saved` when it is this
        phase's), saving the state every `checkpoint_every` steps. False when the step budget
        ran out first (state saved); the last phase's last step is never a stop."""
        import torch
        from tqdm import tqdm

        r = self.recipe
        optimizer = torch.optim.AdamW(phase.parameters, lr=phase.peak_lr, weight_decay=r.weight_decay)
        if saved is not None and saved["phase"] == phase.name:
            optimizer.load_state_dict(saved["optimizer"])
        model.train()
        bar = tqdm(range(start, phase.steps), initial=start, total=phase.steps, desc=phase.name, unit="step")
        started, seen = time.monotonic(), 0
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, phase.steps, phase.peak_lr, r.warmup_steps)
            loss, rows = loss_of_step(step)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(phase.parameters, 1.0)
            optimizer.step()
            seen += rows
            bar.set_postfix(loss=f"{loss.item():.4f}", ex_s=f"{seen / (time.monotonic() - started):.1f}")
            if processor is not None and r.track_every and (step + 1) % r.track_every == 0:
                self._track(processor, model, step + 1, loss.item())
                model.train()
            if (step + 1) % r.checkpoint_every == 0 or step + 1 == phase.steps:
                self._save_state(model, head, optimizer, phase.name, step + 1)
            if budget.spend() and (not last or step + 1 < phase.steps):
                self._save_state(model, head, optimizer, phase.name, step + 1)
                return False
        return True

    def _track(self, processor, model, step: int, loss: float) -> None:
        """Logs within-image AUC of P(yes) and the OF1 of multi-option (the whole vocabulary)
        and TagLLM on validation scenes to OUT.training/curve.jsonl."""
        from tagllm.demo_model.binding import within_image_auc

        scenes = [scene(split_seed("val", i), self.recipe.scene_size) for i in range(TRACKED_SCENES)]
        point = {"step": step, "loss": round(loss, 4)}
        for concepts in (False, True):
            auc = within_image_auc(processor, model, self.vocabulary, scenes, concepts)
            point["auc_concepts" if concepts else "auc_bare"] = round(auc, 4)
        for strategy in ("multi_option", "tagllm"):
            point[f"{strategy}_of1"] = round(self._strategy_of1(processor, model, scenes, strategy), 4)
        with (self.work / "curve.jsonl").open("a") as curve:
            curve.write(json.dumps(point) + "\n")
        self.log(json.dumps(point))

    def _strategy_of1(self, processor, model, scenes, strategy: str) -> float:
        """OF1 of a strategy with the model as it stands, asked the way the engine asks."""
        import io
        import tempfile

        from tagllm.eval.metrics import evaluate
        from tagllm.mllm.transformers_backend import TransformersMLLM
        from tagllm.strategies.base import StrategyOptions, tag_image

        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            processor.save_pretrained(folder)
            mllm = TransformersMLLM(folder, threads=self.recipe.threads)
            predictions, gold = {}, {}
            for i, drawn in enumerate(scenes):
                data = io.BytesIO()
                drawn.image.save(data, format="PNG")
                result = tag_image(data.getvalue(), self.vocabulary, StrategyOptions(strategy), mllm)
                predictions[str(i)] = {label.name: label.score for label in result.labels}
                gold[str(i)] = set(drawn.labels)
        return evaluate(predictions, gold, list(self.vocabulary.names), with_map=False).of1

    def export_saved(self) -> Path:
        """The checkpoint of the last saved state (to look at a run still in progress)."""
        processor, model = self._load()
        saved = self._saved_state()
        if saved is None:
            raise TrainingStateError(f"no saved state in {self.work}")
        model.load_state_dict(saved["model"])
        self.log(f"exporting {saved['phase']} step {saved['step']}")
        return self._export(processor, model)

    def _export(self, processor, model) -> Path:
        """The finished checkpoint: weights, processor, tokenizer, and what made it."""
        model.eval()
        if self.out.exists():
            shutil.rmtree(self.out)
        model.save_pretrained(self.out)
        processor.save_pretrained(self.out)
        (self.out / "recipe.json").write_text(json.dumps(dataclasses.asdict(self.recipe), indent=1))
        self.log(f"wrote {self.out}")
        return self.out


TRACKED_SCENES = 16


def row_mean_loss(logits, labels):
    """Cross-entropy averaged over each row's learnt tokens, then over rows: a one-token yes/no
    answer weighs as much as a list."""
    import torch

    shifted_logits, shifted_labels = logits[:, :-1].float(), labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(
        shifted_logits.transpose(1, 2), shifted_labels, ignore_index=-100, reduction="none"
    )
    counts = (shifted_labels != -100).sum(dim=1)
    rows = counts > 0
    return (per_token.sum(dim=1)[rows] / counts[rows]).mean()


def chat_parts(processor) -> tuple[str, str]:
    """The chat template around a user prompt with one image, as the serving path renders it."""
    sentinel = "\x00PROMPT\x00"
    conversation: Any = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": sentinel}]}]
    rendered = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    head, tail = rendered.split(sentinel)
    return head, tail
