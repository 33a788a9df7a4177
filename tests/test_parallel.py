"""Scoring in worker processes gives what scoring in this process gives."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

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


def test_ranges_cut_consecutive_items_into_equal_shares() -> None:
    assert parallel.ranges([1] * 10, 2) == [(0, 5), (5, 10)]
    # one heavy item has a range of its own; the rest share the other
    assert parallel.ranges([10, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 6)]
    # more ranges than asked when one would weigh more than `most`
    cuts = parallel.ranges([5] * 10, 2, most=12)
    assert len(cuts) == 5 and all(b - a == 2 for a, b in cuts)
    # every item once, in order, and never an empty range
    for weights in ([3], [0, 0, 0], [7, 0, 2, 9, 1, 1, 4], list(range(50))):
        cuts = parallel.ranges(weights, 4)
        assert [i for a, b in cuts for i in range(a, b)] == list(range(len(weights)))
        assert all(b > a for a, b in cuts) and len(cuts) <= min(4, len(weights))
    assert parallel.ranges([], 3) == []


def test_share_balances_whole_items_heaviest_group_first() -> None:
    weights = [5, 1, 1, 1, 9, 2]
    groups = parallel.share(weights, 2)
    totals = [sum(weights[i] for i in g) for g in groups]
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert totals == sorted(totals, reverse=True) and max(totals) - min(totals) <= 1
    assert all(g == sorted(g) for g in groups)
    assert parallel.share([4, 4], 5) == [[0], [1]]  # never an empty group


def _pid_and_frozen(x: int) -> tuple[int, int, int]:
    import gc

    return x * x, os.getpid(), gc.get_freeze_count()


def test_run_each_spreads_calls_over_the_workers_in_order() -> None:
    try:
        parallel.warm_up(2)
        results = parallel.run_each(_pid_and_frozen, [(i,) for i in range(12)], processes=2)
    finally:
        parallel.shutdown()
    assert [r[0] for r in results] == [i * i for i in range(12)]
    assert os.getpid() not in {r[1] for r in results}
    # a forked worker leaves what it inherited to the garbage collector's frozen generation
    assert all(r[2] > 1000 for r in results)
    assert parallel.run_each(_pid_and_frozen, [(3,)], processes=1)[0][:2] == (9, os.getpid())


def test_start_runs_in_a_worker_meanwhile_or_here_when_called() -> None:
    try:
        pending = parallel.start(_pid_and_frozen, 7, processes=2)
        value, pid, _ = pending()
    finally:
        parallel.shutdown()
    assert value == 49 and pid != os.getpid()
    calls: list[int] = []
    later = parallel.start(calls.append, 5, processes=1)
    assert calls == []  # one process: runs only when its result is asked for
    later()
    assert calls == [5]


def test_frozen_heap_leaves_the_heap_to_the_collector_again_afterwards() -> None:
    import gc

    inside = parallel.frozen_heap(gc.get_freeze_count)()
    assert inside > 1000 and gc.get_freeze_count() == 0


def test_fork_map_runs_a_closure_in_forked_children_in_order(monkeypatch) -> None:
    held = {"offset": 100}  # a closure's state reaches the children without pickling

    def where(i: int) -> tuple[int, int]:
        if i == 3:
            raise ValueError("item 3 is bad")
        return i + held["offset"], os.getpid()

    done = parallel.fork_map(where, [0, 1, 2])
    assert [v for v, _ in done] == [100, 101, 102]
    assert done[0][1] == os.getpid() and {pid for _, pid in done[1:]} - {os.getpid()}
    with pytest.raises(ValueError, match="item 3 is bad"):
        parallel.fork_map(where, [0, 3])
    # Called again from an item (here, or in a forked child) it runs all its items there.
    nested = parallel.fork_map(lambda n: {pid for _, pid in parallel.fork_map(where, [n, n])},
                               [1, 2])
    assert nested[0] == {os.getpid()} and len(nested[1]) == 1 and nested[1] != nested[0]
    monkeypatch.setattr(parallel, "auto_workers", lambda: 1)  # one core: all here
    assert {pid for _, pid in parallel.fork_map(where, [0, 1, 2])} == {os.getpid()}
