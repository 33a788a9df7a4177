"""``corpus/manifest.csv``: metadata per file (``file``) or per document (``doc_id``)."""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..documents import Skipped
from .decode import DecodeError, decode
from .readers import _sniff_delimiter

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
    spellings: dict[str, str] = field(default_factory=dict)  # casefolded column -> column


def normalise_path(value: str) -> str:
    """A manifest path as a POSIX path relative to the corpus (``./`` and ``\\`` tolerated)."""
    path = value.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _inside(corpus: Path, relative: str) -> bool:
    if PurePosixPath(relative).is_absolute() or (len(relative) > 1 and relative[1] == ":"):
        return False
    root = corpus.resolve()
    return (root / relative).resolve().is_relative_to(root)


def _column_letter(index: int) -> str:
    """A spreadsheet column letter for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _key(header: str) -> str:
    name = header.strip()
    return name.lower() if name.lower() in _KEYS else name


def _rows(text: str) -> list[list[str]]:
    """The manifest's rows, split at the delimiter (``,``, ``;`` or tab) that gives the
    first row a 'file' or 'doc_id' column; else at the one the CSV sniffer finds."""
    text = text.replace("\r\n", "\n")
    sniffed = _sniff_delimiter(text[:8192])
    for delimiter in dict.fromkeys((sniffed, ",", ";", "\t")):
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        if any(_key(name) in _KEYS for name in header):
            return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    return list(csv.reader(io.StringIO(text), delimiter=sniffed))


def _used_columns(header: list[str], rows: list[list[str]]) -> tuple[dict[int, str], list[Skipped]]:
    """The columns read (index -> name) and the problems of the others: a column without a
    header that holds values, and the second of two columns with one name."""
    used: dict[int, str] = {}
    problems: list[Skipped] = []
    for index, name in enumerate(_key(h) for h in header):
        letter = _column_letter(index)
        if not name:
            if any(index < len(row) and row[index].strip() for row in rows):
                problems.append(Skipped(
                    MANIFEST_NAME, f"column {letter} has values but no header; they were "
                    "ignored — give the column a name in the first row, or delete it", 1))
            continue
        first = next((i for i, n in used.items() if n.casefold() == name.casefold()), None)
        if first is None:
            used[index] = name
        else:
            problems.append(_twice(used[first], name, _column_letter(first), letter))
    return used, problems


def _twice(first: str, name: str, first_letter: str, letter: str) -> Skipped:
    """Column ``name`` repeats column ``first`` (names compared ignoring case)."""
    spelled = f", spelled '{first}' and '{name}'" if first != name else ""
    return Skipped(
        MANIFEST_NAME, f"column '{first}' appears twice (columns {first_letter} and "
        f"{letter}{spelled}); column {letter} was ignored — delete or rename one of them", 1)


def _extra_cells(row: list[str], width: int, row_number: int) -> Skipped | None:
    extra = [_column_letter(i) for i in range(width, len(row)) if row[i].strip()]
    if not extra:
        return None
    where = f"columns {', '.join(extra)}" if len(extra) > 1 else f"column {extra[0]}"
    return Skipped(
        MANIFEST_NAME, f"row has values past the last column with a header ({where}); they "
        "were ignored — add a header for them in the first row, or delete them", row_number)


def load_manifest(corpus: Path) -> Manifest:
    """Read the manifest if there is one; every bad row becomes a problem, never an error."""
    path = corpus / MANIFEST_NAME
    if not path.is_file():
        return Manifest()
    data = path.read_bytes()
    manifest = Manifest(sha256=hashlib.sha256(data).hexdigest())
    try:
        decoded = decode(data)
    except DecodeError as err:
        manifest.problems.append(Skipped(MANIFEST_NAME, err.reason, err.line))
        return manifest
    notes = [Skipped(MANIFEST_NAME, reason, line, note=True) for line, reason in decoded.notes()]
    manifest.problems.extend(notes)
    header, *rows = _rows(decoded.text) or [[]]
    columns = [c.strip() for c in header]
    manifest.columns = columns
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
    used, manifest.problems = _used_columns(header, rows)
    manifest.problems[:0] = notes
    manifest.spellings = {name.casefold(): name for name in used.values()}
    listings: dict[Path, dict[str, str]] = {}
    for row_number, cells in enumerate(rows, start=2):
        extra = _extra_cells(cells, len(header), row_number)
        if extra:
            manifest.problems.append(extra)
        row = {name: cells[i].strip() if i < len(cells) else "" for i, name in used.items()}
        _add_row(manifest, corpus, row, row_number, listings)
    return manifest


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _listing(folder: Path) -> dict[str, str]:
    """The names in ``folder``, looked up by themselves and by their NFC form."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    listing = {_nfc(name): name for name in reversed(names)}
    listing.update((name, name) for name in names)
    return listing


def _on_disk(corpus: Path, relative: str, listings: dict[Path, dict[str, str]]) -> str | None:
    """The corpus file ``relative`` names, spelled as on disk (as discovered), or None.

    Names are compared in Unicode NFC: macOS stores ``é`` decomposed (NFD), a manifest
    typed elsewhere has it composed.
    """
    if relative.isascii():
        return relative if (corpus / relative).is_file() else None
    folder, parts = corpus, []
    for part in relative.split("/"):
        if part not in ("", ".", ".."):
            if folder not in listings:
                listings[folder] = _listing(folder)
            part = listings[folder].get(part) or listings[folder].get(_nfc(part))
            if part is None:
                return None
        folder, parts = folder / part, [*parts, part]
    return "/".join(parts) if folder.is_file() else None


def _add_row(
    manifest: Manifest, corpus: Path, row: dict[str, str], row_number: int,
    listings: dict[Path, dict[str, str]],
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


def _add_file_row(
    manifest: Manifest, corpus: Path, file: str, meta: dict[str, str], row_number: int,
    listings: dict[Path, dict[str, str]],
) -> None:
    """Add a row naming ``file``, keyed by the file's path as spelled on disk."""
    inside = _inside(corpus, file)
    real = _on_disk(corpus, file, listings) if inside else None
    if not inside:
        problem = (f"file '{file}' is outside the corpus folder and was not read — give a "
                   "path relative to the corpus folder")
    elif real is None:
        problem = (f"file '{file}' does not exist — fix the path (relative to the corpus "
                   "folder) or delete the row")
    elif real in manifest.by_file:
        problem = f"file '{file}' is listed twice; this row was ignored — merge the two rows"
    else:
        manifest.by_file[real] = meta
        return
    manifest.problems.append(Skipped(MANIFEST_NAME, problem, row_number))


def _id_key(doc_id: str) -> str:
    """A doc_id without case and punctuation, to suggest the id a row may have meant."""
    return re.sub(r"[\W_]+", "", doc_id.casefold())


def unmatched_doc_ids(manifest: Manifest, doc_ids: Iterable[str]) -> list[Skipped]:
    """A problem for each manifest row keyed by a doc_id that none of ``doc_ids`` (every
    document of the corpus) has: its metadata was applied to nothing."""
    known = set(doc_ids)
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
    return problems


def _suggestion(doc_id: str, keys: dict[str, str]) -> str | None:
    """The document id ``doc_id`` was probably meant to be: the same but for case and
    punctuation, else a close spelling (``keys``: ``_id_key`` -> id)."""
    key = _id_key(doc_id)
    close = [key] if key in keys else difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    return keys[close[0]] if close else None
