"""The main flow: corpus files → segments → codings → outputs, in batches."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from qualcode.classify import CodingResult, code_segments
from qualcode.codebook import Codebook, load_codebook
from qualcode.corpus import Batch, combine_batches, flat_segments, plan_batches, process_batch
from qualcode.datasets import write_datasets
from qualcode.documents import Segment
from qualcode.ingest import discover_files, load_manifest
from qualcode.model import CodebookClassifier
from qualcode.provenance import now
from qualcode.reliability import agreement_table, classifier_decisions, write_reliability
from qualcode.reviews import ReviewSet, load_reviews
from qualcode.segment import DEFAULT_MAX_TURN_CHARS
from qualcode.speakers import DEFAULT_INTERVIEWER_LABELS
from qualcode.training import TrainingSet, ensure_model, training_set

from .reports import report_outputs

DEFAULT_BATCH_SIZE = 50
CODING_BATCH_SEGMENTS = 2000


@task(name="ingest-batch", retries=1, retry_delay_seconds=1)
def ingest_batch(
    corpus: str, paths: list[str], interviewer_labels: list[str], max_turn_chars: int
) -> Batch:
    """Read and segment one batch of files (paths only cross the task boundary)."""
    return process_batch(corpus, paths, interviewer_labels, max_turn_chars)


@task(name="prepare-model")
def prepare_model(
    codebook: Codebook, data: TrainingSet, out: str, backend: str | None, evaluate: bool
) -> tuple[CodebookClassifier, dict[str, Any], str | None]:
    """Reuse the saved model, or retrain when the codebook or the reviews changed.

    On retraining, the classifier is first cross-validated against the reviews (when
    there are enough) so that ``evaluation.csv`` and the trust status stay current.
    """
    return ensure_model(codebook, data, out, backend, evaluate=evaluate)


@task(name="code-batch", retries=1, retry_delay_seconds=1)
def code_batch(
    segments: list[Segment], model: CodebookClassifier, codebook: Codebook,
    human: dict[str, frozenset[str]],
) -> CodingResult:
    return code_segments(segments, model, codebook, human)


@task(name="reliability")
def reliability(reviews: ReviewSet, codebook: Codebook, out: str) -> dict[str, str]:
    """Coder vs coder and classifier vs coders, unit = segment (``reliability.csv``)."""
    table = agreement_table(reviews, codebook, classifier_decisions(out, codebook.code_ids))
    path = write_reliability(out, table)
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}


@flow(name="code-corpus", log_prints=False)
def code_corpus(
    corpus: str = "corpus",
    codebook: str = "codebook.yaml",
    out: str = "outputs",
    backend: str | None = None,
    evaluate: bool = True,
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
    segments = flat_segments(combined)

    reviews = load_reviews(corpus_dir / "reviews", book.code_ids)
    combined.skipped.extend(reviews.problems)
    decisions = reviews.decisions()
    data = training_set(segments, decisions)
    model, model_meta, retrained = prepare_model(book, data, str(out_dir), backend, evaluate)
    if retrained:
        logger.info("trained the model (%s): %d reviewed segments", retrained, len(data.texts))
    else:
        logger.info("reused the saved model %s", model_meta.get("model_id"))

    codable = [s for s in segments if s.codable]
    parts = []
    for start in range(0, len(codable), CODING_BATCH_SEGMENTS):
        parts.append(code_batch(codable[start : start + CODING_BATCH_SEGMENTS], model, book,
                                decisions))
        logger.info("coded %d/%d segments", min(start + CODING_BATCH_SEGMENTS, len(codable)),
                    len(codable))
    coding = CodingResult.concat(parts, book.code_ids, model.thresholds_)

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
            "backend": model_meta.get("backend"),
            "batch_size": batch_size,
            "interviewer_labels": labels,
            "max_turn_chars": max_turn_chars,
        },
        model={**{k: v for k, v in model_meta.items() if k != "thresholds"},
               "retrained": retrained},
        coding=coding,
        extra_counts={"reviewed_segments": len(data.texts),
                      "reviews_not_matched": data.unmatched},
    )
    if reviews.reviews:
        summary["outputs"].update(reliability(reviews, book, str(out_dir)))
    summary["outputs"].update(report_outputs(str(out_dir), book))
    logger.info(
        "%d documents, %d segments, %d codings, %d skipped", summary["counts"]["documents"],
        summary["counts"]["segments"], summary["counts"]["codings"], summary["counts"]["skipped"],
    )
    return summary
