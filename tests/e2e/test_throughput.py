"""`tagllm bench --part throughput`, small: every serving layout answers every image, with the
unbatched server's labels."""

import pytest

from tagllm.throughput import LAYOUTS, ThroughputSettings, format_throughput, throughput_benchmark

pytestmark = pytest.mark.e2e


def test_a_small_sweep_compares_the_serving_layouts(qwen_dir):
    settings = ThroughputSettings(
        clients=(1, 3), min_images=3, images_per_client=1, max_batch_size=4, model_dir=str(qwen_dir),
        parts=("model",),
    )  # fmt: skip
    result = throughput_benchmark(settings, log=lambda line: None)
    sweep = result["model"]
    for name in LAYOUTS:
        assert [row["clients"] for row in sweep[name]] == [1, 3]
        assert all(row["failed"] == 0 and row["images"] == 3 for row in sweep[name]), sweep[name]
        assert all(row["images_per_second"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0 for row in sweep[name])
    # Neither batching nor a second instance changes a label: the same images get the same names.
    for layout in ("batched", "instances"):
        agreement = sweep["agreement"][layout]
        assert (agreement["images_compared"], agreement["labels_differ"]) == (6, 0)
        assert agreement["labels_compared"] > 0, "names were compared, not only empty answers"
        assert agreement["max_score_gap"] < 1e-3
    table = format_throughput(result)
    assert "| 3 |" in table
    assert "labels, 2 instances, batched vs unbatched: 0 of 6 images differ" in table
