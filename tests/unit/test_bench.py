"""`tagllm bench` measures what it says, on a model small enough for a test (no speed asserted)."""

from tagllm.bench import BenchSettings, format_table, model_benchmark
from tagllm.vocab import builtin_vocabulary

COCO = builtin_vocabulary("coco")


def test_model_benchmark_runs_every_path_on_the_same_images():
    settings = BenchSettings(
        images=1, image_size=112, hidden_size=32, layers=1, sweep=(1, 3), candidates=(2,)
    )
    result = model_benchmark(settings, log=lambda line: None)
    assert result["labels_identical"]
    per_image = result["per_image"]
    assert set(per_image) == {"naive_tagllm", "optimised_tagllm", "multi_option", "binary_optimised"}
    assert all(row["model_seconds"] > 0 for row in per_image.values())
    assert per_image["multi_option"]["calls"] == 1 and per_image["binary_optimised"]["calls"] == 80
    for name in ("naive_tagllm", "optimised_tagllm"):
        row = per_image[name]
        assert row["calls"] == len(COCO.groups) + row["candidates"]
    assert per_image["naive_tagllm"]["candidates"] == per_image["optimised_tagllm"]["candidates"]
    assert result["model"]["prefix_tokens"] >= 16  # 112 px: 8 x 8 patches merged 2 x 2, plus the header
    assert [row["prompts"] for row in result["sweep"]] == [1, 3]
    [controlled] = result["controlled"]
    assert controlled["candidates"] == 2 and controlled["multi_option"] > 0
    table = format_table({"models": result})
    assert "naive / optimised TagLLM" in table and "| 2 |" in table


def test_batch_sweep_answers_each_batch_as_one_at_a_time(tiny_model_dirs):
    from tagllm.bench import _images, batch_sweep, format_batch_sweep
    from tagllm.mllm.transformers_backend import TransformersMLLM

    model = TransformersMLLM(tiny_model_dirs["qwen2_5_vl"])
    rows = batch_sweep(
        model,
        COCO,
        lambda first, count: _images(first + count, 112)[first:],
        (1, 3),
        4,
        log=lambda line: None,
    )
    assert [row["images"] for row in rows] == [1, 3]
    assert all(row["responses_that_differ"] == 0 for row in rows)
    assert all(
        row["batched_images_per_second"] > 0 and row["alone_cpu_seconds_per_image"] > 0 for row in rows
    )
    assert "| 3 |" in format_batch_sweep(rows)


def test_the_throughput_bench_refuses_an_instances_layout_of_one_before_starting_anything(capsys):
    from tagllm.cli.main import main

    assert main(["bench", "--part", "throughput", "--instances", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
