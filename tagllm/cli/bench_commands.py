"""`tagllm bench`: what an image costs, the services' overhead, load, throughput and batching."""

from __future__ import annotations

import json
import sys

from tagllm.cli.options import add_batch_argument, non_negative_int, positive_int
from tagllm.mllm.default_model import describe_default_model


def cmd_bench(args) -> int:
    from tagllm.bench import BenchSettings, format_table, model_benchmark, overhead_benchmark

    settings = BenchSettings(
        images=args.images, image_size=args.image_size, hidden_size=args.hidden_size, layers=args.layers,
        overhead_calls=args.overhead_calls,
    )  # fmt: skip
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if not args.quiet else (lambda line: None)
    result = {}
    if args.part in ("all", "model"):
        result["models"] = model_benchmark(settings, log)
    if args.part in ("all", "overhead"):
        result["overhead"] = overhead_benchmark(settings, log)
    if args.part == "batching":  # in-process: the model's own gain from answering requests together
        from tagllm.bench import batch_sweep, format_batch_sweep
        from tagllm.datasets.world import VOCABULARY_NAME
        from tagllm.mllm.default_model import default_model_dir
        from tagllm.mllm.transformers_backend import TransformersMLLM
        from tagllm.throughput import scenes
        from tagllm.vocab import builtin_vocabulary

        model = TransformersMLLM(args.model_dir or default_model_dir(), threads=args.threads or None)
        rows = batch_sweep(model, builtin_vocabulary(VOCABULARY_NAME), scenes, args.clients, 16, log)
        print(json.dumps(rows, indent=2) if args.json else format_batch_sweep(rows))
        return 0
    if args.part == "throughput":  # not in "all": three stacks, minutes of load
        from tagllm.throughput import ThroughputSettings, format_throughput, throughput_benchmark

        if args.instances < 2:
            print("error: --instances: the instances layout needs at least 2", file=sys.stderr)
            return 2

        sweep = throughput_benchmark(
            ThroughputSettings(
                clients=tuple(args.clients), max_batch_size=args.max_batch_size, instances=args.instances,
                model_dir=args.model_dir or "", parts=tuple(args.throughput_parts),
            ),
            log,
        )  # fmt: skip
        print(json.dumps(sweep, indent=2) if args.json else format_throughput(sweep))
        return 0
    if args.part == "load":  # not in "all": it loads the machine for a minute or two
        from tagllm.loadtest import format_load, load_benchmark

        load = load_benchmark(log=log)
        print(json.dumps(load, indent=2) if args.json else format_load(load))
        return 0
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


def add_parser(commands) -> None:
    bench = commands.add_parser("bench", help="per-image cost of naive vs optimised TagLLM and the baselines")
    bench.add_argument(
        "--part",
        choices=["all", "model", "overhead", "load", "throughput", "batching"],
        default="all",
        help="load: a bounded load test of the services; throughput: images/s as concurrent clients grow, "
        "one batching model instance, several (--instances), and one unbatched; batching: the model "
        "in-process, N requests as one batch against one at a time (none of them part of all)",
    )
    bench.add_argument(
        "--clients",
        type=positive_int,
        nargs="+",
        default=[1, 2, 4, 8, 16],
        help="throughput: client counts; batching: requests per batch",
    )
    bench.add_argument(
        "--model-dir", help=f"throughput, batching: checkpoint (default: {describe_default_model()})"
    )
    bench.add_argument(
        "--threads", type=non_negative_int, default=0, help="batching: torch threads (0: torch's default)"
    )
    bench.add_argument(
        "--instances",
        type=positive_int,
        default=2,
        help="throughput: model instances of the instances layout",
    )
    bench.add_argument(
        "--throughput-parts", nargs="+", choices=["model", "null"], default=["model", "null"],
        help="throughput: the checkpoint, the null model (services alone), or both",
    )  # fmt: skip
    add_batch_argument(bench)
    bench.add_argument("--images", type=int, default=3)
    bench.add_argument("--image-size", type=int, default=448, help="448 px gives Qwen2.5-VL 256 image tokens")
    bench.add_argument("--hidden-size", type=int, default=384)
    bench.add_argument("--layers", type=int, default=4)
    bench.add_argument("--overhead-calls", type=int, default=200)
    bench.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.set_defaults(func=cmd_bench)
