"""`tagllm tag | health`: calls to a running service."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tagllm.cli.options import (
    add_gateway_arguments,
    add_probe_arguments,
    add_strategy_arguments,
    gateway_client,
    options_from_arguments,
    tls_credentials,
)
from tagllm.vocab.registry import DEFAULT_VOCABULARY

MAX_PRINTED_LABELS = 10


def print_response(path: str, response, as_json: bool) -> None:
    from tagllm.convert import result_from_proto, result_message_to_json

    if as_json:
        print(
            json.dumps({"image": path, "cached": response.cached, **result_message_to_json(response.result)})
        )
        return
    result = result_from_proto(response.result)
    shown = result.labels[:MAX_PRINTED_LABELS]
    labels = ", ".join(f"{label.name} ({label.score:.2f})" for label in shown) or "(no labels)"
    if len(result.labels) > len(shown):
        labels += f", ... ({len(result.labels) - len(shown)} more; --json shows all)"
    usage, version = result.usage, result.version
    print(f"{path}: {labels}")
    print(
        f"  {usage.mllm_calls} MLLM calls in {usage.mllm_requests} requests, {usage.prompt_tokens} prompt + "
        f"{usage.generated_tokens} generated tokens, {usage.model_compute_seconds * 1000:.0f} ms model time; "
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
            print_response(path, response, args.json)
    return 1 if failures else 0


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


def add_tag_parser(commands) -> None:
    tag = commands.add_parser("tag", help="tag images through a running gateway")
    tag.add_argument("images", nargs="+")
    add_gateway_arguments(tag)
    tag.add_argument("--vocab", default=DEFAULT_VOCABULARY)
    add_strategy_arguments(tag)
    tag.add_argument("--max-labels", type=int, default=0, help="at most this many labels (0: all)")
    tag.add_argument("--json", action="store_true", help="one JSON object per image")
    tag.set_defaults(func=cmd_tag)


def add_health_parser(commands) -> None:
    health = commands.add_parser("health", help="exit 0 when a TagLLM service says SERVING (a TLS probe)")
    health.add_argument("address", help="host:port of the gateway, refiner or metrics service")
    health.add_argument("--service", default="", help="service name to ask about ('': the server)")
    add_probe_arguments(health, "service")
    health.set_defaults(func=cmd_health)
