"""The synthetic world and the instruction data the demo model learns from."""

import dataclasses
import random
from collections import Counter

from PIL import Image, ImageDraw

from tagllm.calibration.calibrate import VERSION_SUFFIX
from tagllm.datasets.world import (
    CLASSES,
    RANDOM_GROUPS,
    THEMES,
    scene,
    scores_vocabulary,
    split_seed,
    vocabulary_yaml,
)
from tagllm.datasets.world_painters import PAINTERS
from tagllm.demo_model.instructions import LIST_ROWS, YES_NO_PAIRS, InstructionMaker
from tagllm.parsing.answers import AnswerParser
from tagllm.prompts import build_styles
from tagllm.vocab import builtin_vocabulary
from tagllm.vocab.partitions import partition
from tagllm.vocab.validation import parse_vocabulary, revise

WORLD = builtin_vocabulary("world")


def test_scenes_are_reproducible_and_splits_never_share_a_seed():
    first, again = scene(split_seed("train-instructions", 7)), scene(split_seed("train-instructions", 7))
    assert first.labels == again.labels and first.image.tobytes() == again.image.tobytes()
    train = {split_seed("train-instructions", i) for i in range(5000)}
    assert not train & {split_seed("heldout", i) for i in range(5000)}


def test_the_world_has_themes_look_alikes_across_them_and_every_class_drawn():
    assert len(CLASSES) >= 40 and set(THEMES) == {g.name for g in WORLD.groups}
    scenes = [scene(split_seed("heldout", i)) for i in range(400)]
    seen = Counter(label for drawn in scenes for label in drawn.labels)
    assert set(seen) == {c.name for c in CLASSES}
    assert 3 <= sum(len(drawn.labels) for drawn in scenes) / len(scenes) <= 6
    theme_of = {c.name: c.theme for c in CLASSES}
    across = {(c.name, s) for c in CLASSES for s in c.similar if theme_of[s] != c.theme}
    assert ("plate", "frisbee") in across and ("broccoli", "potted plant") in across and len(across) >= 8
    # Scenes keep to a theme: most of a scene's labels share the commonest theme among them.
    share = [Counter(theme_of[n] for n in d.labels).most_common(1)[0][1] / len(d.labels) for d in scenes]
    assert sum(share) / len(share) > 0.8


def test_the_scores_vocabulary_ranks_every_class_by_its_raw_answer():
    scored = scores_vocabulary()
    assert scored.name == "world-scores" and scored.names == WORLD.names
    assert all(c.threshold == 0.0 and c.calibration is None for c in scored.categories)


def test_the_random_partition_is_declared_with_the_theme_sizes_and_every_class_once():
    assert [len(g) for g in RANDOM_GROUPS] == [len(names) for names in THEMES.values()]
    assert sorted(n for g in RANDOM_GROUPS for n in g) == sorted(c.name for c in CLASSES)
    assert [g.categories for g in partition(WORLD, "randp")] == list(RANDOM_GROUPS)


def test_the_builtin_vocabulary_is_the_worlds_own_calibrated_for_the_demo_model():
    assert WORLD.version == "1" + VERSION_SUFFIX
    assert all(c.calibration is not None and 0 < c.threshold < 1 for c in WORLD.categories)
    assert "calib" in WORLD.provenance["calibration_source"]
    uncalibrated = revise(
        WORLD,
        version="1",
        provenance={k: v for k, v in WORLD.provenance.items() if not k.startswith("calibration")},
        categories=[dataclasses.replace(c, calibration=None, threshold=0.5) for c in WORLD.categories],
    )
    assert uncalibrated.digest == parse_vocabulary(vocabulary_yaml()).digest


def test_instruction_answers_come_from_the_scenes_truth_in_the_engines_own_prompts():
    maker = InstructionMaker(WORLD)
    parser = AnswerParser.for_vocabulary(WORLD)
    open_prompts = {style.open_ended() for style in build_styles(WORLD).styles.values()}
    rng = random.Random(0)
    kinds = Counter()
    for i in range(300):
        drawn = scene(split_seed("train-instructions", i))
        rows = maker.examples(drawn.labels, rng)
        kinds.update(row.kind for row in rows)
        yes_no, listings = rows[: 2 * YES_NO_PAIRS], rows[2 * YES_NO_PAIRS :]
        assert len(listings) == LIST_ROWS
        # Yes/no questions come in pairs: one about a drawn class, one about a class not drawn.
        assert [row.answer for row in yes_no] == ["yes", "no"] * YES_NO_PAIRS
        assert all(row.decision_only for row in yes_no) and not any(row.decision_only for row in listings)
        for listing in listings:
            if listing.answer != "NO":
                names = parser.parse(listing.answer).labels
                assert set(names) <= set(drawn.labels) and names  # only what is drawn, and parseable
                if listing.kind == "open_ended":
                    assert listing.prompt in open_prompts and set(names) == set(drawn.labels)
    assert set(kinds) == {
        "multi_option_subset",
        "multi_option_served",
        "multi_option_all",
        "yes_no_concepts",
        "yes_no_bare",
        "open_ended",
    }


def test_a_list_answer_names_the_drawn_classes_in_the_order_they_were_listed():
    maker = InstructionMaker(WORLD)
    rng = random.Random(3)
    drawn = scene(split_seed("train-instructions", 11))
    orders = set()
    for _ in range(200):
        row = maker.list_answer(drawn.labels, rng)
        if row.kind != "multi_option_subset" or row.answer == "NO":
            continue
        listed = row.prompt.split("Candidates: ")[-1].split(". ")[0].split(", ")
        answered = [name.strip() for name in row.answer.split(",")]
        assert answered == sorted(answered, key=listed.index)
        orders.add(tuple(answered))
    assert len(orders) > 1  # random subsets in random order: the answer depends on the list


def test_look_alikes_are_asked_about_often_and_every_class_is_asked_about():
    maker = InstructionMaker(WORLD)
    rng = random.Random(1)
    asked_absent, look_alike = Counter(), 0
    for i in range(400):
        drawn = scene(split_seed("train-instructions", i))
        category = maker._absent(set(drawn.labels), rng)
        asked_absent[category.name] += 1
        similar = {s for n in drawn.labels for s in WORLD.category(n).similar}
        look_alike += category.name in similar or bool(set(category.similar) & set(drawn.labels))
    assert look_alike / 400 > 0.4 and len(asked_absent) == len(CLASSES)


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
