"""The report's SVG charts: well-formed, escaped, deterministic and drawn to scale."""

from __future__ import annotations

import base64
import math
import xml.etree.ElementTree as ET

import numpy as np

from qualcode import charts

NS = "{http://www.w3.org/2000/svg}"


def _svg(uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(uri[len(prefix):]))


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_bars_are_to_scale_with_escaped_labels_hatching_and_intervals() -> None:
    uri = charts.bars(["A & <b>", "plain"], [10.0, 5.0], axis_label="% of segments",
                      hatched=[False, True], intervals=[(9.0, 7.0, 11.0), (math.nan,) * 3],
                      interval_label="corrected")
    root = _svg(uri)
    texts = _texts(root)
    assert "A & <b>" in texts and "plain" in texts  # escaped in the file, intact when parsed
    assert "10.0" in texts and "5.0" in texts and "corrected" in texts
    bars = [r for r in root.iter(f"{NS}rect") if r.get("height") == "13.2"]
    assert len(bars) == 2
    assert math.isclose(float(bars[0].get("width")), 2 * float(bars[1].get("width")), rel_tol=0.02)
    assert bars[1].get("fill") == "url(#hatch)" and bars[0].get("fill") == charts.BAR
    assert len(list(root.iter(f"{NS}circle"))) == 2  # one interval marker + its legend entry
    assert uri == charts.bars(["A & <b>", "plain"], [10.0, 5.0], axis_label="% of segments",
                              hatched=[False, True], intervals=[(9.0, 7.0, 11.0),
                                                                (math.nan,) * 3],
                              interval_label="corrected")


def test_grouped_bars_draw_one_bar_per_group_and_a_legend() -> None:
    root = _svg(charts.grouped_bars(["x", "y", "z"], ["KIA", "Houthi"],
                                    [[1.0, 2.0, 3.0], [4.0, 0.0, math.nan]], axis_label="%"))
    fills = [r.get("fill") for r in root.iter(f"{NS}rect")]
    assert fills.count(charts.PALETTE[0]) == 3 + 1  # three bars and the legend swatch
    assert fills.count(charts.PALETTE[1]) == 3 + 1
    assert {"KIA", "Houthi", "x", "y", "z"} <= set(_texts(root))


def test_heatmap_shades_by_value_and_writes_the_numbers() -> None:
    shade = np.array([[0.0, 0.5], [1.0, np.nan]])
    root = _svg(charts.heatmap(["r1", "r2"], ["c1", "c2"], shade, np.array([[0, 5], [9, 2]]),
                               scale_label="Jaccard"))
    cells = [r for r in root.iter(f"{NS}rect") if r.get("width") == "56.0"]
    assert [c.get("fill") for c in cells] == [charts.blues(0), charts.blues(0.5),
                                               charts.blues(1), charts.blues(0)]
    texts = _texts(root)
    assert [t for t in texts if t in {"0", "5", "9", "2"}][:4] == ["0", "5", "9", "2"]
    assert "Jaccard" in texts


def test_scale_helpers() -> None:
    assert charts.nice_ticks(7.9) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0.07, 4)[-1] >= 0.07
    assert charts.blues(0) == charts.BLUES[0] and charts.blues(1) == charts.BLUES[-1]
    assert charts.blues(float("nan")) == charts.BLUES[0]
