"""`tagllm bench --part throughput`, small: both stacks answer every image, with the same labels."""

import pytest

from tagllm.throughput import ThroughputSettings, format_throughput, throughput_benchmark

pytestmark = pytest.mark.e2e


def test_a_small_sweep_compares_batched_and_unbatched_serving(qwen_dir):
    settings = ThroughputSettings(
        clients=(1, 3), min_images=3, images_per_client=1, max_batch_size=4, model_dir=str(qwen_dir),
        parts=("model",),
    )  # fmt: skip
    result = throughput_benchmark(settings, log=lambda line: None)
    sweep = result["model"]
    for name in ("batched", "unbatched"):
        assert [row["clients"] for row in sweep[name]] == [1, 3]
        assert all(row["failed"] == 0 and row["images"] == 3 for row in sweep[name]), sweep[name]
        assert all(row["images_per_second"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0 for row in sweep[name])
    # Batching changes no label: the same images get the same names through both stacks.
    agreement = sweep["agreement"]
    assert (agreement["images_compared"], agreement["labels_differ"]) == (6, 0)
    assert agreement["max_score_gap"] < 1e-3
    table = format_throughput(result)
    assert "| 3 |" in table and "0 of 6 images differ" in table
