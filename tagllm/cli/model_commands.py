"""`tagllm model`: checkpoints (tiny random ones, the demo model's training, fetching) and the
model server (Triton serving one, and its readiness probe)."""

from __future__ import annotations

import sys
from pathlib import Path

from tagllm import ports
from tagllm.cli.options import (
    add_batch_argument,
    add_instance_arguments,
    add_probe_arguments,
    tls_credentials,
)
from tagllm.extras import require as require_extra
from tagllm.mllm.default_model import describe_default_model


def cmd_model_train_demo(args) -> int:
    import dataclasses

    from tagllm.demo_model.training import DemoRecipe, DemoTrainer, TrainingStateError

    recipe = dataclasses.replace(
        DemoRecipe(), steps=args.steps, vision_steps=args.vision_steps, threads=args.threads
    )
    trainer = DemoTrainer(Path(args.out), recipe, log=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        trainer.export_saved() if args.export_only else trainer.run()
    except TrainingStateError as exc:
        print(exc, file=sys.stderr)
        return 2
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
        instances=args.instances,
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


def cmd_model_tiny(args) -> int:
    from tagllm.mllm.tiny import TinySpec, build_tiny_model

    spec = TinySpec(
        image_size=args.image_size, hidden_size=args.hidden_size, layers=args.layers, seed=args.seed
    )
    out = build_tiny_model(args.arch, Path(args.out), spec)
    print(f"wrote a random {args.arch} checkpoint to {out}")
    return 0


def add_parser(commands) -> None:
    from tagllm.mllm.tiny import ARCHITECTURES, DEFAULT_ARCH

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
    add_instance_arguments(serve)
    add_batch_argument(serve)
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
    add_probe_arguments(ready, "model server")
    ready.set_defaults(func=cmd_model_ready)
