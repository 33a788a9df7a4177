"""The main flow: corpus files → segments → codings → outputs, in batches.

Incremental: ``ingest-batch`` and ``code-batch`` are cached by Prefect on content hashes
(see :mod:`flows.incremental`), so a rerun reads and scores only what changed, and
``write-outputs`` is cached on all of their keys, so a run where nothing changed leaves
the datasets and reports as they are and only updates the run manifest. Batches run
on a task runner chosen per run: ``workers`` threads (with the fast backend, reading and
scoring then run in that many worker processes, by default one per core: see
:mod:`qualcode.parallel`), or an existing Dask cluster (``dask_address``). A batch that
still fails after its retries is reported (run manifest, summary, artifact) and the other
batches' outputs still land.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from qualcode import parallel
from qualcode.classify import CodingResult
from qualcode.codebook import Codebook, load_codebook
from qualcode.corpus import Batch, combine_batches, flat_segments, process_batch
from qualcode.datasets import RUN_MANIFEST, write_datasets
from qualcode.documents import Segment, Skipped
from qualcode.embed import FAST, default_backend
from qualcode.ingest import FileRecord, discover_files, load_manifest, unmatched_doc_ids
from qualcode.model import CodebookClassifier
from qualcode.outputs import exclusive_outputs, write_json
from qualcode.provenance import now
from qualcode.reliability import agreement_table, coding_decisions, write_reliability
from qualcode.report import write_reports
from qualcode.reviews import ReviewSet, load_reviews
from qualcode.segment import DEFAULT_MAX_TURN_CHARS
from qualcode.speakers import DEFAULT_INTERVIEWER_LABELS
from qualcode.training import MODEL_FILE, TrainingSet, ensure_model, model_dir, training_set

from .incremental import (
    RECORDS_INDEX,
    SHORT_FILE_BYTES,
    FileRecords,
    RowsOf,
    batch_key,
    coding_key,
    ingest_keys,
    load_index,
    outputs_fingerprint,
    outputs_intact,
    plan_batches,
    prune_results,
    read_and_record,
    record,
    results_dir,
    write_index,
)
from .publish import discard, open_staging, promote
from .reports import publish_artifacts

# Files per task run, about (more when they are short, see ``plan_batches``): each task
# run costs Prefect's server and the flow ~0.1 s of CPU, and a batch's files are spread
# over all worker processes, so batches can be big.
DEFAULT_BATCH_SIZE = 500
CHUNK_CHARS = 500_000  # text scored per call of a worker process (~0.3 s)
RETRIES = 2  # a batch is tried at most 1 + RETRIES times


class BatchError(RuntimeError):
    """A batch failed. The message names the error type and the files, never their text:
    it is stored in Prefect's database (the full traceback goes to the local log only)."""


def _with_source(key: str | None, context: TaskRunContext) -> str | None:
    # The task's source is part of the key, as with `+ TASK_SOURCE`; but a compound policy
    # drops a None key and would then cache on the source alone, so combine them here:
    # None stays None, which means "do not cache".
    if key is None:
        return None
    return f"{key}-{TASK_SOURCE.compute_key(context, None, None)}"


def _files_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    return _with_source(batch_key([entry[1] for entry in parameters["files"].value]),
                        context)


CONTENT_CACHE = CachePolicy.from_cache_key_fn(_files_key)


def _sanitised(what: str, paths: Sequence[str], err: Exception) -> BatchError:
    get_run_logger().exception("%s failed on %d file(s): %s", what, len(paths), ", ".join(paths))
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return BatchError(f"{type(err).__name__} while {what} {shown}")


# ------------------------------------------------------------------------------- ingest


class _Recorded:
    """A batch task's result: one part per file, and where each file's record is.

    Pickled (persisted by Prefect, or sent back by a Dask worker) without the parts when
    every one of them is in a records pack, so they are not written twice; the flow
    reads them back from the packs (:func:`_restore`).
    """

    __slots__ = ()
    parts: list[Any] | None
    keys: list[str | None]
    located: dict[str, str]

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
        if all(key is not None and key in self.located for key in self.keys):
            state["parts"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


@dataclass(slots=True)
class Ingested(_Recorded):
    parts: list[Batch] | None  # one per file, in the batch's order
    keys: list[str | None]  # the files' keys, in the same order
    processed: list[str] = field(default_factory=list)  # files actually read in this run
    located: dict[str, str] = field(default_factory=dict)  # file key -> records pack


@task(name="ingest-batch", retries=RETRIES, retry_delay_seconds=1, persist_result=True,
      cache_policy=CONTENT_CACHE)
def ingest_batch(
    corpus: str, files: Bulk, interviewer_labels: list[str], max_turn_chars: int,
    located: Bulk, processes: int = 1, lengths: Bulk | None = None,
) -> Ingested:
    """Read and segment one batch of ``(path, key, sha256)`` (``files``), shared among the
    worker processes when ``processes > 1`` by the files' ``lengths`` (path -> bytes, as
    the flow found them); files read before come from their records (``located``: file
    key -> records pack)."""
    files = files.value
    records = FileRecords(located.value)
    parts: dict[str, Batch] = {}
    for path, key, _ in files:
        cached = records.get(key)
        if cached is not None:
            parts[path] = cached
    missing = [entry for entry in files if entry[0] not in parts]
    if missing:
        paths = [path for path, _, _ in missing]

        def call(entries: list[tuple[str, str | None, str | None]]) -> tuple[Any, ...]:
            return (process_batch, corpus, entries, interviewer_labels, max_turn_chars,
                    str(records.folder))

        sizes = {} if lengths is None else lengths.value
        groups = parallel.share([sizes.get(p) or _size(Path(corpus) / p) for p in paths],
                                2 * processes if processes > 1 else 1)
        try:
            done = parallel.run_each(read_and_record,
                                     [call([missing[i] for i in group]) for group in groups],
                                     processes)
        except Exception as err:
            if len(missing) == 1:
                raise _sanitised("reading", paths, err) from None
            results, failed = _one_by_one(read_and_record, [call([e]) for e in missing],
                                          paths, "read", processes)
            done = [result if result is not None else
                    ({path: _unread(Path(corpus), path, sha, failed[path])}, {}, [])
                    for result, (path, _, sha) in zip(results, missing, strict=True)]
        changed = [path for _, _, moved in done for path in moved]
        if changed:
            # Hashed by the flow, then changed (or became unreadable) before this task
            # read it: the key no longer describes the content, so nothing may be
            # cached under it. A retry reads it again.
            raise BatchError(f"{changed[0]} changed while the run was reading it")
        for fresh, saved, _ in done:
            parts.update(fresh)
            records.saved(saved)
    return Ingested([parts[path] for path, _, _ in files], [key for _, key, _ in files],
                    [path for path, _, _ in missing], records.save())


def _unread(corpus: Path, path: str, sha256: str | None, reason: str) -> Batch:
    """The part of a file that could not be read: only its record and why."""
    files = [] if sha256 is None else [FileRecord(path, sha256, _size(corpus / path),
                                                  Path(path).suffix.lower().lstrip("."))]
    return Batch([], [], [Skipped(path, reason)], files)


def _one_by_one(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]],
                paths: Sequence[str], what: str, processes: int
                ) -> tuple[list[Any], dict[str, str]]:
    """After a batch failed: ``fn(*call)`` for each file's call apart, so that one bad file
    does not take the others down. Returns the results (``None`` where a file failed) and
    why each failed file did; when every file fails the batch fails (and is retried)."""
    logger = get_run_logger()
    logger.warning("a batch of %d files could not be %s: trying them one by one",
                   len(paths), what)
    done = parallel.run_each(parallel.attempt, [(fn, *call) for call in calls], processes)
    failed: dict[str, str] = {}
    for path, (_, error) in zip(paths, done, strict=True):
        if error is not None:
            kind, trace = error
            logger.error("%s could not be %s:\n%s", path, what, trace)
            failed[path] = (
                f"could not be {what} ({kind} in qualcode; the run's log has the details) — "
                "check that the file opens in its program and re-save it; if it still "
                "fails, report the error (the other files were not affected)")
    if len(failed) == len(paths):
        raise BatchError(f"every file failed on its own too, first {paths[0]} "
                         f"({done[0][1][0]})")
    return [result for result, _ in done], failed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ------------------------------------------------------------------------------- coding

class Bulk:
    """A big task argument that Prefect passes through untouched.

    Prefect walks every list, dict and dataclass argument looking for futures (slow for
    thousands of segments); it does not look inside an object of a plain class. (Prefect's
    own ``quote`` is not unwrapped by the Dask task runner.)
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getstate__(self) -> tuple[Any]:
        return (self.value,)  # never falsy: pickle skips __setstate__ for a falsy state

    def __setstate__(self, state: tuple[Any]) -> None:
        (self.value,) = state


@dataclass(slots=True)
class Coded(_Recorded):
    parts: list[CodingResult] | None  # one per file, in the batch's order
    keys: list[str | None]  # the files' coding keys, in the same order
    scored: list[str] = field(default_factory=list)  # files actually scored in this run
    located: dict[str, str] = field(default_factory=dict)  # file key -> records pack
    failed: dict[str, str] = field(default_factory=dict)  # path -> why it was not scored


@task(name="code-batch", retries=RETRIES, retry_delay_seconds=1, persist_result=True,
      cache_policy=CONTENT_CACHE)
def code_batch(
    files: Bulk, segments: Bulk, model_path: str, model_sha256: str, codebook: Bulk,
    human: Bulk, located: Bulk, processes: int = 1,
) -> Coded:
    """Score one batch's codable segments (``files``: ``(path, coding key)``, ``segments``:
    one list per file, ``human``: the coders' decisions on them) here or, with
    ``processes > 1``, shared among the worker processes; files scored before come from
    their records."""
    files, segments, human = files.value, segments.value, human.value
    records = FileRecords(located.value)
    parts: dict[int, CodingResult] = {}
    for i, (_, key) in enumerate(files):
        cached = records.get(key)
        if cached is not None:
            parts[i] = cached
    todo = [i for i in range(len(files)) if i not in parts]
    failed: dict[str, str] = {}
    shared: dict[int, RowsOf] = {}  # the records of one scoring's files
    if todo:
        flat = [s for i in todo for s in segments[i]]
        # Cut on segments, not files, so that one big file (an excerpt table) is shared
        # among the processes too.
        cuts = parallel.ranges([len(s.text) for s in flat], 2 * processes if processes > 1
                               else 1, most=CHUNK_CHARS)
        calls = [(model_path, model_sha256, codebook.value, flat[a:b], human) for a, b in cuts]
        paths = [files[i][0] for i in todo]
        try:
            done = parallel.run_each(parallel.score_here, calls, processes)
            coded = CodingResult.concat(done, done[0].code_ids, done[0].thresholds)
            bounds = list(itertools.accumulate((len(segments[i]) for i in todo), initial=0))
            spans = list(itertools.pairwise(bounds))
            fresh = [coded.rows(a, b) for a, b in spans]
            shared = {i: RowsOf(coded, a, b) for i, (a, b) in zip(todo, spans, strict=True)}
        except Exception as err:
            if len(todo) == 1:
                raise _sanitised("coding", paths, err) from None
            fresh, failed = _one_by_one(
                parallel.score_here,
                [(model_path, model_sha256, codebook.value, segments[i], human) for i in todo],
                paths, "coded", processes)
            some = next(result for result in fresh if result is not None)
            fresh = [CodingResult.concat([], some.code_ids, some.thresholds)
                     if result is None else result for result in fresh]
        parts.update(zip(todo, fresh, strict=True))
        keep = {files[i][1]: shared.get(i, parts[i]) for i in todo
                if files[i][1] is not None and files[i][0] not in failed}
        if keep:
            records.saved(record(records.folder, keep))
    return Coded([parts[i] for i in range(len(files))], [key for _, key in files],
                 [files[i][0] for i in todo if files[i][0] not in failed], records.save(),
                 failed)


# ------------------------------------------------------------------------ other tasks


@task(name="prepare-model", cache_policy=NO_CACHE)
def prepare_model(
    codebook: Codebook, data: TrainingSet, out: str, backend: str | None, evaluate: bool
) -> tuple[CodebookClassifier, dict[str, Any], str | None]:
    """Reuse the saved model, or retrain when the codebook or the reviews changed.

    On retraining, the classifier is first cross-validated against the reviews (when
    there are enough) so that ``evaluation.csv`` and the trust status stay current.
    The model's lazily built parts are built here, so that worker processes forked
    afterwards start with them instead of each building its own.
    """
    model, meta, retrained = ensure_model(codebook, data, out, backend, evaluate=evaluate)
    model.ready()
    return model, meta, retrained


@task(name="reliability", cache_policy=NO_CACHE)
def reliability(reviews: ReviewSet, codebook: Codebook, out: str, coding: Bulk
                ) -> dict[str, str]:
    """Coder vs coder and classifier vs coders, unit = segment (``reliability.csv``); the
    classifier's decisions come from the run's ``coding`` (``scores.csv`` may not be
    written yet)."""
    run: CodingResult = coding.value
    classifier = coding_decisions(run.segment_ids, run.code_ids, run.scores, run.thresholds,
                                  only={r.segment_id for r in reviews.reviews})
    table = agreement_table(reviews, codebook, classifier)
    path = write_reliability(out, table)
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}


# ------------------------------------------------------------------------------ running


@contextmanager
def task_runner(workers: int = 1, dask_address: str | None = None) -> Iterator[TaskRunner]:
    """Threads on this machine, or an existing Dask cluster."""
    if dask_address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as err:
            raise RuntimeError(
                "--dask-address needs the dask extra: pip install 'qualcode[dask]' "
                "(or make install EXTRAS=semantic,test,dask)") from err
        runner: TaskRunner = DaskTaskRunner(address=dask_address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=max(1, workers))
    with runner:
        yield runner


@dataclass(slots=True)
class Outcome:
    """What became of the batches of one task: results in order, cached and failed ones."""

    results: list[Any] = field(default_factory=list)  # None where the batch failed
    states: list[Any] = field(default_factory=list)  # the final state of each batch
    cached: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def fresh(self, i: int) -> bool:
        """Whether batch ``i`` ran in this run (it was not reused from an earlier one)."""
        return self.results[i] is not None and self.states[i].name != "Cached"


def _restore(result: _Recorded, storage: Path) -> bool:
    """Read a result's parts back from the records packs; ``False`` if one is missing."""
    if result.parts is None:
        records = FileRecords(result.located, storage)
        parts = [records.get(key) for key in result.keys]
        if any(part is None for part in parts):
            return False
        result.parts = parts
    return True


def _settle(futures: Sequence[Any], batches: Sequence[Sequence[str]], name: str,
            storage: Path, rerun: Callable[[int], Any]) -> Outcome:
    """Wait for every batch. A batch reused from an earlier run whose records have gone
    (deleted by hand, say) is run again: ``rerun(i)`` submits batch ``i`` without the
    cache."""
    outcome = Outcome()
    for i, (future, paths) in enumerate(zip(futures, batches, strict=True)):
        future.wait()
        state = future.state
        if state.is_completed() and not _restore(future.result(), storage):
            future = rerun(i)
            future.wait()
            state = future.state
        outcome.states.append(state)
        if state.is_completed():
            outcome.results.append(future.result())
            outcome.cached += state.name == "Cached"
        else:
            error = future.result(raise_on_failure=False)
            outcome.results.append(None)
            outcome.failed.append({"task": name, "state": state.name, "files": list(paths),
                                   "error": str(error) if isinstance(error, BatchError)
                                   else type(error).__name__})
    return outcome


def _failure_note(what: str, tries: int) -> str:
    return (f"was not {what}: its batch failed {tries} times (see failed_batches in "
            "run_manifest.json and the run's log) — the next run tries it again")


def _model_sha256(out: Path) -> tuple[str, str]:
    path = model_dir(out) / MODEL_FILE
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def _codable_by_path(batch: Batch) -> dict[str, list[Segment]]:
    found: dict[str, list[Segment]] = {}
    for doc, segs in zip(batch.documents, batch.segments, strict=True):
        found.setdefault(doc.path, []).extend(s for s in segs if s.codable)
    return found


def _drop_paths(batch: Batch, reasons: Mapping[str, str]) -> Batch:
    """``batch`` without the documents of these paths, each listed as skipped with its
    reason."""
    pairs = [(d, s) for d, s in zip(batch.documents, batch.segments, strict=True)
             if d.path not in reasons]
    return Batch([d for d, _ in pairs], [s for _, s in pairs],
                 [*batch.skipped, *(Skipped(p, reasons[p]) for p in sorted(reasons))],
                 batch.files)


def _lengths(corpus: Path, paths: Sequence[str]) -> dict[str, int]:
    """Each file's size in bytes (a file that cannot be read now counts as long)."""
    lengths = {}
    for path in paths:
        try:
            lengths[path] = os.stat(os.path.join(corpus, path)).st_size
        except OSError:
            lengths[path] = SHORT_FILE_BYTES
    return lengths


def _subset(decisions: Mapping[str, frozenset[str]], segments: Sequence[Segment]
            ) -> dict[str, frozenset[str]]:
    return {s.segment_id: decisions[s.segment_id] for s in segments if s.segment_id in decisions}


@flow(name="code-corpus", log_prints=False)
@exclusive_outputs
@parallel.frozen_heap
def code_corpus(
    corpus: str = "corpus",
    codebook: str = "codebook.yaml",
    out: str = "outputs",
    backend: str | None = None,
    evaluate: bool = True,
    batch_size: int | None = None,
    interviewer_labels: list[str] | None = None,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
    workers: int | None = None,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """Code a corpus folder with a codebook and write the datasets to ``out``; return the
    run manifest (``run_manifest.json``) without its list of input files.

    Parameters are paths and settings only; transcript text never enters Prefect's
    database. ``batch_size`` files make a task run (default: about
    ``DEFAULT_BATCH_SIZE``, more when they are short). ``workers`` runs that many batches
    at once (with the fast backend, reading and scoring in that many processes;
    default: one per core, at most ``parallel.MAX_AUTO_WORKERS``; 1 with the semantic
    backend); ``dask_address`` (``tcp://host:port``) runs them on an existing Dask
    cluster instead.
    """
    logger = get_run_logger()
    started, t0 = now(), time.perf_counter()
    corpus_dir, out_dir = Path(corpus).resolve(), Path(out).resolve()
    labels = list(interviewer_labels or DEFAULT_INTERVIEWER_LABELS)
    book = load_codebook(codebook)  # an invalid codebook stops here, outputs untouched

    manifest = load_manifest(corpus_dir)
    paths, unsupported = discover_files(corpus_dir)
    keys = ingest_keys(corpus_dir, paths, manifest, labels, max_turn_chars)
    lengths = _lengths(corpus_dir, paths)
    plan = (plan_batches(paths, batch_size) if batch_size else
            plan_batches(paths, DEFAULT_BATCH_SIZE, lengths))
    storage = results_dir(out_dir)
    ingest = ingest_batch.with_options(result_storage=storage)
    code = code_batch.with_options(result_storage=storage)
    tries = 1 + RETRIES

    # Reading and scoring hold the GIL: with several workers on this machine they run in
    # that many worker processes (the semantic backend's encoder already uses every core
    # through torch). When files are new or changed they are started now, before this
    # process gets busy; otherwise only if something turns out to need scoring.
    fast = (backend or default_backend()) == FAST
    if workers is None:
        workers = parallel.auto_workers() if fast and not dask_address else 1
    processes = max(1, workers) if fast and not dask_address else 1
    index = load_index(storage)  # where each file's records are (file key -> pack)
    if processes > 1 and any(key and key not in index for key, _ in keys.values()):
        parallel.warm_up(processes)

    reviews = load_reviews(corpus_dir / "reviews", book.code_ids, book.ids_by_name)
    decisions = reviews.decisions()
    # Without reviews the training data is the codebook alone: the model is then
    # prepared (reused or trained) while the corpus is read
    # (after the workers are forked: no thread of this process is busy then).
    early = None if decisions else prepare_model.submit(
        book, training_set([], decisions), str(out_dir), backend, evaluate)

    def located(file_keys: Sequence[str | None]) -> Bulk:
        return Bulk({key: index[key] for key in file_keys if key in index})

    # With worker processes, twice as many threads: while one task of a process is in
    # Prefect's bookkeeping, the next one already keeps the process busy.
    with task_runner(workers * (2 if processes > 1 else 1), dask_address) as runner:
        reading = [{"corpus": str(corpus_dir), "files": Bulk([(p, *keys[p]) for p in batch]),
                    "interviewer_labels": labels, "max_turn_chars": max_turn_chars,
                    "located": located([keys[p][0] for p in batch]), "processes": processes,
                    "lengths": Bulk({p: lengths[p] for p in batch})}
                   for batch in plan]
        read = _settle([runner.submit(ingest, parameters) for parameters in reading], plan,
                       "ingest-batch", storage, lambda i: runner.submit(
                           ingest.with_options(refresh_cache=True), reading[i]))
        logger.info("read %d batches (%d unchanged, %d failed) of %d files", len(plan),
                    read.cached, len(read.failed), len(paths))
        parts = [part for result in read.results if result is not None for part in result.parts]
        processed = [p for i, result in enumerate(read.results) if read.fresh(i)
                     for p in result.processed]
        combined = combine_batches(parts)
        # (a failed batch's documents are unknown: its doc ids cannot be checked)
        unmatched = [] if read.failed else unmatched_doc_ids(manifest, combined.documents)
        combined.skipped[:0] = [*manifest.problems, *unmatched, *unsupported]
        for failure in read.failed:
            combined.skipped.extend(Skipped(p, _failure_note("read", tries))
                                    for p in failure["files"])
        segments = flat_segments(combined)
        if decisions:  # a decision made on other words than the segment's now is not used
            reviews = reviews.checked({s.segment_id: s.text for s in segments})
            decisions = reviews.decisions()

        data = training_set(segments, decisions)
        uncoded = {s.segment_id: s.speaker for s in segments if not s.codable}
        review_problems = [*reviews.problems, *reviews.unmatched(data.segment_ids, uncoded)]
        model, model_meta, retrained = early.result() if early else prepare_model(
            book, data, str(out_dir), backend, evaluate)
        if retrained:
            logger.info("trained the model (%s): %d reviewed segments", retrained,
                        len(data.texts))
        else:
            logger.info("reused the saved model %s", model_meta.get("model_id"))
        model_path, model_sha = _model_sha256(out_dir)
        # The model in memory is the saved file's: threads score with it, no reload.
        parallel.remember_model(model_sha, model)

        codable = _codable_by_path(combined)
        code_plan = [[p for p in batch if codable.get(p)] for batch in plan]
        code_plan = [batch for batch in code_plan if batch]
        code_files = [[(p, coding_key(codable[p], decisions, model_sha, book.sha256))
                       for p in batch] for batch in code_plan]
        if processes > 1 and any(key not in index for files in code_files for _, key in files):
            # Forked now, the workers start with the model in memory (no reload, and its
            # rule matcher already built).
            parallel.warm_up(processes, fresh=True)
        scoring = []
        for batch, files in zip(code_plan, code_files, strict=True):
            chunk = [codable[p] for p in batch]
            scoring.append({
                "files": Bulk(files), "segments": Bulk(chunk), "model_path": model_path,
                "model_sha256": model_sha, "codebook": Bulk(book),
                "human": Bulk(_subset(decisions, [s for segs in chunk for s in segs])),
                "located": located([key for _, key in files]), "processes": processes})
        scored = _settle([runner.submit(code, parameters) for parameters in scoring],
                         code_plan, "code-batch", storage, lambda i: runner.submit(
                             code.with_options(refresh_cache=True), scoring[i]))
    logger.info("coded %d batches (%d unchanged, %d failed)", len(code_plan), scored.cached,
                len(scored.failed))
    not_coded = {p: _failure_note("coded", tries) for failure in scored.failed
                 for p in failure["files"]}
    not_coded.update((p, why) for result in scored.results if result is not None
                     for p, why in result.failed.items())
    if not_coded:
        combined = _drop_paths(combined, not_coded)
    coding = CodingResult.concat(
        [part for result in scored.results if result is not None for part in result.parts],
        book.code_ids, model.thresholds_)
    scored_files = [p for i, result in enumerate(scored.results) if scored.fresh(i)
                    for p in result.scored]
    incremental = {
        "ingest_batches": len(plan), "ingest_batches_cached": read.cached,
        "files_read": len(processed), "files_reused": len(paths) - len(processed)
        - sum(len(f["files"]) for f in read.failed),
        "code_batches": len(code_plan), "code_batches_cached": scored.cached,
        "files_scored": len(scored_files),
        "segments_scored": sum(len(codable[p]) for p in scored_files),
        "result_storage": str(storage),
        "workers": 0 if dask_address else max(1, workers),
        "dask_address": dask_address,
    }

    failed = [*read.failed, *scored.failed]
    run_id = str(flow_run.get_id() or "")
    publication = Publication(
        combined=combined, coding=coding, codebook=book, reviews=reviews, run_id=run_id,
        started=started, seconds=time.perf_counter() - t0,
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
        extra_counts={"reviewed_segments": len(data.texts),
                      "reviews_not_matched": data.unmatched},
        incremental=incremental, failed=failed, processes=processes,
        review_problems=review_problems,
    )
    # Outputs are a function of the batches' keys and of what else they read: when none
    # changed since the run that wrote them, they are kept and only the run metadata is
    # updated (the datasets and reports are not rewritten).
    fingerprint = None if failed else outputs_fingerprint(
        ingest=[keys[p][0] for p in paths],
        coding=[key for batch in code_files for _, key in batch],
        skipped=[asdict(s) for s in [*combined.skipped, *review_problems]],
        codebook=publication.parameters["codebook"] + "@" + book.sha256,
        model=model_sha, reviews=corpus_dir / "reviews", out=out_dir)
    writer = write_outputs.with_options(result_storage=storage)
    state = writer(fingerprint, str(out_dir), Bulk(publication), return_state=True)
    written = state.result()
    if state.name == "Cached":
        if outputs_intact(out_dir, written):
            incremental["outputs_rewritten"] = False
            _update_manifest(out_dir, publication)
        else:  # someone edited or deleted an output since: write them all again
            written = writer.with_options(refresh_cache=True)(
                fingerprint, str(out_dir), Bulk(publication))
    summary = json.loads((out_dir / RUN_MANIFEST).read_text(encoding="utf-8"))
    publish_artifacts(str(out_dir))
    # Where every file's records are now. After a failure the old entries stay too (the
    # next run needs them) and nothing is pruned.
    now_located = {key: pack for result in [*read.results, *scored.results]
                   if result is not None for key, pack in result.located.items()}
    write_index(storage, now_located if not failed else {**index, **now_located})
    if not failed:
        batch_records = [_record_name(state) for state in [*read.states, *scored.states]]
        batch_records.append(_record_name(state))
        if all(batch_records):
            removed = prune_results(
                storage, {RECORDS_INDEX, *now_located.values(), *batch_records})
            if removed:
                logger.info("removed %d cached results no longer used", removed)
    for failure in summary["failed_batches"]:
        logger.warning("%s failed after %d tries on %d file(s): %s", failure["task"], tries,
                       len(failure["files"]), failure["error"])
    logger.info(
        "%d documents, %d segments, %d codings, %d skipped, %d notes; %d files read, "
        "%d reused%s",
        summary["counts"]["documents"], summary["counts"]["segments"],
        summary["counts"]["codings"], summary["counts"]["skipped"],
        summary["counts"].get("notes", 0), incremental["files_read"],
        incremental["files_reused"], "" if summary["incremental"].get("outputs_rewritten")
        else "; outputs unchanged",
    )
    # The manifest less its list of input files: Prefect walks a flow's return value,
    # which costs ~0.035 s per 1,000 files (the list stays in run_manifest.json).
    return {key: value for key, value in summary.items() if key != "inputs"}


@dataclass(slots=True)
class Publication:
    """Everything the outputs of one run are written from."""

    combined: Batch
    coding: CodingResult
    codebook: Codebook
    reviews: ReviewSet
    run_id: str
    started: str
    seconds: float
    parameters: dict[str, Any]
    model: dict[str, Any]
    extra_counts: dict[str, int]
    incremental: dict[str, Any]
    failed: list[dict[str, Any]]
    processes: int = 1  # worker processes that may write outputs
    review_problems: list[Skipped] = field(default_factory=list)


def _fingerprint_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
    return _with_source(parameters["fingerprint"], context)


@task(name="write-outputs", persist_result=True,
      cache_policy=CachePolicy.from_cache_key_fn(_fingerprint_key))
def write_outputs(fingerprint: str | None, out: str, publication: Bulk) -> dict[str, str]:
    """Write the datasets, ``reliability.csv`` and the reports as one set (staged, then
    moved into ``out``); return ``{file name: sha256}``. Cached on ``fingerprint``."""
    run: Publication = publication.value
    out_dir = Path(out)
    staging = open_staging(out_dir)

    def reports() -> dict[str, str]:  # while a worker writes the wide tables
        written = {}
        if run.reviews.reviews:
            written.update(reliability(run.reviews, run.codebook, str(staging),
                                       Bulk(run.coding)))
        written.update(write_reports(str(staging), run.codebook))  # no task of its own
        return written

    try:
        manifest = write_datasets(
            staging, run.combined, codebook=run.codebook, run_id=run.run_id,
            started=run.started, seconds=run.seconds, parameters=run.parameters,
            model=run.model, coding=run.coding, extra_counts=run.extra_counts,
            processes=run.processes, meanwhile=reports, review_problems=run.review_problems,
            reviewed=run.reviews.decisions().keys())
        written = dict(manifest["outputs"])
        run.incremental["outputs_rewritten"] = True
        _finish_manifest(staging, run.incremental, run.failed, written, run.run_id)
        promote(staging, out_dir)
    except BaseException:
        discard(staging)
        raise
    return written


def _record_name(state: Any) -> str | None:
    """File name of a task's persisted result (``None`` when unknown)."""
    metadata = getattr(getattr(state, "data", None), "metadata", None)
    key = getattr(metadata, "storage_key", None)
    return Path(key).name if key else None


def _update_manifest(out: Path, run: Publication) -> None:
    """Run metadata of a run whose outputs were already up to date."""
    path = out / RUN_MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(run_id=run.run_id, started=run.started, finished=now(),
                    seconds=round(run.seconds, 3), parameters=run.parameters,
                    incremental=run.incremental, failed_batches=[])
    manifest["model"] = {**(manifest.get("model") or {}), "retrained": run.model["retrained"]}
    write_json(path, manifest)


def _finish_manifest(staging: Path, incremental: dict[str, Any], failed: list[dict[str, Any]],
                     written: dict[str, str], run_id: str) -> None:
    """Add what this run reused and what failed to the staged ``run_manifest.json``."""
    path = staging / RUN_MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["outputs"] = written
    manifest["outputs_written_by"] = run_id
    manifest["incremental"] = incremental
    manifest["failed_batches"] = failed
    write_json(path, manifest)
