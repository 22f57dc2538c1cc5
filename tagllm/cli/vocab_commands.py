"""`tagllm vocab ...`: validate vocabulary files and prepare groups and concept knowledge."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tagllm.cli.options import add_gateway_arguments, gateway_client
from tagllm.mllm.contract import MLLM
from tagllm.vocab import named_vocabulary
from tagllm.vocab.registry import DEFAULT_VOCABULARY
from tagllm.vocab.validation import revise


def _write(vocabulary, out: str | None) -> None:
    text = vocabulary.to_yaml()
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {vocabulary.name} {vocabulary.full_version} to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_validate(args) -> int:
    from tagllm.parsing import indistinct_names
    from tagllm.prompts import build_styles

    status = 0
    for item in args.files:
        try:
            vocabulary = named_vocabulary(item)
            styles = build_styles(vocabulary).styles
        except ValueError as exc:  # VocabularyError is one
            print(f"invalid: {item}: {exc}", file=sys.stderr)
            status = 1
            continue
        for warning in indistinct_names(vocabulary):
            print(f"warning: {vocabulary.name}: {warning}", file=sys.stderr)
        if not vocabulary.groups_given:
            print(
                f"warning: {vocabulary.name}: no groups; TagLLM falls back to super-category chunks, which "
                "the paper found less precise than co-occurrence groups (make them: tagllm vocab group)",
                file=sys.stderr,
            )
        print(
            f"ok: {vocabulary.name} {vocabulary.full_version}: {len(vocabulary.categories)} categories "
            f"in {len(vocabulary.groups)} groups; prompt styles {', '.join(styles)}"
        )
    return status


def _label_sets_from_answers(args, vocabulary) -> list[frozenset[str]]:
    """multi_option answers for a sample of unlabelled images, through a running gateway."""
    import grpc

    from tagllm.client import strategy_options
    from tagllm.datasets.images import list_images

    images = list_images(Path(args.from_answers))[: args.sample]
    if not images:
        raise SystemExit(f"no images under {args.from_answers}")
    label_sets = []
    with gateway_client(args) as client:
        for n, image in enumerate(images, start=1):
            try:
                response = client.tag(
                    image, vocabulary=vocabulary.name, options=strategy_options("multi_option")
                )
            except grpc.RpcError as exc:
                print(f"{image}: {exc.code().name}: {exc.details()}", file=sys.stderr)
                continue
            label_sets.append(frozenset(label.name for label in response.result.labels))
            print(f"\r{n}/{len(images)} images answered", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return label_sets


def _chat(args):
    from tagllm.prepare.chat import OpenAIChat

    return OpenAIChat(args.chat_url, args.chat_model, api_key=os.environ.get(args.chat_api_key_env, ""))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _label_sets(path: str, vocabulary) -> list[frozenset[str]]:
    """The label sets of a label file, warning of its categories the vocabulary lacks."""
    from tagllm.datasets.readers import read_labels

    labelled = read_labels(path)
    unknown = sorted(set(labelled.categories) - set(vocabulary.names))
    if unknown:
        print(
            f"warning: ignoring {len(unknown)} categories not in {vocabulary.name}: {unknown[:10]}",
            file=sys.stderr,
        )
    return [frozenset(labels) for labels in labelled.labels.values()]


def cmd_group(args) -> int:
    from tagllm.datasets.readers import DatasetError
    from tagllm.prepare.grouping import groups_from_label_sets

    vocabulary = named_vocabulary(args.vocab)
    if args.chat_url:
        from tagllm.prepare.chat import KnowledgeError, ask_groups

        kind = "discp" if args.discp else "coop"
        try:
            revised = ask_groups(vocabulary, _chat(args), args.groups, kind, log=_log)
        except KnowledgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        _write(revised, args.out)
        return 0
    if args.discp:
        print(
            "error: --discp needs --chat-url (measured co-occurrence makes co-occurrence groups)",
            file=sys.stderr,
        )
        return 2
    if args.from_labels:
        try:
            label_sets = _label_sets(args.from_labels, vocabulary)
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        label_sets = _label_sets_from_answers(args, vocabulary)
    groups = groups_from_label_sets(vocabulary, label_sets, max_size=args.max_size)
    print(
        f"{len(groups)} groups from {len(label_sets)} label sets (at most {args.max_size} each)",
        file=sys.stderr,
    )
    _write(revise(vocabulary, groups=groups), args.out)
    return 0


def cmd_concepts(args) -> int:
    from tagllm.prepare.concepts import generate_concepts

    vocabulary = named_vocabulary(args.vocab)
    if args.chat_url:
        from tagllm.prepare.chat import ask_concepts

        _write(ask_concepts(vocabulary, _chat(args), log=_log), args.out)
        return 0
    mllm: MLLM
    if args.triton:
        from tagllm.mllm.triton_client import TritonMLLM

        mllm = TritonMLLM(args.triton)
    else:
        from tagllm.mllm.default_model import default_model_dir
        from tagllm.mllm.transformers_backend import TransformersMLLM

        mllm = TransformersMLLM(args.model_dir or default_model_dir())
    _write(generate_concepts(vocabulary, mllm), args.out)
    return 0


def cmd_subset(args) -> int:
    from tagllm.datasets.readers import DatasetError
    from tagllm.prepare.subset import positives, subset

    vocabulary = named_vocabulary(args.vocab)
    try:
        label_sets = _label_sets(args.labels, vocabulary)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        revised = subset(vocabulary, positives(label_sets), args.min_positives, args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(revised.categories)} of {len(vocabulary.categories)} categories kept", file=sys.stderr)
    _write(revised, args.out)
    return 0


def cmd_register(args) -> int:
    import grpc

    from tagllm.client import describe_rpc_error
    from tagllm.v1 import tagging_pb2

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    with gateway_client(args) as client:
        request = tagging_pb2.RegisterVocabularyRequest(yaml=text, replace=args.replace)
        try:
            info = client.stub.RegisterVocabulary(request, timeout=60, metadata=client.metadata).vocabulary
        except grpc.RpcError as exc:
            print(f"error: {describe_rpc_error(exc, args.address)}", file=sys.stderr)
            return 1
    print(f"registered {info.name} {info.version}: {info.categories} categories in {info.groups} groups")
    return 0


def add_parser(commands) -> None:
    vocab = commands.add_parser("vocab", help="validate and prepare vocabularies")
    sub = vocab.add_subparsers(dest="vocab_command", required=True)

    validate = sub.add_parser(
        "validate", help="check vocabulary files (or built-in names) against the schema"
    )
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=cmd_validate)

    group = sub.add_parser(
        "group",
        help="groups of co-occurring categories: from a chat LLM (the paper) or measured co-occurrence",
    )
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--chat-url", help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    source.add_argument(
        "--from-labels",
        help="human labels (COCO JSON, VOC folder, CSV); never those of the set you will evaluate on",
    )
    source.add_argument("--from-answers", help="folder of unlabelled images, answered by multi_option")
    _add_chat_arguments(group)
    group.add_argument("--groups", type=int, default=10, help="groups to ask the chat LLM for")
    group.add_argument(
        "--discp",
        action="store_true",
        help="ask for groups that do not co-occur (the paper's DiscP ablation)",
    )
    group.add_argument("--vocab", default=DEFAULT_VOCABULARY, help="built-in name or vocabulary file")
    group.add_argument("--max-size", type=int, default=10, help="largest group")
    group.add_argument("--sample", type=int, default=500, help="images to answer with --from-answers")
    add_gateway_arguments(group, "gateway for --from-answers")
    group.add_argument("--out", help="vocabulary file to write (default: standard output)")
    group.set_defaults(func=cmd_group)

    concepts = sub.add_parser(
        "concepts", help="super-category, similar categories and descriptions from a model, for review"
    )
    concepts.add_argument("--vocab", default=DEFAULT_VOCABULARY, help="built-in name or vocabulary file")
    where = concepts.add_mutually_exclusive_group()
    where.add_argument("--chat-url", help="OpenAI-compatible endpoint (the paper's way: a chat LLM)")
    where.add_argument("--triton", help="Triton gRPC address serving model mllm")
    where.add_argument("--model-dir", help="checkpoint to run in-process (default: the tiny model)")
    _add_chat_arguments(concepts)
    register = sub.add_parser("register", help="register a vocabulary file with a running gateway")
    register.add_argument("file")
    add_gateway_arguments(register)
    register.add_argument(
        "--replace", action="store_true", help="replace a registered vocabulary of that name"
    )
    register.set_defaults(func=cmd_register)

    subset = sub.add_parser(
        "subset",
        help="keep the categories with enough positives in a label file (the paper's 251 of Objects365)",
    )
    subset.add_argument("vocab", help="built-in name or vocabulary file")
    subset.add_argument("--labels", required=True, help="label file: COCO JSON, VOC folder or CSV")
    subset.add_argument("--min-positives", type=int, default=100, help="keep categories with more positives")
    subset.add_argument("--name", default="", help="name of the new vocabulary (default: NAME-COUNT)")
    subset.add_argument("--out", help="vocabulary file to write (default: standard output)")
    subset.set_defaults(func=cmd_subset)
    concepts.add_argument("--out", help="vocabulary file to write (default: standard output)")
    concepts.set_defaults(func=cmd_concepts)


def _add_chat_arguments(parser) -> None:
    parser.add_argument("--chat-model", default="gpt-4o", help="model name at the chat endpoint")
    parser.add_argument(
        "--chat-api-key-env", default="OPENAI_API_KEY", help="environment variable holding the endpoint's key"
    )
