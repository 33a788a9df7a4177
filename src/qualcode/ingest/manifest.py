"""``corpus/manifest.csv``: metadata per file (``file``) or per document (``doc_id``)."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..documents import Skipped
from .decode import DecodeError, decode_bytes

MANIFEST_NAME = "manifest.csv"


@dataclass(slots=True)
class Manifest:
    by_file: dict[str, dict[str, str]] = field(default_factory=dict)
    by_doc_id: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[Skipped] = field(default_factory=list)
    sha256: str | None = None
    columns: list[str] = field(default_factory=list)


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
    return name.lower() if name.lower() in ("file", "doc_id") else name


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
        first = next((i for i, n in used.items() if n == name), None)
        if first is None:
            used[index] = name
        else:
            problems.append(Skipped(
                MANIFEST_NAME, f"column '{name}' appears twice (columns "
                f"{_column_letter(first)} and {letter}); column {letter} was ignored — "
                "delete or rename one of them", 1))
    return used, problems


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
        text, _ = decode_bytes(data)
    except DecodeError as err:
        manifest.problems.append(Skipped(MANIFEST_NAME, err.reason, err.line))
        return manifest
    header, *rows = list(csv.reader(io.StringIO(text.replace("\r\n", "\n")))) or [[]]
    columns = [c.strip() for c in header]
    manifest.columns = columns
    lower = [c.lower() for c in columns]
    if "file" not in lower and "doc_id" not in lower:
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
    for row_number, cells in enumerate(rows, start=2):
        extra = _extra_cells(cells, len(header), row_number)
        if extra:
            manifest.problems.append(extra)
        row = {name: cells[i].strip() if i < len(cells) else "" for i, name in used.items()}
        _add_row(manifest, corpus, row, row_number)
    return manifest


def _add_row(manifest: Manifest, corpus: Path, row: dict[str, str], row_number: int) -> None:
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
        if not _inside(corpus, file):
            manifest.problems.append(
                Skipped(MANIFEST_NAME, f"file '{file}' is outside the corpus folder and "
                        "was not read — give a path relative to the corpus folder",
                        row_number)
            )
        elif not (corpus / file).is_file():
            manifest.problems.append(
                Skipped(MANIFEST_NAME, f"file '{file}' does not exist — fix the path "
                        "(relative to the corpus folder) or delete the row", row_number)
            )
        elif file in manifest.by_file:
            manifest.problems.append(
                Skipped(MANIFEST_NAME, f"file '{file}' is listed twice; this row was "
                        "ignored — merge the two rows", row_number)
            )
        else:
            manifest.by_file[file] = meta
    elif meta["doc_id"] in manifest.by_doc_id:
        manifest.problems.append(
            Skipped(MANIFEST_NAME, f"doc_id '{meta['doc_id']}' is listed twice; this row "
                    "was ignored — merge the two rows", row_number)
        )
    else:
        manifest.by_doc_id[meta["doc_id"]] = meta
