"""Writing outputs: atomic files (temp file + rename) and the segments table."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .documents import Segment

SEGMENT_COLUMNS = (
    "segment_id", "doc_id", "source_type", "speaker", "turn", "char_start", "char_end", "text",
    "codable",
)
# CSVs carry a UTF-8 byte-order mark so that Excel opens accents and dashes correctly;
# pandas and R's readr strip it.
CSV_ENCODING = "utf-8-sig"


def atomic_write_bytes(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` via a temp file and a rename; return its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> str:
    return atomic_write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, payload: Any) -> str:
    return atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes any \r or \n in a cell
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Write a CSV atomically (UTF-8 with BOM, no index column); return its sha256."""
    return atomic_write_text(path, csv_text(header, rows), CSV_ENCODING)


def metadata_columns(segments: Iterable[Segment]) -> list[str]:
    """Metadata fields in order of first appearance (documents are in path order)."""
    seen: dict[str, None] = {}
    for seg in segments:
        for key in seg.metadata:
            seen.setdefault(key, None)
    return list(seen)


def _column_name(key: str) -> str:
    # A metadata field may not shadow a segment column (e.g. a 'text' column in a table).
    return f"meta_{key}" if key in SEGMENT_COLUMNS or key == "codes" else key


def segment_rows(segments: Sequence[Segment]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``segments.csv`` (contract in the design)."""
    meta = metadata_columns(segments)
    header = [*SEGMENT_COLUMNS, *(_column_name(k) for k in meta)]
    rows = [
        [
            s.segment_id, s.doc_id, s.source_type, s.speaker,
            "" if s.turn is None else s.turn, s.char_start, s.char_end, s.text, s.codable,
            *(s.metadata.get(k, "") for k in meta),
        ]
        for s in segments
    ]
    return header, rows
