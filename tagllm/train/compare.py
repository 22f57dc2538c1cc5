"""The paper's downstream comparison: validation mAP per label source and the share of the gap
between plain MLLM labels and human labels that TagLLM's labels close."""

from __future__ import annotations

import json
from pathlib import Path

SOURCES = ("human", "baseline", "tagllm")


def read_val_map(path: str | Path) -> float:
    """The validation mAP of a training result (its directory or result.json); ValueError if none."""
    path = Path(path)
    path = path / "result.json" if path.is_dir() else path
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["val_map"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a training result ({exc})") from None


def compare_table(rows: dict[str, float]) -> str:
    human, baseline, tagllm = (rows[name] for name in SOURCES)
    gap = human - baseline
    closed = (tagllm - baseline) / gap if gap else float("nan")
    lines = ["| labels | val mAP | vs human |", "|---|---|---|"]
    for name in SOURCES:
        lines.append(f"| {name} | {100 * rows[name]:.2f} | {100 * (rows[name] - human):+.2f} |")
    lines.append("")
    lines.append(f"Share of the gap between baseline MLLM and human labels closed by TagLLM: {closed:.1%}")
    return "\n".join(lines) + "\n"
