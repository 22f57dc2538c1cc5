"""The reliability diagram: per score bin, the fraction of verified candidates that were right
against their mean score; a calibrated run's points lie on the diagonal."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from tagllm.eval.svg import PALETTE, axes

if TYPE_CHECKING:
    from tagllm.eval.report import RunEvaluation


def reliability_diagrams(runs: list[RunEvaluation]) -> str:
    """One plot with every run's bins (circle area grows with the bin's share of candidates)."""
    measured = [(r, run) for r, run in enumerate(runs) if run.calibration is not None]
    if not measured:
        return (
            "<p>No run recorded verified candidates "
            "(open-ended and multi-option labels have no probability).</p>"
        )
    size, x0, y0 = 260, 60, 10
    svg = [f'<svg class="reliability" width="{size + 240}" height="{size + 50 + 14 * len(measured)}" '
           'xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    svg += axes(x0, y0, size, "mean served score in the bin", "fraction right")
    svg.append(
        f'<line x1="{x0}" y1="{y0 + size}" x2="{x0 + size}" y2="{y0}" stroke="#bbb" stroke-dasharray="4 3"/>'
    )
    for line, (r, run) in enumerate(measured):
        m = run.calibration
        assert m is not None
        color = PALETTE[r % len(PALETTE)]
        filled = [b for b in m.bins if b.count]
        points = [(x0 + size * b.mean_score, y0 + size * (1 - b.positive_rate), b) for b in filled]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        for x, y, b in points:
            radius = 2.5 + 6 * (b.count / m.samples) ** 0.5
            svg.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{color}" fill-opacity="0.6">'
                f"<title>{html.escape(run.name)} [{b.low:.1f}, {b.high:.1f}): {b.count} candidates, "
                f"{100 * b.positive_rate:.1f}% right, mean score {b.mean_score:.3f}</title></circle>"
            )
        auc = "-" if m.auc is None else f"{m.auc:.3f}"
        svg.append(f'<text x="{x0 + size + 12}" y="{y0 + 14 + 14 * line}" font-size="10" fill="{color}">'
                   f"{html.escape(run.name)}: ECE {m.ece:.3f}, AUC {auc}</text>")  # fmt: skip
    svg.append("</svg>")
    return "".join(svg)
