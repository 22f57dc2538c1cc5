"""Side-by-side evaluation of annotation runs: Markdown and a self-contained HTML page."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping

from tagllm.eval.metrics import Scores

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclasses.dataclass(frozen=True)
class RunEvaluation:
    name: str
    scores: Scores
    # Gold images without any result in the run (failed or not annotated).
    missing: int
    calls_per_image: float
    tokens_per_image: float
    compute_seconds_per_image: float
    dollars_per_image: float
    # image -> {label: score}, for precision-recall curves
    predictions: Mapping[str, Mapping[str, float]]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(runs: list[RunEvaluation]) -> str:
    lines = [
        "| run | images | missing | OP | OR | OF1 | CP | CR | CF1 | mAP "
        "| calls/img | tokens/img | model s/img | $/img |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.scores
        lines.append(
            f"| {run.name} | {s.images} | {run.missing} | {_pct(s.op)} | {_pct(s.orec)} | {_pct(s.of1)} | "
            f"{_pct(s.cp)} | {_pct(s.cr)} | {_pct(s.cf1)} | {_pct(s.map)} | {run.calls_per_image:.1f} | "
            f"{run.tokens_per_image:.0f} | {run.compute_seconds_per_image:.3f} | "
            f"{run.dollars_per_image:.6f} |"
        )
    lines += ["", "Per-class F1 (support = gold images with the class):", ""]
    lines.append("| class | support | " + " | ".join(run.name for run in runs) + " |")
    lines.append("|---|---|" + "---|" * len(runs))
    for i, row in enumerate(runs[0].scores.classes):
        cells = " | ".join(_pct(run.scores.classes[i].f1) for run in runs)
        lines.append(f"| {row.name} | {row.support} | {cells} |")
    return "\n".join(lines) + "\n"


def _bars(runs: list[RunEvaluation]) -> str:
    classes = [row.name for row in runs[0].scores.classes]
    group, bar, height = 18 * len(runs) + 10, 16, 220
    width = 60 + group * len(classes)
    parts = [f'<svg width="{width}" height="{height + 110}" xmlns="http://www.w3.org/2000/svg">']
    for tick in range(0, 101, 25):
        y = 10 + height * (1 - tick / 100)
        parts.append(f'<line x1="40" x2="{width}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="35" y="{y + 4}" font-size="10" text-anchor="end">{tick}</text>')
    for c, name in enumerate(classes):
        x0 = 50 + c * group
        for r, run in enumerate(runs):
            f1 = run.scores.classes[c].f1
            h = height * f1
            parts.append(
                f'<rect x="{x0 + r * (bar + 2)}" y="{10 + height - h}" width="{bar}" height="{h}" '
                f'fill="{PALETTE[r % len(PALETTE)]}"><title>{html.escape(run.name)} {html.escape(name)}: '
                f"{100 * f1:.1f}</title></rect>"
            )
        parts.append(
            f'<text transform="translate({x0 + 8},{height + 20}) rotate(50)" font-size="10">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _pr_curve(run: RunEvaluation, name: str, gold: Mapping[str, set[str]]) -> list[tuple[float, float]]:
    images = list(gold)
    scored = sorted(
        ((run.predictions.get(i, {}).get(name, 0.0), name in gold[i]) for i in images), reverse=True
    )
    total = sum(positive for _, positive in scored)
    points, tp, fp = [], 0, 0
    for score, positive in scored:
        if score <= 0:
            break
        tp += positive
        fp += not positive
        points.append((tp / total if total else 0.0, tp / (tp + fp)))
    return points


def _pr_curves(runs: list[RunEvaluation], gold: Mapping[str, set[str]], top: int = 6) -> str:
    classes = sorted(runs[0].scores.classes, key=lambda r: -r.support)[:top]
    size = 180
    parts = []
    for row in classes:
        svg = [f'<svg width="{size + 40}" height="{size + 40}" xmlns="http://www.w3.org/2000/svg">']
        svg.append(f'<rect x="30" y="5" width="{size}" height="{size}" fill="none" stroke="#999"/>')
        svg.append(f'<text x="{30 + size / 2}" y="{size + 30}" font-size="11" text-anchor="middle">'
                   f"{html.escape(row.name)} (recall &#8594;)</text>")  # fmt: skip
        for r, run in enumerate(runs):
            points = _pr_curve(run, row.name, gold)
            if points:
                path = " ".join(f"{30 + size * rec:.1f},{5 + size * (1 - prec):.1f}" for rec, prec in points)
                svg.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[r % len(PALETTE)]}"/>')
        svg.append("</svg>")
        parts.append("".join(svg))
    return "".join(parts)


def _cost_quality(runs: list[RunEvaluation]) -> str:
    size = 260
    most = max((run.compute_seconds_per_image for run in runs), default=0.0) or 1.0
    svg = [f'<svg width="{size + 80}" height="{size + 50}" xmlns="http://www.w3.org/2000/svg">']
    svg.append(f'<rect x="50" y="5" width="{size}" height="{size}" fill="none" stroke="#999"/>')
    svg.append(f'<text x="{50 + size / 2}" y="{size + 35}" font-size="11" text-anchor="middle">'
               "model seconds per image &#8594;</text>")  # fmt: skip
    svg.append(f'<text x="12" y="{5 + size / 2}" font-size="11" transform="rotate(-90 12 {5 + size / 2})" '
               'text-anchor="middle">F1 (O: circle, C: square)</text>')  # fmt: skip
    for r, run in enumerate(runs):
        x = 50 + size * run.compute_seconds_per_image / most * 0.95
        color = PALETTE[r % len(PALETTE)]
        for value, shape in ((run.scores.of1, "circle"), (run.scores.cf1, "rect")):
            y = 5 + size * (1 - value)
            if shape == "circle":
                svg.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{color}"/>')
            else:
                svg.append(f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{color}"/>')
        svg.append(f'<text x="{x + 7}" y="{5 + size * (1 - run.scores.of1)}" font-size="10">'
                   f"{html.escape(run.name)}</text>")  # fmt: skip
    svg.append("</svg>")
    return "".join(svg)


def _html_tables(text: str) -> str:
    """The Markdown report as HTML: its tables as tables, other lines as paragraphs."""
    parts: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            head, *body = rows
            cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
            lines = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
            parts.append(f"<table><tr>{cells}</tr>{lines}</table>")
            rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                rows.append(cells)
            continue
        flush()
        if line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "".join(parts)


def html_page(runs: list[RunEvaluation], gold: Mapping[str, set[str]]) -> str:
    legend = " ".join(
        f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632; {html.escape(run.name)}</span>'
        for i, run in enumerate(runs)
    )
    tables = _html_tables(markdown(runs))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>TagLLM evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}} td:first-child{{text-align:left}}</style>
</head><body>
<h1>Annotation quality against human labels</h1>
<p>{legend}</p>
<h2>Summary</h2>{tables}
<h2>Per-class F1</h2>{_bars(runs)}
<h2>Precision-recall, most frequent classes</h2>{_pr_curves(runs, gold)}
<h2>Cost against quality</h2>{_cost_quality(runs)}
</body></html>
"""
