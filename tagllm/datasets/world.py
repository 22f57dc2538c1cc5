"""A synthetic world whose truth is known: twenty kinds of object drawn procedurally in scenes.

It is the world the demo model is trained on and measured in. It has the traits that make the
TagLLM method matter: classes that look alike (an orange and a sports ball, a clock and a
plate, a tv and a laptop, a car and a bus), classes that appear together (a street: traffic
light, stop sign, car; a meal: plate, cup, pizza), and small, rotated, half-hidden objects on
varied backgrounds with clutter. Class names are COCO names, but for `plate`, which COCO lacks.

Scenes come from a seed: `scene(seed)` always draws the same image with the same labels, and
`split_seed(split, index)` keeps the training split and the held-out split apart for good.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Painter = Callable[[ImageDraw.ImageDraw, int, random.Random], None]
VOCABULARY_NAME = "world"


def _jitter(rng: random.Random, color: Color, amount: int = 30) -> Color:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in color)
    return (r, g, b)


# Each painter draws its object filling a square canvas of side s (transparent elsewhere).


def _orange(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 4, s - 2, s - 2), fill=_jitter(rng, (245, 140, 20), 15), outline=(200, 100, 10), width=2)
    for _ in range(8):  # dimpled peel
        x, y = rng.randint(s // 4, 3 * s // 4), rng.randint(s // 4, 3 * s // 4)
        d.point((x, y), fill=(210, 110, 10))
    d.ellipse((s // 2 - s // 10, 0, s // 2 + s // 6, s // 8), fill=(40, 140, 40))  # leaf


def _sports_ball(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    base = rng.choice([(240, 240, 240), (230, 120, 40), (250, 230, 60), (60, 120, 220)])
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, base, 15), outline=(20, 20, 20), width=2)
    d.arc((-s // 3, 2, s // 2, s - 2), -60, 60, fill=(20, 20, 20), width=2)
    d.arc((s // 2, 2, s + s // 3, s - 2), 120, 240, fill=(20, 20, 20), width=2)


def _apple(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 30), (120, 190, 50)]), 20)
    d.ellipse((2, s // 6, s // 2 + 4, s - 2), fill=color)
    d.ellipse((s // 2 - 4, s // 6, s - 2, s - 2), fill=color)
    d.line((s // 2, s // 5, s // 2 + 3, 2), fill=(90, 50, 20), width=3)  # stem


def _banana(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, (245, 215, 50), 15)
    d.chord((2, -s // 2, s - 2, s - 8), 20, 160, fill=color, outline=(150, 120, 20), width=2)
    d.chord((s // 6, -s // 2 + 6, s - s // 6, s - 22), 20, 160, fill=(0, 0, 0, 0))


def _clock(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (250, 250, 240), 8), outline=(30, 30, 30), width=3)
    c = s // 2
    for i in range(12):  # hour ticks
        a = i * math.pi / 6
        inner, outer = 0.38 * s, 0.45 * s
        cos, sin = math.cos(a), math.sin(a)
        d.line(
            (c + inner * cos, c + inner * sin, c + outer * cos, c + outer * sin), fill=(30, 30, 30), width=1
        )
    hour, minute = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
    d.line((c, c, c + 0.22 * s * math.cos(hour), c + 0.22 * s * math.sin(hour)), fill=(0, 0, 0), width=3)
    d.line((c, c, c + 0.36 * s * math.cos(minute), c + 0.36 * s * math.sin(minute)), fill=(0, 0, 0), width=2)


def _plate(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (245, 245, 245), 8), outline=(150, 150, 160), width=2)
    d.ellipse((s // 5, s // 5, s - s // 5, s - s // 5), outline=(190, 190, 200), width=2)  # the rim


def _donut(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=_jitter(rng, (190, 120, 60), 15))
    d.ellipse((s // 8, s // 8, s - s // 8, s - s // 8), fill=_jitter(rng, (240, 130, 180), 20))  # icing
    d.ellipse((s // 3 + 2, s // 3 + 2, s - s // 3 - 2, s - s // 3 - 2), fill=(0, 0, 0, 0))  # the hole


def _pizza(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.ellipse((2, 2, s - 2, s - 2), fill=(225, 170, 80), outline=(160, 100, 40), width=4)
    for _ in range(6):
        x, y, r = rng.randint(s // 4, 3 * s // 4), rng.randint(s // 4, 3 * s // 4), max(2, s // 12)
        d.ellipse((x - r, y - r, x + r, y + r), fill=(180, 30, 30))


def _cup(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 240, 240), (60, 110, 200), (200, 60, 60)]), 15)
    d.polygon([(s // 6, s // 5), (3 * s // 4, s // 5), (2 * s // 3, s - 4), (s // 4, s - 4)], fill=color)
    d.arc((s // 2, s // 3, s - 2, 2 * s // 3 + 4), -90, 90, fill=color, width=max(2, s // 14))  # handle


def _bottle(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(40, 140, 60), (120, 70, 30), (90, 160, 220)]), 15)
    d.rectangle((s // 3, s // 3, 2 * s // 3, s - 2), fill=color)
    d.rectangle((s // 2 - s // 12, 2, s // 2 + s // 12, s // 3), fill=color)
    d.rectangle((s // 2 - s // 10, 2, s // 2 + s // 10, s // 12), fill=(200, 200, 200))  # cap


def _car(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 30), (30, 80, 200), (230, 230, 230), (40, 40, 40)]), 20)
    d.rectangle((2, s // 2, s - 2, 3 * s // 4), fill=color)
    d.polygon([(s // 5, s // 2), (s // 3, s // 4), (2 * s // 3, s // 4), (4 * s // 5, s // 2)], fill=color)
    d.rectangle((s // 3 + 2, s // 4 + 4, s // 2 - 2, s // 2), fill=(170, 210, 240))  # window
    for x in (s // 4, 3 * s // 4):
        d.ellipse((x - s // 8, 3 * s // 4 - s // 8, x + s // 8, 3 * s // 4 + s // 8), fill=(20, 20, 20))


def _bus(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 190, 30), (200, 40, 40), (40, 120, 200)]), 15)
    d.rectangle((2, s // 4, s - 2, 3 * s // 4), fill=color, outline=(40, 40, 40), width=2)
    for i in range(4):  # a row of windows
        x = 6 + i * (s - 10) // 4
        d.rectangle((x, s // 4 + 5, x + (s - 10) // 4 - 4, s // 2 - 2), fill=(170, 210, 240))
    for x in (s // 5, 4 * s // 5):
        d.ellipse((x - s // 10, 3 * s // 4 - s // 10, x + s // 10, 3 * s // 4 + s // 10), fill=(20, 20, 20))


def _traffic_light(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.rectangle((s // 3, 2, 2 * s // 3, s - 2), fill=(30, 30, 30))
    step = (s - 4) // 3
    lit = rng.randrange(3)
    for i, color in enumerate([(230, 30, 30), (240, 200, 20), (30, 200, 60)]):
        cy, r = 2 + step * i + step // 2, min(s // 6, step // 2) - 1
        shade = color if i == lit else tuple(c // 3 for c in color)
        d.ellipse((s // 2 - r, cy - r, s // 2 + r, cy + r), fill=shade)


def _stop_sign(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    c, r = s / 2, s / 2 - 2
    angles = [math.pi / 8 + i * math.pi / 4 for i in range(8)]
    points = [(c + r * math.cos(a), c + r * math.sin(a)) for a in angles]
    d.polygon(points, fill=_jitter(rng, (200, 20, 20), 12), outline=(255, 255, 255))
    d.rectangle((s // 4, s // 2 - s // 14, 3 * s // 4, s // 2 + s // 14), fill=(255, 255, 255))


def _fire_hydrant(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(210, 30, 30), (240, 200, 30)]), 15)
    d.rectangle((s // 3, s // 4, 2 * s // 3, s - 6), fill=color)
    d.ellipse((s // 3, s // 8, 2 * s // 3, s // 3), fill=color)
    d.rectangle((s // 5, s // 2 - s // 12, 4 * s // 5, s // 2 + s // 12), fill=color)  # outlets
    d.rectangle((s // 4, s - 8, 3 * s // 4, s - 2), fill=(90, 90, 90))


def _tv(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    d.rectangle((2, s // 8, s - 2, 3 * s // 4), fill=(25, 25, 25))
    d.rectangle((6, s // 8 + 4, s - 6, 3 * s // 4 - 4), fill=_jitter(rng, (70, 130, 200), 40))
    d.rectangle((s // 2 - 3, 3 * s // 4, s // 2 + 3, s - 6), fill=(25, 25, 25))  # stand
    d.rectangle((s // 3, s - 6, 2 * s // 3, s - 2), fill=(25, 25, 25))


def _laptop(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    body = _jitter(rng, rng.choice([(180, 180, 190), (40, 40, 45)]), 10)
    d.rectangle((s // 6, s // 6, 5 * s // 6, 3 * s // 5), fill=body)
    d.rectangle(
        (s // 6 + 4, s // 6 + 4, 5 * s // 6 - 4, 3 * s // 5 - 3), fill=_jitter(rng, (90, 160, 220), 40)
    )
    d.polygon(
        [(s // 6, 3 * s // 5), (5 * s // 6, 3 * s // 5), (s - 2, 4 * s // 5), (2, 4 * s // 5)], fill=body
    )
    for row in range(2):  # keys
        y = 3 * s // 5 + 3 + row * 5
        d.line((s // 4, y, 3 * s // 4, y), fill=(90, 90, 90), width=1)


def _book(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(40, 80, 160), (160, 40, 40), (40, 130, 70)]), 20)
    d.rectangle((s // 5, 4, 4 * s // 5, s - 4), fill=color, outline=(20, 20, 20), width=2)
    d.line((s // 5 + 6, 4, s // 5 + 6, s - 4), fill=(240, 240, 240), width=3)  # the spine
    d.rectangle((s // 3 + 4, s // 4, 2 * s // 3, s // 4 + 5), fill=(240, 240, 220))  # title


def _kite(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(240, 120, 30), (220, 40, 120), (60, 160, 220)]), 20)
    c = s // 2
    d.polygon(
        [(c, 2), (s - 6, c - s // 8), (c, 3 * s // 4), (6, c - s // 8)], fill=color, outline=(60, 30, 0)
    )
    d.line((c, 2, c, 3 * s // 4), fill=(60, 30, 0), width=1)
    d.line((c, 3 * s // 4, c - s // 6, s - 2), fill=(60, 30, 0), width=2)  # the tail


def _umbrella(d: ImageDraw.ImageDraw, s: int, rng: random.Random) -> None:
    color = _jitter(rng, rng.choice([(200, 30, 60), (40, 60, 160), (30, 30, 30), (240, 200, 30)]), 20)
    d.pieslice((2, s // 8, s - 2, s - s // 8), 180, 360, fill=color)
    d.line((s // 2, s // 2, s // 2, s - 6), fill=(60, 60, 60), width=2)
    d.arc((s // 2 - s // 8, s - s // 4 - 6, s // 2, s - 2), 0, 180, fill=(60, 60, 60), width=2)  # handle


@dataclasses.dataclass(frozen=True)
class WorldClass:
    name: str
    painter: Painter
    theme: str
    super_category: str
    # Classes it is easily taken for, and what sets it apart.
    similar: tuple[str, ...]
    description: str
    # Its usual size, as a fraction of the image side.
    size: tuple[float, float] = (0.22, 0.42)


CLASSES: tuple[WorldClass, ...] = (
    WorldClass("car", _car, "street", "vehicle", ("bus",), "small car on four wheels"),
    WorldClass("bus", _bus, "street", "vehicle", ("car",), "long bus with a row of windows", (0.3, 0.5)),
    WorldClass(
        "traffic light",
        _traffic_light,
        "street",
        "outdoor",
        ("fire hydrant",),
        "dark post with red, yellow and green lamps",
    ),
    WorldClass("stop sign", _stop_sign, "street", "outdoor", ("traffic light",), "red octagonal sign"),
    WorldClass(
        "fire hydrant",
        _fire_hydrant,
        "street",
        "outdoor",
        ("bottle",),
        "short fire hydrant with side outlets",
    ),
    WorldClass(
        "plate", _plate, "meal", "kitchen", ("clock", "donut"), "round plate with a rim and nothing on it"
    ),
    WorldClass("cup", _cup, "meal", "kitchen", ("bottle",), "drinking cup with a handle"),
    WorldClass(
        "bottle", _bottle, "meal", "kitchen", ("cup", "fire hydrant"), "bottle with a narrow neck and a cap"
    ),
    WorldClass("pizza", _pizza, "meal", "food", ("donut", "orange"), "round pizza with red toppings"),
    WorldClass("donut", _donut, "meal", "food", ("plate", "pizza"), "ring-shaped donut with icing"),
    WorldClass(
        "orange", _orange, "fruit", "food", ("sports ball", "apple"), "orange citrus fruit with a leaf"
    ),
    WorldClass("apple", _apple, "fruit", "food", ("orange",), "red or green apple with a stem"),
    WorldClass("banana", _banana, "fruit", "food", ("kite",), "curved yellow banana"),
    WorldClass("tv", _tv, "room", "electronic", ("laptop",), "television screen on a stand"),
    WorldClass(
        "laptop", _laptop, "room", "electronic", ("tv", "book"), "open laptop computer with a keyboard"
    ),
    WorldClass("clock", _clock, "room", "indoor", ("plate",), "round clock with hands and hour marks"),
    WorldClass("book", _book, "room", "indoor", ("laptop",), "closed book with a spine"),
    WorldClass("sports ball", _sports_ball, "park", "sports", ("orange", "clock"), "ball with curved seams"),
    WorldClass("kite", _kite, "park", "sports", ("umbrella",), "diamond-shaped kite with a tail"),
    WorldClass("umbrella", _umbrella, "park", "accessory", ("kite",), "open umbrella with a curved handle"),
)
BY_NAME = {c.name: c for c in CLASSES}
THEMES = {
    theme: [c.name for c in CLASSES if c.theme == theme] for theme in dict.fromkeys(c.theme for c in CLASSES)
}


@dataclasses.dataclass(frozen=True)
class Scene:
    image: Image.Image
    labels: tuple[str, ...]  # sorted, each once


def split_seed(split: str, index: int) -> int:
    """The seed of scene `index` of a split; different splits never share a seed."""
    return int.from_bytes(hashlib.sha256(f"tagllm-world/{split}/{index}".encode()).digest()[:8], "big")


def _background(rng: random.Random, size: int) -> Image.Image:
    kind = rng.choice(["plain", "gradient", "stripes", "speckle"])
    base = tuple(rng.randint(150, 240) for _ in range(3))
    image = Image.new("RGB", (size, size), base)
    d = ImageDraw.Draw(image)
    if kind == "gradient":
        other = tuple(rng.randint(120, 240) for _ in range(3))
        for y in range(size):
            t = y / size
            d.line(
                (0, y, size, y), fill=tuple(int(a + (b - a) * t) for a, b in zip(base, other, strict=True))
            )
    elif kind == "stripes":
        other = tuple(max(0, c - rng.randint(15, 40)) for c in base)
        step = rng.randint(8, 24)
        for x in range(-size, size, step * 2):
            d.polygon([(x, 0), (x + step, 0), (x + step + size, size), (x + size, size)], fill=other)
    elif kind == "speckle":
        for _ in range(size * 2):
            x, y = rng.randrange(size), rng.randrange(size)
            d.point((x, y), fill=tuple(max(0, c - rng.randint(20, 60)) for c in base))
    return image


def _clutter(d: ImageDraw.ImageDraw, rng: random.Random, size: int) -> None:
    """Marks that are no object: lines and small blobs."""
    for _ in range(rng.randint(0, 4)):
        color = tuple(rng.randint(60, 200) for _ in range(3))
        if rng.random() < 0.5:
            d.line(
                [(rng.randrange(size), rng.randrange(size)) for _ in range(2)],
                fill=color,
                width=rng.randint(1, 3),
            )
        else:
            x, y, r = rng.randrange(size), rng.randrange(size), rng.randint(2, size // 20)
            d.rectangle((x - r, y - r, x + r, y + r), fill=color)


def _pick_labels(rng: random.Random) -> list[str]:
    count = rng.choices([1, 2, 3, 4], weights=[3, 4, 3, 1])[0]
    theme = THEMES[rng.choice(list(THEMES))]
    labels: list[str] = []
    while len(labels) < count:
        pool = theme if rng.random() < 0.8 else [c.name for c in CLASSES]
        name = rng.choice(pool)
        if name not in labels:
            labels.append(name)
    return labels


def scene(seed: int, size: int = 224) -> Scene:
    """The scene of `seed`: its image and the labels of every object drawn in it."""
    rng = random.Random(seed)
    image = _background(rng, size)
    _clutter(ImageDraw.Draw(image), rng, size)
    coverage = Image.new("L", (size, size), 0)  # which object owns each pixel, by index + 1
    placed: list[tuple[str, int]] = []
    for index, name in enumerate(_pick_labels(rng)):
        cls = BY_NAME[name]
        low, high = cls.size
        side = int(size * rng.uniform(low * 0.8, high))
        layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        cls.painter(ImageDraw.Draw(layer), side, rng)
        layer = layer.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC, expand=True)
        x = rng.randint(-layer.width // 6, size - layer.width + layer.width // 6)
        y = rng.randint(-layer.height // 6, size - layer.height + layer.height // 6)
        image.paste(layer, (x, y), layer)
        mask = layer.getchannel("A").point(lambda a: 255 if a > 128 else 0)
        coverage.paste(index + 1, (x, y), mask)
        placed.append((name, int(mask.histogram()[255])))
    # An object counts when at least 40% of it is still visible (later objects may hide it).
    counts = coverage.histogram()
    labels = sorted({name for i, (name, area) in enumerate(placed) if area and counts[i + 1] >= 0.4 * area})
    return Scene(image, tuple(labels))


def vocabulary_document() -> dict[str, Any]:
    """The built-in `world` vocabulary: every class, its concept knowledge, and the themes as
    co-occurrence groups."""
    return {
        "name": VOCABULARY_NAME,
        "version": "1",
        "description": "The synthetic world of the demo model: twenty drawn object classes.",
        "provenance": {
            "knowledge": "written with the world's drawings",
            "groups": "the world's scene themes",
        },
        "categories": [
            {
                "name": c.name,
                "super_category": c.super_category,
                "similar": list(c.similar),
                "descriptions": [c.description],
            }
            for c in CLASSES
        ],
        "groups": [{"name": theme, "categories": names} for theme, names in THEMES.items()],
    }


def vocabulary_yaml() -> str:
    """The text of the built-in vocabulary file `tagllm/vocab/builtin/world.yaml` (a test keeps the
    two equal: `python -m tagllm.datasets.world > tagllm/vocab/builtin/world.yaml` rewrites it)."""
    import yaml

    header = "# The synthetic world of the demo model, written by `python -m tagllm.datasets.world`.\n"
    return header + yaml.safe_dump(vocabulary_document(), sort_keys=False, width=100, allow_unicode=True)


def generate_world(out: Path, count: int, split: str = "heldout", size: int = 224) -> Path:
    """Write `count` scenes of `split` to out/images and their labels to out/annotations.json
    (COCO style), like `datasets.synthetic.generate`."""
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": c.name} for i, c in enumerate(CLASSES)]
    category_id = {c["name"]: c["id"] for c in categories}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(count):
        drawn = scene(split_seed(split, index), size)
        name = f"{split}_{index:06d}.png"
        drawn.image.save(images_dir / name)
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        for label in drawn.labels:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": index + 1, "category_id": category_id[label]}
            )
    annotation_file = out / "annotations.json"
    annotation_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return annotation_file


if __name__ == "__main__":
    print(vocabulary_yaml(), end="")
