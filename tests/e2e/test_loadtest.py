"""`tagllm bench --part load`, small: every request is answered or shed, never lost."""

import pytest

from tagllm.loadtest import LoadSettings, format_load, load_benchmark

pytestmark = pytest.mark.e2e


def test_a_small_load_run_accounts_for_every_request():
    settings = LoadSettings(
        steady_clients=2, steady_requests=40, overload_clients=24, overload_requests=200,
        max_in_flight=2, idle_streams=8, probes=3, strips=1,
        heavy_pixels=3_000_000, heavy_batch=4, heavy_batches=1, unread_images=40, unread_seconds=2,
    )  # fmt: skip
    result = load_benchmark(settings, log=lambda line: None)
    assert result["steady"]["codes"] == {"OK": 40}
    overload = result["overload"]["codes"]
    assert sum(overload.values()) == 200 and set(overload) <= {"OK", "RESOURCE_EXHAUSTED"}
    assert overload.get("RESOURCE_EXHAUSTED", 0) > 0  # 24 clients against 2 slots: shed, not queued
    assert result["beside_idle_streams"]["streams"] == 8 and result["beside_idle_streams"]["p50_ms"] > 0
    assert result["strips"]["peak_growth_mib"] < 200
    # Flat 3-megapixel images, decoded: answered, or refused at once for the in-flight limits.
    assert sum(result["heavy_batch"]["codes"].values()) == 4
    assert set(result["heavy_batch"]["codes"]) <= {"OK", "RESOURCE_EXHAUSTED"}
    # The stream's unread answers stop the gateway taking its images.
    assert result["unread_stream"]["images_taken_while_unread"] < 40
    assert "| overload | 24 | 200 |" in format_load(result)
