import json
import subprocess
import sys

import pytest

from tagllm.datasets.readers import DatasetError, read_coco, read_csv, read_labels, read_voc
from tagllm.mllm.contract import MLLMResponse, Mode, PromptResult
from tagllm.prepare.concepts import generate_concepts
from tagllm.prepare.grouping import cluster, cooccurrence, groups_from_label_sets
from tagllm.vocab import builtin_vocabulary, load_vocabulary

COCO = builtin_vocabulary("coco")


def test_cooccurrence_counts_pairs_once_per_image():
    counts, matrix = cooccurrence(["a", "b", "c"], [{"a", "b"}, {"a", "b", "c"}, {"c"}, {"x"}])
    assert counts == [2, 2, 2]
    assert matrix[0][1] == matrix[1][0] == 2 and matrix[0][2] == 1 and matrix[0][0] == 0


def test_clusters_follow_cooccurrence_within_the_size_bound():
    scenes = [{"car", "bus", "traffic light"}] * 5 + [{"fork", "knife", "cup"}] * 5 + [{"car", "cup"}]
    groups = groups_from_label_sets(COCO, scenes, max_size=4)
    by_member = {name: g.name for g in groups for name in g.categories}
    assert by_member["car"] == by_member["bus"] == by_member["traffic light"]
    assert by_member["fork"] == by_member["knife"] == by_member["cup"]
    assert by_member["car"] != by_member["fork"]
    members = [n for g in groups for n in g.categories]
    assert sorted(members) == sorted(COCO.names) and all(len(g.categories) <= 4 for g in groups)


def test_size_bound_splits_a_clique():
    names = [f"n{i}" for i in range(6)]
    counts, matrix = cooccurrence(names, [set(names)] * 3)
    groups = cluster(names, counts, matrix, max_size=4)
    assert sorted(len(g) for g in groups) == [2, 4]


def test_coco_reader_and_errors(tmp_path):
    path = tmp_path / "instances.json"
    data = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}],
        "annotations": [{"image_id": 1, "category_id": 3}, {"image_id": 1, "category_id": 3}],
    }
    path.write_text(json.dumps(data))
    labelled = read_coco(path)
    assert labelled.labels == {"a.jpg": frozenset({"cat"}), "b.jpg": frozenset()}
    data["annotations"].append({"image_id": 9, "category_id": 3})
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"annotations\[2\] names unknown image_id 9"):
        read_coco(path)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_coco(path)


def test_voc_and_csv_readers(tmp_path):
    (tmp_path / "voc").mkdir()
    (tmp_path / "voc" / "0001.xml").write_text(
        "<annotation><filename>0001.jpg</filename><object><name>dog</name></object>"
        "<object><name>person</name></object></annotation>"
    )
    assert read_voc(tmp_path / "voc").labels == {"0001.jpg": frozenset({"dog", "person"})}
    (tmp_path / "voc" / "0002.xml").write_text("<annotation><object><name>")
    with pytest.raises(DatasetError, match="0002.xml: not valid XML"):
        read_labels(tmp_path / "voc")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,labels\na.jpg,cat|dog\nb.jpg,\n")
    assert read_csv(csv_path).labels == {"a.jpg": frozenset({"cat", "dog"}), "b.jpg": frozenset()}
    csv_path.write_text("file,tags\na.jpg,cat\n")
    with pytest.raises(DatasetError, match="'image' and 'labels'"):
        read_labels(csv_path)


class ConceptModel:
    """Answers concept questions as a helpful model would, plus some noise to clean."""

    version = "concepts/1"

    def __init__(self):
        self.requests = []

    def run(self, request):
        self.requests.append(request)
        results = []
        for prompt in request.prompts:
            if prompt.startswith("Answer with one or two words"):
                text = "Animal."
            elif "Objects:" in prompt:
                text = "dog, unicorn, cat"
            else:
                text = 'a pet\x07 animal, "furry friend", none'
            results.append(PromptResult(text, 0.5, 10, 3))
        return MLLMResponse(tuple(results), 0.01)


def test_concepts_are_generated_cleaned_and_valid():
    voc = builtin_vocabulary("voc")
    model = ConceptModel()
    revised = generate_concepts(voc, model)
    assert len(model.requests) == 3 and all(len(r.prompts) == 20 for r in model.requests)
    assert model.requests[2].allowed_names is not None and model.requests[2].mode is Mode.GENERATE
    cat = revised.category("cat")
    assert cat.super_category == "Animal"
    assert cat.descriptions == ("a pet animal", "furry friend")
    assert cat.similar == ("dog",)  # itself and out-of-vocabulary names dropped
    assert revised.full_version != voc.full_version


def test_group_command_writes_a_valid_vocabulary(tmp_path):
    from tagllm.datasets.synthetic import generate

    annotations = generate(tmp_path / "data", 12, seed=3)
    out = tmp_path / "grouped.yaml"
    subprocess.run(
        [sys.executable, "-m", "tagllm.cli.main", "vocab", "group", "--from-labels", str(annotations),
         "--max-size", "6", "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    grouped = load_vocabulary(out)
    assert sorted(n for g in grouped.groups for n in g.categories) == sorted(COCO.names)
    assert max(len(g.categories) for g in grouped.groups) <= 6
    check = subprocess.run(
        [sys.executable, "-m", "tagllm.cli.main", "vocab", "validate", str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "80 categories" in check.stdout


def test_a_subset_keeps_categories_with_enough_positives_and_what_refers_to_them():
    from collections import Counter

    from tagllm.prepare.subset import positives, subset

    o365 = builtin_vocabulary("objects365")
    counts = positives([{"Car", "SUV", "Person"}] * 3 + [{"Car", "Dog"}])
    small = subset(o365, counts, min_positives=2)
    assert small.names == ("Person", "Car", "SUV") and small.name == "objects365-3"
    assert small.category("Car").similar == ("SUV",)
    assert sorted(n for g in small.groups for n in g.categories) == ["Car", "Person", "SUV"]
    assert small.provenance["subset"].startswith("more than 2 positives")
    with pytest.raises(ValueError, match="no category"):
        subset(o365, Counter(), min_positives=0)


def test_objects365_ships_with_its_365_names_groups_and_provenance():
    o365 = builtin_vocabulary("objects365")
    assert len(o365.categories) == 365 and len(set(o365.names)) == 365
    assert {"Cabinet/shelf", "Monitor/TV", "Handbag/Satchel", "Dinning Table", "Noddles"} <= set(o365.names)
    assert o365.groups_given and all(c.super_category and c.provenance for c in o365.categories)


def test_coco_knowledge_is_complete_and_never_just_the_name():
    coco = builtin_vocabulary("coco")
    for category in coco.categories:
        assert category.super_category and category.provenance, category.name
        assert 1 <= len(category.descriptions) <= 3, category.name
        assert all(d.lower() != category.name for d in category.descriptions), category.name
    assert sum(1 for c in coco.categories if c.similar) >= 78
