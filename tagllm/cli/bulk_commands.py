"""`tagllm annotate | export | eval | train | compare | dataset`: bulk work over datasets."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cmd_annotate(args) -> int:
    from tagllm.bulk.annotate import AnnotateSettings, annotate
    from tagllm.bulk.gateway_tagger import GatewayTagger
    from tagllm.bulk.progress import Progress
    from tagllm.bulk.run import RunDirectory, RunError
    from tagllm.bulk.sources import SourceError, in_shard, parse_shard, read_source
    from tagllm.client import TaggingClient, strategy_options
    from tagllm.datasets.readers import DatasetError, read_labels

    try:
        shard = parse_shard(args.shard)
        items = [i for i in read_source(args.source, args.images) if in_shard(i.image_id, *shard)]
        references = None
        if args.reference:
            labelled = read_labels(args.reference)
            references = {name: sorted(labels) for name, labels in labelled.labels.items()}
    except (SourceError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = strategy_options(
        args.strategy,
        grouping=False if args.no_grouping else None,
        concept_knowledge=False if args.no_concepts else None,
        min_score=args.min_score,
    )
    run = RunDirectory(args.out)
    manifest = {
        "source": str(Path(args.source).resolve()),
        "vocabulary": args.vocab,
        "strategy": args.strategy,
        "grouping": not args.no_grouping,
        "concept_knowledge": not args.no_concepts,
        "min_score": args.min_score,
        "shard": list(shard),
    }
    try:
        run.open(manifest)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done_before = len(run.results())
    print(
        f"{len(items)} images in shard {shard[0]}/{shard[1]}; {done_before} already in {run.path}",
        file=sys.stderr,
    )
    settings = AnnotateSettings(window=args.window, retries=args.retries)
    with TaggingClient(args.address, api_key=args.api_key) as client:
        tagger = GatewayTagger(client, args.vocab, options, timeout=args.timeout)
        progress = Progress(len(items), min(done_before, len(items)), gpu_price_per_hour=args.gpu_price)
        summary = annotate(items, run, tagger, references, settings, progress)
    print(
        f"{summary.annotated} annotated now, {summary.already_done} before, {summary.failed} failed "
        f"(listed in {run.failures_path})",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0


def cmd_export(args) -> int:
    from tagllm.bulk.exports import EXPORTERS, export_run
    from tagllm.bulk.run import RunDirectory, RunError

    try:
        path = export_run(RunDirectory(args.run), args.format, Path(args.out))
    except (RunError, KeyError) as exc:
        print(f"error: {exc}; formats: {sorted(EXPORTERS)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def cmd_dataset_synthetic(args) -> int:
    from tagllm.datasets.synthetic import generate

    annotations = generate(Path(args.out), args.count, seed=args.seed, size=args.size)
    print(f"wrote {args.count} images and {annotations}")
    return 0


def add_parsers(commands) -> None:
    annotate = commands.add_parser("annotate", help="annotate a dataset through the gateway (resumable)")
    annotate.add_argument("source", help="folder of images, file list (.txt) or COCO-style JSON")
    annotate.add_argument("--out", required=True, help="run directory (created, or resumed)")
    annotate.add_argument("--images", help="root of the image paths in a file list or COCO file")
    annotate.add_argument("--vocab", default="coco")
    annotate.add_argument(
        "--strategy", default="tagllm", choices=["tagllm", "multi_option", "binary", "open_ended"]
    )
    annotate.add_argument("--no-grouping", action="store_true")
    annotate.add_argument("--no-concepts", action="store_true")
    annotate.add_argument("--min-score", type=float, default=0.0)
    annotate.add_argument("--shard", default="0/1", help="I/N: annotate the I-th of N deterministic shards")
    annotate.add_argument(
        "--reference", help="human labels (COCO JSON, VOC folder, CSV) sent for live agreement"
    )
    annotate.add_argument("--address", default="127.0.0.1:50051", help="gateway address")
    annotate.add_argument("--api-key")
    annotate.add_argument("--window", type=int, default=8, help="requests in flight")
    annotate.add_argument("--retries", type=int, default=4, help="retries of a retryable failure")
    annotate.add_argument("--timeout", type=float, default=300.0, help="seconds per image")
    annotate.add_argument(
        "--gpu-price", type=float, default=2.5, help="dollars per GPU-hour, for the progress line"
    )
    annotate.set_defaults(func=cmd_annotate)

    export = commands.add_parser("export", help="export an annotation run")
    export.add_argument("run")
    export.add_argument("--format", required=True, choices=["coco", "csv", "jsonl", "labelstudio"])
    export.add_argument("--out", required=True)
    export.set_defaults(func=cmd_export)

    dataset = commands.add_parser("dataset", help="datasets for demos and tests")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    synthetic = dataset_commands.add_parser("synthetic", help="drawn objects with exact COCO labels")
    synthetic.add_argument("--out", required=True)
    synthetic.add_argument("--count", type=int, default=100)
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--size", type=int, default=256)
    synthetic.set_defaults(func=cmd_dataset_synthetic)

    add_eval_parser(commands)
    add_training_parsers(commands)


def load_run_predictions(run_path: str):
    """(predictions, results) of a run directory: image -> {label: score}."""
    from tagllm.bulk.run import RunDirectory

    results = RunDirectory(run_path).results()
    predictions = {
        r["image"]: {label["name"]: float(label.get("score", 1.0)) for label in r["labels"]} for r in results
    }
    return predictions, results


def cmd_eval(args) -> int:
    from tagllm.bulk.run import RunError
    from tagllm.datasets.readers import DatasetError, read_labels
    from tagllm.eval.metrics import evaluate
    from tagllm.eval.report import RunEvaluation, html_page, markdown

    try:
        gold_set = read_labels(args.gold)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gold = {image: set(labels) for image, labels in gold_set.labels.items()}
    categories = list(gold_set.categories)
    runs = []
    for path in args.pred:
        try:
            predictions, results = load_run_predictions(path)
        except RunError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        by_image = {r["image"]: r for r in results if r["image"] in gold}
        usage = [r.get("usage", {}) for r in by_image.values()]
        n = max(len(usage), 1)
        compute = sum(u.get("model_compute_seconds", 0.0) for u in usage) / n
        scores = evaluate(predictions, gold, categories)
        runs.append(
            RunEvaluation(
                name=Path(path).name,
                scores=scores,
                missing=sum(1 for image in gold if image not in by_image),
                calls_per_image=sum(u.get("mllm_calls", 0) for u in usage) / n,
                tokens_per_image=sum(
                    int(u.get("prompt_tokens", 0)) + int(u.get("generated_tokens", 0)) for u in usage
                )
                / n,
                compute_seconds_per_image=compute,
                dollars_per_image=compute * args.gpu_price / 3600,
                predictions=predictions,
            )
        )
    report = markdown(runs)
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report, encoding="utf-8")
    if args.html:
        Path(args.html).write_text(html_page(runs, gold), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        data = [
            {
                "run": run.name,
                "missing": run.missing,
                "calls_per_image": run.calls_per_image,
                "dollars_per_image": run.dollars_per_image,
                **{
                    k: getattr(run.scores, k)
                    for k in ("op", "orec", "of1", "cp", "cr", "cf1", "map", "images")
                },
            }
            for run in runs
        ]
        Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0


def add_eval_parser(commands) -> None:
    evaluate = commands.add_parser("eval", help="annotation quality of runs against human labels")
    evaluate.add_argument("--pred", nargs="+", required=True, help="annotation run directories")
    evaluate.add_argument("--gold", required=True, help="human labels: COCO JSON, VOC folder or CSV")
    evaluate.add_argument("--markdown", help="also write the report here")
    evaluate.add_argument("--html", help="self-contained HTML report with plots")
    evaluate.add_argument("--json", help="summary numbers as JSON")
    evaluate.add_argument("--gpu-price", type=float, default=2.5, help="dollars per GPU-hour")
    evaluate.set_defaults(func=cmd_eval)


def _examples(labels_path: str, images_dir: str | None):
    """Training examples from a run directory (MLLM labels) or a human label file."""
    from tagllm.bulk.run import RunDirectory
    from tagllm.datasets.images import image_root
    from tagllm.datasets.readers import read_labels
    from tagllm.train.recipe import Example

    path = Path(labels_path)
    if (path / "run.json").exists():
        run = RunDirectory(path)
        root = Path(images_dir) if images_dir else None
        return [
            Example(
                (root / r["image"]) if root else Path(r["path"]),
                frozenset(label["name"] for label in r["labels"]),
            )
            for r in run.results()
        ]
    labelled = read_labels(path)
    root = image_root(path, labelled.images, Path(images_dir) if images_dir else None)
    return [Example(root / image, labels) for image, labels in labelled.labels.items()]


def cmd_train(args) -> int:
    import torch

    from tagllm.bulk.run import RunError
    from tagllm.datasets.readers import DatasetError, read_labels
    from tagllm.train.recipe import TrainSettings, train

    try:
        train_set = _examples(args.labels, args.images)
        val_set = _examples(args.val, args.val_images)
        classes = list(read_labels(args.val).categories)
    except (DatasetError, RunError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = TrainSettings(
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        ema_decay=args.ema_decay,
        seed=args.seed,
    )
    print(
        f"training {args.backbone} on {len(train_set)} images ({args.labels}), validating on {len(val_set)}"
    )
    result, model = train(train_set, val_set, classes, settings, log=lambda line: print(line, flush=True))
    result["labels"] = str(args.labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    torch.save(model.state_dict(), out / "model.pt")
    print(f"validation mAP {100 * result['val_map']:.2f} (epoch {result['best_epoch']}); wrote {out}")
    return 0


def compare_table(rows: dict[str, float]) -> str:
    """The paper's comparison: validation mAP per label source and the share of the gap closed."""
    human, baseline, tagllm = rows["human"], rows["baseline"], rows["tagllm"]
    gap = human - baseline
    closed = (tagllm - baseline) / gap if gap else float("nan")
    lines = ["| labels | val mAP | vs human |", "|---|---|---|"]
    for name in ("human", "baseline", "tagllm"):
        lines.append(f"| {name} | {100 * rows[name]:.2f} | {100 * (rows[name] - human):+.2f} |")
    lines.append("")
    lines.append(f"Share of the gap between baseline MLLM and human labels closed by TagLLM: {closed:.1%}")
    return "\n".join(lines) + "\n"


def cmd_compare(args) -> int:
    rows = {}
    for name in ("human", "baseline", "tagllm"):
        path = Path(getattr(args, name))
        path = path / "result.json" if path.is_dir() else path
        try:
            rows[name] = float(json.loads(path.read_text())["val_map"])
        except (OSError, KeyError, ValueError) as exc:
            print(f"error: {path}: not a training result ({exc})", file=sys.stderr)
            return 2
    table = compare_table(rows)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table, encoding="utf-8")
    return 0


def add_training_parsers(commands) -> None:
    from tagllm.train.recipe import BACKBONES

    train = commands.add_parser("train", help="train a multi-label classifier on annotations; report val mAP")
    train.add_argument("--labels", required=True, help="annotation run directory, or human labels file")
    train.add_argument(
        "--images", help="image root of the labels (default: beside the labels / the run's paths)"
    )
    train.add_argument("--val", required=True, help="human labels of the validation images")
    train.add_argument("--val-images", help="image root of the validation labels")
    train.add_argument("--out", required=True, help="directory for result.json and model.pt")
    train.add_argument("--backbone", default="resnet101", choices=sorted(BACKBONES))
    train.add_argument("--image-size", type=int, default=224)
    train.add_argument("--epochs", type=int, default=40)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--ema-decay", type=float, default=0.9997)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    compare = commands.add_parser(
        "compare", help="the paper's table: mAP per label source, share of gap closed"
    )
    compare.add_argument("--human", required=True, help="training result (directory or result.json)")
    compare.add_argument(
        "--baseline", required=True, help="training on plain MLLM labels (e.g. multi_option)"
    )
    compare.add_argument("--tagllm", required=True, help="training on TagLLM labels")
    compare.add_argument("--markdown", help="also write the table here")
    compare.set_defaults(func=cmd_compare)
