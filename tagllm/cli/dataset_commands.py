"""`tagllm dataset`: images with exact labels, for demos and tests."""

from __future__ import annotations

from pathlib import Path


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


def add_parser(commands) -> None:
    dataset = commands.add_parser("dataset", help="datasets for demos and tests")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True)
    synthetic = dataset_commands.add_parser("synthetic", help="drawn objects with exact COCO labels")
    synthetic.add_argument("--out", required=True)
    synthetic.add_argument("--count", type=int, default=100)
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--size", type=int, default=256)
    synthetic.set_defaults(func=cmd_dataset_synthetic)
    world = dataset_commands.add_parser(
        "world", help="scenes of the demo model's synthetic world with exact labels"
    )
    world.add_argument("--out", required=True)
    world.add_argument("--count", type=int, default=100)
    world.add_argument(
        "--split", default="heldout", help="scenes of this split (training uses train-*: never the same)"
    )
    world.set_defaults(func=cmd_dataset_world)
