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
    reader = csv.DictReader(io.StringIO(text.replace("\r\n", "\n")))
    columns = [c.strip() for c in reader.fieldnames or []]
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
    for row_number, record in enumerate(reader, start=2):
        row = {
            (k or "").strip(): (v or "").strip() if isinstance(v, str) else ""
            for k, v in record.items()
        }
        row = {("file" if k.lower() == "file" else "doc_id" if k.lower() == "doc_id" else k): v
               for k, v in row.items() if k}
        file = normalise_path(row.pop("file", ""))
        meta = {k: v for k, v in row.items() if v}
        if not file and not meta.get("doc_id"):
            if meta:
                manifest.problems.append(
                    Skipped(MANIFEST_NAME, "row names neither a file nor a doc_id — fill in "
                            "'file' (or 'doc_id') or delete the row", row_number)
                )
            continue
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
    return manifest
