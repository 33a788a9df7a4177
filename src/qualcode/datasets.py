"""Segments (and codings) → the datasets under ``outputs/``, with their provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .classify import CodingResult
from .codebook import Codebook
from .corpus import Batch, flat_segments, input_records
from .documents import Segment
from .outputs import segment_rows, write_csv, write_json
from .provenance import run_manifest

SEGMENTS_CSV = "segments.csv"
CODINGS_CSV = "codings.csv"
CODED_SEGMENTS_CSV = "coded_segments.csv"
SCORES_CSV = "scores.csv"
RUN_MANIFEST = "run_manifest.json"
CODING_COLUMNS = ("segment_id", "doc_id", "code_id", "category", "score", "method", "evidence")
SCORE_COLUMNS = ("segment_id", "code_id", "score", "threshold", "decision")


def _score(value: float) -> str:
    return f"{value:.4f}"


def coding_tables(
    segments: list[Segment], coding: CodingResult, codebook: Codebook
) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """``codings.csv`` (long), ``coded_segments.csv`` (wide) and ``scores.csv`` tables."""
    category = {c.id: c.category for c in codebook.codes}
    doc_of = {s.segment_id: s.doc_id for s in segments}
    row_of = {sid: i for i, sid in enumerate(coding.segment_ids)}
    codes = coding.code_ids
    thresholds = [_score(t) for t in np.asarray(coding.thresholds, dtype=float).tolist()]
    decisions = coding.decisions.astype(int).tolist()
    codings, scores = [], []
    for i, (sid, row, flags) in enumerate(zip(coding.segment_ids, coding.scores.tolist(),
                                              decisions, strict=True)):
        texts = [_score(v) for v in row]
        scores.extend([sid, code, text, threshold, flag] for code, text, threshold, flag
                      in zip(codes, texts, thresholds, flags, strict=True))
        for j in (j for j, flag in enumerate(flags) if flag):
            codings.append([sid, doc_of[sid], codes[j], category[codes[j]], texts[j],
                            coding.methods[i, j], coding.evidence[i].get(codes[j], "")])
    header, rows = segment_rows(segments)
    wide = []
    for seg, row in zip(segments, rows, strict=True):
        i = row_of.get(seg.segment_id)
        flags = decisions[i] if i is not None else [0] * len(codes)
        applied = ";".join(c for c, f in zip(codes, flags, strict=True) if f)
        wide.append([*row, applied, *flags])
    return {
        CODINGS_CSV: (list(CODING_COLUMNS), codings),
        CODED_SEGMENTS_CSV: ([*header, "codes", *codes], wide),
        SCORES_CSV: (list(SCORE_COLUMNS), scores),
    }


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
) -> dict[str, Any]:
    """Write the segment and coding tables, then ``run_manifest.json``; return the manifest.

    Each file is replaced atomically, so a crash leaves the previous version intact.
    """
    out = Path(out)
    segments = flat_segments(batch)
    header, rows = segment_rows(segments)
    outputs = {SEGMENTS_CSV: write_csv(out / SEGMENTS_CSV, header, rows)}
    if coding is not None:
        for name, (head, body) in coding_tables(segments, coding, codebook).items():
            outputs[name] = write_csv(out / name, head, body)
    counts = {
        "files": len(batch.files),
        "documents": len(batch.documents),
        "segments": len(segments),
        "codable_segments": sum(s.codable for s in segments),
        "skipped": len(batch.skipped),
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
    )
    write_json(out / RUN_MANIFEST, manifest)
    return manifest
