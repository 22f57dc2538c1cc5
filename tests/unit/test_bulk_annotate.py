"""Annotating a source into a run directory: retries, failures, resuming, shards, the sources
and the files they may name, progress."""

import json
import os

import pytest

from tagllm.bulk.annotate import TagFailure, annotate
from tagllm.bulk.progress import Progress
from tagllm.bulk.records import AnnotationRecord
from tagllm.bulk.run import RunDirectory, RunError
from tagllm.bulk.sources import Item, SourceError, in_shard, parse_shard, read_source
from tagllm.datasets.readers import read_coco
from tests.unit.conftest import FAST, MANIFEST, Tagger, fake_result


def test_annotate_retries_lists_failures_and_resumes(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    broken = items[3].image_id
    tagger = Tagger(truth, flaky=[items[0].image_id], broken=[broken], delay=0.01)
    progress = Progress(len(items), stream=open("/dev/null", "w"))
    summary = annotate(items, run, tagger, settings=FAST, progress=progress)
    assert (summary.annotated, summary.failed) == (len(items) - 1, 1)
    assert tagger.most_active <= FAST.window
    assert (
        sum(1 for image, _ in tagger.calls if image == items[0].image_id) == 3
    )  # two failures, then success
    failures = run.failures()
    assert [(f["image"], f["code"], f["attempts"]) for f in failures] == [(broken, "INVALID_ARGUMENT", 1)]
    results = run.results()
    assert len(results) == len(items) - 1
    assert {r.image: r.label_names for r in results} == {
        i.image_id: set(truth[i.image_id]) for i in items if i.image_id != broken
    }
    # A second pass asks only for the image that failed; once it works nothing is listed.
    tagger2 = Tagger(truth)
    summary = annotate(
        items, run, tagger2, settings=FAST, progress=Progress(len(items), stream=open("/dev/null", "w"))
    )
    assert [image for image, _ in tagger2.calls] == [broken]
    assert (summary.already_done, summary.annotated, summary.failed) == (len(items) - 1, 1, 0)
    assert run.failures() == [] and len(run.results()) == len(items)


def test_references_travel_with_their_image(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    references = {image: sorted(labels) for image, labels in truth.items()}
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    tagger = Tagger(truth)
    annotate(items, run, tagger, references, FAST, Progress(len(items), stream=open("/dev/null", "w")))
    assert all(reference == references[image] for image, reference in tagger.calls)


def test_a_torn_last_line_is_cut_and_redone(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    whole = AnnotationRecord("a", "/a.png", fake_result(["cat"])).to_json()
    run.results_path.write_text(whole + "\n" + '{"image": "b", "lab')
    assert [r.image for r in run.results()] == ["a"]
    run.open(MANIFEST)
    assert run.results_path.read_text().endswith("\n") and len(run.results_path.read_text().splitlines()) == 1


def test_a_run_directory_refuses_another_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    with pytest.raises(RunError, match="strategy: 'tagllm' there, 'binary' now"):
        run.open({**MANIFEST, "strategy": "binary"})


def test_shards_partition_deterministically():
    ids = [f"img_{i}.jpg" for i in range(500)]
    shards = [[i for i in ids if in_shard(i, k, 4)] for k in range(4)]
    assert sorted(sum(shards, [])) == sorted(ids)
    assert all(60 < len(s) < 190 for s in shards)
    assert shards == [[i for i in ids if in_shard(i, k, 4)] for k in range(4)]
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(SourceError):
            parse_shard(bad)


def test_sources_folder_list_and_coco(dataset, tmp_path):
    from_coco = read_source(dataset)
    from_folder = read_source(dataset.parent / "images")
    assert [i.image_id for i in from_coco] == [i.image_id for i in from_folder]
    assert all(i.path.exists() for i in from_coco)
    listing = dataset.parent / "list.txt"  # names relative to the list's folder
    listing.write_text("\n".join(str(i.path.relative_to(dataset.parent)) for i in from_coco[:3]) + "\n\n")
    assert [i.path for i in read_source(listing)] == [i.path for i in from_coco[:3]]
    elsewhere = tmp_path / "list.txt"  # absolute paths: outside the image root, read when allowed
    elsewhere.write_text("\n".join(str(i.path) for i in from_coco[:3]) + "\n")
    assert [i.path for i in read_source(elsewhere, allow_outside_root=True)] == [
        i.path for i in from_coco[:3]
    ]
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "missing")


def test_progress_line_reports_rate_eta_and_dollars():
    progress = Progress(10, done=2, gpu_price_per_hour=3600.0, stream=open("/dev/null", "w"))
    progress.advance(compute_seconds=0.5)
    line = progress.line()
    assert line.startswith("3/10 images") and "img/s" in line and "ETA" in line and "$0.5000" in line


@pytest.mark.parametrize(
    "names", [["../secret.png"], ["/etc/passwd"], ["ok/../../secret.png"], ["link/outside.png"]]
)
def test_a_label_file_cannot_lead_a_run_outside_its_image_root(tmp_path, names):
    root = tmp_path / "data"
    (root / "ok").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)  # a link inside the root that leads out of it
    coco = root / "labels.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": n} for n in names], "categories": []}))
    with pytest.raises(SourceError, match="is outside the image root .*--allow-outside-root"):
        read_source(coco)
    listing = root / "list.txt"
    listing.write_text("\n".join(names))
    with pytest.raises(SourceError, match="outside the image root"):
        read_source(listing)
    assert len(read_source(coco, allow_outside_root=True)) == len(names)


def test_a_fifo_or_an_oversized_file_is_refused_without_waiting(tmp_path):
    from tagllm.bulk.annotate import read_image
    from tagllm.files import InputFileError, read_bytes

    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)  # nobody ever writes: a blocking read would wait forever
    with pytest.raises(TagFailure) as caught:
        read_image(Item("image.png", fifo))
    assert caught.value.code == "UNREADABLE" and "not a regular file" in caught.value.message
    assert not caught.value.retryable
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 101)
    with pytest.raises(InputFileError, match="101 bytes; the limit is 100 bytes"):
        read_bytes(big, 100)
    with pytest.raises(InputFileError, match="not a regular file"):
        read_bytes(tmp_path)
