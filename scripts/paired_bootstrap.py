"""How far apart two rows of an ablation really are: the OF1 difference of each row against a
baseline, with a 95% interval from a paired bootstrap over images (the same resampled images
for both rows, so that what the scenes have in common cancels out).

    .venv/bin/python scripts/paired_bootstrap.py ABLATION_OUT GOLD_ANNOTATIONS [--baseline oep]

ABLATION_OUT is `tagllm ablation --out`'s folder (one run directory per row). An interval that
contains 0 means these scenes cannot tell the two rows apart.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from tagllm.bulk.run import RunDirectory
from tagllm.datasets.readers import read_labels


def image_counts(run_dir: Path, gold: dict, images: list[str]) -> list[tuple[int, int, int]]:
    """(true positives, false positives, false negatives) of each image, in `images`' order."""
    predicted = {r.image: {label.name for label in r.result.labels} for r in RunDirectory(run_dir).results()}
    rows = []
    for image in images:
        labels, truth = predicted.get(image, set()), set(gold[image])
        rows.append((len(labels & truth), len(labels - truth), len(truth - labels)))
    return rows


def overall_f1(counts: list[tuple[int, int, int]], picks: list[int]) -> float:
    tp = sum(counts[i][0] for i in picks)
    wrong = sum(counts[i][1] + counts[i][2] for i in picks)
    return 2 * tp / max(2 * tp + wrong, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ablation_out", type=Path)
    parser.add_argument("gold", type=Path)
    parser.add_argument("--baseline", default="oep", help="the row every other row is compared with")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    if args.resamples < 100:
        parser.error("--resamples: at least 100 for a 95% interval")
    gold = read_labels(args.gold).labels
    images = sorted(gold)
    runs = {p.name: p for p in sorted(args.ablation_out.iterdir()) if (p / "results.jsonl").exists()}
    if args.baseline not in runs:
        parser.error(f"no row {args.baseline!r} in {args.ablation_out} (rows: {', '.join(runs)})")
    counts = {name: image_counts(path, gold, images) for name, path in runs.items()}
    rng = random.Random(0)
    samples = [[rng.randrange(len(images)) for _ in images] for _ in range(args.resamples)]
    everything = list(range(len(images)))
    base = counts[args.baseline]
    print(f"| row | OF1 minus {args.baseline} | 95% interval |")
    print("|---|---|---|")
    for name, rows in counts.items():
        if name == args.baseline:
            continue
        gaps = sorted(overall_f1(rows, picks) - overall_f1(base, picks) for picks in samples)
        low, high = (gaps[round(q * (len(gaps) - 1))] for q in (0.025, 0.975))
        gap = overall_f1(rows, everything) - overall_f1(base, everything)
        print(f"| {name} | {100 * gap:+.1f} | {100 * low:+.1f} to {100 * high:+.1f} |")


if __name__ == "__main__":
    main()
