"""Side-by-side evaluation of annotation runs: Markdown and a self-contained HTML page."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from collections.abc import Mapping

from PIL import Image

from tagllm.calibration.measures import BINS, CalibrationMeasures
from tagllm.eval.metrics import Scores
from tagllm.eval.reliability import reliability_diagrams
from tagllm.eval.svg import PALETTE
from tagllm.eval.svg import axes as _axes


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
    # What produced the labels (model, vocabulary version, prompt hash, strategy).
    versions: tuple[Mapping[str, str], ...] = ()
    # image -> file, where the run recorded it (for example images in the HTML report)
    paths: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Over the run's verified candidates; None when it recorded none (no yes/no stage).
    calibration: CalibrationMeasures | None = None


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
    lines += calibration_markdown(runs)
    lines += ["", "Per-class F1 (support = gold images with the class):", ""]
    lines.append("| class | support | " + " | ".join(run.name for run in runs) + " |")
    lines.append("|---|---|" + "---|" * len(runs))
    for i, row in enumerate(runs[0].scores.classes):
        cells = " | ".join(_pct(run.scores.classes[i].f1) for run in runs)
        lines.append(f"| {row.name} | {row.support} | {cells} |")
    return "\n".join(lines) + "\n"


def calibration_markdown(runs: list[RunEvaluation]) -> list[str]:
    """ECE and within-image AUC of each run's served scores, over its verified candidates."""
    lines = [
        "",
        f"Calibration over verified candidates, kept or dropped (ECE: {BINS} equal-width score bins; "
        "AUC: within each image with right and wrong candidates, then averaged):",
        "",
        "| run | verified | right | ECE | within-image AUC | AUC images |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        m = run.calibration
        if m is None:
            lines.append(f"| {run.name} | 0 | - | - | - | - |")
            continue
        auc = "-" if m.auc is None else f"{m.auc:.3f}"
        lines.append(
            f"| {run.name} | {m.samples} | {_pct(m.base_rate)}% | {m.ece:.4f} | {auc} | {m.auc_images} |"
        )
    return lines


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
    """Precision against recall for the most frequent classes, AP in each curve's legend; a run
    without a curve says why (no prediction of the class, or scores that rank nothing)."""
    index = {row.name: i for i, row in enumerate(runs[0].scores.classes)}
    classes = sorted(runs[0].scores.classes, key=lambda r: -r.support)[:top]
    size, x0, y0 = 170, 45, 22
    parts = []
    for row in classes:
        svg = [
            f'<svg width="{size + 90}" height="{size + 60 + 14 * len(runs)}" xmlns="http://www.w3.org/2000/svg">'
        ]
        svg.append(f'<text x="{x0 + size / 2}" y="14" font-size="12" text-anchor="middle" font-weight="bold">'
                   f"{html.escape(row.name)} ({row.support} images)</text>")  # fmt: skip
        svg += _axes(x0, y0, size, "recall", "precision")
        for r, run in enumerate(runs):
            color = PALETTE[r % len(PALETTE)]
            points = _pr_curve(run, row.name, gold)
            ap = run.scores.classes[index[row.name]].ap
            if not points:
                note = "no prediction of this class"
            elif (
                len(
                    {run.predictions[i].get(row.name) for i in gold if row.name in run.predictions.get(i, {})}
                )
                == 1
            ):
                note = "one score for all: a point"
            else:
                note = f"AP {100 * ap:.1f}" if ap is not None else "no positives"
            if points:
                path = " ".join(f"{x0 + size * rec:.1f},{y0 + size * (1 - prec):.1f}" for rec, prec in points)
                svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
                cx, cy = x0 + size * points[-1][0], y0 + size * (1 - points[-1][1])
                svg.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{color}"/>')
            svg.append(f'<text x="{x0}" y="{y0 + size + 44 + 14 * r}" font-size="10" fill="{color}">'
                       f"{html.escape(run.name)}: {html.escape(note)}</text>")  # fmt: skip
        svg.append("</svg>")
        parts.append("".join(svg))
    return "".join(parts)


def _cost_quality(runs: list[RunEvaluation]) -> str:
    size, x0, y0 = 260, 60, 10
    most = max((run.compute_seconds_per_image for run in runs), default=0.0) or 1.0
    svg = [f'<svg width="{size + 160}" height="{size + 50}" xmlns="http://www.w3.org/2000/svg">']
    svg += _axes(x0, y0, size, "model seconds per image", "F1 (circle: OF1, square: CF1)", x_max=most)
    for r, run in enumerate(runs):
        x = x0 + size * run.compute_seconds_per_image / most
        color = PALETTE[r % len(PALETTE)]
        for value, shape in ((run.scores.of1, "circle"), (run.scores.cf1, "rect")):
            y = y0 + size * (1 - value)
            if shape == "circle":
                svg.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{color}"/>')
            else:
                svg.append(f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{color}"/>')
        svg.append(f'<text x="{x + 7}" y="{y0 + size * (1 - run.scores.of1)}" font-size="10">'
                   f"{html.escape(run.name)}</text>")  # fmt: skip
    svg.append("</svg>")
    return "".join(svg)


def _provenance(runs: list[RunEvaluation], gold_path: str, generated: str) -> str:
    rows = []
    for run in runs:
        for version in run.versions or ({},):
            keys = ("model", "vocabulary", "vocabulary_version", "prompt_template_hash", "strategy")
            cells = [run.name, *(str(version.get(k, "-")) for k in keys)]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("run", "model", "vocabulary", "version", "prompt hash", "strategy")
    )
    return (
        f"<p>Gold labels: <code>{html.escape(gold_path)}</code>; report written {html.escape(generated)}.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def _thumbnail(path: str, size: int = 128) -> str:
    """The image as a small inline JPEG, or '' when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.thumbnail((size, size))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=80)
    except (OSError, ValueError):
        return ""
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode()}">'


def _examples(runs: list[RunEvaluation], gold: Mapping[str, set[str]], count: int = 4) -> str:
    """A few images with, per run, the labels it got right, got wrong and missed."""
    paths = next((run.paths for run in runs if run.paths), {})
    images = [i for i in gold if i in paths][:count]
    if not images:
        return "<p>No example images: the predictions do not record where their images are.</p>"
    rows = []
    for image in images:
        cells = [f"<td>{_thumbnail(paths[image])}<br>{html.escape(image)}</td>"]
        for run in runs:
            predicted, truth = set(run.predictions.get(image, {})), gold[image]
            spans = [f'<span class="right">{html.escape(n)}</span>' for n in sorted(predicted & truth)]
            spans += [f'<span class="wrong">{html.escape(n)}</span>' for n in sorted(predicted - truth)]
            spans += [f'<span class="missed">{html.escape(n)}</span>' for n in sorted(truth - predicted)]
            cells.append(f'<td class="labels">{" ".join(spans) or "(none)"}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "<tr><th>image</th>" + "".join(f"<th>{html.escape(run.name)}</th>" for run in runs) + "</tr>"
    legend = ('<p><span class="right">right</span> <span class="wrong">wrong</span> '
              '<span class="missed">missed</span></p>')  # fmt: skip
    return legend + f'<table class="examples">{head}{"".join(rows)}</table>'


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


def html_page(
    runs: list[RunEvaluation], gold: Mapping[str, set[str]], gold_path: str = "", generated: str = ""
) -> str:
    legend = " ".join(
        f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632; {html.escape(run.name)}</span>'
        for i, run in enumerate(runs)
    )
    tables = _html_tables(markdown(runs))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>TagLLM evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}} td:first-child{{text-align:left}}
td.labels{{text-align:left;max-width:22em}} .right{{color:#1a7f37}} .wrong{{color:#cf222e}}
.missed{{color:#888;text-decoration:line-through}}</style>
</head><body>
<h1>Annotation quality against human labels</h1>
<p>{legend}</p>
<h2>Summary</h2>{tables}
<h2>What produced it</h2>{_provenance(runs, gold_path, generated)}
<h2>Examples</h2>{_examples(runs, gold)}
<h2>Per-class F1</h2>{_bars(runs)}
<h2>Precision-recall, most frequent classes</h2>{_pr_curves(runs, gold)}
<h2>Cost against quality</h2>{_cost_quality(runs)}
<h2>Reliability of the served scores</h2>{reliability_diagrams(runs)}
</body></html>
"""
