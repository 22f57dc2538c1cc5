"""The synthetic world and the instruction data the demo model learns from."""

import random
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw

from tagllm.datasets.world import CLASSES, THEMES, scene, split_seed, vocabulary_yaml
from tagllm.datasets.world_painters import PAINTERS
from tagllm.demo_model.instructions import InstructionMaker
from tagllm.parsing.answers import AnswerParser
from tagllm.prompts import build_styles
from tagllm.vocab import builtin_vocabulary

WORLD = builtin_vocabulary("world")


def test_scenes_are_reproducible_and_splits_never_share_a_seed():
    first, again = scene(split_seed("train-instructions", 7)), scene(split_seed("train-instructions", 7))
    assert first.labels == again.labels and first.image.tobytes() == again.image.tobytes()
    train = {split_seed("train-instructions", i) for i in range(5000)}
    assert not train & {split_seed("heldout", i) for i in range(5000)}


def test_the_world_has_look_alikes_themes_and_every_class_drawn():
    assert len(CLASSES) >= 16 and set(THEMES) == {g.name for g in WORLD.groups}
    seen = Counter(label for i in range(400) for label in scene(split_seed("heldout", i)).labels)
    assert set(seen) == {c.name for c in CLASSES}
    assert {"orange", "sports ball", "clock", "plate", "tv", "laptop"} <= set(WORLD.names)
    assert "sports ball" in WORLD.category("orange").similar and "plate" in WORLD.category("clock").similar


def test_the_builtin_vocabulary_file_is_the_worlds_own():
    path = Path(__file__).parents[2] / "tagllm" / "vocab" / "builtin" / "world.yaml"
    assert path.read_text() == vocabulary_yaml()


def test_instruction_answers_come_from_the_scenes_truth_in_the_engines_own_prompts():
    maker = InstructionMaker(WORLD)
    prompts = {p for style in build_styles(WORLD).styles.values() for p in [style.open_ended()]}
    rng = random.Random(0)
    kinds = Counter()
    for i in range(300):
        drawn = scene(split_seed("train-instructions", i))
        example = maker.example(drawn.labels, rng)
        kinds[example.kind] += 1
        if example.kind.startswith("yes_no"):
            assert example.answer in ("yes", "no")
        elif example.answer != "NO":
            names = AnswerParser.for_vocabulary(WORLD).parse(example.answer).labels
            assert set(names) <= set(drawn.labels) and names  # only what is drawn, and parseable
            if example.kind == "open_ended":
                assert example.prompt in prompts and set(names) == set(drawn.labels)
    assert set(kinds) == {
        "multi_option_group", "multi_option_partition", "multi_option_all", "yes_no_concepts", "yes_no_bare",
        "open_ended",
    }  # fmt: skip


def test_every_painter_draws_its_object_the_same_way_each_time_at_any_size():
    assert {c.name for c in CLASSES} <= set(PAINTERS) and len(PAINTERS) >= 40
    for name, paint in PAINTERS.items():
        for side in (40, 80, 120):  # the world draws objects of 39 px and more
            layers = []
            for _ in range(2):
                layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
                paint(ImageDraw.Draw(layer), side, random.Random(side))
                layers.append(layer)
            drawn = sum(layers[0].getchannel("A").histogram()[129:])
            assert layers[0].tobytes() == layers[1].tobytes(), name
            assert 0.08 * side * side < drawn < side * side, (name, side, drawn)  # an object, not the canvas
