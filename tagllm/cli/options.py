"""The strategy flags `tag` and `annotate` share, and the options message they make."""

from __future__ import annotations

import argparse
from typing import Any

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
