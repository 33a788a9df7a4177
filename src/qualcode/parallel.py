"""Reading and scoring batches in this process or in worker processes.

spaCy's tokenizer and the rule matchers hold the GIL, so threads cannot use a second core;
``run(fn, ..., processes=n)`` sends the work to a pool of ``n`` worker processes instead
(started once per process and reused). On Linux the workers are forked, so they start
with everything this process has imported and holds, the model included (a few ms instead
of ~2 s of imports with ``spawn``); elsewhere they are spawned and load the model once.
The flow's tasks call it from their threads, so Prefect still sees one task per batch.
"""

from __future__ import annotations

import atexit
import functools
import gc
import hashlib
import itertools
import math
import multiprocessing
import os
import pickle
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the CLI imports this module: keep it light
    from .classify import CodingResult
    from .codebook import Codebook
    from .documents import Segment
    from .model import CodebookClassifier

T = TypeVar("T")
MAX_AUTO_WORKERS = 4

_MODELS: dict[str, tuple[CodebookClassifier, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_FORKED: Callable[[Any], Any] | None = None  # what fork_map's children run
_FORKED_LOCK = threading.Lock()
_IN_CHILD = False  # a forked process: fork_map runs all here (no forks of forks)


def _after_fork_in_child() -> None:
    # A forked worker has only the forking thread: a lock another thread of the parent
    # held at that moment would never be released, and the parent's pool is not its own.
    global _MODELS_LOCK, _POOL, _POOL_SIZE, _POOL_LOCK, _IN_CHILD
    # What the parent held stays as it is: the garbage collector would otherwise walk
    # (and so copy, page by page) the whole inherited heap on each full collection.
    gc.freeze()
    _MODELS_LOCK, _POOL_LOCK = threading.Lock(), threading.Lock()
    _IN_CHILD = True
    _POOL, _POOL_SIZE = None, 0
    for sha256, (model, _) in list(_MODELS.items()):
        _MODELS[sha256] = (model, threading.Lock())


os.register_at_fork(after_in_child=_after_fork_in_child)


def frozen_heap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn``, run with what this process holds already (libraries, Prefect, spaCy) left
    out of garbage collection: a full collection walks every object, and in a flow run
    on 1M words they cost the flow's process ~0.4 s. (Objects are still freed when no
    longer referenced; only reference cycles wait until ``fn`` returns.)"""

    @functools.wraps(fn)
    def frozen(*args: Any, **kwargs: Any) -> T:
        gc.freeze()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.unfreeze()

    return frozen


def auto_workers() -> int:
    """Worker processes when the user did not choose: one per usable core, at most
    ``MAX_AUTO_WORKERS`` (each holds its own copy of spaCy and the model)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_WORKERS))


def _keep(sha256: str, model: CodebookClassifier) -> None:
    """Make ``model`` the one cached model (call with ``_MODELS_LOCK`` held)."""
    if sha256 not in _MODELS:
        _MODELS.clear()
        _MODELS[sha256] = (model, threading.Lock())


def remember_model(sha256: str, model: CodebookClassifier) -> None:
    """Use ``model`` (already in memory) for the model file with this sha256."""
    with _MODELS_LOCK:
        _keep(sha256, model)


def load_model(path: str, sha256: str, codebook: Codebook
               ) -> tuple[CodebookClassifier, threading.Lock]:
    """The model file at ``path``, loaded once per process, and the lock to score with it
    (its lazily built parts and embedding cache are not thread-safe)."""
    with _MODELS_LOCK:
        if sha256 not in _MODELS:
            data = Path(path).read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise RuntimeError(f"the model file {path} changed during the run; rerun")
            model = pickle.loads(data)
            model.codebook = codebook
            _keep(sha256, model)
        return _MODELS[sha256]


def score_here(model_path: str, model_sha256: str, codebook: Codebook,
               segments: Sequence[Segment], human: Mapping[str, frozenset[str]]
               ) -> CodingResult:
    """Code ``segments`` in this process."""
    from .classify import code_segments

    model, lock = load_model(model_path, model_sha256, codebook)
    with lock:
        return code_segments(segments, model, codebook, human)


def _context() -> multiprocessing.context.BaseContext:
    # fork is the default on Linux only; macOS's system libraries are not fork-safe.
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


def _pool(processes: int) -> ProcessPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or processes != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = ProcessPoolExecutor(processes, mp_context=_context())
            _POOL_SIZE = processes
        return _POOL


def _ready() -> None:
    """Run in each new worker: starting it is the cost."""


def warm_up(processes: int, fresh: bool = False) -> list[Future[None]]:
    """Start the worker processes now (spawned ones then have time to import spaCy and
    scikit-learn, ~2 s). ``fresh`` replaces running forked workers, so that they start
    with what this process holds now, such as the model just trained and its rule
    matcher (spawned workers are kept: they would only import everything again)."""
    if fresh and _context().get_start_method() == "fork":
        shutdown()
    pool = _pool(processes)
    return [pool.submit(_ready) for _ in range(processes)]


def run(fn: Callable[..., T], *args: Any, processes: int = 1) -> T:
    """``fn(*args)`` here, or in a worker process when ``processes > 1`` (``fn`` and
    ``args`` must pickle)."""
    return run_each(fn, [args], processes)[0]


def run_each(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], processes: int = 1
             ) -> list[T]:
    """``[fn(*args) for args in calls]``, here or, when ``processes > 1``, spread over the
    worker processes (``fn`` and ``args`` must pickle).

    A pool whose worker died (out of memory, killed) is replaced once; if it breaks
    again the error is raised like any other and the flow retries and reports it.
    """
    if processes <= 1:
        return [fn(*args) for args in calls]

    def submit_all() -> list[T]:
        pool = _pool(processes)
        return [future.result() for future in [pool.submit(fn, *args) for args in calls]]

    try:
        return submit_all()
    except BrokenProcessPool:
        shutdown()
        return submit_all()


def attempt(fn: Callable[..., T], *args: Any) -> tuple[T | None, tuple[str, str] | None]:
    """``(fn(*args), None)``, or ``(None, (error type, traceback))`` when it raises: calls
    made this way cannot take each other down."""
    try:
        return fn(*args), None
    except Exception as err:
        return None, (type(err).__name__, traceback.format_exc())


def start(fn: Callable[..., T], *args: Any, processes: int = 1) -> Callable[[], T]:
    """Start ``fn(*args)`` in a worker process when ``processes > 1`` and return a function
    that waits for its result; with one process ``fn`` runs when that function is called."""
    if processes <= 1:
        return lambda: fn(*args)
    future = _pool(processes).submit(fn, *args)

    def result() -> T:
        try:
            return future.result()
        except BrokenProcessPool:  # as in run_each: a fresh pool, once
            shutdown()
            return run(fn, *args, processes=processes)

    return result


def _call_forked(item: Any) -> Any:
    assert _FORKED is not None  # set by fork_map before the children were forked
    return _FORKED(item)


def fork_map(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[fn(item) for item in items]``, the first here and the others at the same time in
    short-lived forked processes (Linux; elsewhere one after the other). ``fn`` may be a
    closure: the children inherit it and every object it holds, so only the items and
    the results are pickled. For CPU-bound work of a few 0.1 s per item, such as fitting
    a model per fold, in a process whose worker processes may still be reading."""
    # One at a time per process: another call (or this one's first item, run here, calling
    # fork_map itself) runs its items one after the other.
    if len(items) < 2 or _IN_CHILD or _context().get_start_method() != "fork" \
            or auto_workers() < 2 or not _FORKED_LOCK.acquire(blocking=False):
        return [fn(item) for item in items]
    global _FORKED
    _FORKED = fn
    try:
        with ProcessPoolExecutor(min(len(items) - 1, auto_workers()),
                                 mp_context=_context()) as pool:
            futures = [pool.submit(_call_forked, item) for item in items[1:]]
            first = fn(items[0])
            return [first, *(future.result() for future in futures)]
    finally:
        _FORKED = None
        _FORKED_LOCK.release()


def share(weights: Sequence[float], parts: int) -> list[list[int]]:
    """Indices of ``weights`` in at most ``parts`` groups of about equal total weight
    (heaviest first, each to the lightest group), each group in index order, heaviest
    group first."""
    groups: list[list[int]] = [[] for _ in range(max(1, min(parts, len(weights))))]
    totals = [0.0] * len(groups)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        g = totals.index(min(totals))
        groups[g].append(i)
        totals[g] += weights[i]
    order = sorted(range(len(groups)), key=lambda g: -totals[g])
    return [sorted(groups[g]) for g in order if groups[g]]


def ranges(weights: Sequence[float], parts: int, most: float = math.inf
           ) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive items of about equal total weight: ``parts``
    ranges, or more so that none weighs much more than ``most`` (never an empty one)."""
    total = float(sum(weights))
    if total <= 0:
        weights, total = [1.0] * len(weights), float(len(weights))
    n = min(len(weights), max(parts, math.ceil(total / most)))
    bounds, done = [0], 0.0
    for i, weight in enumerate(weights[:-1]):
        done += weight
        if done >= total * len(bounds) / n:  # a cut after each n-th of the total
            bounds.append(i + 1)
    if weights:
        bounds.append(len(weights))
    return list(itertools.pairwise(bounds))


def shutdown() -> None:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=False, cancel_futures=True)
        _POOL, _POOL_SIZE = None, 0


atexit.register(shutdown)
