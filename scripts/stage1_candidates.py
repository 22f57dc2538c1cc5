"""Stage-1 candidates of an ablation's TagLLM rows against the gold labels: how many of the
true labels the first stage proposes (recall: what verification can keep at best) and how many
of its proposals are true (precision), before any yes/no question.

    .venv/bin/python scripts/stage1_candidates.py ABLATION_OUT GOLD_ANNOTATIONS

ABLATION_OUT is `tagllm ablation --out`'s folder (one run directory per row).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tagllm.bulk.run import RunDirectory
from tagllm.datasets.readers import read_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ablation_out", type=Path)
    parser.add_argument("gold", type=Path)
    args = parser.parse_args()
    gold = read_labels(args.gold).labels
    print("| row | candidates/img | stage-1 precision | stage-1 recall |")
    print("|---|---|---|---|")
    for run_dir in sorted(p for p in args.ablation_out.iterdir() if (p / "results.jsonl").exists()):
        records = [r for r in RunDirectory(run_dir).results() if r.image in gold]
        if not records or not any(r.result.candidates for r in records):
            continue
        proposed = sum(len(r.result.candidates) for r in records)
        right = sum(len(set(r.result.candidates) & set(gold[r.image])) for r in records)
        truth = sum(len(gold[r.image]) for r in records)
        print(
            f"| {run_dir.name} | {proposed / len(records):.2f} | {100 * right / max(proposed, 1):.1f} "
            f"| {100 * right / max(truth, 1):.1f} |"
        )


if __name__ == "__main__":
    main()
