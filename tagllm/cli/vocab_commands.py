"""`tagllm vocab ...`: validate vocabulary files and prepare groups and concept knowledge."""

from __future__ import annotations

import argparse
import sys

from tagllm.vocab import VocabularyError, builtin_names, builtin_vocabulary, load_vocabulary


def _load(name_or_path: str):
    return (
        builtin_vocabulary(name_or_path) if name_or_path in builtin_names() else load_vocabulary(name_or_path)
    )


def cmd_validate(args) -> int:
    status = 0
    for item in args.files:
        try:
            vocabulary = _load(item)
        except VocabularyError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            status = 1
            continue
        print(
            f"ok: {vocabulary.name} {vocabulary.full_version}: {len(vocabulary.categories)} categories "
            f"in {len(vocabulary.groups)} groups"
        )
    return status


def add_parser(commands) -> None:
    vocab = commands.add_parser("vocab", help="validate and prepare vocabularies")
    sub = vocab.add_subparsers(dest="vocab_command", required=True)
    validate = sub.add_parser(
        "validate", help="check vocabulary files (or built-in names) against the schema"
    )
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)


__all__ = ["add_parser", "argparse"]
