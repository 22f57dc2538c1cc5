"""`tagllm up | demo`: the local stack, kept running or used once to show the strategies."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from tagllm import ports
from tagllm.cli.options import add_batch_argument, add_instance_arguments
from tagllm.cli.tag_commands import print_response
from tagllm.extras import require as require_extra
from tagllm.mllm.default_model import describe_default_model
from tagllm.strategies import STRATEGIES


def stack_settings(args, run_dir: Path):
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
        model_instances=args.model_instances,
        model_threads=args.model_threads,
        tls=args.tls,
    )


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", help=f"checkpoint directory (default: {describe_default_model()})")
    parser.add_argument("--run-dir", help="where logs and the model repository go (default: a new temp dir)")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on")
    for field, (port, listener) in ports.STACK_PORTS.items():
        parser.add_argument("--" + field.replace("_", "-"), type=int, default=port, help=listener)
    parser.add_argument("--prometheus", action="store_true", help="also start Prometheus scraping the stack")
    parser.add_argument(
        "--naive", action="store_true", help="model computes every prompt separately (no prefix reuse)"
    )
    add_batch_argument(parser)
    add_instance_arguments(parser, prefix="model-")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="TLS on the gateway and mutual TLS on every internal hop, from a private CA in RUN_DIR/tls",
    )


def new_run_dir(args) -> Path:
    return Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="tagllm-run-"))


def cmd_up(args) -> int:
    require_extra("stack", "tagllm up")
    from tagllm.stack.local import LocalStack
    from tagllm.stack.supervise import CrashLoop, Supervisor

    stack = LocalStack(stack_settings(args, new_run_dir(args)))
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

    run_dir = new_run_dir(args)
    stack = LocalStack(stack_settings(args, run_dir))
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
                    print_response(f"{image.name} (drawn: {', '.join(truth)})", response, False)
    print(f"\nstack stopped. Images and logs: {run_dir}")
    if stack.settings.model_dir == DEMO_MODEL_DIR:
        print("The demo model is a small Qwen2.5-VL trained here on this synthetic world only (QUALITY.md);")
        print("point --model-dir (or TAGLLM_MODEL_DIR) at a real checkpoint for photographs.")
    return 0


def add_parsers(commands) -> None:
    up = commands.add_parser("up", help="start the local stack and keep it running until Ctrl-C")
    add_stack_arguments(up)
    up.set_defaults(func=cmd_up)

    demo = commands.add_parser("demo", help="start the stack, tag sample images with every strategy, stop")
    add_stack_arguments(demo)
    demo.set_defaults(func=cmd_demo)
