"""What the bulk tests (tests/unit/test_bulk_*.py) share: a synthetic data set, a tagger that knows
the truth and fails on purpose, and a run it finished."""

import threading
import time
from pathlib import Path

import pytest

from tagllm.bulk.annotate import AnnotateSettings, PerImageTagger, TagFailure, annotate
from tagllm.bulk.progress import Progress
from tagllm.bulk.run import RunDirectory
from tagllm.bulk.sources import read_source
from tagllm.datasets.readers import read_coco
from tagllm.datasets.synthetic import generate
from tagllm.strategies import Label, TagResult, Usage, VersionInfo

FAST = AnnotateSettings(window=3, retries=2, backoff_seconds=0.001)
MANIFEST = {"vocabulary": "coco", "strategy": "tagllm"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic"), 12, seed=11, size=64)


def fake_result(labels, version="m/1") -> TagResult:
    return TagResult(
        # Scores that differ, so that exports must keep them for mAP to read back the same.
        labels=tuple(Label(name, round(0.55 + 0.1 * i, 2)) for i, name in enumerate(labels)),
        usage=Usage(mllm_calls=3, model_compute_seconds=0.5),
        stages=(),
        version=VersionInfo(version, "coco", "1.0+x", "abc", "tagllm"),
        candidates=tuple(labels),
    )


class Tagger(PerImageTagger):
    """Knows the truth; fails on purpose; records concurrency."""

    def __init__(self, truth, flaky=(), broken=(), delay=0.0):
        self.truth, self.flaky, self.broken, self.delay = truth, dict.fromkeys(flaky, 2), set(broken), delay
        self.calls, self.active, self.most_active = [], 0, 0
        self.lock = threading.Lock()

    def tag(self, item, reference):
        with self.lock:
            self.calls.append((item.image_id, reference))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(self.delay)
            if item.image_id in self.broken:
                raise TagFailure("INVALID_ARGUMENT", "image: not a decodable image", retryable=False)
            with self.lock:
                if self.flaky.get(item.image_id, 0) > 0:
                    self.flaky[item.image_id] -= 1
                    raise TagFailure("UNAVAILABLE", "model server restarting", retryable=True)
            return fake_result(sorted(self.truth[item.image_id]))
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture()
def finished_run(dataset, tmp_path):
    items = read_source(dataset)
    truth = read_coco(dataset).labels
    run = RunDirectory(tmp_path / "run")
    run.open(MANIFEST)
    annotate(
        items, run, Tagger(truth), settings=FAST, progress=Progress(len(items), stream=open("/dev/null", "w"))
    )
    return run, truth
