"""Gold labels in other spellings are mapped to the vocabulary, or refused by name: never a silent zero."""

import pytest

from tagllm.datasets.readers import LabelledSet
from tagllm.eval.runs import EvalError, map_gold, read_label_map
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")


def gold_of(*names) -> LabelledSet:
    return LabelledSet(tuple(names), {"a.jpg": frozenset(names[:2]), "b.jpg": frozenset(names[2:])})


def test_case_underscores_synonyms_and_voc_names_map_to_the_vocabulary():
    gold, categories = map_gold(gold_of("Pizza", "sports_ball", "tvmonitor", "diningtable", "Dogs"), COCO)
    assert gold == {"a.jpg": {"pizza", "sports ball"}, "b.jpg": {"tv", "dining table", "dog"}}
    assert categories == ["pizza", "sports ball", "tv", "dining table", "dog"]


def test_unmatched_gold_categories_are_named_with_the_way_out():
    with pytest.raises(
        EvalError,
        match=r"2 gold categories are not in vocabulary 'coco': \['unicorn', 'dragon'\].*--label-map",
    ):
        map_gold(gold_of("cat", "unicorn", "dragon"), COCO)


def test_a_label_map_resolves_what_the_vocabulary_does_not_know(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("unicorn: horse\ndragon: bird\n")
    gold, _ = map_gold(gold_of("cat", "unicorn", "dragon"), COCO, read_label_map(path))
    assert gold == {"a.jpg": {"cat", "horse"}, "b.jpg": {"bird"}}
    path.write_text("[not, a, map]")
    with pytest.raises(EvalError, match="gold names to vocabulary names"):
        read_label_map(path)
