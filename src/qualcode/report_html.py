"""``report.html``: one self-contained page from the report tables (Jinja2 + SVG charts).

Charts are SVG images (:mod:`qualcode.charts`) embedded as ``data:`` URIs (crisp on screen
and in print); the page loads nothing from the network. The template autoescapes
everything, so transcript text cannot inject markup. Output is deterministic for the same
inputs (no timestamps), so the file's sha256 only changes when the results do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from . import charts
from .codebook import Codebook
from .report_tables import TOTAL_ROW

__all__ = [
    "bar_chart", "comparison_chart", "format_cell", "format_share", "heatmap_chart",
    "render_report",
]


# Longest code name drawn in full on a chart's axis (longer ones end in "…"); the tables
# under the charts always give the full name.
BAR_LABEL_CHARS = 72
HEATMAP_ROW_CHARS = 72
HEATMAP_COLUMN_CHARS = 40


def _label(name: str, status: str = "", limit: int = BAR_LABEL_CHARS) -> str:
    name = name if len(name) <= limit else name[: limit - 1] + "…"
    return f"{name} [{status}]" if status == "human" else name


def bar_chart(rows: pd.DataFrame, codable: int) -> str | None:
    """Horizontal bars: share of codable segments per code (percent), one category.

    With an evaluation, a black marker and whisker show the corrected estimate and its 95%
    interval; codes with status ``human`` are hatched and labelled ``[human]``, and the
    legend says what both mean.
    """
    if rows.empty:
        return None
    status = rows["status"].tolist() if "status" in rows.columns else [""] * len(rows)
    shares = rows["share_of_segments"].fillna(0).to_numpy(dtype=float) * 100
    intervals = None
    if "corrected_segments" in rows.columns and codable:
        point, low, high = (rows[c].to_numpy(dtype=float) / codable * 100
                            for c in ("corrected_segments", "corrected_low", "corrected_high"))
        intervals = list(zip(point.tolist(), low.tolist(), high.tolist(), strict=True))
    return charts.bars([_label(n, s) for n, s in zip(rows["name"], status, strict=True)],
                       shares.tolist(), axis_label="% of codable segments",
                       hatched=[s == "human" for s in status], intervals=intervals,
                       interval_label="corrected estimate (95% interval)",
                       hatched_label="status human: code by hand",
                       title="Share of codable segments per code")


def comparison_chart(table: pd.DataFrame, groups: Sequence[str]) -> str | None:
    """Grouped horizontal bars: share of codable segments per code in each group."""
    rows = table[table["code_id"] != TOTAL_ROW]
    if rows.empty or not groups:
        return None
    status = rows["status"].tolist() if "status" in rows.columns else [""] * len(rows)
    values = [(rows[f"share_{group}"].fillna(0).to_numpy(dtype=float) * 100).tolist()
              for group in groups]
    return charts.grouped_bars([_label(n, s) for n, s in zip(rows["name"], status, strict=True)],
                               [str(g) for g in groups], values,
                               axis_label="% of the group's codable segments",
                               title="Share of codable segments per code and group")


def heatmap_chart(table: pd.DataFrame, codebook: Codebook, category_b: str,
                  statuses: dict[str, str] | None = None) -> str | None:
    """Codes of one category × codes of another: colour = Jaccard, numbers = segments.

    Codes whose ``statuses`` entry is ``human`` are labelled ``[human]``.
    """
    statuses = statuses or {}
    cols = [c.id for c in codebook.codes_in(category_b)]
    if table.empty or not cols:
        return None
    counts = table[cols].to_numpy(dtype=float)
    jac = table[[f"jaccard_{c}" for c in cols]].to_numpy(dtype=float)
    rows = [_label(n, statuses.get(c, ""), limit=HEATMAP_ROW_CHARS)
            for c, n in zip(table["code_id"], table["name"], strict=True)]
    names = [_label(codebook.code(c).name, statuses.get(c, ""), limit=HEATMAP_COLUMN_CHARS)
             for c in cols]
    return charts.heatmap(rows, names, jac, counts, scale_label="Jaccard",
                          title="Co-occurrence of codes (colour: Jaccard; numbers: segments)")


# --------------------------------------------------------------------------- template


def format_cell(value: Any) -> str:
    """Cell formatting: integers as is, floats to 4 significant decimals, NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "–"
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) < 1e-3 else f"{value:.4f}".rstrip("0").rstrip(".")
    text = str(value)
    return text if text else "–"


def format_share(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else f"{number * 100:.1f}%"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("qualcode", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = format_cell
    env.filters["pct"] = format_share
    return env


def render_report(context: dict[str, Any]) -> str:
    """Render ``templates/report.html.j2`` with ``context`` (see ``report.py``)."""
    return _environment().get_template("report.html.j2").render(**context)
