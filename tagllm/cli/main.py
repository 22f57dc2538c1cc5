"""`tagllm`: run the local stack, tag images, build tiny models, prepare vocabularies."""

from __future__ import annotations

import argparse
import sys

from tagllm.cli import (
    annotate_commands,
    bench_commands,
    dataset_commands,
    eval_commands,
    model_commands,
    review_commands,
    stack_commands,
    tag_commands,
    train_commands,
    vocab_commands,
)
from tagllm.extras import ExtraMissing
from tagllm.resources import ResourceMissing


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
    parser = _Parser(prog="tagllm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    stack_commands.add_parsers(commands)
    tag_commands.add_tag_parser(commands)
    model_commands.add_parser(commands)
    tag_commands.add_health_parser(commands)
    bench_commands.add_parser(commands)
    vocab_commands.add_parser(commands)
    annotate_commands.add_parsers(commands)
    dataset_commands.add_parser(commands)
    eval_commands.add_eval_parser(commands)
    train_commands.add_parsers(commands)
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
