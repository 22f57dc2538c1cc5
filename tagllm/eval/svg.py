"""Pieces of the report's hand-written SVG plots."""

from __future__ import annotations

import html

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def axes(x0: float, y0: float, size: float, x_label: str, y_label: str, x_max: float = 1.0) -> list[str]:
    """A square plot frame with ticks at 0, 1/2 and 1 of each axis and both axis labels."""
    svg = [f'<rect x="{x0}" y="{y0}" width="{size}" height="{size}" fill="none" stroke="#999"/>']
    for fraction in (0.0, 0.5, 1.0):
        x, y = x0 + size * fraction, y0 + size * (1 - fraction)
        svg.append(f'<line x1="{x}" x2="{x}" y1="{y0 + size}" y2="{y0 + size + 4}" stroke="#999"/>')
        svg.append(f'<text x="{x}" y="{y0 + size + 15}" font-size="9" text-anchor="middle">'
                   f"{x_max * fraction:.3g}</text>")  # fmt: skip
        svg.append(f'<line x1="{x0 - 4}" x2="{x0}" y1="{y}" y2="{y}" stroke="#999"/>')
        svg.append(f'<text x="{x0 - 6}" y="{y + 3}" font-size="9" text-anchor="end">{fraction:.3g}</text>')
    svg.append(f'<text class="axis" x="{x0 + size / 2}" y="{y0 + size + 28}" font-size="11" '
               f'text-anchor="middle">{html.escape(x_label)}</text>')  # fmt: skip
    middle = y0 + size / 2
    svg.append(f'<text class="axis" x="{x0 - 30}" y="{middle}" font-size="11" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 30} {middle})">{html.escape(y_label)}</text>')  # fmt: skip
    return svg
