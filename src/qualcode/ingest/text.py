"""Text files (.txt, .md): the body below the front matter, with each Markdown pipe
table of turns (``| Speaker | Text |``) written as ``Speaker: words`` paragraphs, as a
Word table of turns is; other tables stay as written."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..speakers import find_labels
from .front_matter import split_front_matter
from .readers import RawDoc, RowProblem, _decode, _layout, _quoted, _require_text


def read_text(
    data: bytes, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    text, notes = _decode(data, lines=True)
    meta, body, problems = split_front_matter(text)
    _require_text(body)
    if "|" in body and _PIPE_DELIMITER.search(body):
        above = text[: len(text) - len(body)].count("\n")  # the front matter's lines
        body, table_problems = _pipe_tables(body, tuple(interviewer_labels), above)
        problems += table_problems
    return [RawDoc(body, _layout(body, interviewer_labels), meta)], notes + problems


# A Markdown pipe table's delimiter row, below its header row: ``|---|:---:|``, ``--- | ---``.
_PIPE_DELIMITER = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$",
                             re.MULTILINE)
_PIPE_SPLIT = re.compile(r"(?<!\\)\|")
_PIPE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _pipe_cells(line: str, width: int | None = None) -> list[str]:
    """A Markdown table row's cells (``| a | b |``), ``\\|`` and ``<br>`` unescaped; with
    ``width``, as many as the header's (GFM: missing ones empty, extra ones dropped)."""
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    cells = [_PIPE_BREAK.sub("\n", cell).replace("\\|", "|").strip()
             for cell in _PIPE_SPLIT.split(line)]
    return cells if width is None else (cells + [""] * width)[:width]


def _pipe_tables(text: str, interviewer_labels: tuple[str, ...], above: int = 0
                 ) -> tuple[str, list[RowProblem]]:
    """``text`` with each Markdown pipe table of turns (``| Speaker | Text |`` /
    ``|---|---|`` / ``| Interviewer | ... |``) written as ``Speaker: words`` paragraphs,
    as a Word table of turns is (:func:`docx_text.table_paragraphs`); other tables stay
    as written. Rows that are notes and columns with text not read are noted, with their
    line in the file (``above``: the lines of front matter above ``text``)."""
    from .docx_text import note_rows, unread_columns

    lines = text.split("\n")
    out: list[str] = []
    problems: list[RowProblem] = []
    i = 0
    while i < len(lines):
        width = len(_pipe_cells(lines[i])) if "|" in lines[i] else 0
        if width < 2 or i + 1 == len(lines) or not _PIPE_DELIMITER.fullmatch(lines[i + 1]):
            out.append(lines[i])
            i += 1
            continue
        end = i + 2
        while end < len(lines) and "|" in lines[end] and lines[end].strip():
            end += 1
        rows = [_pipe_cells(line, width) for line in (lines[i], *lines[i + 2:end])]
        paragraphs = _table_of_turns(rows, interviewer_labels)
        if paragraphs is None:
            out.extend(lines[i:end])
        else:
            out.extend(["", "\n\n".join(paragraphs), ""])
            head = above + i + 1  # the header row's line; row n (from 1) is n lines below
            problems += [RowProblem(head + row, (
                f"this table row is a note, not a turn ({_quoted(note)}); it was left out "
                "and not coded — if it holds words someone said, put the speaker's name in "
                "its speaker cell"), note=True) for row, note in note_rows(rows)]
            problems += [RowProblem(head, (
                f"the table's column '{name}' was not read ("
                + (f"{len(texts)} cells with text, e.g. " if len(texts) > 1 else "")
                + f"{_quoted(texts[0])}): only its speaker, text and time columns are — "
                "if such a cell holds words someone said, move them into the text column"),
                note=True) for name, texts in unread_columns(rows)]
        i = end
    return "\n".join(out), problems


def _table_of_turns(rows: list[list[str]], interviewer_labels: tuple[str, ...]
                    ) -> list[str] | None:
    """A pipe table's rows as ``Speaker: words`` paragraphs, or None when it is no table
    of turns: its header names no speaker and text columns (``Speaker | Text``, ``Time |
    Speaker | Text``), and fewer than half of its rows, header included, open with a
    speaker's label (``| Interviewer | How did it start? |``)."""
    from .docx_text import named_columns, table_paragraphs

    paragraphs = table_paragraphs(rows)
    if named_columns(rows) is not None:
        return paragraphs
    labels = find_labels("\n\n".join(paragraphs), interviewer_labels)
    return paragraphs if len(labels) >= max(2, len(rows) / 2) else None
