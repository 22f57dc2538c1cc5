"""The paper's downstream comparison: validation mAP per label source and the share of the gap
between MLLM labels and human labels that TagLLM's labels close. As in the paper, the gap is
measured from the best baseline, which is found among those given and named in the table."""

from __future__ import annotations

import json
from pathlib import Path


def read_val_map(path: str | Path) -> float:
    """The validation mAP of a training result (its directory or result.json); ValueError if none."""
    path = Path(path)
    path = path / "result.json" if path.is_dir() else path
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["val_map"])
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a training result ({exc})") from None


def compare_table(human: float, baselines: dict[str, float], tagllm: float) -> str:
    """`baselines`: name -> val mAP of training on each baseline's labels."""
    best = max(baselines, key=lambda name: baselines[name])
    gap = human - baselines[best]
    closed = (tagllm - baselines[best]) / gap if gap else float("nan")
    rows = [("human", human), *((f"baseline: {n}", v) for n, v in baselines.items()), ("tagllm", tagllm)]
    lines = ["| labels | val mAP | vs human |", "|---|---|---|"]
    lines += [f"| {name} | {100 * value:.2f} | {100 * (value - human):+.2f} |" for name, value in rows]
    lines.append("")
    lines.append(
        f"Share of the gap between the best baseline ({best}) and human labels closed by TagLLM: {closed:.1%}"
    )
    return "\n".join(lines) + "\n"
