"""``corpus/manifest.csv``: metadata per file (``file``) or per document (``doc_id``)."""

from __future__ import annotations

import csv
import difflib
import errno
import hashlib
import io
import os
import posixpath
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..documents import EXCERPT, Document, Skipped
from .columns import _HEADER_ROWS, FILE_COLUMNS, _column_letter, column_key
from .decode import DecodeError, decode
from .readers import metadata_note
from .tables import _SEP_HINT, _sniff_delimiter

MANIFEST_NAME = "manifest.csv"
_KEYS = ("file", "doc_id")
_SUGGESTED = 20  # unmatched doc_id rows that get a "did you mean" (each scans every id)


@dataclass(slots=True)
class Manifest:
    by_file: dict[str, dict[str, str]] = field(default_factory=dict)
    by_doc_id: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[Skipped] = field(default_factory=list)
    sha256: str | None = None
    columns: list[str] = field(default_factory=list)
    doc_id_rows: dict[str, int] = field(default_factory=dict)  # doc_id -> its row number
    file_rows: dict[str, int] = field(default_factory=dict)  # file -> its row number
    spellings: dict[str, str] = field(default_factory=dict)  # casefolded column -> column


def normalise_path(value: str) -> str:
    """A manifest path as a POSIX path relative to the corpus (``./`` and ``\\`` tolerated)."""
    path = value.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _inside(root: Path, relative: str) -> bool:
    """Whether ``relative`` leads into ``root`` (the resolved corpus folder)."""
    if PurePosixPath(relative).is_absolute() or (len(relative) > 1 and relative[1] == ":"):
        return False
    return (root / relative).resolve().is_relative_to(root)


# Other names researchers give the two key columns (compared as :func:`column_key` gives them).
_KEY_NAMES = {**dict.fromkeys(FILE_COLUMNS, "file"), "doc_id": "doc_id",
              "document_id": "doc_id", "documentid": "doc_id"}


def _key(header: str) -> str:
    """``file`` or ``doc_id`` for a header naming one (``File name``, ``Doc ID``), else the
    header as written."""
    name = header.strip()
    return _KEY_NAMES.get(column_key(name), name)


@dataclass(slots=True)
class _Table:
    """The manifest's header row and the rows below it, with their lines in the file."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]  # each row's first line in the file
    header_line: int = 1
    title_line: int | None = None  # the first line of rows above the header (a title)


def _has_key(cells: list[str]) -> bool:
    return any(_key(name) in _KEYS for name in cells)


def _rows(text: str) -> _Table:
    """The manifest's header and rows, split at the delimiter Excel's ``sep=X`` first line
    names, else at the one (``,``, ``;`` or tab) that gives one of the top rows a 'file' or
    'doc_id' cell, else at the one the CSV sniffer finds. The header is that row (rows
    above it, a title, are passed over); none: the first row."""
    lines = text.replace("\r\n", "\n").split("\n")
    hint = _SEP_HINT.fullmatch(lines[0])
    skip = 1 if hint else 0
    body = "\n".join(lines[skip:])
    sniffed = _sniff_delimiter(body[:8192])
    delimiters = (hint.group(1),) if hint else tuple(dict.fromkeys((sniffed, ",", ";", "\t")))
    for delimiter in delimiters:
        reader = csv.reader(io.StringIO(body), delimiter=delimiter)
        try:
            for above, cells in zip(range(_HEADER_ROWS), reader, strict=False):
                if _has_key(cells):
                    return _read_rows(body, delimiter, skip, above)
        except csv.Error:  # not this delimiter's table
            pass
    return _read_rows(body, delimiters[0], skip, 0)


def _read_rows(body: str, delimiter: str, skip: int, above: int) -> _Table:
    """The table in ``body`` (the file below its ``skip`` lines) whose header is row
    ``above`` (0-based; the rows over it are titles), with each row's line in the file."""
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []
    first = 0
    for cells in reader:
        rows.append(cells)
        lines.append(skip + first + 1)
        first = reader.line_num
    if len(rows) <= above:
        return _Table([], [], [])
    return _Table(rows[above], rows[above + 1:], lines[above + 1:], lines[above],
                  lines[0] if above else None)


def _used_columns(
    header: list[str], rows: list[list[str]], line: int
) -> tuple[dict[int, str], list[Skipped]]:
    """The columns read (index -> name) and the problems of the others: a column without a
    header that holds values, and the second of two columns with one name (``line``: the
    header's)."""
    used: dict[int, str] = {}
    problems: list[Skipped] = []
    for index, name in enumerate(_key(h) for h in header):
        letter = _column_letter(index)
        if not name:
            if any(index < len(row) and row[index].strip() for row in rows):
                problems.append(Skipped(
                    MANIFEST_NAME, f"column {letter} has values but no header; they were "
                    "ignored — give the column a name in the header row, or delete it", line))
            continue
        first = next((i for i, n in used.items() if n.casefold() == name.casefold()), None)
        if first is None:
            used[index] = name
        else:
            problems.append(_twice(used[first], name, _column_letter(first), letter, line))
    return used, problems


def _twice(first: str, name: str, first_letter: str, letter: str, line: int) -> Skipped:
    """Column ``name`` repeats column ``first`` (names compared ignoring case)."""
    spelled = f", spelled '{first}' and '{name}'" if first != name else ""
    return Skipped(
        MANIFEST_NAME, f"column '{first}' appears twice (columns {first_letter} and "
        f"{letter}{spelled}); column {letter} was ignored — delete or rename one of them", line)


def _extra_cells(row: list[str], width: int, row_number: int) -> Skipped | None:
    extra = [_column_letter(i) for i in range(width, len(row)) if row[i].strip()]
    if not extra:
        return None
    where = f"columns {', '.join(extra)}" if len(extra) > 1 else f"column {extra[0]}"
    return Skipped(
        MANIFEST_NAME, f"row has values past the last column with a header ({where}); they "
        "were ignored — add a header for them in the header row, or delete them", row_number)


def load_manifest(corpus: Path) -> Manifest:
    """Read the manifest if there is one; every bad row becomes a problem, never an error."""
    path = corpus / MANIFEST_NAME
    if not path.is_file():
        if path.is_symlink() or path.exists():  # a broken link, a folder
            return Manifest(problems=[Skipped(MANIFEST_NAME, (
                f"is {_what(path)}, not a file that can be read; the files were read without "
                "their metadata — put the manifest file itself here"))])
        return Manifest()
    try:
        data = path.read_bytes()
    except OSError as err:
        return Manifest(problems=[Skipped(MANIFEST_NAME, (
            f"cannot be read ({err.strerror}); the files were read without their metadata "
            "— check that you may read it (and that no other program locks it)"))])
    manifest = Manifest(sha256=hashlib.sha256(data).hexdigest())
    try:
        decoded = decode(data)
    except DecodeError as err:
        manifest.problems.append(Skipped(MANIFEST_NAME, err.reason, err.line))
        return manifest
    notes = [Skipped(MANIFEST_NAME, reason, line, note=True) for line, reason in decoded.notes()]
    manifest.problems.extend(notes)
    table = _rows(decoded.text)
    header, rows = table.header, table.rows
    columns = [c.strip() for c in header]
    manifest.columns = columns
    if not any(columns) and not any(any(c.strip() for c in row) for row in rows):
        manifest.problems.append(Skipped(MANIFEST_NAME, (
            "is empty; the files were read without metadata — write a header row ('file,"
            "doc_id,case,date,...') and a row per file, or delete the file")))
        return manifest
    if not any(_key(c) in _KEYS for c in columns):
        manifest.problems.append(
            Skipped(
                MANIFEST_NAME,
                f"has neither a 'file' nor a 'doc_id' column (columns: {', '.join(columns)}) "
                "— add a 'file' column with paths relative to the corpus folder",
                1,
            )
        )
        return manifest
    used, manifest.problems = _used_columns(header, rows, table.header_line)
    if table.title_line:
        notes.append(_title_note(table.title_line, table.header_line))
    manifest.problems[:0] = notes
    manifest.spellings = {name.casefold(): name for name in used.values()}
    listings = _Listings(corpus)
    for row_number, cells in zip(table.lines, rows, strict=True):
        extra = _extra_cells(cells, len(header), row_number)
        if extra:
            manifest.problems.append(extra)
        row = {name: cells[i].strip() if i < len(cells) else "" for i, name in used.items()}
        _add_row(manifest, corpus, row, row_number, listings)
    return manifest


def _what(path: Path) -> str:
    """What a path that is no file to read is: a folder, a broken link ..."""
    if path.is_dir():
        return "a folder"
    try:
        path.resolve(strict=True)
    except FileNotFoundError:
        return "a broken link"
    except (OSError, RuntimeError) as err:  # RuntimeError: a loop of links (Python < 3.13)
        if isinstance(err, OSError) and err.errno != errno.ELOOP:
            return f"a link that cannot be followed ({err.strerror})"
        return "a broken link that leads back to itself (a loop)"
    return "a pipe, socket or device"  # reading it could hang


def _title_note(first: int, header: int) -> Skipped:
    """The note that lines ``first``..``header - 1`` above the header were passed over."""
    one = first == header - 1
    lines = f"line {first} was" if one else f"lines {first}–{header - 1} were"
    it, holds = ("it", "holds") if one else ("them", "hold")
    return Skipped(
        MANIFEST_NAME, f"{lines} read as a title above the header (line {header}, the first "
        f"row with a 'file' or 'doc_id' cell) and passed over — nothing to do, unless "
        f"{'it' if one else 'they'} {holds} a file's metadata: then move {it} below the "
        "header", first, note=True)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


class _Listings:
    """Corpus folders' names, each folder listed once: looked up as typed or in Unicode NFC
    (macOS stores ``é`` decomposed, NFD; a manifest typed elsewhere has it composed), and,
    to suggest a fix, ignoring case."""

    def __init__(self, corpus: Path) -> None:
        self.corpus = corpus
        self.root = corpus.resolve()
        self._names: dict[str, dict[str, str]] = {}  # folder (a str: cheaper than a Path)
        self._folded: dict[str, dict[str, str]] = {}

    def name(self, folder: str, part: str, fold: bool = False) -> str | None:
        """The name in ``folder`` that ``part`` spells, as on disk (``fold``: in any case)."""
        if folder not in self._names:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            listing = {_nfc(name): name for name in reversed(names)}
            self._names[folder] = listing | {name: name for name in names}
        listing = self._names[folder]
        found = listing.get(part) or listing.get(_nfc(part))
        if found or not fold:
            return found
        if folder not in self._folded:
            self._folded[folder] = {}
            for name in sorted(set(listing.values())):
                self._folded[folder].setdefault(_nfc(name).casefold(), name)
        return self._folded[folder].get(_nfc(part).casefold())

    def file(self, parts: list[str], fold: bool = False) -> str | None:
        """The corpus file at ``parts`` (names below the corpus), spelled as on disk (as
        discovered), or None."""
        folder, spelled = str(self.corpus), []
        for part in parts:
            name = self.name(folder, part, fold)
            if name is None:
                return None
            folder = os.path.join(folder, name)
            spelled.append(name)
        return "/".join(spelled) if spelled and os.path.isfile(folder) else None

    def near(self, parts: list[str]) -> str | None:
        """The corpus file a path that names none probably means: the same in other case,
        or without the folders up to the corpus folder's own name (``corpus/a.txt``)."""
        if ".." in parts:
            return None
        names = {self.corpus.name.casefold(), self.root.name.casefold(), "corpus"}
        starts = [0, *(i + 1 for i, part in enumerate(parts[:-1]) if part.casefold() in names)]
        for start in reversed(starts):
            found = self.file(parts[start:], fold=True)
            if found:
                return found
        return None


def _relative(corpus: Path, file: str) -> str:
    """``file`` (a manifest path) relative to the corpus: as it is, or, for an absolute path
    that leads into the corpus folder, the part below it."""
    path = Path(file)
    if not path.is_absolute():
        return file
    for root, target in ((Path(os.path.abspath(corpus)), Path(os.path.normpath(path))),
                         (corpus.resolve(), path.resolve())):  # a link in the path
        if target.is_relative_to(root) and target != root:
            return target.relative_to(root).as_posix()
    return file


def _add_row(
    manifest: Manifest, corpus: Path, row: dict[str, str], row_number: int,
    listings: _Listings,
) -> None:
    file = normalise_path(row.pop("file", ""))
    meta = {k: v for k, v in row.items() if v}
    if not file and not meta.get("doc_id"):
        if meta:
            manifest.problems.append(
                Skipped(MANIFEST_NAME, "row names neither a file nor a doc_id — fill in "
                        "'file' (or 'doc_id') or delete the row", row_number)
            )
        return
    if file:
        _add_file_row(manifest, corpus, file, meta, row_number, listings)
    elif meta["doc_id"] in manifest.by_doc_id:
        manifest.problems.append(
            Skipped(MANIFEST_NAME, f"doc_id '{meta['doc_id']}' is listed twice; this row "
                    "was ignored — merge the two rows", row_number)
        )
    else:
        manifest.by_doc_id[meta["doc_id"]] = meta
        manifest.doc_id_rows[meta["doc_id"]] = row_number
        _value_notes(manifest, meta, row_number)


def _value_notes(manifest: Manifest, meta: dict[str, str], row_number: int) -> None:
    """Notes on a row's values that look mistyped (a misspelt source_type, a date that is
    none): used as written, but worth a look."""
    for name, value in meta.items():
        note = metadata_note(name, value)
        if note:
            manifest.problems.append(Skipped(MANIFEST_NAME, note, row_number, note=True))


def _add_file_row(
    manifest: Manifest, corpus: Path, file: str, meta: dict[str, str], row_number: int,
    listings: _Listings,
) -> None:
    """Add a row naming ``file``, keyed by the file's path as spelled on disk."""
    try:
        relative = _relative(corpus, file)
        inside = _inside(listings.root, relative)
    except (OSError, RuntimeError) as err:  # RuntimeError: a loop of links (Python < 3.13)
        if isinstance(err, OSError) and err.errno != errno.ELOOP:
            problem = f"is a link that cannot be followed ({err.strerror})"
        else:
            problem = "is a broken link (a loop: it leads back to itself)"
        manifest.problems.append(Skipped(MANIFEST_NAME, (
            f"file '{file}' {problem}; this row was not applied — point the row at the file "
            "itself, and replace the link with that file"), row_number))
        return
    # ``a/../b.txt`` is ``b.txt``: the path the corpus file is discovered by
    parts = posixpath.normpath(relative).split("/") if inside else relative.split("/")
    real = listings.file(parts) if inside else None
    if real is None:
        near = listings.near([p for p in parts if p not in ("", ".")])
        hint = f"did you mean '{near}'? " if near else ""
        if not inside:
            problem = (f"file '{file}' is outside the corpus folder and was not read — "
                       f"{hint}{'Give' if near else 'give'} a path relative to the corpus "
                       "folder")
        elif (listings.root / posixpath.normpath(relative)).is_dir():
            problem = (f"file '{file}' is a folder, not a file; this row was not applied — "
                       "give each of its files a row of its own (its path, such as "
                       f"'{posixpath.normpath(relative)}/interview_01.txt'), or delete the row")
        else:
            problem = (f"file '{file}' does not exist — {hint}{'Fix' if near else 'fix'} the "
                       "path (relative to the corpus folder) or delete the row")
    elif real in manifest.by_file:
        problem = f"file '{file}' is listed twice; this row was ignored — merge the two rows"
    else:
        manifest.by_file[real] = meta
        manifest.file_rows[real] = row_number
        _value_notes(manifest, meta, row_number)
        return
    manifest.problems.append(Skipped(MANIFEST_NAME, problem, row_number))


def _id_key(doc_id: str) -> str:
    """A doc_id without case and punctuation, to suggest the id a row may have meant."""
    return re.sub(r"[\W_]+", "", doc_id.casefold())


def unmatched_doc_ids(manifest: Manifest, documents: Iterable[Document]) -> list[Skipped]:
    """The manifest's doc_ids that ``documents`` (every document of the corpus) do not
    take, in row order: a problem for each row keyed by a doc_id no document has (its
    metadata was applied to nothing), a note for each row giving a doc_id to a file read
    as an excerpt table (a table read as one transcript takes it, as a .txt file does)."""
    documents = list(documents)
    known = {doc.doc_id for doc in documents}
    missing = sorted((row, doc_id) for doc_id, row in manifest.doc_id_rows.items()
                     if doc_id not in known)
    keys: dict[str, str] = {}
    for doc_id in sorted(known) if missing else []:
        keys.setdefault(_id_key(doc_id), doc_id)
    problems = []
    for number, (row, doc_id) in enumerate(missing):
        near = _suggestion(doc_id, keys) if number < _SUGGESTED else None
        hint = f"; did you mean '{near}'?" if near else ""
        problems.append(Skipped(
            MANIFEST_NAME, f"doc_id '{doc_id}' matches no document — fix the doc_id (ids "
            f"are case-sensitive{hint}) or delete the row", row))
    return sorted(_table_doc_ids(manifest, documents) + problems, key=lambda p: p.line or 0)


def _table_doc_ids(manifest: Manifest, documents: list[Document]) -> list[Skipped]:
    """A note for each row giving a doc_id to a file that was read as an excerpt table
    (decided by what the reader returned: the file's extension does not tell)."""
    tables = {doc.path for doc in documents if doc.layout == EXCERPT}
    return [Skipped(
        MANIFEST_NAME, f"gives a doc_id ('{manifest.by_file[path]['doc_id']}') for {path}, an "
        "excerpt table, whose rows take their ids from its id column — the doc_id was not "
        "used; remove it (the row's other metadata applies to every excerpt)", row, note=True)
        for path, row in manifest.file_rows.items()
        if path in tables and manifest.by_file[path].get("doc_id")]


def _suggestion(doc_id: str, keys: dict[str, str]) -> str | None:
    """The document id ``doc_id`` was probably meant to be: the same but for case and
    punctuation, else a close spelling (``keys``: ``_id_key`` -> id)."""
    key = _id_key(doc_id)
    close = [key] if key in keys else difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    return keys[close[0]] if close else None
