"""Synthetic images of simple drawn objects with known COCO labels, for demos and tests.

Each class has a drawing; an image shows one to three of them on a plain background. The
labels are exact, so every bulk command (annotate, eval, train) runs end to end without
downloading a dataset.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]


def _sports_ball(d: ImageDraw.ImageDraw, b: Box) -> None:
    d.ellipse(b, fill=(240, 240, 240), outline=(20, 20, 20), width=3)
    x0, y0, x1, y1 = b
    d.line((x0, (y0 + y1) // 2, x1, (y0 + y1) // 2), fill=(20, 20, 20), width=3)


def _stop_sign(d: ImageDraw.ImageDraw, b: Box) -> None:
    x0, y0, x1, y1 = b
    w, h = x1 - x0, y1 - y0
    points = [
        (x0 + w * 0.3, y0), (x0 + w * 0.7, y0), (x1, y0 + h * 0.3), (x1, y0 + h * 0.7),
        (x0 + w * 0.7, y1), (x0 + w * 0.3, y1), (x0, y0 + h * 0.7), (x0, y0 + h * 0.3),
    ]  # fmt: skip
    d.polygon(points, fill=(200, 20, 20), outline=(255, 255, 255))


def _traffic_light(d: ImageDraw.ImageDraw, b: Box) -> None:
    x0, y0, x1, y1 = b
    cx, w = (x0 + x1) // 2, (x1 - x0) // 3
    d.rectangle((cx - w, y0, cx + w, y1), fill=(30, 30, 30))
    step = (y1 - y0) // 3
    for i, color in enumerate([(230, 30, 30), (240, 200, 20), (30, 200, 60)]):
        cy = y0 + step * i + step // 2
        r = min(w, step // 2) - 2
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)


def _tv(d: ImageDraw.ImageDraw, b: Box) -> None:
    x0, y0, x1, y1 = b
    d.rectangle((x0, y0, x1, y1 - (y1 - y0) // 6), fill=(20, 20, 20))
    d.rectangle((x0 + 6, y0 + 6, x1 - 6, y1 - (y1 - y0) // 6 - 6), fill=(60, 120, 200))
    cx = (x0 + x1) // 2
    d.rectangle((cx - 6, y1 - (y1 - y0) // 6, cx + 6, y1), fill=(20, 20, 20))


def _clock(d: ImageDraw.ImageDraw, b: Box) -> None:
    d.ellipse(b, fill=(255, 255, 240), outline=(40, 40, 40), width=4)
    x0, y0, x1, y1 = b
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    d.line((cx, cy, cx, y0 + (y1 - y0) // 5), fill=(0, 0, 0), width=3)
    d.line((cx, cy, x1 - (x1 - x0) // 4, cy), fill=(0, 0, 0), width=3)


def _kite(d: ImageDraw.ImageDraw, b: Box) -> None:
    x0, y0, x1, y1 = b
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    d.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=(240, 120, 30), outline=(80, 30, 0))
    d.line((cx, y1, cx - 10, y1 + 20), fill=(80, 30, 0), width=2)


def _pizza(d: ImageDraw.ImageDraw, b: Box) -> None:
    d.ellipse(b, fill=(230, 180, 80), outline=(150, 90, 30), width=5)
    x0, y0, x1, y1 = b
    rng = random.Random(x0 * 7 + y0)
    w, h = x1 - x0, y1 - y0
    r = max(1, w // 12)
    for _ in range(6):
        px, py = x0 + int(w * rng.uniform(0.25, 0.65)), y0 + int(h * rng.uniform(0.25, 0.65))
        d.ellipse((px, py, px + 2 * r, py + 2 * r), fill=(180, 30, 30))


def _book(d: ImageDraw.ImageDraw, b: Box) -> None:
    x0, y0, x1, y1 = b
    d.rectangle((x0, y0, x1, y1), fill=(40, 80, 160), outline=(10, 20, 60), width=3)
    d.line((x0 + 8, y0, x0 + 8, y1), fill=(240, 240, 240), width=3)


DRAWINGS: dict[str, Callable[[ImageDraw.ImageDraw, Box], None]] = {
    "sports ball": _sports_ball,
    "stop sign": _stop_sign,
    "traffic light": _traffic_light,
    "tv": _tv,
    "clock": _clock,
    "kite": _kite,
    "pizza": _pizza,
    "book": _book,
}


def draw_image(labels: list[str], size: int = 256, seed: int = 0) -> Image.Image:
    rng = random.Random(seed)
    background = tuple(rng.randint(170, 235) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    cell = size // 2
    cells = rng.sample([(0, 0), (1, 0), (0, 1), (1, 1)], k=len(labels))
    for label, (cx, cy) in zip(labels, cells, strict=True):
        pad = rng.randint(max(1, cell // 16), max(2, cell // 6))
        box = (cx * cell + pad, cy * cell + pad, (cx + 1) * cell - pad, (cy + 1) * cell - pad)
        DRAWINGS[label](draw, box)
    return image


def generate(out: Path, count: int, seed: int = 0, size: int = 256, classes: list[str] | None = None) -> Path:
    """Write `count` PNGs to out/images and their labels to out/annotations.json (COCO style)."""
    classes = classes or sorted(DRAWINGS)
    unknown = set(classes) - set(DRAWINGS)
    if unknown:
        raise ValueError(f"no drawing for {sorted(unknown)}; available: {sorted(DRAWINGS)}")
    rng = random.Random(seed)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    category_id = {c["name"]: c["id"] for c in categories}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        labels = rng.sample(classes, k=rng.randint(1, min(3, len(classes))))
        name = f"synthetic_{index:06d}.png"
        draw_image(labels, size=size, seed=rng.randrange(1 << 30)).save(images_dir / name)
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        for label in labels:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": index + 1, "category_id": category_id[label]}
            )
    annotation_file = out / "annotations.json"
    annotation_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}, indent=1)
    )
    return annotation_file
