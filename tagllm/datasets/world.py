"""A synthetic world whose truth is known: 43 kinds of object drawn procedurally in scenes.

It is the world the demo model is trained on and measured in. It has the traits that make the
TagLLM method matter:
- classes that look alike, within a theme (a fork, a knife and a spoon; a car, a bus and a
  truck) and across themes (a plate and a frisbee, broccoli and a potted plant, a vase and a
  bottle);
- strong themes (street, meal, market, room, park): most of a scene's 2 to 6 objects come from
  one theme, so classes co-occur and grouping by co-occurrence has something to find;
- many names: a prompt listing all 43 is long, and a list answer must read which names it was
  given;
- small, rotated, half-hidden objects on varied backgrounds with clutter.
Class names are COCO names, but for `plate`, which COCO lacks.

Scenes come from a seed: `scene(seed)` always draws the same image with the same labels, and
`split_seed(split, index)` keeps the training split and the held-out split apart for good.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tagllm.datasets.world_painters import PAINTERS, Painter

VOCABULARY_NAME = "world"
# The world's random partition (the RandP ablation), declared: the groups the demo model was
# trained on, drawn once (seeded by the uncalibrated vocabulary's content, as RandP was drawn
# then) and fixed here, so that no change to how a partition is drawn redraws them.
RANDOM_GROUPS = (
    ("bench", "motorcycle", "tv", "stop sign", "potted plant", "orange", "sandwich", "pizza", "cell phone"),
    (
        "wine glass",
        "vase",
        "hot dog",
        "laptop",
        "fork",
        "truck",
        "bowl",
        "umbrella",
        "remote",
        "keyboard",
        "mouse",
        "clock",
    ),
    ("cup", "apple", "banana", "book", "broccoli", "carrot"),
    (
        "frisbee",
        "car",
        "spoon",
        "traffic light",
        "sports ball",
        "fire hydrant",
        "cake",
        "plate",
        "bicycle",
        "donut",
        "parking meter",
    ),
    ("bus", "bottle", "chair", "kite", "knife"),
)


@dataclasses.dataclass(frozen=True)
class WorldClass:
    name: str
    theme: str
    super_category: str
    # Classes it is easily taken for, and what sets it apart.
    similar: tuple[str, ...]
    description: str
    # Its usual size, as a fraction of the image side.
    size: tuple[float, float] = (0.2, 0.36)

    @property
    def painter(self) -> Painter:
        return PAINTERS[self.name]


SMALL = (0.15, 0.27)
MEDIUM = (0.2, 0.36)
LARGE = (0.26, 0.42)
_ROWS: tuple[tuple[str, str, str, tuple[str, ...], str, tuple[float, float]], ...] = (
    # name, theme, super category, look-alikes, concept description, size
    ("car", "street", "vehicle", ("bus", "truck"), "small car on four wheels", MEDIUM),
    ("bus", "street", "vehicle", ("car", "truck"), "long bus with a row of windows", LARGE),
    ("truck", "street", "vehicle", ("bus", "car"), "truck with a cab and a box cargo body", LARGE),
    ("bicycle", "street", "vehicle", ("motorcycle",), "bicycle with a thin frame and thin wheels", MEDIUM),
    ("motorcycle", "street", "vehicle", ("bicycle",), "motorcycle with thick wheels and an engine", MEDIUM),
    (
        "traffic light",
        "street",
        "outdoor",
        ("parking meter", "fire hydrant"),
        "dark post with red, yellow and green lamps",
        MEDIUM,
    ),
    ("stop sign", "street", "outdoor", ("traffic light",), "red octagonal sign", MEDIUM),
    (
        "fire hydrant",
        "street",
        "outdoor",
        ("parking meter", "bottle"),
        "short fire hydrant with side outlets",
        MEDIUM,
    ),
    (
        "parking meter",
        "street",
        "outdoor",
        ("fire hydrant", "traffic light"),
        "grey meter head with a dial on a thin post",
        MEDIUM,
    ),
    (
        "plate",
        "meal",
        "kitchen",
        ("clock", "frisbee", "bowl"),
        "round plate with a rim and nothing on it",
        MEDIUM,
    ),
    ("cup", "meal", "kitchen", ("bowl", "wine glass", "vase"), "drinking cup with a handle", SMALL),
    (
        "bottle",
        "meal",
        "kitchen",
        ("vase", "wine glass", "fire hydrant"),
        "bottle with a narrow neck and a cap",
        SMALL,
    ),
    ("wine glass", "meal", "kitchen", ("cup", "bottle"), "glass bowl on a thin stem and a foot", SMALL),
    ("bowl", "meal", "kitchen", ("cup", "plate"), "deep bowl seen from the side, with no handle", MEDIUM),
    ("fork", "meal", "kitchen", ("knife", "spoon"), "fork with tines", SMALL),
    ("knife", "meal", "kitchen", ("fork", "spoon"), "knife with a flat blade and a handle", SMALL),
    ("spoon", "meal", "kitchen", ("fork", "knife"), "spoon with an oval bowl", SMALL),
    ("pizza", "meal", "food", ("cake", "donut", "orange"), "round pizza with red toppings", MEDIUM),
    ("donut", "meal", "food", ("plate", "pizza", "cake"), "ring-shaped donut with icing", SMALL),
    ("cake", "meal", "food", ("sandwich", "pizza"), "layered cake with frosting and a candle", MEDIUM),
    ("sandwich", "meal", "food", ("cake", "hot dog", "book"), "triangle of bread with a filling", MEDIUM),
    ("orange", "market", "food", ("sports ball", "apple"), "orange citrus fruit with a leaf", SMALL),
    ("apple", "market", "food", ("orange",), "red or green apple with a stem", SMALL),
    ("banana", "market", "food", ("carrot", "hot dog", "kite"), "curved yellow banana", MEDIUM),
    ("broccoli", "market", "food", ("potted plant",), "green broccoli florets on a pale stem", MEDIUM),
    ("carrot", "market", "food", ("banana",), "orange carrot tapering to a point, with green leaves", SMALL),
    ("hot dog", "market", "food", ("banana", "sandwich"), "sausage in a long bun", MEDIUM),
    ("tv", "room", "electronic", ("laptop", "keyboard"), "television screen on a stand", LARGE),
    (
        "laptop",
        "room",
        "electronic",
        ("tv", "keyboard", "book"),
        "open laptop computer with a screen and a keyboard",
        MEDIUM,
    ),
    (
        "keyboard",
        "room",
        "electronic",
        ("laptop", "remote"),
        "flat keyboard with rows of keys and no screen",
        MEDIUM,
    ),
    (
        "mouse",
        "room",
        "electronic",
        ("cell phone", "remote"),
        "computer mouse with buttons and a cable",
        SMALL,
    ),
    (
        "cell phone",
        "room",
        "electronic",
        ("remote", "mouse", "book"),
        "slim phone with a bright screen",
        SMALL,
    ),
    (
        "remote",
        "room",
        "electronic",
        ("cell phone", "keyboard"),
        "long dark remote control with small buttons",
        SMALL,
    ),
    ("clock", "room", "indoor", ("plate", "frisbee"), "round clock with hands and hour marks", MEDIUM),
    ("book", "room", "indoor", ("laptop", "cell phone", "sandwich"), "closed book with a spine", MEDIUM),
    ("vase", "room", "indoor", ("bottle", "cup"), "vase with a wide belly and a narrow neck", MEDIUM),
    ("potted plant", "room", "furniture", ("broccoli",), "plant with leaves growing from a pot", MEDIUM),
    ("chair", "room", "furniture", ("bench",), "chair with a seat, a back and four legs", MEDIUM),
    ("sports ball", "park", "sports", ("orange", "frisbee", "clock"), "ball with curved seams", SMALL),
    ("frisbee", "park", "sports", ("plate", "sports ball"), "bright flying disc with a rim", MEDIUM),
    ("kite", "park", "sports", ("umbrella", "banana"), "diamond-shaped kite with a tail", MEDIUM),
    ("umbrella", "park", "accessory", ("kite",), "open umbrella with a curved handle", MEDIUM),
    ("bench", "park", "furniture", ("chair",), "long park bench with slats on legs", LARGE),
)
CLASSES: tuple[WorldClass, ...] = tuple(WorldClass(*row) for row in _ROWS)
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
    """2 to 6 objects (4 on average), most from one theme."""
    count = rng.choices([2, 3, 4, 5, 6], weights=[1, 3, 3, 2, 1])[0]
    theme = THEMES[rng.choice(list(THEMES))]
    labels: list[str] = []
    while len(labels) < count:
        pool = theme if rng.random() < 0.85 else [c.name for c in CLASSES]
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
        "description": "The synthetic world of the demo model: 43 drawn object classes in five themes.",
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
        "partitions": {
            "randp": [{"name": f"randp {i + 1}", "categories": list(g)} for i, g in enumerate(RANDOM_GROUPS)]
        },
    }


def vocabulary_yaml() -> str:
    """The built-in vocabulary before calibration. The shipped file
    `tagllm/vocab/builtin/world.yaml` is this text calibrated for the demo model on the world's
    `calib` split (`scripts/calibrate_world.sh`, which runs `tagllm calibrate`); a test keeps the
    two in step."""
    import yaml

    header = "# The synthetic world of the demo model, written by `python -m tagllm.datasets.world`.\n"
    return header + yaml.safe_dump(vocabulary_document(), sort_keys=False, width=100, allow_unicode=True)


def scores_vocabulary(name: str = "world-scores"):
    """The built-in vocabulary uncalibrated and with every threshold at 0, renamed: exhaustive
    yes/no over it keeps every class with its raw P(yes), which ranks (mAP, within-image AUC)
    instead of deciding."""
    from tagllm.vocab import builtin_vocabulary
    from tagllm.vocab.validation import revise

    world = builtin_vocabulary(VOCABULARY_NAME)
    raw = [dataclasses.replace(c, threshold=0.0, calibration=None) for c in world.categories]
    return revise(world, name=name, categories=raw)


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
