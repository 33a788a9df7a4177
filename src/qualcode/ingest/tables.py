"""Tables (.csv, .xlsx): an excerpt table gives one excerpt per row, its ``text`` and id
columns with the rest as metadata; a table of turns without an id column (``Speaker |
Text``, as transcription services export one) is one transcript. A CSV file is read with
its delimiter, a title or Excel's ``sep=`` line above the header, and its bad rows (an
unclosed quote, more cells than the header) left out and reported; workbooks are read
by :mod:`.xlsx`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

from ..documents import EXCERPT
from ..speakers import DEFAULT_INTERVIEWER_LABELS
from .columns import (
    _HEADER_ROWS,
    FILE_COLUMNS,
    ID_COLUMNS,
    _columns,
    _without_unnamed,
    column_key,
)
from .readers import (
    RawDoc,
    ReadError,
    RowProblem,
    _blank,
    _decode,
    _layout,
    _require_text,
    metadata_value,
)
from .xlsx import _read_sheets, _Sheet

# What a spreadsheet shows (and exports to CSV) for a formula that failed.
SPREADSHEET_ERRORS = frozenset({"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "#NUM!",
                                "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA"})


def _sniff_delimiter(sample: str) -> str:
    """The delimiter; when rows disagree (an unquoted one in a cell), the header's."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = sample.split("\n", 1)[0]
        return max(",;\t", key=header.count)  # "," when the header has none


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _fed(lines: list[str], ended: list[bool]) -> Iterator[str]:
    """``lines``, then a mark in ``ended`` that all of them were taken."""
    yield from lines
    ended.append(True)


def _csv_records(lines: list[str], sep: str) -> Iterator[tuple[int, int, list[str] | None]]:
    """The records of CSV ``lines`` as ``(first line, line after it, cells)``, 0-based. A
    record whose quoted cell never ends (an unclosed quote) has no cells and takes its first
    line only: the lines below it are read on their own (they hold no quote that would
    have closed it, so none of them opens another). Raises ``csv.Error``."""
    start = 0
    while start < len(lines):
        ended: list[bool] = []
        reader = csv.reader(_fed(lines[start:], ended), delimiter=sep)
        first = start
        for cells in reader:
            if ended:  # the csv module returns a quoted cell open at the end as a cell
                break
            yield first, start + reader.line_num, cells
            first = start + reader.line_num
        else:
            return
        yield first, first + 1, None
        start = first + 1


_CLOSE_QUOTE = "add the closing quote or remove the opening one"


def _blank_bad_rows(text: str, sep: str, above: int) -> tuple[str, list[RowProblem]]:
    """Blank out each row with more cells than the header (an unquoted delimiter in a cell:
    pandas would shift every column or give up on the whole file) and the first line of
    each row whose quoted cell never ends (an unclosed quote: pandas would give up), whose
    lines below are read on their own. A blanked row stays as an empty line, so the rows
    below keep their spreadsheet numbers (``above``: lines above the header, passed over)."""
    lines = io.StringIO(text).readlines()
    header: list[str] | None = None
    bad: list[tuple[int, int, int, str]] = []  # (row, its first line, line after it, why)
    long_row = ('has more cells than the header — quote the text cell ("...") or remove '
                f"the extra {_DELIMITER_NAMES.get(sep, repr(sep))}")
    try:
        for row, (first, end, cells) in enumerate(_csv_records(lines, sep), start=1):
            if cells is None:
                line = first + 1 + above
                if header is None:
                    raise ReadError(f'its header row has an unclosed quote (") starting on '
                                    f"line {line} — {_CLOSE_QUOTE}", line)
                bad.append((row, first, end, (
                    f'unclosed quote (") starting on line {line}: its cell never ends — the '
                    "row was left out (the lines below it were read on their own); "
                    f"{_CLOSE_QUOTE}")))
            elif header is None:
                header = cells
            elif header and len(cells) > len(header):
                bad.append((row, first, end, long_row))
    except csv.Error:  # e.g. a cell over the csv module's size limit: pandas decides
        return text, []
    for _, first, end, _ in reversed(bad):
        lines[first:end] = ["\n" if lines[end - 1].endswith("\n") else ""]
    return "".join(lines), [RowProblem(row + above, reason) for row, _, _, reason in bad]


_SEP_HINT = re.compile(r"\s*sep=(.)\s*", re.IGNORECASE)  # Excel's delimiter line


def _above_header(text: str) -> tuple[str, int, str | None]:
    """``text`` less the lines above a CSV table's header row (Excel's ``sep=;`` line, a
    title), how many there were, and the delimiter the ``sep=`` line names. The header is
    the first of the top rows with a ``text`` cell (as in a workbook); none: the first."""
    hint = _SEP_HINT.fullmatch(text.split("\n", 1)[0])
    skip = 1 if hint else 0
    sep = hint.group(1) if hint else None
    rest = text.split("\n", 1)[1] if hint and "\n" in text else "" if hint else text
    reader = csv.reader(io.StringIO(rest), delimiter=sep or _sniff_delimiter(rest[:8192]))
    start = 0
    try:
        for _ in range(_HEADER_ROWS):
            cells = next(reader, None)
            if cells is None:
                break
            if any(c.strip().lower() == "text" for c in cells):
                skip += start
                break
            start = reader.line_num
    except csv.Error:  # pandas reports the table's quoting
        pass
    return (text if not skip else "\n".join(text.split("\n")[skip:])), skip, sep


def _read_csv_frame(data: bytes):
    """The table, its rows with more cells than the header (left out, reported) and how
    many lines above the header were passed over (Excel's ``sep=`` line, a title)."""
    import pandas as pd

    text, notes = _decode(data)
    _require_text(text)
    text, above, sep = _above_header(text)
    sep = sep or _sniff_delimiter(text[:8192])
    text, problems = _blank_bad_rows(text, sep, above)
    problems = notes + problems
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # a blank line is a spreadsheet row: keep row numbers true
            index_col=False,  # never take the first column for an index
        )
    except Exception as err:  # pandas ParserError names the line
        line = re.search(r"line (\d+)", str(err))
        raise ReadError(
            f"is not a well-formed CSV table ({str(err).strip()}) — check the quoting on "
            "that line",
            int(line.group(1)) + above if line else None,
        ) from err
    frame, unnamed = _without_unnamed(frame, 1 + above)
    return frame, problems + unnamed, above


# A transcript table's speaker column (``Speaker``, ``Speaker name``); not ``Name``, which
# an excerpt table without an id column may have for its author.
_SPEAKER_COLUMNS = {"speaker", "speakers", "speaker_name", "participant"}


def _transcript_table(frame, interviewer_labels: tuple[str, ...], first_row: int
                      ) -> tuple[RawDoc, list[RowProblem]] | None:
    """A table that is a transcript (``Speaker | Start time | Text``, as transcription
    services and QDA programs export one): no id column, and a header naming a speaker
    and a text column. Its rows become ``Speaker (time): words`` turns, as in a Word
    table of turns (:func:`docx_text.table_paragraphs`), with a note on rows without a
    speaker that went into an interviewer's turn (``first_row``: the first row's number
    in the sheet); None for any other table."""
    from .docx_text import named_columns, table_paragraphs

    if _columns(frame)[1] is not None or not any(
            column_key(c) in _SPEAKER_COLUMNS for c in frame.columns):
        return None
    rows = [[str(c).strip() for c in frame.columns],
            *([metadata_value(v) for v in row] for row in frame.itertuples(index=False))]
    named = named_columns(rows)
    if named is None or column_key(rows[0][named[1]]) not in _SPEAKER_COLUMNS:
        return None
    text = "\n\n".join(table_paragraphs(rows))
    _require_text(text, "transcript table")
    notes = _unlabelled_note(rows, interviewer_labels, first_row)
    return RawDoc(text, _layout(text, interviewer_labels), {}), notes


def _unlabelled_note(rows: list[list[str]], interviewer_labels: tuple[str, ...],
                     first_row: int) -> list[RowProblem]:
    """A note on the rows of a transcript table that went into an interviewer's turn
    (:func:`docx_text.unlabelled_after_interviewer`)."""
    from .docx_text import unlabelled_after_interviewer

    found = [first_row + i - 1 for i in unlabelled_after_interviewer(rows, interviewer_labels)]
    if not found:
        return []
    shown = ", ".join(map(str, found[:5])) + (" ..." if len(found) > 5 else "")
    one = len(found) == 1
    return [RowProblem(found[0], (
        f"{'row' if one else 'rows'} {shown} of this transcript table "
        f"{'has' if one else 'have'} words but no speaker, so "
        f"{'it was' if one else 'they were'} read as part of the interviewer's turn above "
        "and not coded — if an answer, fill in the speaker (e.g. 'Respondent')"),
        note=True)]


def _repeated_columns(frame, header: int, where: str = "") -> list[RowProblem]:
    """Column names given twice or more (in any case): pandas reads the later ones as
    ``name.1``... A repeated ``text`` or id column is an error (which holds the excerpt?);
    another is reported, its later columns kept as metadata under their new names."""
    names = [str(c).strip() for c in frame.columns]
    keys = {column_key(n) for n in names}
    groups: dict[str, list[str]] = {}
    for name in names:
        mangled = re.fullmatch(r"(.+)\.\d+", name)
        base = mangled.group(1) if mangled and column_key(mangled.group(1)) in keys else name
        groups.setdefault(column_key(base), []).append(name)
    problems = []
    for key, group in groups.items():
        if len(group) < 2:
            continue
        listed = ", ".join(f"'{n}'" for n in group)
        if key == "text" or key in ID_COLUMNS:
            raise ReadError(f"{where}has the column '{group[0]}' {len(group)} times (read as "
                            f"{listed}), so which one to use is unclear — rename or delete "
                            "the extra ones", header)
        problems.append(RowProblem(header, (
            f"{where}column '{group[0]}' appears {len(group)} times; they were read as "
            f"{listed} — give each column its own name"), note=True))
    return problems




def _table_columns(frame, header: int = 1) -> tuple[object, object]:
    """The ``text`` and id columns of a table that must have both."""
    text_col, id_col, found = _columns(frame)
    keys = {column_key(c) for c in frame.columns}
    if text_col is None and keys & FILE_COLUMNS:  # the manifest's columns
        raise ReadError(
            f"has no 'text' column but a file column (columns: {found}): a manifest, not "
            "excerpts? Its metadata was not applied (the manifest is read only from "
            "'manifest.csv' at the top of the corpus folder) — save it there under that "
            "name, as CSV, or move its rows into the one there",
            header,
        )
    if text_col is None:
        raise ReadError(
            f"has no 'text' column (columns: {found}) — name the column that holds the "
            "excerpt 'text'",
            header,
        )
    if id_col is None:
        raise ReadError(
            f"has no id column (columns: {found}) — add an 'excerpt_id' (or 'id') column "
            "with a unique id per row",
            header,
        )
    return text_col, id_col


def _excerpts(
    frame, text_col: object, id_col: object, first_row: int, sheet: str | None = None
) -> tuple[list[RawDoc], list[RowProblem]]:
    """One excerpt per row (``first_row`` = the first one's spreadsheet row); a row without
    id or text is a problem, its reason naming the ``sheet`` if given."""
    where = f"sheet '{sheet}': " if sheet is not None else ""
    docs: list[RawDoc] = []
    problems: list[RowProblem] = []
    for i, record in enumerate(frame.to_dict("records")):
        row = i + first_row
        values = {str(k).strip(): metadata_value(v) for k, v in record.items()}
        text = values[str(text_col).strip()]  # an empty .xlsx cell is NaN, not "nan"
        excerpt_id = values[str(id_col).strip()]
        empty = _blank(text)
        if not excerpt_id and empty:
            continue  # a blank row
        if (column_key(excerpt_id) == column_key(id_col)
                and column_key(text) == column_key(text_col)):
            problems.append(RowProblem(row, (
                f"{where}repeats the header row ('{excerpt_id}', '{text}'), as where two "
                "tables were pasted one below the other; it was left out — delete the row")))
            continue
        if not excerpt_id:
            problems.append(
                RowProblem(row, f"{where}no {id_col} — give the excerpt a unique id")
            )
            continue
        if empty:
            problems.append(RowProblem(
                row, f"{where}excerpt '{excerpt_id}' has an empty text — add the text"
            ))
            continue
        if text.strip().upper() in SPREADSHEET_ERRORS:
            problems.append(RowProblem(row, (
                f"{where}excerpt '{excerpt_id}' was not read: its text cell holds a "
                f"spreadsheet error ({text.strip()}), not text — fix the formula that gives "
                "it, or paste the text in as values (Paste Special › Values)")))
            continue
        meta = {k: v for k, v in values.items() if k not in (str(text_col).strip(),)}
        meta["doc_id"] = meta.pop(str(id_col).strip())
        docs.append(RawDoc(text.strip(), EXCERPT, meta, row, sheet))
    return docs, problems


def _read_sheet(sheet: _Sheet) -> tuple[list[RawDoc], list[RowProblem]]:
    """A sheet of a workbook with several: its excerpts, or why it was not read."""
    text_col, id_col, found = _columns(sheet.frame)
    name = f"sheet '{sheet.name}'"
    if text_col is None:
        return [], [RowProblem(None, f"{name} has no 'text' column and was not read — if it "
                               "holds excerpts, put a header row with a 'text' column in its "
                               f"first {_HEADER_ROWS} rows")]
    if id_col is None:
        return [], [RowProblem(sheet.header, f"{name} has no id column (columns: {found}) "
                               "and was not read — add an 'excerpt_id' (or 'id') column "
                               "with a unique id per row")]
    try:
        repeated = _repeated_columns(sheet.frame, sheet.header, f"{name} ")
    except ReadError as err:
        return [], [RowProblem(err.line, f"{err.reason}; the sheet was not read")]
    docs, problems = _excerpts(sheet.frame, text_col, id_col, sheet.header + 1, sheet.name)
    return docs, repeated + _by_row(problems + sheet.problems(f"{name}: "))


def _by_row(problems: list[RowProblem]) -> list[RowProblem]:
    return sorted(problems, key=lambda p: p.row or 0)


def _read_workbook(data: bytes, interviewer_labels: tuple[str, ...] = DEFAULT_INTERVIEWER_LABELS,
                   ) -> tuple[list[RawDoc], list[RowProblem]]:
    """Every sheet with a ``text`` and an id column; the others are reported by name. A
    workbook of one sheet may be a transcript (:func:`_transcript_table`)."""
    sheets, hidden = _read_sheets(data)
    filled = [s for s in sheets if len(s.frame.columns)] or sheets[:1]
    if len(filled) == 1:
        sheet = filled[0]
        transcript = _transcript_table(sheet.frame, interviewer_labels, sheet.header + 1)
        if transcript is not None:
            return [transcript[0]], hidden + _by_row(transcript[1] + sheet.problems())
        columns = _table_columns(sheet.frame, sheet.header)
        repeated = _repeated_columns(sheet.frame, sheet.header)
        docs, problems = _excerpts(sheet.frame, *columns, sheet.header + 1)
        return docs, hidden + repeated + _by_row(problems + sheet.problems())
    if all(_columns(s.frame)[0] is None for s in filled):
        names = ", ".join(f"'{s.name}'" for s in filled)
        raise ReadError(f"has no sheet with a 'text' column (sheets: {names}) — name the "
                        "column that holds the excerpt 'text'")
    docs: list[RawDoc] = []
    problems: list[RowProblem] = list(hidden)
    for sheet in filled:
        sheet_docs, sheet_problems = _read_sheet(sheet)
        docs.extend(sheet_docs)
        problems.extend(sheet_problems)
    return docs, problems


def read_table(data: bytes, fmt: str,
               interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
               ) -> tuple[list[RawDoc], list[RowProblem]]:
    """An excerpt table: one document per row, ``text`` + an id column, the rest metadata.

    A .csv row with more cells than the header is left out and reported; every sheet of a
    workbook that has both columns is read, its header row found in its first rows. A
    table without an id column whose header names a speaker and a text column (a
    transcript exported as a table) is one transcript (:func:`_transcript_table`).
    """
    if fmt == "xlsx":
        docs, problems = _read_workbook(data, tuple(interviewer_labels))
    else:
        frame, long_rows, above = _read_csv_frame(data)
        transcript = _transcript_table(frame, tuple(interviewer_labels), 2 + above)
        if transcript is not None:
            return [transcript[0]], sorted(long_rows + transcript[1], key=lambda p: p.row or 0)
        columns = _table_columns(frame, 1 + above)
        repeated = _repeated_columns(frame, 1 + above)
        docs, problems = _excerpts(frame, *columns, 2 + above)
        problems = sorted(long_rows + repeated + problems, key=lambda p: p.row or 0)
    if not docs and not problems:
        raise ReadError("the table has no rows — add excerpts or remove the file")
    return docs, problems
