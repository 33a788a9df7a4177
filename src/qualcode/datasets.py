"""Segments (and codings) → the datasets under ``outputs/``, with their provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .codebook import Codebook
from .corpus import Batch, flat_segments, input_records
from .outputs import segment_rows, write_csv, write_json
from .provenance import run_manifest

SEGMENTS_CSV = "segments.csv"
RUN_MANIFEST = "run_manifest.json"


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
) -> dict[str, Any]:
    """Write ``segments.csv`` then ``run_manifest.json``; return the manifest.

    Each file is replaced atomically, so a crash leaves the previous version intact.
    """
    out = Path(out)
    segments = flat_segments(batch)
    header, rows = segment_rows(segments)
    outputs = {SEGMENTS_CSV: write_csv(out / SEGMENTS_CSV, header, rows)}
    counts = {
        "files": len(batch.files),
        "documents": len(batch.documents),
        "segments": len(segments),
        "codable_segments": sum(s.codable for s in segments),
        "skipped": len(batch.skipped),
    }
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
