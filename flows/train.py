"""Flows to train and evaluate the classifier from the corpus and the coders' reviews."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from qualcode.codebook import Codebook, load_codebook
from qualcode.corpus import flat_segments, read_corpus
from qualcode.evaluate import (
    CrossValidation,
    cross_validate,
    evaluation_rows,
    format_evaluation,
    summary,
    write_evaluation,
)
from qualcode.model import CodebookClassifier
from qualcode.outputs import exclusive_outputs
from qualcode.reviews import load_reviews
from qualcode.segment import DEFAULT_MAX_TURN_CHARS
from qualcode.speakers import DEFAULT_INTERVIEWER_LABELS
from qualcode.training import TrainingSet, evaluate_and_write, train, training_set


def _training_data(corpus: Path, reviews: str | None, book: Codebook,
                   interviewer_labels: Sequence[str] | None, max_turn_chars: int
                   ) -> tuple[TrainingSet, list[str]]:
    """The reviewed segments, and the problems found in the review files."""
    segments = flat_segments(read_corpus(
        corpus, interviewer_labels or DEFAULT_INTERVIEWER_LABELS, max_turn_chars))
    texts = {s.segment_id: s.text for s in segments}
    source = load_reviews(reviews or corpus / "reviews", book.code_ids,
                          book.ids_by_name).checked(texts)
    data = training_set(segments, source.decisions())
    uncoded = {s.segment_id: s.speaker for s in segments if not s.codable}
    return data, [str(p) for p in [*source.problems,
                                   *source.unmatched(data.segment_ids, uncoded)]]


@task(name="cross-validate")
def cross_validate_task(book: Codebook, data: TrainingSet, out: str, backend: str | None,
                        folds: int) -> CrossValidation:
    return cross_validate(book, data, out, backend, folds)


@task(name="evaluate")
def evaluate_task(book: Codebook, data: TrainingSet, out: str, backend: str | None,
                  folds: int) -> dict[str, Any]:
    return evaluate_and_write(book, data, out, backend, folds)


@task(name="train-model")
def train_task(book: Codebook, data: TrainingSet, out: str, backend: str | None,
               evaluation: dict[str, Any]) -> tuple[CodebookClassifier, dict[str, Any]]:
    return train(book, data, out, backend, evaluation=evaluation)


@flow(name="evaluate-model")
@exclusive_outputs
def evaluate_model(
    corpus: str = "corpus", codebook: str = "codebook.yaml", out: str = "outputs",
    reviews: str | None = None, backend: str | None = None, folds: int = 5,
    interviewer_labels: list[str] | None = None, max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> dict[str, Any]:
    """Cross-validate over the reviewed segments; write ``evaluation.csv``. The corpus is
    segmented with ``interviewer_labels`` and ``max_turn_chars``, as in the coding run."""
    logger = get_run_logger()
    book = load_codebook(codebook)
    data, problems = _training_data(Path(corpus).resolve(), reviews, book,
                                    interviewer_labels, max_turn_chars)
    logger.info("cross-validating on %d reviewed segments from %d documents",
                len(data.texts), len(set(data.groups)))
    cv = cross_validate_task(book, data, str(Path(out).resolve()), backend, folds)
    rows = evaluation_rows(book, cv)
    write_evaluation(out, rows)
    return {"summary": summary(rows), "table": format_evaluation(rows),
            "unmatched": data.unmatched, "review_problems": problems}


@flow(name="train-model")
@exclusive_outputs
def train_model(
    corpus: str = "corpus", codebook: str = "codebook.yaml", out: str = "outputs",
    reviews: str | None = None, backend: str | None = None, folds: int = 5,
    evaluate: bool = True, interviewer_labels: list[str] | None = None,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> dict[str, Any]:
    """Evaluate (when there are enough reviews), then train on all of them and save. The
    corpus is segmented with ``interviewer_labels`` and ``max_turn_chars``, as in the
    coding run."""
    book = load_codebook(codebook)
    out_dir = str(Path(out).resolve())
    data, problems = _training_data(Path(corpus).resolve(), reviews, book,
                                    interviewer_labels, max_turn_chars)
    evaluation = evaluate_task(book, data, out_dir, backend, folds) if evaluate else {}
    _, meta = train_task(book, data, out_dir, backend, evaluation)
    return {**meta, "unmatched": data.unmatched, "review_problems": problems}
