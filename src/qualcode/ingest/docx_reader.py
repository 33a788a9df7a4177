"""Word documents (.docx): the body's paragraphs, tables and text boxes as text (see
:mod:`.docx_text`), the fields of ``key | value`` tables heading the document as its
metadata, and notes on what was not read (footnotes and endnotes, a transcript table's
rows that are notes and columns that hold other text)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator

from ..speakers import find_labels, label_key
from .decode import text_lines
from .front_matter import MAX_METADATA_CHARS
from .office import _not_office_file, _strict_reason, _transitional
from .readers import RawDoc, ReadError, RowProblem, _layout, _quoted, _require_text

_Header = tuple[int, int, dict[str, str]]  # a key | value table's paragraphs, its fields


_TableNote = tuple[int, int, str]  # a timed table's row that is a note: table, row, text
_UnreadColumn = tuple[int, str, list[str]]  # a table's column not read: table, header, texts
_Unlabelled = tuple[int, list[int]]  # rows without speaker after an interviewer's: table, rows


def _docx_paragraphs(
    document, interviewer_labels: Iterable[str]
) -> tuple[list[str], dict[str, str], list[_TableNote], list[_UnreadColumn],
           list[_Unlabelled]]:
    """The body's paragraphs and table rows as text, content controls and text boxes
    included, the fields of ``key | value`` tables above the first speaker's turn
    (``Date | 12 May``, ``Interviewer | J. Doe``): the document's metadata, not its text,
    the rows of ``time | speaker | words`` tables that are notes, left out, and the
    columns with text of ``speaker | words | comment`` tables that were not read."""
    from .docx_text import (
        TABLE,
        TEXT_BOX,
        body_blocks,
        header_fields,
        note_rows,
        table_paragraphs,
        table_rows,
        unlabelled_after_interviewer,
        unread_columns,
    )

    body = document.element.body
    # Most documents have no text box: then no paragraph is searched for one.
    boxes = next(body.iter(TEXT_BOX), None) is not None
    paragraphs: list[str] = []
    tables: list[_Header] = []
    notes: list[_TableNote] = []
    unread: list[_UnreadColumn] = []
    unlabelled: list[_Unlabelled] = []
    table_count = 0
    for block in body_blocks(body):
        if block.tag == TABLE:
            rows = table_rows(block, boxes)
            table_count += 1
            notes.extend((table_count, row, text) for row, text in note_rows(rows))
            unread.extend((table_count, name, texts) for name, texts in unread_columns(rows))
            if found := unlabelled_after_interviewer(rows, interviewer_labels):
                unlabelled.append((table_count, [i + 1 for i in found]))
            fields = header_fields(rows, MAX_METADATA_CHARS)
            start = len(paragraphs)
            paragraphs.extend(table_paragraphs(rows))
            if fields is not None:
                tables.append((start, len(paragraphs), fields))
        else:
            paragraphs.extend(_block_paragraphs(block, boxes))
    headers = _headers(paragraphs, tables, interviewer_labels) if tables else []
    meta: dict[str, str] = {}
    for start, end, fields in reversed(headers):
        meta = {**fields, **meta}
        del paragraphs[start:end]
    return paragraphs, meta, notes, unread, unlabelled


def _headers(paragraphs: list[str], tables: list[_Header],
             interviewer_labels: Iterable[str]) -> list[_Header]:
    """The ``key | value`` tables (their paragraphs) that head the document: text follows
    them, no speaker's turn comes before them and fewer than half of their keys are
    speakers (a short ``speaker | words`` table, one per exchange, is all speakers)."""
    labels = find_labels("\n\n".join(paragraphs), interviewer_labels)
    first = labels[0].start if labels else None
    speakers = {label.key for label in labels}
    offsets = list(itertools.accumulate((len(p) + 2 for p in paragraphs), initial=0))
    return [
        (start, end, fields) for start, end, fields in tables
        if end < len(paragraphs) and (first is None or first >= offsets[start])
        and 2 * sum(label_key(key) in speakers for key in fields) < len(fields)
    ]


def _docx_blocks(element, boxes: bool) -> Iterator[str]:
    """The paragraphs and table rows of a body or text box; with ``boxes``, each text box's
    paragraphs after the paragraph that anchors it."""
    from .docx_text import body_blocks

    for block in body_blocks(element):
        yield from _block_paragraphs(block, boxes)


def _block_paragraphs(block, boxes: bool) -> Iterator[str]:
    """A ``w:p`` (with its text boxes' paragraphs, with ``boxes``) or ``w:tbl`` as text."""
    from .docx_text import TABLE, paragraph_text, table_paragraphs, table_rows, text_boxes

    if block.tag == TABLE:
        # Transcription services often deliver "speaker | words" tables.
        yield from table_paragraphs(table_rows(block, boxes))
        return
    if text := paragraph_text(block).strip():
        yield text
    if boxes:
        for box in text_boxes(block):
            yield from _docx_blocks(box, boxes)


def _docx_notes(document) -> list[RowProblem]:
    """The footnotes and endnotes, which are not read (inlined, they would end up in a
    speaker's turn), as a note."""
    from .docx_text import note_counts

    footnotes, endnotes = note_counts(document.part)
    if not footnotes + endnotes:
        return []
    counted = " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in
                           ((footnotes, "footnote"), (endnotes, "endnote")) if n)
    return [RowProblem(None, (
        f"has {counted}, which {'were' if footnotes + endnotes > 1 else 'was'} not read (only "
        "the body and text boxes are) — the rest of the file was read; if a note holds part "
        "of the transcript, move its text into the body"), note=True)]


def _open_docx(data: bytes):
    """The python-docx Document of ``data``; a file in Strict Open XML (whose body
    python-docx does not know) is read through the usual namespaces (_transitional)."""
    import docx  # python-docx; imported here because it is slow to import
    from docx.oxml.ns import qn

    def opened(data: bytes):
        document = docx.Document(io.BytesIO(data))
        if document.element.tag != qn("w:document"):
            raise ValueError(f"the main part is a '{document.element.tag}', not a Word body")
        return document

    try:
        return opened(data)
    except Exception as err:
        strict = _transitional(data)
        if strict is None:
            raise
        try:
            return opened(strict)
        except Exception:
            raise ReadError(_strict_reason("docx")) from err


def read_docx(
    data: bytes, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    """A Word document's body (tables and text boxes too) and what was left out of it:
    its footnotes and endnotes, as a note."""
    try:
        document = _open_docx(data)
    except ReadError:
        raise
    except Exception as err:  # zipfile's, python-docx's and lxml's errors on damage
        raise _not_office_file(data, "docx", err) from err
    interviewer_labels = tuple(interviewer_labels)
    paragraphs, fields, table_notes, unread, unlabelled = _docx_paragraphs(
        document, interviewer_labels)
    text = text_lines("\n\n".join(paragraphs))
    _require_text(text, ".docx")
    props = document.core_properties
    meta = {"title": props.title} if props.title else {}
    meta.update(fields)  # a header table's Title, on the page, over the file's property
    problems = (_table_notes(table_notes) + _unread_note(unread)
                + _unlabelled_note(unlabelled) + _docx_notes(document))
    return [RawDoc(text, _layout(text, interviewer_labels), meta)], problems


def _table_notes(notes: list[_TableNote]) -> list[RowProblem]:
    """The rows of ``time | speaker | words`` tables that were left out as notes, as one
    note naming them (the first few)."""
    if not notes:
        return []
    shown = "; ".join(f"table {table}, row {row}: {_quoted(text)}"
                      for table, row, text in notes[:3])
    more = f"; and {len(notes) - 3} more" if len(notes) > 3 else ""
    what = ("a row that is a note, not a turn" if len(notes) == 1
            else f"{len(notes)} rows that are notes, not turns")
    return [RowProblem(None, (
        f"has {what}, in its time | speaker | words table ({shown}{more}), left out and not "
        "coded — the rest of the file was read; if such a row holds words someone said, put "
        "the speaker's name in its speaker cell"), note=True)]


def _unlabelled_note(tables: list[_Unlabelled]) -> list[RowProblem]:
    """The rows of tables of turns with words and no speaker below an interviewer's row
    (read as the interviewer's, not coded), as one note naming them."""
    if not tables:
        return []
    shown = "; ".join(f"table {table}, row{'s' if len(rows) > 1 else ''} "
                      + ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else "")
                      for table, rows in tables)
    return [RowProblem(None, (
        f"has rows with words but no speaker below an interviewer's row ({shown}): they "
        "were read as part of the interviewer's turn and not coded — the rest of the file "
        "was read; if they are answers, fill in the speaker (e.g. 'Respondent')"),
        note=True)]


def _unread_note(columns: list[_UnreadColumn]) -> list[RowProblem]:
    """The columns of transcript tables that were not read (``Comment``, ``Notes``) but
    hold text, as one note naming them."""
    if not columns:
        return []
    shown = "; ".join(
        f"table {table}, column '{' '.join(name.split())}': "
        + (f"{len(texts)} cells, e.g. " if len(texts) > 1 else "") + _quoted(texts[0])
        for table, name, texts in columns)
    what = ("a column with text in its transcript table that was" if len(columns) == 1
            else f"{len(columns)} columns with text in its transcript tables that were")
    return [RowProblem(None, (
        f"has {what} not read ({shown}): only the speaker, text and time columns are read, so this "
        "text was left out and not coded — the rest of the file was read; if such a cell "
        "holds words someone said, move them into the text column"), note=True)]
