"""The text of a Word document's body as Word shows it.

python-docx's ``paragraph.text`` reads only a paragraph's own runs and hyperlinks, so the
text of tracked insertions (``w:ins``), content controls (``w:sdt``), smart tags and
simple fields vanished. Here every run of a paragraph is read in document order, except
deleted text (``w:del``; ``w:moveFrom``, where moved text was), the fallback copy of
alternate content and ruby annotations; a text box holds its own paragraphs and is not
read, as before.
Headers, footers, footnotes and comments live in other parts and are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from docx.oxml.ns import qn
from lxml import etree

from ..speakers import TIME

_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_P, _R, TABLE = qn("w:p"), qn("w:r"), qn("w:tbl")
_LEFT_OUT = {qn("w:del"), qn("w:moveFrom"), qn("w:rt"), _MC_FALLBACK}
# Elements that wrap paragraphs and tables: content controls, custom XML, table parts.
_WRAPPERS = {qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")}
_TABLE_PARTS = {TABLE, qn("w:tr"), qn("w:tc")}
# A run's text elements as python-docx renders them (a page or column break is "").
_RUN_TEXT = {qn("w:tab"): "\t", qn("w:ptab"): "\t", qn("w:cr"): "\n", qn("w:noBreakHyphen"): "-"}
_T, _BR, _BR_TYPE = qn("w:t"), qn("w:br"), qn("w:type")


def body_blocks(element: etree._Element) -> Iterator[etree._Element]:
    """The ``w:p`` and ``w:tbl`` elements of a body, in order, inside content controls too."""
    for child in element.iterchildren():
        if child.tag in (_P, TABLE):
            yield child
        elif child.tag in _WRAPPERS:
            yield from body_blocks(child)


def _run_text(run: etree._Element) -> str:
    parts: list[str] = []
    for child in run.iterchildren():
        if child.tag == _T:
            parts.append(child.text or "")
        elif child.tag == _BR:
            parts.append("\n" if child.get(_BR_TYPE, "textWrapping") == "textWrapping" else "")
        else:
            parts.append(_RUN_TEXT.get(child.tag, ""))
    return "".join(parts)


def _is_shown(run: etree._Element, paragraph: etree._Element) -> bool:
    """True unless ``run`` is deleted text or belongs to another (nested) paragraph."""
    for ancestor in run.iterancestors():
        if ancestor is paragraph:
            return True
        if ancestor.tag == _P or ancestor.tag in _LEFT_OUT:
            return False
    return False


def paragraph_text(paragraph: etree._Element) -> str:
    """All text of a ``w:p`` in document order, tracked insertions and controls included."""
    return "".join(_run_text(r) for r in paragraph.iter(_R) if _is_shown(r, paragraph))


def _cell_paragraphs(element: etree._Element) -> Iterator[etree._Element]:
    for child in element.iterchildren():
        if child.tag == _P:
            yield child
        elif child.tag in _WRAPPERS or child.tag in _TABLE_PARTS:
            yield from _cell_paragraphs(child)


def cell_text(tc: etree._Element) -> str:
    """A table cell's paragraphs (in controls and nested tables too), one per line."""
    return "\n".join(paragraph_text(p) for p in _cell_paragraphs(tc))


# --- tables: "speaker | words" and "time | speaker | words" rows --------------------------

_TIMESTAMP = re.compile(
    rf"\[?({TIME})\]?(?:\s*(?:-->|[-–—]|to)\s*\[?{TIME}\]?)?", re.IGNORECASE
)
_TIME_HEADERS = {"time", "timestamp", "time stamp", "timecode", "time code", "start",
                 "start time"}


def _timestamp(cell: str) -> str | None:
    """The (first) time in a timestamp cell: ``00:00:05``, ``[0:05]``, ``00:05 - 00:09``."""
    match = _TIMESTAMP.fullmatch(cell.strip())
    return match.group(1) if match else None


def _is_time_header(row: list[str]) -> bool:
    return " ".join(row[0].split()).casefold().rstrip(":") in _TIME_HEADERS


def _is_timed(rows: list[list[str]]) -> bool:
    """Three columns whose first holds timestamps (below a header row, if any), or whose
    header row says ``Time``/``Timestamp``."""
    if not rows or any(len(row) != 3 for row in rows):
        return False
    if _is_time_header(rows[0]):
        return True
    body = rows if _timestamp(rows[0][0]) else rows[1:]
    times = [row[0] for row in body if row[0]]
    return bool(times) and all(_timestamp(t) for t in times)


def _row_paragraph(cells: list[str]) -> str:
    """``Speaker: words`` from a row's distinct cells (a merged cell repeats its text)."""
    cells = [c for i, c in enumerate(cells) if c and c not in cells[:i]]
    if len(cells) >= 2 and not cells[0].endswith(":"):
        cells[0] += ":"
    return " ".join(cells)


def _timed_paragraph(time: str, speaker: str, words: str) -> str:
    """``Speaker (00:00:05): words``, a label form the speaker detection reads."""
    speaker = " ".join(speaker.split()).rstrip(":").strip()
    if not speaker:
        return words  # continues the turn before
    stamp = _timestamp(time)
    label = f"{speaker} ({stamp})" if stamp else speaker
    return f"{label}: {words}".rstrip()


def table_paragraphs(rows: list[list[str]]) -> list[str]:
    """One paragraph per row: a ``Time | Speaker | Text`` table becomes timed turns
    (its ``Time`` header row is dropped), any other table ``first cell: the others``."""
    if not _is_timed(rows):
        return [p for p in map(_row_paragraph, rows) if p]
    head: list[str] = []
    body = rows
    if _is_time_header(rows[0]):
        body = rows[1:]
    elif not _timestamp(rows[0][0]):  # a header row in other words, kept as it was
        head, body = [_row_paragraph(rows[0])], rows[1:]
    turns = [_timed_paragraph(*row) for row in body if row[1] or row[2]]
    return [p for p in head + turns if p]
