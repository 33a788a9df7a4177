"""The text of a Word document's body as Word shows it.

python-docx's ``paragraph.text`` reads only a paragraph's own runs and hyperlinks, so the
text of tracked insertions (``w:ins``), content controls (``w:sdt``), smart tags and
simple fields vanished. Here every run of a paragraph is read in document order, except
deleted text (``w:del``; ``w:moveFrom``, where moved text was), the fallback copy of
alternate content and ruby annotations. A text box (``w:txbxContent``) holds its own
paragraphs: :func:`text_boxes` finds those anchored in a paragraph, each once.
Headers, footers, footnotes and comments live in other parts and are not read
(:func:`note_counts` counts the footnotes and endnotes, to say so).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from lxml import etree

from ..speakers import LABEL_RE, TIME, is_interviewer

_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_MC_CHOICE = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Choice"
_P, _R, TABLE = qn("w:p"), qn("w:r"), qn("w:tbl")
_TR, _TC, _TC_PR = qn("w:tr"), qn("w:tc"), qn("w:tcPr")
_GRID_SPAN, _V_MERGE, _VAL = qn("w:gridSpan"), qn("w:vMerge"), qn("w:val")
_MAX_SPAN = 63  # Word's widest table
_LEFT_OUT = {qn("w:del"), qn("w:moveFrom"), qn("w:rt"), _MC_FALLBACK}
# Elements that wrap paragraphs and tables: content controls, custom XML, table parts.
_WRAPPERS = {qn("w:sdt"), qn("w:sdtContent"), qn("w:customXml")}
_TABLE_PARTS = {TABLE, qn("w:tr"), qn("w:tc")}
# A run's text elements as python-docx renders them (a page or column break is "").
_RUN_TEXT = {qn("w:tab"): "\t", qn("w:ptab"): "\t", qn("w:cr"): "\n", qn("w:noBreakHyphen"): "-"}
_T, _BR, _BR_TYPE = qn("w:t"), qn("w:br"), qn("w:type")
TEXT_BOX = qn("w:txbxContent")


def _within(element: etree._Element, tags: tuple[str, ...]) -> Iterator[etree._Element]:
    """The children of ``element`` with one of ``tags``, in order, inside content controls
    and custom XML too."""
    for child in element.iterchildren():
        if child.tag in tags:
            yield child
        elif child.tag in _WRAPPERS:
            yield from _within(child, tags)


def body_blocks(element: etree._Element) -> Iterator[etree._Element]:
    """The ``w:p`` and ``w:tbl`` elements of a body, in order, inside content controls too."""
    return _within(element, (_P, TABLE))


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


def _is_shown(element: etree._Element, paragraph: etree._Element,
              sole_fallback: bool = False) -> bool:
    """True unless ``element`` is deleted text, the fallback copy of alternate content or
    belongs to another (nested) paragraph; with ``sole_fallback``, a fallback whose
    alternatives (``mc:Choice``) hold no text box counts as shown."""
    for ancestor in element.iterancestors():
        if ancestor is paragraph:
            return True
        if ancestor.tag == _MC_FALLBACK and sole_fallback:
            if any(next(choice.iter(TEXT_BOX), None) is not None
                   for choice in ancestor.itersiblings(_MC_CHOICE, preceding=True)):
                return False
        elif ancestor.tag == _P or ancestor.tag in _LEFT_OUT:
            return False
    return False


def paragraph_text(paragraph: etree._Element) -> str:
    """All text of a ``w:p`` in document order, tracked insertions and controls included."""
    return "".join(_run_text(r) for r in paragraph.iter(_R) if _is_shown(r, paragraph))


def text_boxes(paragraph: etree._Element) -> list[etree._Element]:
    """The text boxes (``w:txbxContent``) anchored in a ``w:p``, in document order.

    Word writes a text box twice, as DrawingML (``mc:Choice``) and as VML for older
    readers (``mc:Fallback``): the fallback copy is left out unless it is the only one
    (older writers), and so are text boxes in deleted text and those nested in another
    text box (found with that one)."""
    return [box for box in paragraph.iter(TEXT_BOX) if _is_shown(box, paragraph, True)]


def _cell_paragraphs(element: etree._Element) -> Iterator[etree._Element]:
    for child in element.iterchildren():
        if child.tag == _P:
            yield child
        elif child.tag in _WRAPPERS or child.tag in _TABLE_PARTS:
            yield from _cell_paragraphs(child)


def _cell_lines(element: etree._Element, boxes: bool) -> Iterator[str]:
    for paragraph in _cell_paragraphs(element):
        anchored = text_boxes(paragraph) if boxes else []
        text = paragraph_text(paragraph)
        if text or not anchored:  # a text box's anchor is often an empty paragraph
            yield text
        for box in anchored:
            yield from _cell_lines(box, boxes)


def cell_text(tc: etree._Element, boxes: bool = False) -> str:
    """A table cell's paragraphs (in controls and nested tables too), one per line; with
    ``boxes``, the paragraphs of its text boxes too, each after its anchoring paragraph."""
    return "\n".join(_cell_lines(tc, boxes))


def _span(tc: etree._Element) -> tuple[int, bool]:
    """How many grid columns a ``w:tc`` spans (``w:gridSpan``), and whether it continues
    the vertically merged cell above it (``w:vMerge`` without ``restart``)."""
    props = tc.find(_TC_PR)
    if props is None:
        return 1, False
    span, merge = props.find(_GRID_SPAN), props.find(_V_MERGE)
    try:
        columns = int(span.get(_VAL)) if span is not None else 1
    except (TypeError, ValueError):
        columns = 1
    continued = merge is not None and merge.get(_VAL, "continue") == "continue"
    return min(max(columns, 1), _MAX_SPAN), continued


def table_rows(table: etree._Element, boxes: bool = False) -> list[list[str]]:
    """A ``w:tbl``'s rows of cell texts, one per grid column, as Word shows them: a merged
    cell's text once, in its first column and row. A cell spanning columns
    (``w:gridSpan``) leaves the others empty, and one that continues a vertically merged
    cell (``w:vMerge``) is empty (python-docx repeats the text in each). With ``boxes``,
    text boxes are read too (:func:`cell_text`)."""
    rows = []
    for tr in _within(table, (_TR,)):
        cells: list[str] = []
        for tc in _within(tr, (_TC,)):
            columns, continued = _span(tc)
            cells.append("" if continued else cell_text(tc, boxes).strip())
            cells.extend([""] * (columns - 1))
        rows.append(cells)
    return rows


# --- footnotes and endnotes: counted, not read --------------------------------------------

_NOTES = ((RELATIONSHIP_TYPE.FOOTNOTES, qn("w:footnote")),
          (RELATIONSHIP_TYPE.ENDNOTES, qn("w:endnote")))
_NOTE_TYPE = qn("w:type")  # separator, continuationSeparator ...: no note


def note_counts(document_part) -> tuple[int, int]:
    """How many footnotes and endnotes with text a document part has (Word's separator
    "notes", which every document has, are none)."""
    counts: dict[str, int] = {}
    for rel in document_part.rels.values():
        tag = next((t for reltype, t in _NOTES if rel.reltype == reltype), None)
        if tag is None or rel.is_external:
            continue
        part = rel.target_part
        try:
            root = part.element if hasattr(part, "element") else parse_xml(part.blob)
        except etree.XMLSyntaxError:  # a damaged notes part: the body is still read
            continue
        counts[tag] = sum(
            1 for note in root.iterchildren(tag)
            if note.get(_NOTE_TYPE, "normal") == "normal"
            and any(paragraph_text(p).strip() for p in note.iter(_P))
        )
    footnotes, endnotes = (counts.get(tag, 0) for _, tag in _NOTES)
    return footnotes, endnotes


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


# A transcriber's note in a row of its own: all in brackets, or ``Note: ...``.
_NOTE_TEXT = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|(?:notes?|n\.?b\.?)\s*[:.–—-].*",
                        re.IGNORECASE | re.DOTALL)


def _note_row(row: list[str]) -> str | None:
    """The text of a ``time | speaker | words`` row that is a note, not a turn: text in
    the time cell alone that is no time (a row merged across the table, ``[recording
    paused]``), in the speaker cell alone that is no name (``Note: the line dropped``),
    or in the words cell alone, without a speaker, in brackets or after ``Note:``."""
    time, speaker, words = row
    if time and not _timestamp(time):
        return time if not speaker and not words else None
    if speaker and not words:
        name = " ".join(speaker.split()).rstrip(":：").strip()
        return None if LABEL_RE.fullmatch(f"{name}: ") else speaker
    if words and not speaker and _NOTE_TEXT.fullmatch(words.strip()):
        return words
    return None


def _is_timed(rows: list[list[str]]) -> bool:
    """Three columns whose first holds timestamps (below a header row, if any; a note's
    row aside), or whose header row says ``Time``/``Timestamp``."""
    if not rows or any(len(row) != 3 for row in rows):
        return False
    if _is_time_header(rows[0]):
        return True
    body = rows if _timestamp(rows[0][0]) else rows[1:]
    times = [row[0] for row in body if row[0] and _note_row(row) is None]
    return bool(times) and all(_timestamp(t) for t in times)


def note_rows(rows: list[list[str]]) -> list[tuple[int, str]]:
    """The rows of a ``time | speaker | words`` table that are notes, not turns
    (:func:`_note_row`), as (row number, counting from 1, text); none for other tables."""
    if not _is_timed(rows):
        return []
    start = 0 if _timestamp(rows[0][0]) else 1  # below a header row, as table_paragraphs
    return [(number, note) for number, row in enumerate(rows[start:], start + 1)
            if (note := _note_row(row)) is not None]


def _row_paragraph(cells: list[str]) -> str:
    """``Speaker: words`` from a row's cells with text."""
    cells = [c for c in cells if c]
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


_HEADER_KEY_WORDS = 3  # a header table's keys are this short (Date, Interview date)


def header_fields(rows: list[list[str]], max_chars: int) -> dict[str, str] | None:
    """The fields of a ``key | value`` table (``Date | 12 May``, ``Location | Aden``) as
    metadata: two columns, two or more rows, short keys (a trailing colon dropped) each
    used once, values up to ``max_chars``; None for any other table. A transcript's
    ``speaker | words`` table repeats its keys (each speaker talks more than once)."""
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for row in rows:
        if len(row) != 2:
            return None
        key, value = (" ".join(cell.split()) for cell in row)
        if not key and not value:
            continue
        key = key.rstrip(":：").strip()
        if (not key or key == value or len(key.split()) > _HEADER_KEY_WORDS
                or key.casefold() in seen or len(value) > max_chars):
            return None  # a merged row, a long key, a repeated key, a long text
        seen.add(key.casefold())
        if value:
            fields[key] = value
    return fields if len(seen) >= 2 else None


# A header row's names for a transcript table's speaker and words columns.
_SPEAKER_HEADERS = {"speaker", "speakers", "speaker name", "name", "who", "participant"}
_WORDS_HEADERS = {"text", "words", "transcript", "transcription", "speech", "utterance",
                  "dialogue", "dialog", "content"}


def _header_key(cell: str) -> str:
    return " ".join(cell.split()).casefold().rstrip(":：").strip()


def _cell(row: list[str], column: int | None) -> str:
    return row[column] if column is not None and column < len(row) else ""


def named_columns(rows: list[list[str]]) -> tuple[int | None, int, int] | None:
    """The time (None if none), speaker and words columns of a table of two or more
    columns whose header row names them (``Speaker | Text``, ``Time | Speaker | Text |
    Comment``, ``# | Speaker | Time | Transcript``); None for any other table (and for a
    ``time | speaker | words`` table, read by position: :func:`_is_timed`)."""
    if len(rows) < 2 or len(rows[0]) < 2 or _is_timed(rows):
        return None
    keys = [_header_key(cell) for cell in rows[0]]
    speaker = next((i for i, key in enumerate(keys) if key in _SPEAKER_HEADERS), None)
    words = next((i for i, key in enumerate(keys) if key in _WORDS_HEADERS), None)
    if speaker is None or words is None:
        return None
    return next((i for i, key in enumerate(keys) if key in _TIME_HEADERS), None), speaker, words


def unlabelled_after_interviewer(rows: list[list[str]],
                                 interviewer_labels: Iterable[str]) -> list[int]:
    """The indices of the rows of a table of turns (:func:`named_columns`) with words and
    no speaker below an interviewer's row. Such a row goes on with the turn above (a long
    turn split over rows), so an answer typed without its speaker is read as the
    interviewer's and not coded."""
    named = named_columns(rows)
    if named is None:
        return []
    _, speaker_col, words_col = named
    labels = tuple(interviewer_labels)
    last = ""
    found = []
    for i, row in enumerate(rows[1:], start=1):
        speaker = _cell(row, speaker_col).strip()
        if speaker:
            last = speaker
        elif _cell(row, words_col).strip() and last and is_interviewer(last, labels):
            found.append(i)
    return found


def unread_columns(rows: list[list[str]]) -> list[tuple[str, list[str]]]:
    """The columns of a table read by :func:`named_columns` that are not read and hold
    text (a letter: ``#`` numbers are none), each with its header and those cells; a
    time cell that is no time (a row merged across the table) counts as text too."""
    named = named_columns(rows)
    if named is None:
        return []
    time, *read = named
    width = max(len(row) for row in rows)
    unread = []
    for column in range(width):
        if column in read:
            continue
        cells = (_cell(row, column) for row in rows[1:])
        texts = [cell for cell in cells if any(c.isalpha() for c in cell)
                 and not (column == time and _timestamp(cell))]
        if texts:
            unread.append((rows[0][column] if column < len(rows[0]) and rows[0][column]
                           else f"column {column + 1}", texts))
    return unread


def table_paragraphs(rows: list[list[str]]) -> list[str]:
    """One paragraph per row: a ``Time | Speaker | Text`` table becomes timed turns
    (its ``Time`` header row is dropped, and so are rows that are notes: see
    :func:`note_rows`), a table whose header row names its speaker and words columns
    (:func:`named_columns`) turns from those (and the time column), any other table
    ``first cell: the others``."""
    if (named := named_columns(rows)) is not None:
        time, speaker, words = named
        turns = (_timed_paragraph(_cell(row, time), _cell(row, speaker), _cell(row, words))
                 for row in rows[1:])
        return [p for p in turns if p]
    if not _is_timed(rows):
        return [p for p in map(_row_paragraph, rows) if p]
    head: list[str] = []
    body = rows
    if _is_time_header(rows[0]):
        body = rows[1:]
    elif not _timestamp(rows[0][0]):  # a header row in other words, kept as it was
        head, body = [_row_paragraph(rows[0])], rows[1:]
    turns = [_timed_paragraph(*row) for row in body
             if (row[1] or row[2]) and _note_row(row) is None]
    return [p for p in head + turns if p]
