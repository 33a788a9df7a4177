"""Incremental runs on Prefect's own result caching: content-hash keys and stable batches.

Two layers, both stored by Prefect's ``ResultStore`` in one project-local folder
(``<out>/cache/prefect-results``, mode 0700, inside the git-ignored ``outputs/``):

- **Task level.** ``ingest-batch`` and ``code-batch`` carry a cache policy whose key is a
  hash of their files' keys (plus the task's source). An unchanged batch is not run at
  all: Prefect returns its persisted result and records the task run as ``Cached``.
- **File level.** Inside a batch that did change, every file's result is looked up under
  its own key, so adding or editing one file re-reads and re-scores that file only. These
  records are written as one pack per task run, found through ``records-index.json``.

Keys are built from content, never from Python objects (spaCy and scikit-learn objects
hash differently in every process):

- ingest: the file's sha256, its manifest row, the reading settings, and the library's
  source (less the classifier and output modules), so a new qualcode version re-reads;
- coding: the segment ids and texts, the coders' decisions on them, the model file's
  sha256, the codebook's sha256 and the library's source (less the output modules).

Batches are cut where a hash of the path says so (content-defined chunking), not every N
files, so a new file changes only the batch it falls into.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import qualcode
from qualcode.corpus import Batch
from qualcode.documents import Segment
from qualcode.ingest import Manifest
from qualcode.outputs import EVALUATION_CSV, write_json

RESULTS_DIR = Path("cache") / "prefect-results"
# Library modules that cannot change what reading or scoring produces. Everything else is
# part of the keys (a module added later is included until it is listed here).
_OUTPUT_ONLY = ("cli.py", "server.py", "report.py", "report_html.py", "report_tables.py",
                "review_sheets.py", "reliability.py", "datasets.py", "outputs.py",
                "provenance.py", "templates")
_CLASSIFIER = ("model.py", "embed.py", "rules.py", "classify.py", "training.py",
               "evaluate.py", "codebook.py", "reviews.py")
INGEST_EXCLUDED = _OUTPUT_ONLY + _CLASSIFIER
CODING_EXCLUDED = _OUTPUT_ONLY
# A batch is cut after at most this many times the wanted size, whatever the hashes say.
MAX_BATCH_FACTOR = 4
# With files' lengths, a file shorter than this ends a batch half as often per halving of
# its length, down to 1/MAX_STRETCH as often: a batch of short files holds about as much
# text as one of files this long (each task run costs Prefect ~0.1 s, whatever its size).
SHORT_FILE_BYTES = 4096
MAX_STRETCH = 16


def results_dir(out: str | Path) -> Path:
    """The folder of persisted task results (absolute, private to the user)."""
    folder = (Path(out) / RESULTS_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # Persisted results are pickles that contain transcript text.
    os.chmod(folder, 0o700)
    return folder


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (from a file name that is not UTF-8 or a damaged
    file) is kept as its own bytes, so that hashing never fails and never mixes two texts."""
    return text.encode("utf-8", "surrogatepass")


def _sha(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else _utf8(part))
        digest.update(b"\0")
    return digest.hexdigest()


@cache
def source_fingerprint(excluded: tuple[str, ...] = ()) -> str:
    """sha256 of the library's files (Python source, the report's template), less the
    ``excluded`` top-level entries."""
    root = Path(qualcode.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if (relative.parts[0] in excluded or "__pycache__" in relative.parts
                or path.suffix == ".pyc" or not path.is_file()):
            continue
        digest.update(_utf8(relative.as_posix()) + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _stable_hash(path: str) -> int:
    return int.from_bytes(hashlib.sha256(_utf8(path)).digest()[:8], "big")


def plan_batches(paths: Sequence[str], size: int,
                 lengths: Mapping[str, int] | None = None) -> list[list[str]]:
    """Split sorted corpus paths into batches of about ``size`` files, stably.

    A batch ends after a path whose hash is divisible by ``size`` (or after
    ``MAX_BATCH_FACTOR * size`` files), so adding, removing or editing one file changes
    one batch and leaves the others, and their cache keys, as they were. With
    ``lengths`` (each file's bytes), a short file must also have its hash divided by
    ``size`` divisible by its :func:`_stretch` (and counts 1/stretch of a file), so that
    batches of short files hold more of them; a file whose edit changes its stretch
    may join or split the batches around it.
    """
    size = max(1, size)
    batches: list[list[str]] = []
    current: list[str] = []
    weight = 0.0  # files so far, a short file counting 1/stretch
    for path in sorted(paths):
        current.append(path)
        turn, rest = divmod(_stable_hash(path), size)
        stretch = 1 if lengths is None else _stretch(lengths.get(path, SHORT_FILE_BYTES))
        weight += 1 / stretch
        if (rest == 0 and turn % stretch == 0) or weight >= MAX_BATCH_FACTOR * size:
            batches.append(current)
            current, weight = [], 0.0
    if current:
        batches.append(current)
    return batches


def _stretch(length: int) -> int:
    """How many times less often a file of ``length`` bytes ends a batch: 1 for one of
    more than half ``SHORT_FILE_BYTES``, 2 for half or less, 4 for a quarter or less, ...
    at most ``MAX_STRETCH`` (powers of two: a file that ends a batch at a stretch ends
    one at every smaller stretch too)."""
    stretch = 1
    while stretch < MAX_STRETCH and length * stretch * 2 <= SHORT_FILE_BYTES:
        stretch *= 2
    return stretch


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def ingest_keys(
    corpus: Path, paths: Iterable[str], manifest: Manifest, interviewer_labels: Sequence[str],
    max_turn_chars: int,
) -> dict[str, tuple[str | None, str | None]]:
    """Each file's ``(ingest key, sha256)``; ``None`` for a file that cannot be read now
    (such a file is never cached: the task reports why it cannot be read)."""
    settings = json.dumps({"labels": list(interviewer_labels), "max_turn_chars": max_turn_chars,
                           "code": source_fingerprint(INGEST_EXCLUDED),
                           "versions": versions()}, sort_keys=True)
    # Rows keyed by doc_id may apply to any file: they are part of every key.
    by_doc = _sha(json.dumps([manifest.by_doc_id, manifest.columns], sort_keys=True))
    keys: dict[str, tuple[str | None, str | None]] = {}
    for path in paths:
        content = file_sha256(corpus / path)
        row = json.dumps(manifest.by_file.get(path), sort_keys=True)
        keys[path] = (None if content is None else "ingest-" + _sha(
            path, content, row, by_doc, settings), content)
    return keys


@lru_cache(maxsize=4)
def _coding_digest(model_sha256: str, codebook_sha256: str) -> Any:
    """sha256 so far of what every file's coding key starts with (copied, never updated)."""
    digest = hashlib.sha256()
    for part in (model_sha256, codebook_sha256, source_fingerprint(CODING_EXCLUDED),
                 json.dumps(versions(), sort_keys=True)):
        digest.update(_utf8(part) + b"\0")
    return digest


def coding_key(
    segments: Sequence[Segment], decisions: Mapping[str, frozenset[str]], model_sha256: str,
    codebook_sha256: str,
) -> str:
    """The key of one file's coding: its codable segments, their reviews, model, codebook."""
    digest = _coding_digest(model_sha256, codebook_sha256).copy()
    for seg in segments:
        human = decisions.get(seg.segment_id)
        reviewed = "" if human is None else "\x1f".join(sorted(human)) + "\x1e"
        digest.update(_utf8(f"{seg.segment_id}\0{seg.text}\0{reviewed}\n"))
    return "code-" + digest.hexdigest()


def batch_key(keys: Sequence[str | None]) -> str | None:
    """A batch's key from its files' keys; ``None`` (do not cache) if any file has none."""
    if any(k is None for k in keys):
        return None
    return _sha(*(k for k in keys if k is not None))


@cache
def versions() -> dict[str, str]:
    """Python's and the libraries' versions (a new spaCy may read or match differently)."""
    from qualcode.provenance import versions as found

    return found()


def _tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(_utf8(path.relative_to(folder).as_posix()) + b"\0")
            digest.update((file_sha256(path) or "unreadable").encode() + b"\n")
    return digest.hexdigest()


def outputs_fingerprint(*, ingest: Sequence[str | None], coding: Sequence[str],
                        skipped: Sequence[Mapping[str, Any]], codebook: str, model: str,
                        reviews: Path, out: Path) -> str | None:
    """What a run's outputs are made from; equal fingerprints give equal outputs.

    The batches' keys cover the corpus, the settings, the codebook, the model and the
    reviews' decisions; added here: what was skipped and why, the review files (for the
    reliability table), ``evaluation.csv`` (read by the reports), the model's metadata and
    the code that writes the outputs.
    """
    if any(key is None for key in ingest):
        return None
    model_meta = Path(out) / "model" / "model.json"
    return "outputs-" + _sha(json.dumps({
        "ingest": list(ingest), "coding": list(coding), "skipped": list(skipped),
        "codebook": codebook, "model": model, "model_meta": file_sha256(model_meta) or "",
        "reviews": _tree_sha256(reviews),
        "evaluation": file_sha256(Path(out) / EVALUATION_CSV) or "",
        "code": source_fingerprint(()), "versions": versions(),
    }, sort_keys=True))


def outputs_intact(out: Path, written: Mapping[str, str]) -> bool:
    """Whether every output file is still the one a run wrote (same sha256)."""
    return bool(written) and all(file_sha256(out / name) == sha
                                 for name, sha in written.items())


def prune_results(folder: Path, keep: Iterable[str]) -> int:
    """Delete the persisted results in ``folder`` that are not in ``keep``; return how many.

    Called after a run without failures: whatever it did not read or write belongs to
    files, batches or outputs that no longer exist.
    """
    keep = set(keep)
    removed = 0
    for path in folder.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def split_by_file(batch: Batch, paths: Sequence[str]) -> dict[str, Batch]:
    """One :class:`Batch` per input path (documents, segments, skips and file records)."""
    parts = {path: Batch() for path in paths}
    for doc, segs in zip(batch.documents, batch.segments, strict=True):
        parts[doc.path].documents.append(doc)
        parts[doc.path].segments.append(segs)
    for skipped in batch.skipped:
        parts.setdefault(skipped.path, Batch()).skipped.append(skipped)
    for record in batch.files:
        parts[record.path].files.append(record)
    return parts


RECORDS_INDEX = "records-index.json"


class RowsOf(NamedTuple):
    """A record that is rows ``start:stop`` of a result (``whole.rows``) shared by the
    records of one pack: pickled once per pack, not once per file (20,000 one-answer
    files' codings took 0.6 s to pickle and 0.5 s to load one by one, 0.09 s and 0.04 s
    so)."""

    whole: Any
    start: int
    stop: int


class FileRecords:
    """Per-file results of one task run: read from their *packs* in the task result
    folder, found through an index that only the flow writes (:func:`load_index`,
    :func:`write_index`). New ones are written by :func:`record`, one pack (a pickle of
    ``{file key: result}``) per task run or per share of one in a worker process.

    One pack per batch rather than one file per file: creating a small file cost ~0.65 ms
    on our disks, 1.4 s for a 1,000-file corpus's ingest and coding records. Packs have
    unique names, so tasks on other threads, processes or Dask workers never write the
    same file.
    """

    def __init__(self, located: Mapping[str, str], folder: Path | None = None) -> None:
        if folder is None:
            from prefect.results import get_result_store

            folder = Path(get_result_store().result_storage.basepath)
        self.folder = folder
        self.located = dict(located)  # file key -> pack holding its record
        self.fresh: dict[str, str] = {}  # records written in this task run: key -> pack
        self._packs: dict[str, dict[str, Any]] = {}

    def get(self, key: str | None) -> Any | None:
        pack = self.located.get(key) if key is not None else None
        if pack is None:
            return None
        if pack not in self._packs:
            try:
                self._packs[pack] = pickle.loads((self.folder / pack).read_bytes())
            except Exception:  # missing, unreadable or from an incompatible version
                self._packs[pack] = {}
        found = self._packs[pack].get(key)
        return found.whole.rows(found.start, found.stop) if isinstance(found, RowsOf) else found

    def saved(self, located: Mapping[str, str]) -> None:
        """New records, written by :func:`record` (in the process that made them)."""
        self.fresh.update(located)

    def save(self) -> dict[str, str]:
        """Where every record of this task run is now: those read and those written."""
        found = {key: pack for key, pack in self.located.items()
                 if self._packs.get(pack, {}).get(key) is not None}
        found.update(self.fresh)
        return found


def record(folder: Path, records: Mapping[str, Any]) -> dict[str, str]:
    """Write ``{file key: result}`` as one new pack in ``folder``; return where each is."""
    name = f"pack-{uuid.uuid4().hex}"
    # temp file (mode 0600) + rename: a reader never sees half a pack
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(dict(records), handle, protocol=5)
        os.replace(tmp, Path(folder) / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dict.fromkeys(records, name)


def read_and_record(reader: Callable[..., Batch], corpus: str,
                    files: Sequence[tuple[str, str | None, str | None]],
                    interviewer_labels: Sequence[str], max_turn_chars: int, folder: str
                    ) -> tuple[dict[str, Batch], dict[str, str], list[str]]:
    """Read and segment ``files`` (``(path, key, sha256)``) with ``reader``
    (:func:`qualcode.corpus.process_batch`) and record each file's part where it was
    read (so a worker process, not the flow, pickles it).

    Returns the parts by path, where each recorded part is (file key -> pack), and the
    files whose content changed since the flow hashed them: their keys no longer describe
    them, so then nothing is recorded. A file without a key (unreadable when hashed) is
    never recorded.
    """
    paths = [path for path, _, _ in files]
    parts = split_by_file(reader(corpus, paths, list(interviewer_labels), max_turn_chars),
                          paths)
    changed = [path for path, key, sha in files if key is not None
               and [r.sha256 for r in parts[path].files] != [sha]]
    keep = {key: parts[path] for path, key, _ in files if key is not None}
    return parts, {} if changed or not keep else record(Path(folder), keep), changed


def load_index(folder: Path) -> dict[str, str]:
    """File key -> pack, as the last run left it (empty if there is none)."""
    try:
        index = json.loads((folder / RECORDS_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def write_index(folder: Path, index: Mapping[str, str]) -> None:
    write_json(folder / RECORDS_INDEX, dict(sorted(index.items())))
