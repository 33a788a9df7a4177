"""The main flow: corpus files → segments (→ codings) → outputs, in batches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from qualcode.codebook import load_codebook
from qualcode.corpus import Batch, combine_batches, plan_batches, process_batch
from qualcode.datasets import write_datasets
from qualcode.ingest import discover_files, load_manifest
from qualcode.provenance import now
from qualcode.segment import DEFAULT_MAX_TURN_CHARS
from qualcode.speakers import DEFAULT_INTERVIEWER_LABELS

DEFAULT_BATCH_SIZE = 50


@task(name="ingest-batch", retries=1, retry_delay_seconds=1)
def ingest_batch(
    corpus: str, paths: list[str], interviewer_labels: list[str], max_turn_chars: int
) -> Batch:
    """Read and segment one batch of files (paths only cross the task boundary)."""
    return process_batch(corpus, paths, interviewer_labels, max_turn_chars)


@flow(name="code-corpus", log_prints=False)
def code_corpus(
    corpus: str = "corpus",
    codebook: str = "codebook.yaml",
    out: str = "outputs",
    batch_size: int = DEFAULT_BATCH_SIZE,
    interviewer_labels: list[str] | None = None,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> dict[str, Any]:
    """Code a corpus folder with a codebook and write the datasets to ``out``.

    Parameters are paths and settings only; transcript text never enters Prefect.
    """
    logger = get_run_logger()
    started, t0 = now(), time.perf_counter()
    corpus_dir, out_dir = Path(corpus).resolve(), Path(out).resolve()
    labels = list(interviewer_labels or DEFAULT_INTERVIEWER_LABELS)
    book = load_codebook(codebook)  # an invalid codebook stops here, outputs untouched

    manifest = load_manifest(corpus_dir)
    paths, unsupported = discover_files(corpus_dir)
    batches = plan_batches(paths, batch_size)
    results = []
    for number, batch in enumerate(batches, start=1):
        results.append(ingest_batch(str(corpus_dir), batch, labels, max_turn_chars))
        logger.info("read batch %d/%d (%d files)", number, len(batches), len(batch))
    combined = combine_batches(results)
    combined.skipped[:0] = [*manifest.problems, *unsupported]

    summary = write_datasets(
        out_dir,
        combined,
        codebook=book,
        run_id=str(flow_run.get_id() or ""),
        started=started,
        seconds=time.perf_counter() - t0,
        parameters={
            "corpus": str(corpus_dir),
            "codebook": str(Path(codebook).resolve()),
            "out": str(out_dir),
            "batch_size": batch_size,
            "interviewer_labels": labels,
            "max_turn_chars": max_turn_chars,
        },
    )
    logger.info(
        "%d documents, %d segments, %d skipped", summary["counts"]["documents"],
        summary["counts"]["segments"], summary["counts"]["skipped"],
    )
    return summary
