"""`tagllm annotate | export | eval | train | compare | dataset`: bulk work over datasets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tagllm.bulk.formats import FORMATS
from tagllm.cli.eval_commands import add_eval_parser, print_and_save
from tagllm.cli.options import (
    add_gateway_arguments,
    add_outside_root_argument,
    add_strategy_arguments,
    gateway_client,
    options_from_arguments,
    options_manifest,
)
from tagllm.files import write_text_atomically
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR
from tagllm.vocab.registry import DEFAULT_VOCABULARY


def cmd_annotate(args) -> int:
    from tagllm.bulk.annotate import AnnotateSettings, annotate
    from tagllm.bulk.gateway_tagger import GatewayTagger
    from tagllm.bulk.progress import Progress
    from tagllm.bulk.run import RunDirectory, RunError
    from tagllm.bulk.sources import SourceError, in_shard, parse_shard, read_source
    from tagllm.datasets.readers import DatasetError, read_labels

    try:
        shard = parse_shard(args.shard)
        items = [
            i
            for i in read_source(args.source, args.images, args.allow_outside_root)
            if in_shard(i.image_id, *shard)
        ]
        references = None
        if args.reference:
            labelled = read_labels(args.reference)
            references = {name: sorted(labels) for name, labels in labelled.labels.items()}
    except (SourceError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not items:
        print(
            f"error: no images in {args.source} (shard {shard[0]}/{shard[1]}); nothing to annotate",
            file=sys.stderr,
        )
        return 2
    options = options_from_arguments(args)
    with gateway_client(args) as client:
        if not client.reachable():
            print(f"error: cannot reach the gateway at {args.address}: is the stack running? Start it with "
                  "`tagllm up`", file=sys.stderr)  # fmt: skip
            return 2
        run = RunDirectory(args.out)
        manifest = {
            "source": str(Path(args.source).resolve()),
            "vocabulary": args.vocab,
            **options_manifest(args),
            "shard": list(shard),
        }
        try:
            run.open(manifest)
            done_before = len(run.results())
        except RunError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"{len(items)} images in shard {shard[0]}/{shard[1]}; {done_before} already in {run.path}",
            file=sys.stderr,
        )
        settings = AnnotateSettings(window=args.window, retries=args.retries)
        tagger = GatewayTagger(client, args.vocab, options, timeout=args.timeout)
        progress = Progress(len(items), min(done_before, len(items)), gpu_price_per_hour=args.gpu_price)
        try:
            summary = annotate(items, run, tagger, references, settings, progress)
        except KeyboardInterrupt:
            progress.close()
            print(
                f"\ninterrupted: {len(run.results())} of {len(items)} results are saved in "
                f"{run.results_path}; run the same command to go on from there",
                file=sys.stderr,
            )
            return 130
        finally:
            progress.close()
    print(
        f"{summary.annotated} annotated now, {summary.already_done} before, {summary.failed} failed "
        f"(listed in {run.failures_path})",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0


def cmd_export(args) -> int:
    from tagllm.bulk.exports import export_run
    from tagllm.bulk.run import RunDirectory, RunError

    try:
        path = export_run(
            RunDirectory(args.run), args.format, Path(args.out), args.min_score, args.image_url_prefix
        )
    except (RunError, KeyError) as exc:
        print(f"error: {exc}; formats: {sorted(FORMATS)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def cmd_dataset_world(args) -> int:
    from tagllm.datasets.world import generate_world

    annotations = generate_world(Path(args.out), args.count, split=args.split)
    print(f"wrote {args.count} scenes to {Path(args.out) / 'images'} and labels to {annotations}")
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
    add_outside_root_argument(annotate)
    annotate.add_argument("--vocab", default=DEFAULT_VOCABULARY)
    add_strategy_arguments(annotate)
    annotate.add_argument("--shard", default="0/1", help="I/N: annotate the I-th of N deterministic shards")
    annotate.add_argument(
        "--reference", help="human labels (COCO JSON, VOC folder, CSV) sent for live agreement"
    )
    add_gateway_arguments(annotate)
    annotate.add_argument("--window", type=int, default=8, help="images in flight on the StreamTag stream")
    annotate.add_argument("--retries", type=int, default=4, help="retries of a retryable failure")
    annotate.add_argument("--timeout", type=float, default=300.0, help="seconds per image")
    annotate.add_argument(
        "--gpu-price",
        type=float,
        default=DEFAULT_GPU_PRICE_PER_HOUR,
        help="dollars per GPU-hour, for the progress line",
    )
    annotate.set_defaults(func=cmd_annotate)

    export = commands.add_parser("export", help="export an annotation run")
    export.add_argument("run")
    export.add_argument("--format", required=True, choices=sorted(FORMATS))
    export.add_argument("--out", required=True)
    export.add_argument("--min-score", type=float, default=0.0, help="leave out labels scoring below this")
    export.add_argument(
        "--image-url-prefix",
        default="",
        help="labelstudio: prefix of each task's image URL before the image id, e.g. /data/local-files/?d=",
    )
    export.set_defaults(func=cmd_export)

    dataset = commands.add_parser("dataset", help="datasets for demos and tests")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    synthetic = dataset_commands.add_parser("synthetic", help="drawn objects with exact COCO labels")
    synthetic.add_argument("--out", required=True)
    synthetic.add_argument("--count", type=int, default=100)
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--size", type=int, default=256)
    synthetic.set_defaults(func=cmd_dataset_synthetic)
    world = dataset_commands.add_parser(
        "world", help="scenes of the demo model's synthetic world (20 classes) with exact labels"
    )
    world.add_argument("--out", required=True)
    world.add_argument("--count", type=int, default=100)
    world.add_argument(
        "--split", default="heldout", help="scenes of this split (training uses train-*: never the same)"
    )
    world.set_defaults(func=cmd_dataset_world)

    add_eval_parser(commands)
    add_training_parsers(commands)


def cmd_train(args) -> int:
    import torch

    from tagllm.bulk.run import RunError
    from tagllm.datasets.readers import DatasetError, read_labels
    from tagllm.train.data import examples_from
    from tagllm.train.recipe import TrainSettings, train

    try:
        train_set = examples_from(args.labels, args.images)
        val_set = examples_from(args.val, args.val_images)
        classes = list(read_labels(args.val).categories)
    except (DatasetError, RunError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = TrainSettings(
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        pretrained=args.pretrained or "",
        learning_rate=args.lr,
        ema_decay=args.ema_decay,
        seed=args.seed,
    )
    print(
        f"training {args.backbone} on {len(train_set)} images ({args.labels}), validating on {len(val_set)}"
    )
    try:
        result, model = train(train_set, val_set, classes, settings, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("\ninterrupted before the first epoch finished; nothing was saved", file=sys.stderr)
        return 130
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "result.json", json.dumps({**result, "labels": str(args.labels)}, indent=2))
    torch.save(model.state_dict(), out / "model.pt")
    print(f"validation mAP {100 * result['val_map']:.2f} (epoch {result['best_epoch']}); wrote {out}")
    if result["interrupted"]:
        print(
            f"interrupted: {out / 'model.pt'} holds the best weights of the epochs that finished",
            file=sys.stderr,
        )
        return 130
    return 0


def cmd_compare(args) -> int:
    from tagllm.train.compare import compare_table, read_val_map

    try:
        human, tagllm = read_val_map(args.human), read_val_map(args.tagllm)
        baselines = {Path(path).name: read_val_map(path) for path in args.baseline}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_and_save(compare_table(human, baselines, tagllm), args.markdown)
    return 0


def add_training_parsers(commands) -> None:
    from tagllm.train.backbones import BACKBONES

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
    train.add_argument("--batch-size", type=int, default=128, help="the paper's batch (default: %(default)s)")
    train.add_argument(
        "--micro-batch-size",
        type=int,
        default=32,
        help="images per forward pass; gradients add up to the batch",
    )
    train.add_argument(
        "--pretrained", help="local Hugging Face ResNet checkpoint to start from (e.g. microsoft/resnet-101)"
    )
    train.add_argument("--lr", type=float, default=1e-4)
    train.add_argument("--ema-decay", type=float, default=0.9997)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(func=cmd_train)

    compare = commands.add_parser(
        "compare", help="the paper's table: mAP per label source, share of gap closed"
    )
    compare.add_argument("--human", required=True, help="training result (directory or result.json)")
    compare.add_argument(
        "--baseline",
        required=True,
        nargs="+",
        help="trainings on plain MLLM labels (e.g. open_ended, multi_option, binary); the best one counts",
    )
    compare.add_argument("--tagllm", required=True, help="training on TagLLM labels")
    compare.add_argument("--markdown", help="also write the table here")
    compare.set_defaults(func=cmd_compare)
