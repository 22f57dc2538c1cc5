"""Multi-label classifier training: ResNet, asymmetric loss, AdamW, one-cycle schedule, weight EMA.

The paper trains a ResNet-101 on the annotations and reports validation mAP; the same recipe
runs here with any depth and width (transformers builds ResNets from a config, no download and
no torchvision), so a small network trains on a CPU in tests.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import ResNetConfig, ResNetModel

from tagllm.eval.metrics import evaluate
from tagllm.train.backbones import BACKBONES

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    backbone: str = "resnet101"
    # A local Hugging Face ResNet checkpoint (e.g. microsoft/resnet-101, copied to the machine) to
    # start from instead of random weights; it decides the architecture. Nothing is downloaded.
    pretrained: str = ""
    image_size: int = 224
    epochs: int = 40
    # The paper's batch; gradients of micro-batches add up to it where memory is short (the loss is
    # a sum, so the step is the full batch's; batch-norm statistics are the micro-batches').
    batch_size: int = 128
    micro_batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    ema_decay: float = 0.9997
    gamma_negative: float = 4.0
    gamma_positive: float = 0.0
    clip: float = 0.05
    seed: int = 0


class AsymmetricLoss(nn.Module):
    """ASL (Ridnik et al., 2021): focusing that down-weights easy negatives, plus probability clipping."""

    def __init__(self, gamma_negative: float = 4.0, gamma_positive: float = 0.0, clip: float = 0.05) -> None:
        super().__init__()
        self.gamma_negative, self.gamma_positive, self.clip = gamma_negative, gamma_positive, clip

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        positive = torch.sigmoid(logits)
        negative = 1 - positive
        if self.clip:
            negative = (negative + self.clip).clamp(max=1)
        loss = targets * torch.log(positive.clamp(min=1e-8)) + (1 - targets) * torch.log(
            negative.clamp(min=1e-8)
        )
        pt = positive * targets + negative * (1 - targets)
        gamma = self.gamma_positive * targets + self.gamma_negative * (1 - targets)
        return -(loss * torch.pow(1 - pt, gamma)).sum()


class Classifier(nn.Module):
    def __init__(self, backbone: str, classes: int, pretrained: str = "") -> None:
        super().__init__()
        if pretrained:
            if not (Path(pretrained) / "config.json").is_file():
                raise ValueError(f"{pretrained} is not a checkpoint directory (no config.json)")
            self.backbone = ResNetModel.from_pretrained(pretrained, local_files_only=True)
        elif backbone in BACKBONES:
            self.backbone = ResNetModel(ResNetConfig(**BACKBONES[backbone]))
        else:
            raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        self.head = nn.Linear(list(self.backbone.config.hidden_sizes or [])[-1], classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        pooled = self.backbone(pixel_values=pixels).pooler_output.flatten(1)
        return self.head(pooled)


class WeightEMA:
    """Exponential moving average of the weights, with the usual warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema, live in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if ema.dtype.is_floating_point:
                ema.mul_(decay).add_(live.detach(), alpha=1 - decay)
            else:
                ema.copy_(live)


def load_image(path: Path, size: int, flip: bool = False) -> torch.Tensor:
    image = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (array - MEAN) / STD


@dataclasses.dataclass(frozen=True)
class Example:
    path: Path
    labels: frozenset[str]


def _batch(examples: list[Example], classes: list[str], size: int, train: bool, rng: random.Random):
    pixels = torch.stack([load_image(e.path, size, flip=train and rng.random() < 0.5) for e in examples])
    targets = torch.tensor([[float(c in e.labels) for c in classes] for e in examples])
    return pixels, targets


@torch.no_grad()
def validation_map(
    model: nn.Module, examples: list[Example], classes: list[str], settings: TrainSettings
) -> float:
    model.eval()
    predictions = {}
    rng = random.Random(0)
    for start in range(0, len(examples), settings.batch_size):
        chunk = examples[start : start + settings.batch_size]
        pixels, _ = _batch(chunk, classes, settings.image_size, False, rng)
        probabilities = torch.sigmoid(model(pixels))
        for example, row in zip(chunk, probabilities.tolist(), strict=True):
            predictions[str(example.path)] = dict(zip(classes, row, strict=True))
    gold = {str(e.path): set(e.labels) for e in examples}
    return evaluate(predictions, gold, classes).map or 0.0


def accumulate_gradients(
    model: nn.Module, criterion: nn.Module, pixels: torch.Tensor, targets: torch.Tensor, micro_batch_size: int
) -> float:
    """Backpropagates the batch in micro-batches; with a summed loss the gradients equal the whole
    batch's. Returns the batch's loss."""
    total = 0.0
    for start in range(0, len(pixels), micro_batch_size):
        rows = slice(start, start + micro_batch_size)
        loss = criterion(model(pixels[rows]), targets[rows])
        loss.backward()
        total += loss.item()
    return total


def train(
    train_set: list[Example],
    val_set: list[Example],
    classes: list[str],
    settings: TrainSettings,
    log: Callable[[str], None] = print,
) -> tuple[dict, nn.Module]:
    """Trains and returns (result, the best weights of live and EMA model). Ctrl-C stops at once
    and returns the best of the epochs that finished (`result["interrupted"]`); before the first
    one finished it propagates."""
    if not train_set or not val_set:
        raise ValueError("training needs at least one training and one validation image")
    if settings.micro_batch_size < 1 or settings.batch_size < 1:
        raise ValueError("batch_size and micro_batch_size must be at least 1")
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    model = Classifier(settings.backbone, len(classes), settings.pretrained)
    ema = WeightEMA(model, settings.ema_decay)
    criterion = AsymmetricLoss(settings.gamma_negative, settings.gamma_positive, settings.clip)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    steps = -(-len(train_set) // settings.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, epochs=settings.epochs, steps_per_epoch=steps, pct_start=0.2
    )
    start = time.monotonic()
    best: dict[str, Any] = {"map": -1.0}
    history: list[dict[str, float]] = []
    interrupted = False
    epoch = 0
    try:
        for epoch in range(1, settings.epochs + 1):
            model.train()
            order = train_set[:]
            rng.shuffle(order)
            total = 0.0
            for index in range(0, len(order), settings.batch_size):
                pixels, targets = _batch(
                    order[index : index + settings.batch_size], classes, settings.image_size, True, rng
                )
                optimizer.zero_grad()
                total += accumulate_gradients(model, criterion, pixels, targets, settings.micro_batch_size)
                optimizer.step()
                scheduler.step()
                ema.update(model)
            live_map = validation_map(model, val_set, classes, settings)
            ema_map = validation_map(ema.model, val_set, classes, settings)
            history.append(
                {"epoch": epoch, "loss": total / len(order), "val_map": live_map, "val_map_ema": ema_map}
            )
            loss = total / len(order)
            log(
                f"epoch {epoch}/{settings.epochs}: loss {loss:.4f}  "
                f"val mAP {100 * live_map:.1f}  EMA {100 * ema_map:.1f}"
            )
            for candidate, value in ((model, live_map), (ema.model, ema_map)):
                if value > best["map"]:
                    best = {"map": value, "epoch": epoch, "state": copy.deepcopy(candidate.state_dict())}
    except KeyboardInterrupt:
        if "state" not in best:
            raise
        log(f"interrupted in epoch {epoch}; keeping the best weights so far (epoch {best['epoch']})")
        interrupted = True
    final = Classifier(settings.backbone, len(classes), settings.pretrained)
    final.load_state_dict(best["state"])
    result = {
        "val_map": best["map"],
        "best_epoch": best["epoch"],
        "interrupted": interrupted,
        "history": history,
        "classes": classes,
        "train_images": len(train_set),
        "val_images": len(val_set),
        "seconds": time.monotonic() - start,
        "settings": dataclasses.asdict(settings),
    }
    return result, final
