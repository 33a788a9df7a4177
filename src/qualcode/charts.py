"""SVG charts for ``report.html``, written directly (bars, grouped bars, a heatmap).

They were drawn with matplotlib, which took ~1.5 s per report for eight small charts
(most of it laying out and outlining text); these take milliseconds. Each chart is a
``data:`` URI of a self-contained SVG: no scripts, no external fonts or links. Text is
escaped, so code names or metadata values cannot inject markup, and output is
deterministic for the same inputs.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

FONT = 11  # px; labels
SMALL = 9  # px; values, ticks, legends
CHAR = 0.56  # average glyph width of a sans-serif font, in font sizes
BAR = "#4a6fa5"
HUMAN_FILL = "#d9a5a5"
PALETTE = ["#4a6fa5", "#e07b39", "#5b9a68", "#9c6fb0", "#c2a83e", "#7f7f7f", "#3fa7b5",
           "#b5473f"]
# matplotlib's "Blues", sampled at nine even steps
BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5",
         "#08519c", "#08306b"]

__all__ = ["bars", "blues", "grouped_bars", "heatmap", "nice_ticks", "text_width"]


def text_width(text: str, size: float = FONT) -> float:
    """Approximate rendered width of ``text`` in px (for layout only)."""
    return len(text) * size * CHAR


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    top = max(float(top), 1e-9)
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [round(i * step, 10) for i in range(math.ceil(top / step - 1e-9) + 1)]


def blues(value: float) -> str:
    """Colour of ``value`` in [0, 1] on the Blues scale (linear between the samples)."""
    value = min(1.0, max(0.0, float(value) if math.isfinite(value) else 0.0))
    pos = value * (len(BLUES) - 1)
    i = min(int(pos), len(BLUES) - 2)
    frac = pos - i
    a = [int(BLUES[i][k:k + 2], 16) for k in (1, 3, 5)]
    b = [int(BLUES[i + 1][k:k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * frac):02x}" for x, y in zip(a, b, strict=True))


def _dark(colour: str) -> bool:
    r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 140


def _fmt(value: float) -> str:
    return f"{value:g}"


def _text(x: float, y: float, text: str, *, size: float = FONT, anchor: str = "start",
          fill: str = "#222", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'dominant-baseline="central" fill="{fill}"{extra}>{escape(text)}</text>')


def _document(width: float, height: float, body: list[str], title: str) -> str:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           f'font-family="Helvetica, Arial, sans-serif" role="img" '
           f'aria-label={quoteattr(title)}>'
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="'
           f'{HUMAN_FILL}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7a3b3b" '
           'stroke-width="1.5"/></pattern></defs>'
           f'<rect width="100%" height="100%" fill="white"/>{"".join(body)}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _x_axis(left: float, top: float, plot_w: float, plot_h: float, ticks: list[float],
            label: str) -> list[str]:
    out = []
    scale = plot_w / ticks[-1]
    bottom = top + plot_h
    for tick in ticks:
        x = left + tick * scale
        out.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                   'stroke="#e4e4e4" stroke-width="1"/>')
        out.append(_text(x, bottom + 10, _fmt(tick), size=SMALL, anchor="middle"))
    out.append(f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{left + plot_w:.1f}" '
               f'y2="{bottom:.1f}" stroke="#444" stroke-width="1"/>')
    out.append(f'<line x1="{left:.1f}" y1="{top:.1f}" x2="{left:.1f}" y2="{bottom:.1f}" '
               'stroke="#444" stroke-width="1"/>')
    out.append(_text(left + plot_w / 2, bottom + 26, label, anchor="middle"))
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    """Swatches (colour, label) stacked downwards from the top-right corner ``(x, y)``."""
    width = max(text_width(label, SMALL) for _, label in items) + 18
    out = [f'<rect x="{x - width - 6:.1f}" y="{y - 4:.1f}" width="{width + 4:.1f}" '
           f'height="{14 * len(items) + 6}" fill="white" fill-opacity="0.85"/>']
    for i, (colour, label) in enumerate(items):
        cy = y + 14 * i + 5
        if colour == "marker":
            out.append(f'<line x1="{x - width - 2:.1f}" y1="{cy:.1f}" x2="{x - width + 10:.1f}" '
                       f'y2="{cy:.1f}" stroke="black" stroke-width="1"/>'
                       f'<circle cx="{x - width + 4:.1f}" cy="{cy:.1f}" r="2.5" fill="black"/>')
        else:
            out.append(f'<rect x="{x - width - 2:.1f}" y="{cy - 4:.1f}" width="12" height="8" '
                       f'fill="{colour}"/>')
        out.append(_text(x - width + 14, cy, label, size=SMALL))
    return out


def bars(labels: Sequence[str], values: Sequence[float], *, axis_label: str,
         hatched: Sequence[bool] | None = None,
         intervals: Sequence[tuple[float, float, float]] | None = None,
         interval_label: str = "", hatched_label: str = "", title: str = "") -> str:
    """Horizontal bars, first label on top, each with its value written after the bar.

    ``intervals`` (point, low, high per bar; NaN = none) draw a marker and whisker;
    ``hatched`` bars are drawn with a hatch pattern. The legend, below the axis label on
    the right, names the marker (``interval_label``) and the hatching (``hatched_label``) when
    the chart has them.
    """
    n = len(labels)
    hatched = list(hatched or [False] * n)
    row = 22
    left = 12 + max((text_width(label) for label in labels), default=0)
    plot_w, top = 440.0, 10.0
    plot_h = row * n
    shown = [v for v in values if math.isfinite(v)]
    if intervals:
        shown += [hi for _, _, hi in intervals if math.isfinite(hi)]
    ticks = nice_ticks(max([*shown, 5.0]) * 1.12)
    scale = plot_w / ticks[-1]
    out = _x_axis(left, top, plot_w, plot_h, ticks, axis_label)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        cy = top + row * (i + 0.5)
        width = max(0.0, value) * scale
        fill = "url(#hatch)" if hatched[i] else BAR
        out.append(f'<rect x="{left:.1f}" y="{cy - row * 0.3:.1f}" width="{width:.1f}" '
                   f'height="{row * 0.6:.1f}" fill="{fill}"/>')
        out.append(_text(left - 6, cy, label, anchor="end"))
        out.append(_text(left + width + 3, cy, f"{value:.1f}", size=SMALL, fill="#444"))
    drawn = False
    for i, (point, low, high) in enumerate(intervals or []):
        if not math.isfinite(point):
            continue
        drawn = True
        cy = top + row * (i + 0.5)
        x0, x1, xp = (left + v * scale for v in (low, high, point))
        out.append(f'<path d="M{x0:.1f},{cy:.1f}H{x1:.1f}M{x0:.1f},{cy - 3:.1f}V{cy + 3:.1f}'
                   f'M{x1:.1f},{cy - 3:.1f}V{cy + 3:.1f}" stroke="black" stroke-width="1" '
                   f'fill="none"/><circle cx="{xp:.1f}" cy="{cy:.1f}" r="2.5" fill="black"/>')
    legend = [("marker", interval_label)] if drawn and interval_label else []
    if hatched_label and any(hatched):
        legend.append(("url(#hatch)", hatched_label))
    if legend:  # under the axis label, so that a long entry cannot run into it
        out += _legend(left + plot_w, top + plot_h + 40, legend)
    return _document(left + plot_w + 40, top + plot_h + 50 + 14 * len(legend), out, title)


def grouped_bars(labels: Sequence[str], groups: Sequence[str],
                 values: Sequence[Sequence[float]], *, axis_label: str,
                 title: str = "") -> str:
    """Horizontal bars per label, one per group (``values[g][i]``), with a legend below the
    plot (never over a bar)."""
    n, k = len(labels), max(1, len(groups))
    bar_h = 9.0 if k <= 3 else 6.0
    row = bar_h * k + 8
    left = 12 + max((text_width(label) for label in labels), default=0)
    plot_w, top = 440.0, 10.0
    plot_h = row * n
    finite = [v for column in values for v in column if math.isfinite(v)]
    ticks = nice_ticks(max([*finite, 1.0]) * 1.05)
    scale = plot_w / ticks[-1]
    out = _x_axis(left, top, plot_w, plot_h, ticks, axis_label)
    for i, label in enumerate(labels):
        y0 = top + row * i + 4
        for g in range(len(groups)):
            value = values[g][i]
            width = max(0.0, value if math.isfinite(value) else 0.0) * scale
            out.append(f'<rect x="{left:.1f}" y="{y0 + bar_h * g:.1f}" width="{width:.1f}" '
                       f'height="{bar_h - 1:.1f}" fill="{PALETTE[g % len(PALETTE)]}"/>')
        out.append(_text(left - 6, top + row * (i + 0.5), label, anchor="end"))
    legend = [(PALETTE[g % len(PALETTE)], str(group)) for g, group in enumerate(groups)]
    out += _legend(left + plot_w, top + plot_h + 40, legend)
    return _document(left + plot_w + 40, top + plot_h + 50 + 14 * len(legend), out, title)


def heatmap(row_labels: Sequence[str], col_labels: Sequence[str], shade: np.ndarray,
            numbers: np.ndarray, *, scale_label: str, title: str = "") -> str:
    """A grid coloured by ``shade`` (0 to its maximum, NaN as 0) with ``numbers`` written in
    the cells, a colour scale on the right and slanted column labels below."""
    rows, cols = shade.shape
    cell_w, cell_h = 56.0, 22.0
    left = 12 + max((text_width(label) for label in row_labels), default=0)
    top = 10.0
    below = 12 + max((text_width(label) for label in col_labels), default=0) * 0.72
    finite = shade[np.isfinite(shade)]
    high = max(0.05, float(finite.max()) if finite.size else 0.0)
    out = []
    for i in range(rows):
        cy = top + cell_h * (i + 0.5)
        out.append(_text(left - 6, cy, row_labels[i], anchor="end"))
        for j in range(cols):
            value = shade[i, j]
            colour = blues((value if math.isfinite(value) else 0.0) / high)
            x = left + cell_w * j
            out.append(f'<rect x="{x:.1f}" y="{cy - cell_h / 2:.1f}" width="{cell_w:.1f}" '
                       f'height="{cell_h:.1f}" fill="{colour}" stroke="white" '
                       'stroke-width="1"/>')
            out.append(_text(x + cell_w / 2, cy, f"{int(numbers[i, j])}", size=SMALL,
                             anchor="middle", fill="white" if _dark(colour) else "black"))
    bottom = top + cell_h * rows
    for j, label in enumerate(col_labels):
        x = left + cell_w * (j + 0.5)
        out.append(_text(x, bottom + 8, label, anchor="end",
                         extra=f' transform="rotate(-35 {x:.1f} {bottom + 8:.1f})"'))
    # the colour scale
    bar_x, bar_h = left + cell_w * cols + 16, max(cell_h * rows, 60.0)
    steps = 24
    for s in range(steps):
        y = top + bar_h * (1 - (s + 1) / steps)
        out.append(f'<rect x="{bar_x:.1f}" y="{y:.1f}" width="12" '
                   f'height="{bar_h / steps + 0.5:.1f}" fill="{blues((s + 0.5) / steps)}"/>')
    for tick in nice_ticks(high, 4):
        if tick > high + 1e-12:
            continue
        y = top + bar_h * (1 - tick / high)
        out.append(_text(bar_x + 16, y, _fmt(tick), size=SMALL))
    out.append(_text(bar_x + 52, top + bar_h / 2, scale_label, size=SMALL, anchor="middle",
                     extra=f' transform="rotate(-90 {bar_x + 52:.1f} {top + bar_h / 2:.1f})"'))
    width = bar_x + 64
    height = max(bottom, top + bar_h) + below
    return _document(width, height, out, title)
