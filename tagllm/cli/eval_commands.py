"""`tagllm eval | ablation`: annotation quality against human labels, and the paper's rows."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from tagllm.bulk.annotate import DEFAULT_WINDOW
from tagllm.cli.options import add_gateway_arguments, add_outside_root_argument, gateway_client, positive_int
from tagllm.files import write_text_atomically
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR
from tagllm.vocab.registry import DEFAULT_VOCABULARY


def print_and_save(report: str, path: str | None) -> None:
    """Prints a Markdown report, and writes it to `path` too when one is given."""
    print(report)
    if path:
        write_text_atomically(path, report)


def _run_vocabulary(run_paths: list[str], override: str | None):
    """The vocabulary the runs were annotated with (or `override`); RunError/VocabularyError."""
    from tagllm.bulk.run import RunDirectory, RunError
    from tagllm.vocab import VocabularyError, named_vocabulary

    if override:
        return named_vocabulary(override)
    names = {
        str(RunDirectory(path).manifest().get("vocabulary", "")) for path in run_paths if Path(path).is_dir()
    }
    if not names:
        raise RunError("exported files do not record their run's vocabulary: pass --vocab NAME_OR_FILE")
    if len(names) != 1:
        raise RunError(f"the runs were annotated with different vocabularies {sorted(names)}; pass --vocab")
    name = names.pop()
    try:
        return named_vocabulary(name)
    except VocabularyError:
        raise VocabularyError(
            f"the runs used vocabulary {name!r}, which is not built in: pass --vocab FILE"
        ) from None


def cmd_eval(args) -> int:
    from tagllm.bulk.run import RunError
    from tagllm.datasets.readers import DatasetError
    from tagllm.eval.report import html_page, markdown
    from tagllm.eval.runs import EvalError, evaluate_runs, read_label_map, summary
    from tagllm.vocab import VocabularyError

    try:
        vocabulary = _run_vocabulary(args.pred, args.vocab)
        label_map = read_label_map(args.label_map) if args.label_map else None
        runs, gold = evaluate_runs(args.pred, args.gold, args.gpu_price, vocabulary, label_map)
    except (DatasetError, RunError, EvalError, VocabularyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_and_save(markdown(runs), args.markdown)
    if args.html:
        generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_text_atomically(args.html, html_page(runs, gold, args.gold, generated))
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        write_text_atomically(args.json, json.dumps(summary(runs), indent=2))
    return 0


def cmd_ablation(args) -> int:
    from tagllm.bulk.annotate import AnnotateSettings
    from tagllm.bulk.run import RunError
    from tagllm.bulk.sources import SourceError
    from tagllm.datasets.readers import DatasetError
    from tagllm.eval.ablation import (
        ablation_table,
        read_ablation_data,
        rows_named,
        run_ablation,
        taggers_in_process,
        taggers_through_gateway,
    )

    try:
        rows = rows_named(args.rows)
        data = read_ablation_data(
            args.labels, args.images, args.vocab, args.limit, args.allow_outside_root, bool(args.model_dir)
        )
    except (ValueError, SourceError, DatasetError) as exc:  # EvalError and VocabularyError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model_dir:
        assert data.vocabulary is not None  # read in process, or refused above
        tagger_for = taggers_in_process(args.model_dir, data.vocabulary)
        where = f"in-process model {args.model_dir}"
    else:
        tagger_for = taggers_through_gateway(gateway_client(args), args.vocab, args.timeout)
        where = f"the gateway at {args.address}"
    print(f"{len(rows)} rows x {len(data.items)} images of {args.labels} through {where}", file=sys.stderr)
    manifest = {
        "source": str(Path(args.labels).resolve()),
        "vocabulary": args.vocab,
        "images": len(data.items),
    }
    try:
        results = run_ablation(
            data.items, data.gold, data.categories, Path(args.out), tagger_for, rows,
            AnnotateSettings(window=args.window), args.gpu_price, manifest=manifest,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )  # fmt: skip
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = ablation_table(results, f"{len(data.items)} images of {Path(args.labels).name}, {where}")
    print_and_save(table, str(Path(args.out) / "ablation.md"))
    return 0


def add_eval_parser(commands) -> None:
    evaluate = commands.add_parser("eval", help="annotation quality of runs against human labels")
    evaluate.add_argument(
        "--pred", nargs="+", required=True, help="annotation run directories, or files tagllm export wrote"
    )
    evaluate.add_argument("--gold", required=True, help="human labels: COCO JSON, VOC folder or CSV")
    evaluate.add_argument("--vocab", help="vocabulary of the runs (default: the one their run.json names)")
    evaluate.add_argument(
        "--label-map", help="JSON or YAML file mapping gold category names to vocabulary names"
    )
    evaluate.add_argument("--markdown", help="also write the report here")
    evaluate.add_argument("--html", help="self-contained HTML report with plots")
    evaluate.add_argument("--json", help="summary numbers as JSON")
    evaluate.add_argument(
        "--gpu-price", type=float, default=DEFAULT_GPU_PRICE_PER_HOUR, help="dollars per GPU-hour"
    )
    evaluate.set_defaults(func=cmd_eval)

    ablation = commands.add_parser(
        "ablation", help="the paper's ablation rows on a labelled dataset, annotated and scored in one table"
    )
    ablation.add_argument(
        "labels", help="human labels with their images: COCO-style JSON (images[].file_name)"
    )
    ablation.add_argument("--out", required=True, help="folder: one resumable run per row, and ablation.md")
    ablation.add_argument("--images", help="root of the image paths in the label file")
    add_outside_root_argument(ablation)
    ablation.add_argument(
        "--vocab",
        default=DEFAULT_VOCABULARY,
        help="vocabulary name at the gateway; with --model-dir, a built-in or a file",
    )
    ablation.add_argument("--rows", nargs="+", help="row names or slugs (default: all)")
    ablation.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    where = ablation.add_mutually_exclusive_group()
    add_gateway_arguments(ablation, "gateway address (unless --model-dir)", address_in=where)
    where.add_argument("--model-dir", help="run this checkpoint in-process instead of through a gateway")
    ablation.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        help="images in flight (see tagllm annotate --help)",
    )
    ablation.add_argument("--timeout", type=float, default=300.0, help="seconds per image")
    ablation.add_argument(
        "--gpu-price", type=float, default=DEFAULT_GPU_PRICE_PER_HOUR, help="dollars per GPU-hour"
    )
    ablation.set_defaults(func=cmd_ablation)
