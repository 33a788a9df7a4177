"""Coders' decisions in ``<corpus>/reviews/*.csv``: read, check, reconcile and append them.

A review file has one row per decision: ``segment_id, codes, coder`` at least (``codes``
``;``-separated, empty meaning "reviewed, no code"), plus context columns that are ignored.
Files written by :func:`append_reviews` (one per coder, ``<coder>.csv``) also keep
``memo, text_sha256, sheet, sheet_row, imported_at``: the coder's note, a hash of the
segment text the coder saw, and which review sheet and row the decision came from.

History is never rewritten: a new decision is a new row, and a coder's latest row for a
segment is that coder's decision (files in name order, rows in file order).

A CSV file may be separated by ``,``, ``;`` or tab (an Excel ``sep=X`` first line names
it) and end its lines in ``\n``, ``\r\n`` or ``\r`` (Excel for Mac's "CSV (Macintosh)").

A row that cannot be used is left out and reported as a problem naming ``reviews/<file>:<row>``:
no segment_id, no coder, an unknown code id (such a row is not read as "no code"), more
cells than the header (codes separated by the file's delimiter: its cells cannot be matched
to the columns) or an unclosed quote (the lines below it are read on their own). While such
a row is the coder's latest on the segment, the coder's earlier decisions on that segment
do not count either. A file without a ``segment_id``, ``codes`` or ``coder`` column, or
that cannot be read (no permission), is left out whole; the other files are read. A
coder's name is read as first spelled: ``Coder_C`` after ``coder_c`` is the same coder
(noted). :meth:`ReviewSet.unmatched` lists the decisions on segments that are not in the
corpus.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .documents import Skipped
from .ingest.columns import _column_letter  # as in corpus tables
from .ingest.columns import column_key as table_column_key
from .ingest.decode import DecodeError, decode_bytes
from .ingest.tables import _SEP_HINT  # as in corpus tables
from .outputs import CSV_ENCODING, atomic_write_text, csv_text

__all__ = [
    "ADJUDICATOR",
    "CODE_SEPARATOR",
    "NONE_TOKEN",
    "REVIEW_FILE_COLUMNS",
    "Review",
    "ReviewSet",
    "append_reviews",
    "closest",
    "code_hint",
    "coder_file",
    "coder_key",
    "column_key",
    "formula_safe",
    "from_formula_safe",
    "load_reviews",
    "read_review_file",
    "read_rows",
    "repeated_column",
    "resolve_codes",
    "split_codes",
    "text_sha256",
]

ADJUDICATOR = "adjudicator"
CODE_SEPARATOR = ";"
# An explicit "reviewed, no code" that cannot be confused with an untouched empty cell;
# parentheses are not allowed in code ids, so it can never name a code.
NONE_TOKEN = "(none)"
REVIEW_FILE_COLUMNS = (
    "segment_id", "codes", "coder", "memo", "text_sha256", "sheet", "sheet_row", "imported_at",
)
# A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_FILE_NAME_UNSAFE = re.compile(r"[^\w.-]+")
# What coders put between code ids instead of ";" (no code id holds one of these).
_OTHER_SEPARATORS = re.compile(r"[\s|/]+")


@dataclass(slots=True, frozen=True)
class Review:
    """One coder's decision on one segment (empty ``codes`` = reviewed, no code)."""

    segment_id: str
    codes: frozenset[str]
    coder: str
    source: str  # the file, as problems name it (``reviews/<file>.csv``)
    row: int  # row in that file (header = 1); later rows are later decisions
    memo: str = ""
    sheet: str = ""  # the review sheet the decision was imported from, if any
    text_sha256: str = ""  # sha256 of the segment text the coder saw, if known


@dataclass(slots=True)
class ReviewSet:
    reviews: list[Review]
    problems: list[Skipped]
    sha256: str  # over all review files, to know when the training data changed
    # (segment_id, coder) whose latest row was left out (unknown code id): no decision
    undecided: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def latest(self) -> dict[tuple[str, str], Review]:
        """The latest decision of each coder on each segment, keyed ``(segment_id, coder)``."""
        latest: dict[tuple[str, str], Review] = {}
        for review in self.reviews:
            latest[(review.segment_id, review.coder)] = review
        for key in self.undecided:
            latest.pop(key, None)
        return latest

    def unmatched(self, segment_ids: Iterable[str], uncoded: Mapping[str, str] | None = None
                  ) -> list[Skipped]:
        """A problem for each latest decision on a segment not in ``segment_ids``.

        Pass the ids the decisions are used for (``TrainingSet.segment_ids``, the reviewed
        codable segments): the rows behind ``TrainingSet.unmatched``, with file and row.
        ``uncoded`` (segment id -> speaker) names the corpus's segments that are not coded
        (interviewer turns), which a decision may name by mistake.
        """
        known, uncoded = set(segment_ids), uncoded or {}
        latest = set(self.latest().values())
        missing = [r for r in self.reviews if r in latest and r.segment_id not in known]
        return [Skipped(r.source, _interviewer_turn(r.segment_id, uncoded[r.segment_id])
                        if r.segment_id in uncoded else
                        f"unknown segment '{r.segment_id}'"
                        f"{closest_segment(r.segment_id, known)} — it is not among the "
                        "corpus's codable segments, so the decision was not used; correct "
                        "the id, or update or delete the row if the document was renamed or "
                        "removed", r.row) for r in missing]

    def checked(self, texts: Mapping[str, str]) -> ReviewSet:
        """This set less the latest decisions made on another text than the segment's now
        (``texts``: segment id -> text; a decision imported from a review sheet knows the
        sha256 of the text the coder saw), with a problem for each. Editing a transcript
        after review renumbers its later turns, so an id can come to name other words."""
        stale = [r for r in self.latest().values() if r.text_sha256 and r.segment_id in texts
                 and text_sha256(texts[r.segment_id]) != r.text_sha256.lower()]
        if not stale:
            return self
        now_at = {text_sha256(text): sid for sid, text in texts.items()}
        problems = []
        for r in sorted(stale, key=lambda r: (r.source, r.row)):
            moved = now_at.get(r.text_sha256.lower())
            where = (f" (the text {r.coder} coded is now segment '{moved}')" if moved else "")
            problems.append(Skipped(r.source, (
                f"segment '{r.segment_id}' has changed since {r.coder} coded it{where}, so "
                "the decision was not used — the document was probably edited; review the "
                "segment again (qualcode review export --include-reviewed) or correct the "
                "row's segment_id"), r.row))
        return ReviewSet(self.reviews, [*self.problems, *problems], self.sha256,
                         self.undecided | {(r.segment_id, r.coder) for r in stale})

    @property
    def coders(self) -> list[str]:
        """Coders in order of first appearance (the adjudicator included)."""
        return list(dict.fromkeys(r.coder for r in self.reviews))

    def decisions(self) -> dict[str, frozenset[str]]:
        """One reference decision per reviewed segment.

        The adjudicator's decision wins; otherwise a code applies when at least half of
        the segment's coders applied it.
        """
        by_segment: dict[str, list[Review]] = {}
        for review in self.latest().values():
            by_segment.setdefault(review.segment_id, []).append(review)
        decided: dict[str, frozenset[str]] = {}
        for segment_id, reviews in by_segment.items():
            adjudicated = [r for r in reviews if is_adjudicator(r.coder)]
            if adjudicated:
                decided[segment_id] = adjudicated[-1].codes
                continue
            codes = {c for r in reviews for c in r.codes}
            decided[segment_id] = frozenset(
                c for c in codes if 2 * sum(c in r.codes for r in reviews) >= len(reviews)
            )
        return decided


def _interviewer_turn(segment_id: str, speaker: str) -> str:
    return (f"segment '{segment_id}' is a turn of '{speaker}', an interviewer label, and "
            "interviewer turns are not coded, so the decision was not used — correct the "
            "segment id, or delete the row; if this speaker is no interviewer, run with "
            "--interviewer-labels that leave the label out")


def is_adjudicator(coder: str) -> bool:
    return coder.strip().casefold() == ADJUDICATOR


def split_codes(value: str, whole: Collection[str] = ()) -> list[str]:
    """Code ids in a cell: separated by ``;``, ``,`` or line breaks (Alt+Enter in Excel);
    an item whose folded text is in ``whole`` (a code's name with a comma in it) is not
    cut at its commas."""
    items = []
    for item in value.replace("\r", "\n").replace("\n", CODE_SEPARATOR).split(CODE_SEPARATOR):
        if whole and " ".join(item.split()).casefold() in whole:
            items.append(item)
        else:
            items.extend(item.split(","))
    return [c.strip() for c in items if c.strip()]


def resolve_codes(value: str, code_ids: Iterable[str], names: Collection[str] = ()
                  ) -> tuple[frozenset[str], list[str]]:
    """The known codes of a cell and its unknown ids.

    Ids match exactly or, when that is unambiguous, ignoring case (spreadsheets like to
    capitalise the first letter). ``(none)`` — or ``none`` when no code is called that —
    means "reviewed, no code". Ids separated by spaces, ``|`` or ``/`` instead of ``;``
    are read one by one when each is a code (an id holds none of these). A code's name
    (``names``, folded) typed whole stays one unknown item, commas and all, so that the
    problem can say whose name it is.
    """
    known = list(code_ids)
    exact = set(known)
    folded: dict[str, list[str]] = {}
    for code in known:
        folded.setdefault(code.casefold(), []).append(code)
    codes: set[str] = set()
    unknown: list[str] = []
    items: list[str] = []
    for item in split_codes(value, [n for n in names if "," in n]):
        parts = [p for p in _OTHER_SEPARATORS.split(item) if p]
        if parts != [item] and parts and all(p in exact or p.casefold() in folded
                                             for p in parts):
            items.extend(parts)
        else:
            items.append(item)
    for item in items:
        if item in exact:
            codes.add(item)
        elif len(folded.get(item.casefold(), [])) == 1:
            codes.add(folded[item.casefold()][0])
        elif item.casefold() in (NONE_TOKEN, "none"):
            continue
        else:
            unknown.append(item)
    return frozenset(codes), unknown


def closest(value: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option (ignoring case), or an empty string
    when none is close enough to be a typo."""
    by_lower = {option.lower(): option for option in options}
    match = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.75)
    return f" (did you mean '{by_lower[match[0]]}'?)" if match else ""


# What coders write for "no code" instead of an empty cell or "(none)".
_NO_CODE_WORDS = frozenset({"n/a", "na", "-", "--", "0", "no", "no code", "no codes", "nil",
                            "x", "/", "null", "nothing"})


def code_hint(code: str, code_ids: Iterable[str], names: Mapping[str, str] | None = None
              ) -> str:
    """What an unknown code id probably is, as `` (...)`` after it: a formula, a mark meant
    as "no code", a code's name (``names``: folded name -> id), or a typo of an id."""
    if code.startswith("="):
        return " (a formula, not code ids: type the ids themselves)"
    folded = " ".join(code.split()).casefold()
    if folded in _NO_CODE_WORDS:
        return " (for 'no code', leave the cell empty or write (none))"
    named = (names or {}).get(folded)
    return f" (the name of code '{named}': write its id)" if named else closest(code, code_ids)


def closest_segment(segment_id: str, known: Collection[str]) -> str:
    """:func:`closest` among the same document's ids when there are any, else among all
    when there are few (difflib is slow on many ids)."""
    doc = segment_id.rsplit(":", 1)[0]
    same_doc = [k for k in known if k.rsplit(":", 1)[0] == doc]
    if same_doc:
        return closest(segment_id, same_doc)
    return closest(segment_id, known) if len(known) <= 5000 else ""


def text_sha256(text: str) -> str:
    """The hash that tells whether a segment's text changed since a sheet was exported."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _needs_quote(value: str) -> bool:
    if value.startswith(_FORMULA_START):
        return True
    stripped = value.lstrip(" \n")
    if stripped != value and stripped.startswith(_FORMULA_START):
        return True
    return value.startswith("'") and _needs_quote(value[1:])


def formula_safe(value: object) -> str:
    """``value`` as a cell that no spreadsheet evaluates: a would-be formula gets a ``'``.

    Exact inverse: :func:`from_formula_safe` (a value that already starts with ``'`` in
    front of a formula character gets a second one, so nothing is ambiguous).
    """
    text = "" if value is None else str(value)
    return "'" + text if _needs_quote(text) else text


def from_formula_safe(value: object) -> str:
    """The original text of a cell written by :func:`formula_safe`."""
    text = "" if value is None else str(value)
    return text[1:] if text.startswith("'") and _needs_quote(text[1:]) else text


# Other names a coder's own sheet gives the decision columns.
_ALIASES = {"segmentid": "segment_id", "code": "codes", "code_ids": "codes",
            "coder_name": "coder", "reviewer": "coder", "rater": "coder", "annotator": "coder"}


def column_key(name: str) -> str:
    """How a header cell names its column: in lower case, and one of
    :data:`REVIEW_FILE_COLUMNS` also with spaces or ``-`` for ``_`` (``Segment ID``), as
    corpus tables' columns are matched, or by another name (``Code``, ``Coder name``,
    ``Reviewer``)."""
    joined = table_column_key(name)
    joined = _ALIASES.get(joined, joined)
    return joined if joined in REVIEW_FILE_COLUMNS else name.strip().lower()


def repeated_column(keys: Sequence[str]) -> str:
    """``two 'codes' columns (C and F)`` when a header names ``segment_id``, ``codes`` or
    ``coder`` more than once (which of them holds the decision is unclear), else ``""``."""
    for column in ("segment_id", "codes", "coder"):
        at = [_column_letter(i) for i, key in enumerate(keys) if key == column]
        if len(at) > 1:
            return f"{len(at)} {column!r} columns ({', '.join(at[:-1])} and {at[-1]})"
    return ""


def _delimiter(header_line: str) -> str:
    # Excel in many European locales saves "CSV" with semicolons.
    for delimiter in (",", ";", "\t"):
        cells = [column_key(c.strip().strip('"')) for c in header_line.split(delimiter)]
        if "segment_id" in cells or "code_id" in cells:
            return delimiter
    return ","


# After a line end: \n (\r\n having become \n) or a lone \r (Excel for Mac's "CSV
# (Macintosh)"). A line break inside a quoted cell stays as it is.
_LINE_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _parse_from(lines: list[str], start: int, delimiter: str
                ) -> tuple[list[tuple[int, list[str]]], tuple[int, int, str] | None]:
    """The records of ``lines[start:]``, each with the index of its first line, up to the
    first that cannot be read: ``(its first line, the line to go on from, why)``."""
    exhausted = False

    def feed() -> Iterable[str]:
        nonlocal exhausted
        yield from lines[start:]
        exhausted = True

    reader = csv.reader(feed(), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    first = start
    try:
        for cells in reader:
            if exhausted:  # the csv module returns a quoted cell open at the end as a cell
                return records, (first, first + 1, "")
            records.append((first, cells))
            first = start + reader.line_num
    except csv.Error as err:  # defensive: lines are split so that none should raise
        return records, (first, max(start + reader.line_num, first + 1), str(err))
    return records, None


class RowProblem(NamedTuple):
    """Why a row of a sheet cannot be read (``what``), and how to fix it."""

    row: int
    what: str
    fix: str
    left_out: str = "the row was left out"

    def reason(self) -> str:
        """As a problem of a review file, whose other rows are read."""
        return f"{self.what} — {self.left_out}; {self.fix}"


def _csv_records(text: str) -> tuple[list[tuple[int, list[str]]], list[RowProblem], str]:
    """The records of CSV text with their spreadsheet rows, the records left out (an
    unclosed quote: the lines below it are read on their own), and the delimiter.

    Line ends may be ``\n``, ``\r\n`` or ``\r``; a ``sep=X`` first line names the
    delimiter (it counts as row 1), else the header's is guessed (``,`` ``;`` or tab).
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = [line for line in _LINE_END.split(text) if line]
    hint = _SEP_HINT.fullmatch(lines[0].rstrip("\r\n")) if lines else None
    skip = 1 if hint else 0
    delimiter = hint.group(1) if hint else _delimiter(lines[0] if lines else "")
    records: list[tuple[int, list[str]]] = []
    problems: list[RowProblem] = []
    row, start = skip, skip
    while start < len(lines):
        found, stop = _parse_from(lines, start, delimiter)
        for _, cells in found:
            row += 1
            records.append((row, cells))
        if stop is None:
            break
        first, start, error = stop
        row += 1
        problems.append(RowProblem(
            row, f"unclosed quote (\") starting on line {first + 1}: its cell never ends",
            "add the closing quote or remove the opening one",
            "the row was left out (the lines below it were read on their own)")
            if not error else RowProblem(
            row, f"cannot be read as CSV from line {first + 1} ({error})",
            "check the quoting on that line"))
    return records, problems, delimiter


def _long_row(row: int, cells: int, columns: int, delimiter: str) -> RowProblem:
    if delimiter == ",":
        fix = "separate codes with ';' inside one cell, e.g. \"a;b\""
    elif delimiter == ";":
        fix = ("the file is separated by ';', so put several codes in quotes, e.g. \"a;b\", "
               "or separate them with ','")
    else:
        fix = f"quote a cell that holds a {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}"
    return RowProblem(row, f"has {cells} cells but the header has {columns}, so its cells "
                       "cannot be matched to the columns",
                       f"{fix} (and give any extra column a header)")


@dataclass(slots=True)
class ReviewTable:
    """A review file's header, its usable rows (row number, cells by column) and the rows
    left out with why."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    problems: list[RowProblem] = field(default_factory=list)
    # rows with more cells than the header: (row, the cells read from the left, and from
    # the right), the two ways the columns might have been meant
    long_rows: list[tuple[int, dict[str, str], dict[str, str]]] = field(default_factory=list)


def read_table(path: Path, data: bytes | None = None) -> ReviewTable:
    """:func:`read_rows`, with the rows that cannot be used left out and reported.

    Raises :class:`DecodeError` or :class:`OSError` when the file cannot be read at all.
    """
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        raw = list(enumerate(_xlsx_rows(path), start=1))
        problems: list[RowProblem] = []
        delimiter = ""
    else:
        text, _ = decode_bytes(path.read_bytes() if data is None else data)
        raw, problems, delimiter = _csv_records(text)
    table = ReviewTable([], [], list(problems))
    if not raw:
        return table
    head = raw[0][1]
    table.header = [str(h or "").strip() for h in head]
    keys = [column_key(h) for h in table.header]
    width = max((i + 1 for i, k in enumerate(keys) if k), default=0)
    for number, values in raw[1:]:
        cells = [from_formula_safe(v) for v in values]
        if not any(c.strip() for c in cells):
            continue
        used = max(i + 1 for i, c in enumerate(cells) if c.strip())
        if delimiter and "segment_id" in keys and used > width:
            extra = used - width
            table.problems.append(_long_row(number, used, width, delimiter))
            table.long_rows.append((number, {k: cells[i] for i, k in enumerate(keys) if k},
                                    {k: cells[i + extra] for i, k in enumerate(keys) if k}))
            continue
        record = {k: (cells[i] if i < len(cells) else "") for i, k in enumerate(keys) if k}
        table.rows.append((number, record))
    table.problems.sort(key=lambda p: p.row)
    return table


def read_rows(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(row number, {lower-case column: text})`` rows of a .csv or .xlsx sheet.

    Row numbers are those a spreadsheet shows (header = 1; an Excel ``sep=`` line above it
    counts). Cell text is restored from its formula-safe form. An .xlsx file is read from
    its ``review`` worksheet, else its first. A CSV file may end its lines in ``\n``,
    ``\r\n`` or ``\r`` and be separated by ``,``, ``;`` or tab. Raises
    :class:`DecodeError` (with ``reason`` and ``line``) when the file cannot be read, and
    when a row cannot be matched to the columns (more cells than the header, an unclosed
    quote): the sheet is not read rather than read wrong.
    """
    table = read_table(Path(path))
    if table.problems:
        first, *more = table.problems
        rows = ", ".join(str(p.row) for p in more[:10]) + (", ..." if len(more) > 10 else "")
        also = (f" (and rows {rows} cannot be read either)" if len(more) > 1 else
                f" (and row {rows} cannot be read either)" if more else "")
        raise DecodeError(f"{first.what}{also} — nothing was read from this file; "
                          f"{first.fix}, then import it again", first.row)
    return table.header, table.rows


def _xlsx_rows(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except Exception as err:  # openpyxl raises many kinds for a damaged file
        raise DecodeError(f"cannot be read as an Excel workbook ({err}) — save it as .xlsx "
                          "again or export it as CSV") from err
    try:
        sheet = book["review"] if "review" in book.sheetnames else book.worksheets[0]
        return [["" if v is None else str(v) for v in row]
                for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _row_problems(segment_id: str, coder: str, unknown: Sequence[str],
                  code_ids: Sequence[str], names: Mapping[str, str] | None = None
                  ) -> list[str]:
    """Why a review row cannot be used (nothing when it can)."""
    problems = []
    if not segment_id:
        problems.append("no segment_id — the row was left out (it cannot be matched to a "
                        "segment); restore its segment_id")
    if not coder:
        problems.append("no coder — the row was left out; write the coder's name in its "
                        "'coder' cell, or delete the row if nobody reviewed it")
    problems.extend(f"unknown code id '{code}'{code_hint(code, code_ids, names)} — the row was "
                    "left out (not read as 'no code'); correct the id (valid ids are in the "
                    "codebook) and run again" for code in unknown)
    return problems


def coder_key(coder: str) -> str:
    """What tells coders apart: their name in any case and spacing is one person."""
    return " ".join(coder.split()).casefold()


class _Coders:
    """Coder names as first spelled: trimmed, in any case and spacing one person is one
    coder (else reliability would compare a coder with themselves)."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}
        self._told: set[str] = set()

    def known(self, coder: str) -> str | None:
        """The name ``coder`` is read as, if that coder was met before."""
        return self._first.get(coder_key(coder))

    def name(self, coder: str, label: str, row: int) -> tuple[str, Skipped | None]:
        """The name ``coder`` is read as, and a note the first time it is spelled otherwise."""
        first = self._first.setdefault(coder_key(coder), coder)
        if first == coder or coder in self._told:
            return first, None
        self._told.add(coder)
        how = ("in another case" if coder.casefold() == first.casefold() else
               "with other spaces" if " ".join(coder.split()) == " ".join(first.split()) else
               "in another case, with other spaces")
        return first, Skipped(label, f"coder '{coder}' is read as '{first}' (the same name "
                              f"{how}) — write it the same way everywhere", row, note=True)


def _read_file(path: Path, code_ids: Sequence[str], label: str, coders: _Coders,
               data: bytes | None = None, names: Mapping[str, str] | None = None
               ) -> tuple[list[Review], list[Skipped], dict[tuple[str, str], bool]]:
    """Usable rows, problems, and for each ``(segment_id, coder)`` whether its last row
    was left out (coder names as ``coders`` reads them); ``data``: the file's bytes;
    ``names``: code id by folded code name, to name a code typed by its name."""
    try:
        table = read_table(path, data)
    except DecodeError as err:
        return [], [Skipped(label, err.reason, err.line)], {}
    except OSError as err:
        return [], [_unreadable(label, err)], {}
    header, rows = table.header, table.rows
    if not any(header) and not rows and not table.problems:
        return [], [Skipped(label, "is empty — the file was left out; delete it, or save "
                            "the review sheet into it again", 1)], {}
    keys = [column_key(h) for h in header]
    if twice := repeated_column(keys):
        return [], [Skipped(label, f"has {twice} — the file was left out (which one holds "
                            "the decisions is unclear); delete or rename the others", 1)], {}
    columns = set(keys)
    missing = [c for c in ("segment_id", "codes", "coder") if c not in columns]
    if missing:
        found = ", ".join(repr(h.strip()) for h in header if h.strip()) or "none"
        return [], [Skipped(label, f"has no {' or '.join(repr(m) for m in missing)} column "
                            f"(its columns: {found}) — the file was left out; a review file "
                            "needs segment_id, codes and coder columns: rename the column "
                            "that holds each", 1)], {}
    reviews: list[Review] = []
    problems = [Skipped(label, p.reason(), p.row) for p in table.problems]
    left_out: dict[tuple[str, str], bool] = {}
    long_rows = {row: readings for row, *readings in table.long_rows}
    for row, record in sorted([*rows, *((row, {}) for row in long_rows)], key=lambda r: r[0]):
        if row in long_rows:  # a later decision that cannot be read: withdraws the earlier
            readings = long_rows[row]  # the cells matched to the columns from either end
            for segment_id in {r.get("segment_id", "").strip() for r in readings} - {""}:
                for coder in {coders.known(r.get("coder", "").strip()) for r in readings}:
                    if coder:
                        left_out[(segment_id, coder)] = True
            continue
        segment_id = record.get("segment_id", "").strip()
        coder = record.get("coder", "").strip()
        if coder:
            coder, note = coders.name(coder, label, row)
            if note:
                problems.append(note)
        codes, unknown = resolve_codes(record.get("codes", ""), code_ids, names or ())
        found = _row_problems(segment_id, coder, unknown, code_ids, names)
        problems.extend(Skipped(label, reason, row) for reason in found)
        if segment_id and coder:
            left_out[(segment_id, coder)] = bool(found)
        if found:
            continue
        reviews.append(Review(segment_id, codes, coder, label, row,
                              memo=record.get("memo", ""), sheet=record.get("sheet", ""),
                              text_sha256=record.get("text_sha256", "").strip()))
    problems.sort(key=lambda p: p.line or 0)  # in row order (stable: a row's in turn)
    return reviews, problems, left_out


def read_review_file(path: Path, code_ids: Sequence[str], label: str | None = None
                     ) -> tuple[list[Review], list[Skipped]]:
    """Usable rows of one review file, and problems (``label`` names it; default its name)."""
    path = Path(path)
    reviews, problems, _ = _read_file(path, code_ids, label or path.name, _Coders())
    return reviews, problems


def _unreadable(label: str, err: OSError) -> Skipped:
    """The problem of a review file or folder that the system does not let us read."""
    why = err.strerror or type(err).__name__
    return Skipped(label, f"cannot be read ({why}) — its decisions were not used; give "
                   "yourself permission to read it (or close the program that locks it) "
                   "and run again")


# Spreadsheets in the reviews folder are not read (they are imported), but reported.
_SHEET_SUFFIXES = (".xlsx", ".xls", ".ods", ".tsv")


def _review_files(source: str | Path | Sequence[str | Path]
                  ) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """The files to read, each with its label (``<folder name>/<file>`` for a folder's),
    and the problem of a folder that cannot be read."""
    if not isinstance(source, str | Path):
        return [(Path(p), str(p)) for p in source], []
    path = Path(source)
    try:
        if path.is_file():
            return [(path, str(path))], []
        if not path.is_dir():
            return [], []
        folder = path.resolve().name
        return [(p, f"{folder}/{p.name}") for p in sorted(path.iterdir())
                if p.suffix.lower() in (".csv", ".txt", *_SHEET_SUFFIXES) and p.is_file()
                and not p.name.startswith((".", "~$"))], []
    except OSError as err:
        return [], [_unreadable(str(path), err)]


def _has_review_header(data: bytes) -> bool:
    """Whether text's first line names a ``segment_id`` column (``,`` ``;`` or tab)."""
    try:
        text, _ = decode_bytes(data)
    except DecodeError:
        return False
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return any("segment_id" in {column_key(c.strip().strip('"')) for c in first.split(d)}
               for d in (",", ";", "\t"))


def load_reviews(source: str | Path | Sequence[str | Path], code_ids: Sequence[str],
                 names: Mapping[str, str] | None = None) -> ReviewSet:
    """All review files (``*.csv``) of a folder in file-name order, or the given file(s);
    ``names`` (``Codebook.ids_by_name``) lets a problem name a code typed by its name.

    A missing folder is no reviews; a named file that does not exist is a problem, and so
    are a file or folder that cannot be read and a spreadsheet in the folder (review
    sheets are imported, not read). Problems name a folder's files ``<folder name>/<file>``
    (``reviews/anna.csv`` in a corpus).
    """
    digest = hashlib.sha256()
    reviews: list[Review] = []
    left_out: dict[tuple[str, str], bool] = {}
    coders = _Coders()
    files, problems = _review_files(source)
    for path, label in files:
        missing = Skipped(str(path), "does not exist — check the path")
        if path.suffix.lower() in _SHEET_SUFFIXES:  # a review sheet saved into the folder
            problems.append(missing if not os.path.lexists(path) else Skipped(
                label, "is not a review file (.csv) and was not read — import a review "
                "sheet with `qualcode review import FILE`, which checks it and adds its "
                "decisions here"))
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            problems.append(missing)
            continue
        except OSError as err:  # no permission, a folder named *.csv, a locked file
            problems.append(_unreadable(label, err))
            continue
        if path.suffix.lower() == ".txt":  # notes are fine; Excel's "Unicode Text" is not
            if _has_review_header(data):
                problems.append(Skipped(label, "is a review file saved as text (.txt) and was "
                                        "not read — save it as CSV (.csv) in this folder, or "
                                        "import it with `qualcode review import FILE`"))
            continue
        digest.update(path.name.encode() + b"\0" + data)
        found, bad, last = _read_file(path, code_ids, label, coders, data, names)
        reviews.extend(found)
        problems.extend(bad)
        left_out.update(last)
    undecided = frozenset(key for key, out in left_out.items() if out)
    return ReviewSet(reviews, problems, digest.hexdigest(), undecided)


def coder_file(folder: str | Path, coder: str) -> Path:
    """``<folder>/<coder>.csv``, with characters a file name cannot hold replaced by ``_``."""
    stem = _FILE_NAME_UNSAFE.sub("_", coder.strip()).strip("._") or "coder"
    return Path(folder) / f"{stem}.csv"


def _existing_file(path: Path) -> Path:
    """``path``, or the review file beside it named so in other case (``coder_c.csv`` for
    ``Coder_C.csv``): one coder's decisions stay in one file, in the order they were made
    (files are read in name order)."""
    if path.exists() or not path.parent.is_dir():
        return path
    stem = path.stem.casefold()
    return next((p for p in sorted(path.parent.iterdir())
                 if p.suffix.lower() == ".csv" and p.stem.casefold() == stem), path)


def append_reviews(folder: str | Path, rows: Sequence[Mapping[str, object]]) -> list[Path]:
    """Append decisions to ``<folder>/<coder>.csv``, one file per coder (a coder's file
    named in other case included); return the files.

    Each row maps :data:`REVIEW_FILE_COLUMNS` (``codes`` a string or a set of ids) to values.
    A file is rewritten atomically with all its old rows, unchanged and in order, followed by
    the new ones; columns it lacks are added at the end. Cells are written formula-safe.
    Raises :class:`DecodeError` when an existing file cannot be read (it is not touched).
    """
    by_file: dict[Path, list[Mapping[str, object]]] = {}
    files: dict[str, Path] = {}  # coder -> file
    for row in rows:
        coder = str(row["coder"])
        if coder not in files:
            files[coder] = _existing_file(coder_file(folder, coder))
        by_file.setdefault(files[coder], []).append(row)
    for path, new in by_file.items():
        header: list[str] = []
        old: list[list[str]] = []
        if path.exists():
            text, _ = decode_bytes(path.read_bytes())
            records, broken, _ = _csv_records(text)
            if broken:  # rewriting would make the damage permanent
                raise DecodeError(f"its row {broken[0].row} cannot be read: "
                                  f"{broken[0].what}", broken[0].row)
            if records:
                header, old = records[0][1], [cells for _, cells in records[1:]]
        # columns as reading names them ('Segment ID' is segment_id): a second segment_id
        # column would make the whole file unreadable
        keys = [column_key(h) for h in header]
        header = header + [c for c in REVIEW_FILE_COLUMNS if c not in keys]
        lower = [*keys, *header[len(keys):]]
        lines = [[*r, *[""] * (len(header) - len(r))] for r in old]
        for row in new:
            values = dict(row)
            codes = values.get("codes", "")
            if not isinstance(codes, str):
                codes = CODE_SEPARATOR.join(sorted(codes))  # type: ignore[call-overload]
            values["codes"] = codes
            lines.append([formula_safe(values.get(c, "")) for c in lower])
        atomic_write_text(path, csv_text(header, lines), CSV_ENCODING)
    return list(by_file)
