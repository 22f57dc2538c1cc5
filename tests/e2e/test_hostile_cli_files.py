"""Hostile bulk and eval files: the CLI as a user runs it names the file and the problem in one
line (exit 2, no traceback), and never reads outside what it was given or hangs on a FIFO."""

import json
import os

import pytest

from tests.conftest import free_port, png, run_cli

pytestmark = pytest.mark.e2e


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, lines
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]


@pytest.mark.parametrize("name", ["../outside.png", "/etc/hostname"], ids=["dot-dot", "absolute"])
def test_annotate_refuses_images_outside_the_root_a_coco_file_names(tmp_path, name):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "outside.png").write_bytes(png())
    coco = root / "labels.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": name}], "categories": []}))
    result = run_cli("annotate", coco, "--out", tmp_path / "run", "--address", f"127.0.0.1:{free_port()}")
    assert_one_line_error(result, coco, "outside the image root", "--allow-outside-root")
    assert not (tmp_path / "run").exists()


def test_a_fifo_in_the_image_list_never_hangs_a_run(stack, tmp_path):
    (tmp_path / "a.png").write_bytes(png(51, 51))
    os.mkfifo(tmp_path / "b.png")  # nobody writes to it
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\nb.png\n")
    result = run_cli(
        "annotate", listing, "--out", tmp_path / "run", "--address", stack.settings.gateway_address
    )
    assert result.returncode == 1 and "1 annotated now" in result.stderr, result.stderr
    failures = [json.loads(line) for line in (tmp_path / "run" / "failures.jsonl").read_text().splitlines()]
    assert [(f["image"], f["code"]) for f in failures] == [("b.png", "UNREADABLE")]
    assert "not a regular file" in failures[0]["message"]


def _run_directory(path, results: bytes):
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"vocabulary": "coco"}))
    (path / "results.jsonl").write_bytes(results)
    return path


def test_export_names_a_corrupt_results_line(tmp_path):
    run = _run_directory(tmp_path / "run", b'{"image": "a", "labels": [}\n')
    result = run_cli("export", run, "--format", "coco", "--out", tmp_path / "out.json")
    assert_one_line_error(result, run / "results.jsonl", ":1: not valid JSON")
    assert not (tmp_path / "out.json").exists()


GOLD_FILES = {
    "null annotations": (
        b'{"images": [], "categories": [], "annotations": null}',
        "'annotations' must be a list",
    ),
    "not UTF-8": (b'{"images": [{"id": 1, "file_name": "\xff.png"}], "categories": []}', "not UTF-8 text"),
    "an infinite id": (
        b'{"images": [{"id": 1e999, "file_name": "a.png"}], "categories": []}',
        "out of range",
    ),
    "Infinity": (
        b'{"images": [{"id": Infinity, "file_name": "a.png"}], "categories": []}',
        "Infinity is not",
    ),
    "deep nesting": (b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "a 5000-digit id": (b'{"images": [{"id": ' + b"9" * 5000 + b', "file_name": "a"}]}', "not valid JSON"),
}


@pytest.mark.parametrize("case", list(GOLD_FILES))
def test_eval_names_a_bad_gold_file_in_one_line(tmp_path, case):
    content, message = GOLD_FILES[case]
    gold = tmp_path / "gold.json"
    gold.write_bytes(content)
    run = _run_directory(tmp_path / "run", b"")
    result = run_cli("eval", "--pred", run, "--gold", gold)
    assert_one_line_error(result, gold, message)


def test_eval_names_a_label_map_with_a_repeated_key(tmp_path):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps({"images": [], "categories": [{"id": 1, "name": "tvmonitor"}]}))
    label_map = tmp_path / "map.yaml"
    label_map.write_text("tvmonitor: tv\ntvmonitor: laptop\n")
    run = _run_directory(tmp_path / "run", b"")
    result = run_cli("eval", "--pred", run, "--gold", gold, "--label-map", label_map)
    assert_one_line_error(result, label_map, "key 'tvmonitor' is given twice")
