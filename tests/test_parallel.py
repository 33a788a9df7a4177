"""Scoring in worker processes gives what scoring in this process gives."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from qualcode import parallel
from qualcode.codebook import load_codebook
from qualcode.corpus import flat_segments, read_corpus
from qualcode.training import MODEL_FILE, ensure_model, model_dir, training_set

ROOT = Path(__file__).resolve().parents[1]


def test_worker_processes_score_like_this_process(sample_corpus: Path, tmp_path: Path) -> None:
    book = load_codebook(ROOT / "codebook.yaml")
    segments = [s for s in flat_segments(read_corpus(sample_corpus)) if s.codable]
    ensure_model(book, training_set(segments, {}), tmp_path, backend="fast")
    path = model_dir(tmp_path) / MODEL_FILE
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    human = {segments[0].segment_id: frozenset({book.code_ids[0]})}

    here = parallel.score_here(str(path), sha, book, segments, human)
    try:
        there = parallel.run(parallel.score_here, str(path), sha, book, segments, human,
                             processes=2)
        pids = {f.result() for f in [parallel._pool(2).submit(os.getpid) for _ in range(4)]}
    finally:
        parallel.shutdown()

    assert os.getpid() not in pids  # it really ran elsewhere
    assert there.segment_ids == here.segment_ids and len(here.segment_ids) > 100
    np.testing.assert_allclose(there.scores, here.scores)
    assert (there.decisions == here.decisions).all() and here.decisions.sum() > 10
    assert (there.methods == here.methods).all() and there.evidence == here.evidence
    assert there.methods[0][0] == "human"  # the coder's decision travels too


def _cached_models() -> list[str]:
    return list(parallel._MODELS)


def _reads_a_batch(corpus: str, path: str) -> int:
    from qualcode.corpus import process_batch

    return len(flat_segments(process_batch(corpus, [path], ["Interviewer"], 4000)))


def test_fresh_workers_start_with_the_model_in_memory(sample_corpus: Path,
                                                      tmp_path: Path) -> None:
    book = load_codebook(ROOT / "codebook.yaml")
    segments = [s for s in flat_segments(read_corpus(sample_corpus)) if s.codable]
    model, _, _ = ensure_model(book, training_set(segments, {}), tmp_path, backend="fast")
    sha = hashlib.sha256((model_dir(tmp_path) / MODEL_FILE).read_bytes()).hexdigest()
    first = sorted(p.relative_to(sample_corpus).as_posix()
                   for p in (sample_corpus / "transcripts").iterdir())[0]
    parallel._MODELS.clear()  # nothing cached by an earlier test
    try:
        parallel.warm_up(2)
        before = parallel.run(_cached_models, processes=2)
        segments_read = parallel.run(_reads_a_batch, str(sample_corpus), first, processes=2)
        parallel.remember_model(sha, model)
        for started in parallel.warm_up(2, fresh=True):
            started.result()
        after = parallel.run(_cached_models, processes=2)
    finally:
        parallel.shutdown()
    assert sha not in before and after == [sha]  # inherited: no reload from disk
    assert segments_read > 0
