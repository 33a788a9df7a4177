"""``report.html``: one self-contained page from the report tables (Jinja2 + matplotlib).

Charts are SVG images embedded as ``data:`` URIs (crisp on screen and in print); the page
loads nothing from the network. The template autoescapes everything, so transcript text
cannot inject markup. Output is deterministic for the same inputs (fixed SVG ids, no
timestamps), so the file's sha256 only changes when the results do.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib import rc_context
from matplotlib.figure import Figure

from .codebook import Codebook
from .report_tables import TOTAL_ROW

__all__ = [
    "bar_chart", "comparison_chart", "format_cell", "format_share", "heatmap_chart",
    "render_report",
]

STATUS_COLOURS = {"auto": "#2e7d32", "check": "#b26a00", "human": "#c62828"}
BAR = "#4a6fa5"
_RC = {
    "svg.hashsalt": "qualcode",  # stable element ids → reproducible file hashes
    "svg.fonttype": "path",  # glyphs as paths: no font needed to view the page
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Figure) -> str:
    buffer = io.BytesIO()
    with rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(name: str, status: str = "", limit: int = 48) -> str:
    name = name if len(name) <= limit else name[: limit - 1] + "…"
    return f"{name} [{status}]" if status == "human" else name


def bar_chart(rows: pd.DataFrame, codable: int) -> str | None:
    """Horizontal bars: share of codable segments per code (percent), one category.

    With an evaluation, a black marker and whisker show the corrected estimate and its 95%
    interval; codes with status ``human`` are hatched and labelled ``[human]``.
    """
    if rows.empty:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(7.2, 0.8 + 0.32 * len(rows)))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        status = rows["status"].tolist() if "status" in rows.columns else [""] * len(rows)
        shares = rows["share_of_segments"].fillna(0).to_numpy(dtype=float) * 100
        bars = ax.barh(y, shares, color=BAR, height=0.6)
        for bar, s in zip(bars, status, strict=True):
            if s == "human":
                bar.set_hatch("///")
                bar.set_facecolor("#d9a5a5")
        if "corrected_segments" in rows.columns and codable:
            point = rows["corrected_segments"].to_numpy(dtype=float) / codable * 100
            low = rows["corrected_low"].to_numpy(dtype=float) / codable * 100
            high = rows["corrected_high"].to_numpy(dtype=float) / codable * 100
            ok = ~np.isnan(point)
            if ok.any():
                ax.errorbar(point[ok], y[ok], xerr=[point[ok] - low[ok], high[ok] - point[ok]],
                            fmt="o", color="black", markersize=3, capsize=2, linewidth=0.8,
                            label="corrected (95% interval)")
                ax.legend(loc="lower right", fontsize=7, frameon=False)
        ax.set_yticks(y, [_label(n, s) for n, s in zip(rows["name"], status, strict=True)])
        ax.set_xlabel("% of codable segments")
        right = float(shares.max()) * 1.15
        if "corrected_high" in rows.columns and codable:
            high_pct = rows["corrected_high"].to_numpy(dtype=float) / codable * 105
            if np.isfinite(high_pct).any():
                right = max(right, float(np.nanmax(high_pct)))
        ax.set_xlim(0, max(5.0, right))
        for yy, value in zip(y, shares, strict=True):
            ax.text(value, yy, f" {value:.1f}", va="center", fontsize=7)
        return _svg(fig)


def comparison_chart(table: pd.DataFrame, groups: Sequence[str]) -> str | None:
    """Grouped horizontal bars: share of codable segments per code in each group."""
    rows = table[table["code_id"] != TOTAL_ROW]
    if rows.empty or not groups:
        return None
    with rc_context(_RC):
        fig = Figure(figsize=(7.2, 1.0 + 0.22 * len(rows) * max(1, min(len(groups), 4)) / 1.5))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1].astype(float)
        height = 0.8 / len(groups)
        cmap = _palette(len(groups))
        for g, group in enumerate(groups):
            values = rows[f"share_{group}"].fillna(0).to_numpy(dtype=float) * 100
            ax.barh(y + 0.4 - height * (g + 0.5), values, height=height, color=cmap[g],
                    label=str(group))
        status = rows["status"].tolist() if "status" in rows.columns else [""] * len(rows)
        ax.set_yticks(y, [_label(n, s) for n, s in zip(rows["name"], status, strict=True)])
        ax.set_xlabel("% of the group's codable segments")
        ax.legend(fontsize=7, frameon=False, loc="lower right")
        return _svg(fig)


def _palette(n: int) -> list[str]:
    base = ["#4a6fa5", "#e07b39", "#5b9a68", "#9c6fb0", "#c2a83e", "#7f7f7f", "#3fa7b5",
            "#b5473f"]
    return [base[i % len(base)] for i in range(n)]


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
    with rc_context(_RC):
        fig = Figure(figsize=(min(2.0 + 0.9 * len(cols), 9.0), 1.2 + 0.32 * len(table)))
        ax = fig.add_subplot()
        image = ax.imshow(np.nan_to_num(jac), cmap="Blues", vmin=0,
                          vmax=max(0.05, float(np.nanmax(jac)) if np.isfinite(jac).any() else 0),
                          aspect="auto")
        names_b = [_label(codebook.code(c).name, statuses.get(c, ""), limit=22) for c in cols]
        ax.set_xticks(range(len(cols)), names_b, rotation=35, ha="right")
        ax.set_yticks(range(len(table)), [_label(n, statuses.get(c, ""), limit=40)
                                          for c, n in zip(table["code_id"], table["name"],
                                                          strict=True)])
        top = np.nanmax(jac) if np.isfinite(jac).any() else 0
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                dark = np.isfinite(jac[i, j]) and top and jac[i, j] > 0.6 * top
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="Jaccard")
        ax.spines[:].set_visible(False)
        return _svg(fig)


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
