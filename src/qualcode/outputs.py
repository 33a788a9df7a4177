"""Writing outputs: atomic files (temp file + rename) and the segments table."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import inspect
import io
import json
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from .documents import Segment

SEGMENT_COLUMNS = (
    "segment_id", "doc_id", "source_type", "speaker", "turn", "char_start", "char_end", "text",
    "codable", "reviewed",
)
# Put before a metadata field's name where it would take another column's (a code id's).
META_PREFIX = "meta_"
# CSVs carry a UTF-8 byte-order mark so that Excel opens accents and dashes correctly;
# pandas and R's readr strip it.
# The files of an outputs folder that several modules read or write (the reports' own
# files are named in report.py).
SEGMENTS_CSV = "segments.csv"
CODINGS_CSV = "codings.csv"
CODED_SEGMENTS_CSV = "coded_segments.csv"
SCORES_CSV = "scores.csv"
RUN_MANIFEST = "run_manifest.json"
EVALUATION_CSV = "evaluation.csv"
RELIABILITY_CSV = "reliability.csv"

CSV_ENCODING = "utf-8-sig"
CSV_LINE_END = "\r\n"


def _read_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere: set and restore once, at import (before any worker threads exist).
    old = os.umask(0o022)
    os.umask(old)
    return old


# Read once: os.umask() is process-global, so calling it per write would race with threads.
UMASK = _read_umask()
PRIVATE_MODE = 0o600


def file_mode(private: bool = False) -> int:
    """The mode of a written file: what ``open(path, "w")`` gives, or 0600 if ``private``."""
    return PRIVATE_MODE if private else 0o666 & ~UMASK


def atomic_write_bytes(path: str | Path, data: bytes, private: bool = False) -> str:
    """Write ``data`` to ``path`` via a temp file and a rename; return its sha256.

    The file gets the mode a plain ``open(path, "w")`` would give (``0o666 & ~umask``),
    not the temp file's 0600; ``private=True`` keeps it readable by the owner only (for
    caches that hold transcript text).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, file_mode(private))
            else:  # Windows: mkstemp's mode bits mean nothing there
                os.chmod(tmp, file_mode(private))
        except OSError:  # a file system without modes (FAT, some shares): write anyway
            pass
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8",
                      private: bool = False) -> str:
    """Write ``text`` like :func:`atomic_write_bytes`. Text that cannot be encoded raises a
    ValueError that names the file and the character, not the text (which
    UnicodeEncodeError carries, into logs and persisted exceptions)."""
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as err:
        line = text.count("\n", 0, err.start) + 1
        problem = (f"cannot write {Path(path).name}: line {line} holds "
                   f"{text[err.start : err.end]!a}, which {encoding} cannot encode ({err.reason})")
    else:
        return atomic_write_bytes(path, data, private=private)
    raise ValueError(problem)  # (out of the except block: the error does not carry the text)


def write_json(path: str | Path, payload: Any, private: bool = False) -> str:
    return atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                             private=private)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=CSV_LINE_END)  # quotes any \r or \n in a cell
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _writer_lines(rows: Iterable[Sequence[Any]]) -> list[str]:
    """Records from csv.writer itself (as in ``csv_text``), without line ends."""
    records: list[str] = []
    # csv.writer hands each finished record to ``write`` in one call.
    csv.writer(SimpleNamespace(write=records.append), lineterminator=CSV_LINE_END).writerows(rows)
    cut = len(CSV_LINE_END)
    return [record[:-cut] for record in records]


def _needs_quotes(text: str) -> bool:
    """Whether csv.writer (default dialect, QUOTE_MINIMAL) quotes this string field."""
    return "," in text or '"' in text or "\n" in text or "\r" in text


def csv_cells(values: Sequence[Any]) -> list[str]:
    """``values`` as csv.writer writes them as fields of a row of two or more fields.

    Strings, ints and bools are encoded here, as csv.writer does: ``str(value)``, quoted
    (quotes doubled) if it holds a comma, quote or line break. Other values (None,
    floats, ...) and NULs are left to csv.writer itself.
    """
    if set(map(type, values)) <= {str, int, bool}:
        texts = list(map(str, values))
        joined = "".join(texts)
        if "\x00" not in joined:
            if not _needs_quotes(joined):  # the usual case for ids and numbers
                return texts
            return ['"' + t.replace('"', '""') + '"'  # _needs_quotes(t), inlined for speed
                    if "," in t or '"' in t or "\n" in t or "\r" in t else t for t in texts]
    # Each value then an empty field: the record is "<cell>,".
    return [line[:-1] for line in _writer_lines([value, ""] for value in values)]


def csv_lines(rows: Sequence[Sequence[Any]]) -> list[str]:
    """Each row as the record ``csv_text`` writes for it, without the line end.

    Rows of one width (two or more fields) are encoded column by column, several times
    faster than csv.writer on long text; others go through csv.writer.
    """
    widths = {len(row) for row in rows}
    if len(widths) != 1 or widths.pop() < 2:  # csv.writer quotes a lone empty field
        return _writer_lines(rows)
    columns = map(csv_cells, zip(*rows, strict=True))
    return list(map(",".join, zip(*columns, strict=True)))


def csv_join(header: Sequence[str], lines: Iterable[str]) -> str:
    """CSV text from a header and ``csv_lines``; the same text as ``csv_text``."""
    return CSV_LINE_END.join([*csv_lines([header]), *lines]) + CSV_LINE_END


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Write a CSV atomically (UTF-8 with BOM, no index column); return its sha256."""
    return write_csv_text(path, csv_text(header, rows))


def write_csv_text(path: str | Path, text: str) -> str:
    """Write CSV text (``csv_text``, ``csv_join``) like ``write_csv``; return its sha256."""
    return atomic_write_text(path, text, CSV_ENCODING)


# How a flag column (``codable``, ``reviewed``, ``decision``) says yes, also after a
# spreadsheet program saved the file.
_TRUE_TEXT = frozenset({"true", "1", "yes", "y", "t"})


def is_true(value: object) -> bool:
    """Whether a flag cell of an output CSV says yes (``True``, ``1``, ``yes`` ...)."""
    return str(value).strip().lower() in _TRUE_TEXT


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """An output CSV's rows, keyed by column name in lower case, every cell as text."""
    with path.open(encoding=CSV_ENCODING, newline="") as handle:
        return [{(k or "").strip().lower(): v or "" for k, v in row.items()}
                for row in csv.DictReader(handle)]


def metadata_columns(segments: Iterable[Segment]) -> list[str]:
    """Metadata fields in order of first appearance (documents are in path order).

    A ``source_type`` given in the manifest or front matter is not one: it is the
    segment's ``source_type`` column already (a ``meta_source_type`` copy would be empty
    for the documents that did not set it)."""
    seen: dict[str, Any] = {}
    for seg in segments:
        seen.update(seg.metadata)  # an existing key keeps its place
    seen.pop("source_type", None)
    return list(seen)


def _column_names(keys: Sequence[str], reserved: Collection[str]) -> list[str]:
    # A metadata field may not shadow a segment column (e.g. a 'text' column in a table)
    # nor a column coded_segments.csv adds (``codes`` and the code ids), nor another field
    # (``text`` and ``meta_text`` both in one front matter).
    taken = {*SEGMENT_COLUMNS, "codes", *reserved, *keys}
    names = []
    for key in keys:
        name = key
        if key in SEGMENT_COLUMNS or key == "codes" or key in reserved:
            name = f"{META_PREFIX}{key}"
            while name in taken:
                name = f"{META_PREFIX}{name}"
            taken.add(name)
        names.append(name)
    return names


def segment_rows(segments: Sequence[Segment], reserved: Collection[str] = (),
                 reviewed: Collection[str] = ()) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``segments.csv`` (contract in the design); a metadata field
    named like a segment column or one of ``reserved`` (the code ids) gets ``meta_``.
    ``reviewed``: the ids of the segments whose codes are a coder's decision (only a
    codable segment's counts)."""
    meta = metadata_columns(segments)
    header = [*SEGMENT_COLUMNS, *_column_names(meta, reserved)]
    blanks = [""] * len(meta)
    rows = [
        [
            s.segment_id, s.doc_id, s.source_type, s.speaker,
            "" if s.turn is None else s.turn, s.char_start, s.char_end, s.text, s.codable,
            s.codable and s.segment_id in reviewed, *map(s.metadata.get, meta, blanks),
        ]
        for s in segments
    ]
    return header, rows


T = TypeVar("T")


class OutputsBusy(RuntimeError):
    """Another run is writing the same outputs folder."""


# Folder locks this process holds (real path -> descriptor): a run started inside another
# that holds the lock (the CLI holds it around its flow) goes on. A forked worker process
# would otherwise share them and keep them held after the run (the workers outlive it): it
# closes its copies.
_HELD: dict[str, int] = {}


def _close_held() -> None:
    for fd in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held)


@contextlib.contextmanager
def outputs_lock(out: str | Path) -> Iterator[None]:
    """Hold a lock on the ``out`` folder (created when missing); raise :class:`OutputsBusy`
    at once when another process holds it. Re-entrant within a process. (The folder itself
    is locked, so nothing is added to it; no lock without ``fcntl``, on Windows, or on a
    file system without locks.)"""
    key = os.path.realpath(out)
    if key in _HELD:
        yield
        return
    try:
        import fcntl

        os.makedirs(out, exist_ok=True)  # two first runs into one folder lock each other
        folder = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (ImportError, OSError):  # Windows; cannot be created (the run reports it)
        folder = None
    if folder is None:
        # outside the except block: a failure in the body is not chained to the missing folder
        yield
        return
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputsBusy(
                f"another qualcode run is writing to '{out}' — wait until it has "
                "finished, or choose another --out") from None
        except OSError:  # a file system without locks (some network shares): run
            pass
        _HELD[key] = folder
        yield
    finally:
        if _HELD.get(key) == folder:
            del _HELD[key]
        os.close(folder)


def exclusive_outputs(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` (which takes an ``out`` folder) run holding :func:`outputs_lock` on that
    folder: two runs that write the same outputs at once would mix them."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def locked(*args: Any, **kwargs: Any) -> T:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        with outputs_lock(bound.arguments["out"]):
            return fn(*args, **kwargs)

    return locked

