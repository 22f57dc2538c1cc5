"""The flags the commands share: strategy options, and how to reach the gateway."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tagllm import ports
from tagllm.strategies import DEFAULT_STRATEGY, STRATEGIES
from tagllm.vocab.partitions import DEFAULT_PARTITION, PARTITIONS


def add_strategy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES))
    parser.add_argument(
        "--no-grouping", action="store_true", help="TagLLM stage 1 with one whole-vocabulary prompt"
    )
    parser.add_argument(
        "--partition",
        default=DEFAULT_PARTITION,
        choices=PARTITIONS,
        help="TagLLM's groups: co-occurring (coop), not co-occurring (discp) or random (randp)",
    )
    parser.add_argument(
        "--concepts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="yes/no questions with concept knowledge (default: tagllm with, binary without)",
    )
    parser.add_argument(
        "--prompt-style",
        default="",
        help="careful (the paper's default), simple, or a vocabulary's own style",
    )
    parser.add_argument("--min-score", type=float, default=0.0, help="drop labels scoring below this")


def options_from_arguments(args: argparse.Namespace, **extra: Any):
    """The request's StrategyOptions message for the parsed flags."""
    from tagllm.convert import strategy_options

    return strategy_options(
        args.strategy,
        grouping=False if args.no_grouping else None,
        concept_knowledge=args.concepts,
        min_score=args.min_score,
        prompt_style=args.prompt_style,
        partition=args.partition,
        **extra,
    )


def options_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """What a run directory records of the flags, to refuse resuming it with others."""
    return {
        "strategy": args.strategy,
        "grouping": not args.no_grouping,
        "partition": args.partition,
        "concept_knowledge": args.concepts,
        "prompt_style": args.prompt_style,
        "min_score": args.min_score,
    }


DEFAULT_GATEWAY = ports.loopback(ports.GATEWAY)
API_KEY_VARIABLE = "TAGLLM_API_KEY"


def _key_from_environment() -> str | None:
    if os.environ.get(API_KEY_VARIABLE):
        return os.environ[API_KEY_VARIABLE]
    path = os.environ.get(API_KEY_VARIABLE + "_FILE")
    if not path:
        return None
    try:
        return open(path, encoding="utf-8").read().strip() or None
    except OSError as exc:
        raise SystemExit(f"error: {API_KEY_VARIABLE}_FILE: {exc}") from None


def add_gateway_arguments(parser, address_help: str = "gateway address", address_in=None) -> None:
    """--address (in the group `address_in` when given), --api-key, and TLS's --ca/--cert/--key."""
    (address_in or parser).add_argument("--address", default=DEFAULT_GATEWAY, help=address_help)
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"sent as `authorization: Bearer KEY` (default: ${API_KEY_VARIABLE}, or the content of the "
        f"file ${API_KEY_VARIABLE}_FILE names; either keeps it out of ps)",
    )
    add_tls_arguments(parser, "gateway")


def add_tls_arguments(parser, server: str) -> None:
    """--ca, --cert and --key: TLS to `server` (the gateway, a TagLLM service, Triton)."""
    parser.add_argument(
        "--ca", help=f"CA bundle (PEM) that verifies the {server}'s certificate: turns on TLS"
    )
    parser.add_argument("--cert", help=f"client certificate (PEM), for a {server} that asks for one")
    parser.add_argument("--key", help="private key (PEM) of --cert")


def tls_credentials(args: argparse.Namespace):
    """Channel credentials of the parsed TLS flags (None: plaintext); bad files end the command
    (exit 2)."""
    import sys

    from tagllm.client import channel_credentials

    try:
        return channel_credentials(args.ca or "", args.cert or "", args.key or "")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def gateway_client(args: argparse.Namespace):
    """A TaggingClient for the parsed gateway flags."""
    from tagllm.client import TaggingClient

    api_key = args.api_key or _key_from_environment()
    return TaggingClient(args.address, api_key=api_key, credentials=tls_credentials(args))


def add_outside_root_argument(parser) -> None:
    parser.add_argument(
        "--allow-outside-root",
        action="store_true",
        help="read images a list or COCO file names outside the image root (absolute paths, ..)",
    )


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_batch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=8,
        help="requests the model server runs together (Triton's dynamic batch; 1: each request alone)",
    )


def add_instance_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """The model server's instances and the compute threads of each (`--PREFIXinstances`,
    `--PREFIXthreads`): TritonSettings.instances and .threads."""
    parser.add_argument(
        f"--{prefix}instances",
        type=positive_int,
        default=1,
        help="copies of the model the model server runs side by side (Triton's instance_group count), each "
        "with its own weights; on a CPU, 2 single-threaded instances serve concurrent clients faster than 1 "
        "(BENCHMARKS.md)",
    )
    parser.add_argument(
        f"--{prefix}threads",
        type=non_negative_int,
        default=0,
        help="compute threads per model instance (0: torch's default; the cores shared out among instances)",
    )


def add_probe_arguments(parser: argparse.ArgumentParser, server: str) -> None:
    add_tls_arguments(parser, server)
    parser.add_argument("--server-name", default="", help="name the server's certificate carries")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
