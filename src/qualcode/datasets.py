"""Segments (and codings) → the datasets under ``outputs/``, with their provenance."""

from __future__ import annotations

import contextlib
import csv
import functools
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import parallel
from .classify import CodingResult
from .codebook import Codebook
from .corpus import Batch, flat_segments, input_records
from .documents import Segment, Skipped
from .outputs import (
    CODED_SEGMENTS_CSV,
    CODINGS_CSV,
    CSV_ENCODING,
    CSV_LINE_END,
    RUN_MANIFEST,
    SCORES_CSV,
    SEGMENTS_CSV,
    csv_cells,
    csv_join,
    csv_lines,
    segment_rows,
    write_csv_text,
    write_json,
)
from .provenance import run_manifest

CODING_COLUMNS = ("segment_id", "doc_id", "code_id", "category", "score", "method", "evidence")
SCORE_COLUMNS = ("segment_id", "code_id", "score", "threshold", "decision")


def _score(value: float) -> str:
    return f"{value:.4f}"


def _units_text(key: int) -> str:
    """``_score`` of a value from its key: 2 × (|value| in units of 1e-4) + (1 if negative)."""
    units = key >> 1
    return f"{'-' if key & 1 else ''}{units // 10_000}.{units % 10_000:04d}"


def score_texts(values: np.ndarray) -> np.ndarray:
    """``_score`` of every value, vectorised (an object array of the same shape).

    A value is rounded to 1e-4 with numpy where ``x * 1e4`` is safely away from a tie; the
    few others (ties, near-ties, inf, nan, huge values) are formatted one by one.
    """
    x = np.asarray(values, dtype=float)
    flat = x.ravel()
    scaled = np.abs(flat) * 1e4
    with np.errstate(invalid="ignore"):
        safe = (scaled < 2.0**52) & (
            np.abs(scaled - np.floor(scaled) - 0.5) > 2 * np.spacing(scaled))
    keys = 2 * np.rint(scaled[safe]).astype(np.int64) + np.signbit(flat[safe])
    unique, inverse = np.unique(keys, return_inverse=True)
    texts = np.empty(flat.size, dtype=object)
    texts[safe] = np.array([_units_text(k) for k in unique.tolist()], dtype=object)[inverse]
    texts[~safe] = [_score(v) for v in flat[~safe].tolist()]
    return texts.reshape(x.shape)


def scores_csv(coding: CodingResult, scores: np.ndarray) -> str:
    """``scores.csv`` (a row per segment and code), joined from pre-encoded cells.

    ``scores`` is ``score_texts(coding.scores)``.
    """
    n, k = scores.shape
    thresholds = [_score(t) for t in np.asarray(coding.thresholds, dtype=float).tolist()]
    tails = np.empty((k, 2), dtype=object)  # ",threshold,decision" + line end, by decision
    for flag in (0, 1):
        tails[:, flag] = [f",{t},{flag}{CSV_LINE_END}" for t in thresholds]
    flags = np.asarray(coding.decisions, dtype=bool).astype(np.intp)
    cells = np.empty((n, k, 4), dtype=object)
    cells[:, :, 0] = np.array(csv_cells(coding.segment_ids), dtype=object).reshape(n, 1)
    cells[:, :, 1] = np.array([f",{c}," for c in csv_cells(coding.code_ids)], dtype=object)
    cells[:, :, 2] = scores
    cells[:, :, 3] = tails[np.arange(k), flags]
    return csv_join(SCORE_COLUMNS, []) + "".join(cells.ravel().tolist())


def codings_rows(
    segments: list[Segment], coding: CodingResult, codebook: Codebook, scores: np.ndarray
) -> list[list[Any]]:
    """Rows of ``codings.csv``: one per applied code, segment by segment in code order."""
    category = {c.id: c.category for c in codebook.codes}
    doc_of = {s.segment_id: s.doc_id for s in segments}
    codes = coding.code_ids
    rows = []
    applied_i, applied_j = np.nonzero(coding.decisions)
    for i, j in zip(applied_i.tolist(), applied_j.tolist(), strict=True):
        sid, code = coding.segment_ids[i], codes[j]
        rows.append([sid, doc_of[sid], code, category[code], scores[i, j],
                     coding.methods[i, j], coding.evidence[i].get(code, "")])
    return rows


def coded_segments_csv(
    header: list[str], lines: list[str], segment_ids: list[str], coding: CodingResult
) -> str:
    """``coded_segments.csv``: each ``segments.csv`` line + the applied codes and 0/1 flags.

    ``header`` and ``lines`` are ``segments.csv``'s (``segment_rows``, then ``csv_lines``)
    and ``segment_ids`` the id on each line; the cells appended to a line depend only on
    its row of decisions, so they are encoded once per distinct row.
    """
    codes = coding.code_ids
    k = len(codes)

    @functools.cache
    def tail(key: bytes) -> str:  # key: the row of decisions, a byte per code
        applied = ";".join(c for c, flag in zip(codes, key, strict=True) if flag)
        flags = "".join(",1" if flag else ",0" for flag in key)
        return f",{csv_cells([applied])[0]}{flags}"

    raw = np.ascontiguousarray(coding.decisions, dtype=bool).tobytes()
    key_of = {sid: raw[i * k:(i + 1) * k] for i, sid in enumerate(coding.segment_ids)}
    uncoded = bytes(k)  # all 0
    keys = [key_of.get(sid, uncoded) for sid in segment_ids]
    return csv_join([*header, "codes", *codes],
                    [line + tail(key) for line, key in zip(lines, keys, strict=True)])


def write_wide_csvs(out: str | Path, header: list[str], lines: list[str],
                    segment_ids: list[str], coding: CodingResult) -> dict[str, str]:
    """Write ``coded_segments.csv`` and ``scores.csv`` (a row per segment and code) into
    ``out``; return ``{file name: sha256}``. Runs in a worker process beside the rest."""
    out = Path(out)
    return {
        CODED_SEGMENTS_CSV: write_csv_text(
            out / CODED_SEGMENTS_CSV, coded_segments_csv(header, lines, segment_ids, coding)),
        SCORES_CSV: write_csv_text(out / SCORES_CSV,
                                   scores_csv(coding, score_texts(coding.scores))),
    }


def _scored(coding: CodingResult) -> CodingResult:
    """``coding`` without its evidence and methods (what the wide tables need, to send)."""
    return CodingResult(coding.segment_ids, coding.code_ids, coding.scores,
                        coding.thresholds, coding.decisions, np.empty((0, 0), dtype=object))


def coded_code_ids(out: str | Path) -> list[str] | None:
    """The code ids the outputs in ``out`` were coded with (``coded_segments.csv``'s
    columns after ``codes``); ``None`` when there is no such table."""
    try:
        with (Path(out) / CODED_SEGMENTS_CSV).open(encoding=CSV_ENCODING, newline="") as f:
            header = next(csv.reader(f), [])
    except OSError:
        return None
    return header[header.index("codes") + 1:] if "codes" in header else None


def codebook_mismatch(out: str | Path, codebook: Codebook) -> str | None:
    """Why the outputs in ``out`` cannot be read with ``codebook`` (they were coded with
    other code ids), or ``None``. Edited labels and definitions are fine."""
    coded = coded_code_ids(out)
    if coded is None or set(coded) == set(codebook.code_ids):
        return None
    gone = [c for c in coded if c not in codebook.code_ids]
    new = [c for c in codebook.code_ids if c not in coded]
    listed = "; ".join(part for part in (
        f"coded with {', '.join(gone[:5])}{' ...' if len(gone) > 5 else ''}" if gone else "",
        f"no {', '.join(new[:5])}{' ...' if len(new) > 5 else ''}" if new else "") if part)
    return (f"the outputs in {out} were coded with other code ids than {codebook.path} "
            f"({listed}) — pass the --codebook that run used, or run `qualcode run` with "
            "this codebook first")


def codebook_record(codebook: Codebook) -> dict[str, Any]:
    return {
        "path": str(codebook.path),
        "sha256": codebook.sha256,
        "name": codebook.name,
        "version": codebook.version,
        "codes": len(codebook.code_ids),
    }


def write_datasets(
    out: str | Path,
    batch: Batch,
    *,
    codebook: Codebook,
    run_id: str,
    started: str,
    seconds: float,
    parameters: dict[str, Any],
    model: dict[str, Any] | None = None,
    coding: CodingResult | None = None,
    extra_counts: dict[str, int] | None = None,
    processes: int = 1,
    meanwhile: Callable[[], dict[str, str]] | None = None,
    review_problems: Sequence[Skipped] = (),
    reviewed: Collection[str] = (),
) -> dict[str, Any]:
    """Write the segment and coding tables, then ``run_manifest.json``; return the manifest.

    Each file is replaced atomically, so a crash leaves the previous version intact. With
    ``processes > 1`` the wide tables (``coded_segments.csv``, ``scores.csv``) are written
    in a worker process, while this one writes the rest and then runs ``meanwhile``
    (more outputs, such as the reports, which may read the files and the manifest
    written before; it returns ``{file name: sha256}`` for the manifest). ``reviewed``:
    the ids of the segments a coder's decision codes (``reviewed`` column).
    """
    out = Path(out)
    segments = flat_segments(batch)
    header, rows = segment_rows(segments, codebook.code_ids, reviewed)
    lines = csv_lines(rows)
    wide = None if coding is None else parallel.start(
        write_wide_csvs, str(out), header, lines, [s.segment_id for s in segments],
        _scored(coding), processes=processes)
    try:
        outputs = {SEGMENTS_CSV: write_csv_text(out / SEGMENTS_CSV, csv_join(header, lines))}
        if coding is not None:
            rows = codings_rows(segments, coding, codebook, score_texts(coding.scores))
            outputs[CODINGS_CSV] = write_csv_text(out / CODINGS_CSV,
                                                  csv_join(CODING_COLUMNS, csv_lines(rows)))
        counts = {
            "files": len(batch.files),
            "documents": len(batch.documents),
            "segments": len(segments),
            "codable_segments": sum(s.codable for s in segments),
            "skipped": sum(not s.note for s in batch.skipped),
            "notes": sum(s.note for s in batch.skipped),
            "review_problems": len(review_problems),
            **(extra_counts or {}),
        }
        if coding is not None:
            counts["codings"] = int(coding.decisions.sum())
            counts["coded_segments"] = int(coding.decisions.any(axis=1).sum())
        manifest = run_manifest(
            run_id=run_id,
            started=started,
            seconds=seconds,
            parameters=parameters,
            codebook=codebook_record(codebook),
            model=model,
            inputs=input_records(batch.files),
            counts=counts,
            skipped=batch.skipped,
            outputs=outputs,
            review_problems=review_problems,
        )
        write_json(out / RUN_MANIFEST, manifest)
        later = meanwhile() if meanwhile is not None else {}
        if wide is not None or later:
            manifest["outputs"] = {**outputs, **(wide() if wide is not None else {}), **later}
            write_json(out / RUN_MANIFEST, manifest)
        return manifest
    except BaseException:
        # The worker may still be writing into ``out``: let it finish before the caller
        # cleans up (with one process it has not started, and need not).
        if wide is not None and processes > 1:
            with contextlib.suppress(Exception):
                wide()
        raise
