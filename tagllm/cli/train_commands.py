"""`tagllm train | compare`: a classifier trained on annotations, and the paper's comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tagllm.cli.eval_commands import print_and_save
from tagllm.files import write_text_atomically


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


def add_parsers(commands) -> None:
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
