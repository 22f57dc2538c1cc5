"""`tagllm`: run the local stack, tag images, build tiny models, prepare vocabularies."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from tagllm import ports
from tagllm.cli import bulk_commands, review_commands, vocab_commands
from tagllm.cli.options import (
    add_gateway_arguments,
    add_strategy_arguments,
    add_tls_arguments,
    gateway_client,
    options_from_arguments,
    tls_credentials,
)
from tagllm.extras import ExtraMissing
from tagllm.extras import require as require_extra
from tagllm.mllm.default_model import describe_default_model
from tagllm.resources import ResourceMissing
from tagllm.strategies import STRATEGIES
from tagllm.vocab.registry import DEFAULT_VOCABULARY

MAX_PRINTED_LABELS = 10


def _stack_settings(args, run_dir: Path):
    from tagllm.mllm.default_model import default_model_dir
    from tagllm.stack.local import StackSettings

    model_dir = Path(args.model_dir) if args.model_dir else default_model_dir()
    return StackSettings(
        model_dir=model_dir,
        run_dir=run_dir,
        host=args.host,
        **{field: getattr(args, field) for field in ports.STACK_PORTS},
        prometheus=args.prometheus,
        shared_prefix=not args.naive,
        max_batch_size=args.max_batch_size,
        tls=args.tls,
    )


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", help=f"checkpoint directory (default: {describe_default_model()})")
    parser.add_argument("--run-dir", help="where logs and the model repository go (default: a new temp dir)")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on")
    for field, (port, listener) in ports.STACK_PORTS.items():
        parser.add_argument("--" + field.replace("_", "-"), type=int, default=port, help=listener)
    parser.add_argument("--prometheus", action="store_true", help="also start Prometheus scraping the stack")
    parser.add_argument(
        "--naive", action="store_true", help="model computes every prompt separately (no prefix reuse)"
    )
    _add_batch_argument(parser)
    parser.add_argument(
        "--tls",
        action="store_true",
        help="TLS on the gateway and mutual TLS on every internal hop, from a private CA in RUN_DIR/tls",
    )


def _add_batch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=8,
        help="requests the model server runs together (Triton's dynamic batch; 1: each request alone)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _run_dir(args) -> Path:
    return Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="tagllm-run-"))


def cmd_up(args) -> int:
    require_extra("stack", "tagllm up")
    from tagllm.stack.local import LocalStack
    from tagllm.stack.supervise import CrashLoop, Supervisor

    stack = LocalStack(_stack_settings(args, _run_dir(args)))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"starting the stack (model: {stack.settings.model_dir}) ...", flush=True)
    started = time.monotonic()
    stack.start()
    print(f"all services healthy after {time.monotonic() - started:.1f} s:")
    for name, where in stack.endpoints().items():
        print(f"  {name:46s} {where}")
    if stack.pki is not None:
        print(f"clients verify the gateway with --ca {stack.pki.ca}")
    print("Ctrl-C stops everything.", flush=True)
    supervisor = Supervisor(stack.processes, log=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        while not stop.wait(1.0):
            try:
                supervisor.poll()
            except CrashLoop as exc:
                print(f"error: {exc}\nstopping; all logs: {stack.settings.run_dir / 'logs'}", file=sys.stderr)
                return 1
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        print("stopped; every process has exited.", flush=True)
    return 0


def _print_response(path: str, response, as_json: bool) -> None:
    from tagllm.convert import result_from_proto

    result = result_from_proto(response.result)
    if as_json:
        print(json.dumps({"image": path, "cached": response.cached, **result.to_dict()}))
        return
    shown = result.labels[:MAX_PRINTED_LABELS]
    labels = ", ".join(f"{label.name} ({label.score:.2f})" for label in shown) or "(no labels)"
    if len(result.labels) > len(shown):
        labels += f", ... ({len(result.labels) - len(shown)} more; --json shows all)"
    usage, version = result.usage, result.version
    print(f"{path}: {labels}")
    print(
        f"  {usage.calls} MLLM calls in {usage.requests} requests, {usage.prompt_tokens} prompt + "
        f"{usage.generated_tokens} generated tokens, {usage.compute_seconds * 1000:.0f} ms model time; "
        f"model {version.model}, vocabulary {version.vocabulary} {version.vocabulary_version}"
    )


def cmd_tag(args) -> int:
    import grpc

    from tagllm.client import describe_rpc_error

    options = options_from_arguments(args, max_labels=args.max_labels)
    failures = 0
    with gateway_client(args) as client:
        for path in args.images:
            if Path(path).is_dir():
                hint = f"`tagllm annotate {path} --out RUN` tags a folder"
                print(f"{path}: a folder; tag takes image files ({hint})", file=sys.stderr)
                failures += 1
                continue
            try:
                response = client.tag(Path(path), vocabulary=args.vocab, options=options, image_id=path)
            except OSError as exc:
                print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
                failures += 1
                continue
            except grpc.RpcError as exc:
                print(f"{path}: {describe_rpc_error(exc, args.address)}", file=sys.stderr)
                failures += 1
                if exc.code() is grpc.StatusCode.UNAVAILABLE:
                    break  # the other images would fail the same way
                continue
            _print_response(path, response, args.json)
    return 1 if failures else 0


# Scenes of the synthetic world that `make run` tags: held out from training, one per theme.
DEMO_SCENES = 4


def sample_images(folder: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """A few held-out scenes of the synthetic world, with what each shows."""
    from tagllm.datasets.world import scene, split_seed

    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(DEMO_SCENES):
        drawn = scene(split_seed("demo", i))
        path = folder / f"scene_{i}.png"
        drawn.image.save(path)
        samples.append((path, drawn.labels))
    return samples


def cmd_demo(args) -> int:
    """Start the stack, tag sample scenes of the synthetic world with every strategy, stop."""
    from tagllm.client import TaggingClient, strategy_options
    from tagllm.datasets.world import VOCABULARY_NAME
    from tagllm.mllm.default_model import DEMO_MODEL_DIR
    from tagllm.stack.local import LocalStack

    run_dir = _run_dir(args)
    stack = LocalStack(_stack_settings(args, run_dir))
    print(
        f"starting the local stack (model: {stack.settings.model_dir}; logs: {run_dir / 'logs'}) ...",
        flush=True,
    )
    with stack:
        samples = sample_images(run_dir / "samples")
        with TaggingClient(stack.settings.gateway_address, credentials=stack.client_credentials()) as client:
            for strategy in STRATEGIES:
                print(f"\n== strategy {strategy}")
                for image, truth in samples:
                    response = client.tag(
                        image,
                        vocabulary=VOCABULARY_NAME,
                        options=strategy_options(strategy),
                        image_id=image.name,
                    )
                    _print_response(f"{image.name} (drawn: {', '.join(truth)})", response, False)
    print(f"\nstack stopped. Images and logs: {run_dir}")
    if stack.settings.model_dir == DEMO_MODEL_DIR:
        print("The demo model is a small Qwen2.5-VL trained here on this synthetic world only (QUALITY.md);")
        print("point --model-dir (or TAGLLM_MODEL_DIR) at a real checkpoint for photographs.")
    return 0


def cmd_model_train_demo(args) -> int:
    import dataclasses

    from tagllm.demo_model.training import DemoRecipe, DemoTrainer

    recipe = dataclasses.replace(
        DemoRecipe(), steps=args.steps, vision_steps=args.vision_steps, threads=args.threads
    )
    trainer = DemoTrainer(Path(args.out), recipe, log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.export_only:
        trainer.export_saved()
    else:
        trainer.run()
    return 0


def cmd_model_serve(args) -> int:
    require_extra("server", "tagllm model serve")
    from tagllm.mllm.default_model import default_model_dir
    from tagllm.stack.triton import TritonSettings, exec_triton

    tls_files = (args.tls_cert, args.tls_key, args.tls_ca)
    if any(tls_files) and not all(tls_files):
        print("error: --tls-cert, --tls-key and --tls-ca go together", file=sys.stderr)
        return 2
    settings = TritonSettings(
        model_dir=Path(args.model_dir) if args.model_dir else default_model_dir(),
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        max_batch_size=args.max_batch_size,
        exit_timeout=args.exit_timeout,
        max_queue_size=args.max_queue_size,
        tls=tuple(Path(f) for f in tls_files) if all(tls_files) else None,  # type: ignore[arg-type]
    )
    if not (settings.model_dir / "config.json").exists():
        print(f"error: {settings.model_dir} holds no checkpoint (config.json)", file=sys.stderr)
        return 2
    exec_triton(settings, Path(args.run_dir))
    return 0  # not reached: tritonserver replaced this process


def cmd_model_fetch(args) -> int:
    from tagllm.mllm.fetch import FetchError, fetch_checkpoint

    def given(value: str | None, path: str | None) -> str:
        """A value from its flag or from the file its -file flag names (a mounted Secret)."""
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise FetchError(f"cannot read {path}: {exc}") from None
        return value or ""

    try:
        url, sha256 = given(args.url, args.url_file), given(args.sha256, args.sha256_file)
        if not url:
            raise FetchError("no checkpoint URL (--url or --url-file)")
        fetched = fetch_checkpoint(url, Path(args.dest), sha256)
    except FetchError as exc:
        print(f"error: {args.dest}: {exc}", file=sys.stderr)
        return 2
    print("fetched" if fetched else "already there")
    return 0


def cmd_model_ready(args) -> int:
    """Exit 0 when Triton serves the model: a readiness probe that speaks mutual TLS."""
    from tagllm.mllm.triton_client import TritonMLLM

    client = TritonMLLM(args.address, credentials=tls_credentials(args), probe_timeout=args.timeout,
                        server_name=args.server_name)  # fmt: skip
    try:
        ready = client.ready()
    finally:
        client.close()
    print("ready" if ready else "not ready")
    return 0 if ready else 1


def cmd_health(args) -> int:
    """Exit 0 when the service says SERVING: a probe for where kubelet's gRPC probe cannot speak
    TLS."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from tagllm.client import open_channel

    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    with open_channel(args.address, tls_credentials(args), options=options) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            print(f"{args.address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _add_probe_arguments(parser: argparse.ArgumentParser, server: str) -> None:
    add_tls_arguments(parser, server)
    parser.add_argument("--server-name", default="", help="name the server's certificate carries")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")


def cmd_model_tiny(args) -> int:
    from tagllm.mllm.tiny import TinySpec, build_tiny_model

    spec = TinySpec(
        image_size=args.image_size, hidden_size=args.hidden_size, layers=args.layers, seed=args.seed
    )
    out = build_tiny_model(args.arch, Path(args.out), spec)
    print(f"wrote a random {args.arch} checkpoint to {out}")
    return 0


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

        model = TransformersMLLM(args.model_dir or default_model_dir())
        rows = batch_sweep(model, builtin_vocabulary(VOCABULARY_NAME), scenes, args.clients, 16, log)
        print(json.dumps(rows, indent=2) if args.json else format_batch_sweep(rows))
        return 0
    if args.part == "throughput":  # not in "all": two stacks, minutes of load
        from tagllm.throughput import ThroughputSettings, format_throughput, throughput_benchmark

        sweep = throughput_benchmark(
            ThroughputSettings(
                clients=tuple(args.clients), max_batch_size=args.max_batch_size,
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


class _DefaultsFormatter(argparse.HelpFormatter):
    """Shows every option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, "", argparse.SUPPRESS):
            if "%(default)" not in text:
                text += (" " if text else "") + "(default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's help shows the defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        # argparse prints nothing for an option without help, not even its default.
        if args and str(args[0]).startswith("-") and kwargs.get("default") not in (None, False, ""):
            kwargs["help"] = kwargs.get("help") or "(default: %(default)s)"
        return super().add_argument(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from tagllm.mllm.tiny import ARCHITECTURES, DEFAULT_ARCH

    parser = _Parser(prog="tagllm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    _add_stack_arguments(up)
    up.set_defaults(func=cmd_up)

    demo = commands.add_parser("demo", help="start the stack, tag sample images with every strategy, stop")
    _add_stack_arguments(demo)
    demo.set_defaults(func=cmd_demo)

    tag = commands.add_parser("tag", help="tag images through a running gateway")
    tag.add_argument("images", nargs="+")
    add_gateway_arguments(tag)
    tag.add_argument("--vocab", default=DEFAULT_VOCABULARY)
    add_strategy_arguments(tag)
    tag.add_argument("--max-labels", type=int, default=0, help="at most this many labels (0: all)")
    tag.add_argument("--json", action="store_true", help="one JSON object per image")
    tag.set_defaults(func=cmd_tag)

    model = commands.add_parser("model", help="model checkpoints")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    tiny = model_commands.add_parser("tiny", help="write a tiny random checkpoint of a real architecture")
    tiny.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES))
    tiny.add_argument("--out", required=True)
    tiny.add_argument("--image-size", type=int, default=224)
    tiny.add_argument("--hidden-size", type=int, default=32)
    tiny.add_argument("--layers", type=int, default=2)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=cmd_model_tiny)
    from tagllm.demo_model.training import DemoRecipe  # no torch at import: --help stays fast

    demo = model_commands.add_parser(
        "train-demo",
        help="train the demo model from scratch on the synthetic world (resumes an interrupted run)",
    )
    demo.add_argument("--out", required=True, help="checkpoint directory to write (state in OUT.training/)")
    demo.add_argument("--steps", type=int, default=DemoRecipe.steps, help="instruction steps")
    demo.add_argument("--vision-steps", type=int, default=DemoRecipe.vision_steps)
    demo.add_argument("--threads", type=int, default=DemoRecipe.threads)
    demo.add_argument(
        "--export-only", action="store_true", help="write OUT from the last saved state, without training"
    )
    demo.set_defaults(func=cmd_model_train_demo)

    serve = model_commands.add_parser(
        "serve",
        help="run Triton with model `mllm` in the foreground (the model-server image's command)",
    )
    serve.add_argument("--model-dir", help=f"checkpoint directory (default: {describe_default_model()})")
    serve.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    serve.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    serve.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: torch's choice)")
    _add_batch_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address Triton listens on")
    serve.add_argument("--http-port", type=int, default=ports.TRITON_HTTP)
    serve.add_argument("--grpc-port", type=int, default=ports.TRITON_GRPC)
    serve.add_argument("--metrics-port", type=int, default=ports.TRITON_METRICS)
    serve.add_argument("--run-dir", default="/tmp/tagllm-model-server", help="model repository goes here")
    serve.add_argument(
        "--exit-timeout", type=int, default=10, help="seconds in-flight requests get after SIGTERM"
    )
    serve.add_argument(
        "--max-queue-size",
        type=int,
        default=64,
        help="requests that may wait for the model; more are refused at once (0: no bound)",
    )
    serve.add_argument("--tls-cert", help="server certificate (PEM): turns on mutual TLS, HTTP off")
    serve.add_argument("--tls-key", help="private key (PEM) of --tls-cert")
    serve.add_argument("--tls-ca", help="CA bundle (PEM) that signs the callers' certificates")
    serve.set_defaults(func=cmd_model_serve)

    fetch = model_commands.add_parser(
        "fetch", help="unpack a checkpoint archive from an http(s) URL (object storage) into a directory"
    )
    fetch.add_argument(
        "--dest", required=True, help="directory the checkpoint goes to (config.json at its top)"
    )
    fetch.add_argument("--url", help="the archive (tar or tar.gz)")
    fetch.add_argument("--url-file", help="a file holding the URL (a presigned one stays out of argv)")
    fetch.add_argument("--sha256", help="the archive's SHA-256, checked before unpacking")
    fetch.add_argument("--sha256-file", help="a file holding the SHA-256")
    fetch.set_defaults(func=cmd_model_fetch)

    ready = model_commands.add_parser("ready", help="exit 0 when a Triton serves the model (a TLS probe)")
    ready.add_argument("--address", default=ports.loopback(ports.TRITON_GRPC), help="Triton's gRPC address")
    _add_probe_arguments(ready, "model server")
    ready.set_defaults(func=cmd_model_ready)

    health = commands.add_parser("health", help="exit 0 when a TagLLM service says SERVING (a TLS probe)")
    health.add_argument("address", help="host:port of the gateway, refiner or metrics service")
    health.add_argument("--service", default="", help="service name to ask about ('': the server)")
    _add_probe_arguments(health, "service")
    health.set_defaults(func=cmd_health)

    bench = commands.add_parser("bench", help="per-image cost of naive vs optimised TagLLM and the baselines")
    bench.add_argument(
        "--part",
        choices=["all", "model", "overhead", "load", "throughput", "batching"],
        default="all",
        help="load: a bounded load test of the services; throughput: images/s as concurrent clients grow, "
        "batched against unbatched; batching: the model in-process, N requests as one batch against one "
        "at a time (none of them part of all)",
    )
    bench.add_argument(
        "--clients",
        type=_positive_int,
        nargs="+",
        default=[1, 2, 4, 8, 16],
        help="throughput: client counts; batching: requests per batch",
    )
    bench.add_argument(
        "--model-dir", help=f"throughput, batching: checkpoint (default: {describe_default_model()})"
    )
    bench.add_argument(
        "--throughput-parts", nargs="+", choices=["model", "null"], default=["model", "null"],
        help="throughput: the checkpoint, the null model (services alone), or both",
    )  # fmt: skip
    _add_batch_argument(bench)
    bench.add_argument("--images", type=int, default=3)
    bench.add_argument("--image-size", type=int, default=448, help="448 px gives Qwen2.5-VL 256 image tokens")
    bench.add_argument("--hidden-size", type=int, default=384)
    bench.add_argument("--layers", type=int, default=4)
    bench.add_argument("--overhead-calls", type=int, default=200)
    bench.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    bench.add_argument("--quiet", action="store_true", help="no progress lines")
    bench.set_defaults(func=cmd_bench)

    vocab_commands.add_parser(commands)
    bulk_commands.add_parsers(commands)
    review_commands.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tagllm.files import InputFileError
    from tagllm.stack.ports import PortBusy

    try:
        return args.func(args)
    except (
        ResourceMissing,
        PortBusy,
        InputFileError,
        ExtraMissing,
    ) as exc:  # each names its file, port or extra
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
