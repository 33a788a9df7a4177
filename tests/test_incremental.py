"""Incremental runs on Prefect's cache: unchanged files are neither read nor scored again.

Runs the real flow against a real Prefect server (``prefect server start`` on a free
loopback port, via ``qualcode.server``), with the fast backend and a model trained once
from the codebook. The shared helpers at the top are used by the other Prefect test files.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from qualcode import server

from .conftest import ROOT, api_at

pytestmark = pytest.mark.prefect

CODEBOOK = ROOT / "codebook.yaml"
METADATA_FILES = {"run_manifest.json", "report.html"}  # carry the run id and times
RUN_METADATA = {"run_id", "started", "finished", "seconds", "incremental",
                "outputs_written_by"}


# ------------------------------------------------------------------ shared helpers


def start_test_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Prefect server per test session (reused by every module that asks)."""
    home = tmp_path_factory.getbasetemp() / "prefect-server-home"
    info, started = server.start(home, timeout=180)
    try:
        yield info.api_url
    finally:
        if started:
            server.stop(home)


@dataclass(frozen=True)
class Assets:
    codebook: Path  # the default codebook cut to one or two codes per category
    model: Path  # a fast-backend model trained from it alone


def make_assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    """A small codebook and its model, made once per session: these tests are about
    orchestration, and training for 18 codes would take most of their time."""
    import yaml

    from qualcode.codebook import load_codebook
    from qualcode.training import TrainingSet, train

    base = tmp_path_factory.getbasetemp()
    codebook, out = base / "small-codebook.yaml", base / "fast-model"
    if not (out / "model" / "model.pkl").is_file():
        data = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
        first: dict[str, int] = {}
        kept = []
        for code in data["codes"]:  # the first two codes of each category
            first[code["category"]] = first.get(code["category"], 0) + 1
            if first[code["category"]] <= 2:
                kept.append(code)
        ids = {code["id"] for code in kept}
        for code in kept:
            code["related"] = [r for r in code.get("related") or [] if r in ids]
        data["codes"] = kept
        codebook.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                            encoding="utf-8")
        train(load_codebook(codebook), TrainingSet([], [], [], [], 0), out, "fast")
    return Assets(codebook, out / "model")


def corpus_without_reviews(target: Path) -> Path:
    """The sample corpus without review files, so the codebook-only model is reused."""
    shutil.copytree(ROOT / "corpus", target, ignore=shutil.ignore_patterns("reviews"))
    return target


def output_folder(target: Path, model: Path) -> Path:
    target.mkdir(parents=True)
    shutil.copytree(model, target / "model")
    return target


def run_flow(corpus: Path, out: Path, codebook: Path, **options: Any) -> dict[str, Any]:
    from flows.code_corpus import code_corpus

    settings = {"backend": "fast", "evaluate": False, "batch_size": 4, **options}
    return code_corpus(corpus=str(corpus), codebook=str(codebook), out=str(out), **settings)


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.is_file() and p.name not in METADATA_FILES}


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A run manifest less what differs from run to run by nature."""
    kept = {k: v for k, v in record.items() if k not in RUN_METADATA}
    kept["outputs"] = {k: v for k, v in record["outputs"].items() if k not in METADATA_FILES}
    kept["parameters"] = {k: v for k, v in record["parameters"].items()
                          if k not in ("corpus", "out")}  # tests run on copies
    return kept


def task_states(run_id: str, expect: Mapping[str, int] | None = None,
                timeout: float = 30.0) -> dict[str, list[str]]:
    """State names of a flow run's task runs, by task name, once all are final.

    Task-run states reach the server as events, after the flow has returned, so wait until
    every ``expect``ed task name has at least that many runs and two reads agree.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def by_name(runs: list) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for r in sorted(runs, key=lambda r: r.name):
            found.setdefault(r.name.rsplit("-", 1)[0], []).append(
                r.state.name if r.state else "")
        return found

    deadline, previous = time.monotonic() + timeout, None
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            found = by_name(runs)
            final = bool(runs) and all(r.state is not None and r.state.is_final() for r in runs)
            complete = all(len(found.get(name, [])) >= n for name, n in (expect or {}).items())
            if (final and complete and found == previous) or time.monotonic() > deadline:
                return found
            previous = found
            time.sleep(0.5)


def segments(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "segments.csv", dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def project_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_test_server(tmp_path_factory)


@pytest.fixture
def on_server(project_server: str) -> Iterator[str]:
    with api_at(project_server):
        yield project_server


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return make_assets(tmp_path_factory)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, project_server: str, assets: Assets
              ) -> tuple[Path, Path, dict[str, Any]]:
    """A cold run of the sample corpus; tests work on copies of its corpus and outputs."""
    base = tmp_path_factory.mktemp("first-run")
    corpus = corpus_without_reviews(base / "corpus")
    out = output_folder(base / "out", assets.model)
    with api_at(project_server):
        summary = run_flow(corpus, out, assets.codebook)
    return corpus, out, summary


@pytest.fixture
def copied(first_run: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, Path]:
    corpus, out, _ = first_run
    return (Path(shutil.copytree(corpus, tmp_path / "corpus")),
            Path(shutil.copytree(out, tmp_path / "out")))


# --------------------------------------------------------------------------- tests


def test_batches_are_stable_when_files_come_and_go():
    from flows.incremental import plan_batches

    paths = [f"transcripts/int_{i:04d}.txt" for i in range(0, 1000, 2)]
    before = plan_batches(paths, 10)
    assert sorted(p for b in before for p in b) == sorted(paths)
    assert 20 <= len(before) <= 100 and max(map(len, before)) <= 40
    for changed in (
        [*paths, "transcripts/int_0501.txt"],  # one file added
        [p for p in paths if p != "transcripts/int_0500.txt"],  # one removed
    ):
        after = plan_batches(changed, 10)
        untouched = {tuple(b) for b in before} & {tuple(b) for b in after}
        assert len(before) - len(untouched) <= 2  # the batch around the change, at most
        assert len(after) - len(untouched) <= 2


def test_batches_of_short_files_hold_more_of_them_and_stay_stable():
    from flows.incremental import MAX_STRETCH, SHORT_FILE_BYTES, _stretch, plan_batches

    assert [_stretch(n) for n in (0, 100, 256, 257, 1024, 2048, 2049, 4096, 10**6)] == [
        MAX_STRETCH, MAX_STRETCH, MAX_STRETCH, 8, 4, 2, 1, 1, 1]
    paths = [f"transcripts/int_{i:05d}.txt" for i in range(20_000)]
    long = plan_batches(paths, 100, dict.fromkeys(paths, SHORT_FILE_BYTES))
    assert long == plan_batches(paths, 100)  # files of a usual length: as by count
    short = plan_batches(paths, 100, dict.fromkeys(paths, 300))  # stretched 8 times
    assert sorted(p for b in short for p in b) == paths
    assert len(long) > 120 and 10 <= len(short) <= 50
    # a short file ends a batch only where a long one would: batches only merge
    ends = {b[-1] for b in long}
    assert {b[-1] for b in short[:-1]} <= ends
    # one file added or grown past the limit changes the batches around it only
    lengths = dict.fromkeys(paths, 300)
    for changed, changed_lengths in (
        ([*paths, "transcripts/int_10000a.txt"], {**lengths, "transcripts/int_10000a.txt": 50}),
        (paths, {**lengths, short[3][-1]: 10**6, short[7][5]: 10**6}),
    ):
        after = plan_batches(changed, 100, changed_lengths)
        untouched = {tuple(b) for b in short} & {tuple(b) for b in after}
        assert len(short) - len(untouched) <= 3 and len(after) - len(untouched) <= 4


def test_ingest_keys_follow_content_manifest_and_settings(tmp_path):
    from flows.incremental import ingest_keys
    from qualcode.ingest import load_manifest

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Interviewer: Hi?\n\nRespondent: Hello.\n", encoding="utf-8")
    (corpus / "b.txt").write_text("Interviewer: Why?\n\nRespondent: Because.\n",
                                  encoding="utf-8")

    def keys(**changes):
        settings = {"interviewer_labels": ["Interviewer"], "max_turn_chars": 4000, **changes}
        return ingest_keys(corpus, ["a.txt", "b.txt"], load_manifest(corpus), **settings)

    first = keys()
    assert keys() == first
    (corpus / "b.txt").write_text("Interviewer: Why?\n\nRespondent: No.\n", encoding="utf-8")
    edited = keys()
    assert edited["a.txt"] == first["a.txt"] and edited["b.txt"] != first["b.txt"]
    assert keys(max_turn_chars=100)["a.txt"] != edited["a.txt"]
    (corpus / "manifest.csv").write_text("file,case\na.txt,yemen\n", encoding="utf-8")
    assert keys()["a.txt"] != edited["a.txt"]


def test_cold_run_reads_and_scores_every_file(first_run):
    _, out, summary = first_run
    done = summary["incremental"]
    files = summary["counts"]["files"]
    assert files == 19 and done["files_read"] == files and done["files_reused"] == 0
    assert done["segments_scored"] == summary["counts"]["codable_segments"] > 100
    assert done["ingest_batches_cached"] == done["code_batches_cached"] == 0
    assert summary["failed_batches"] == []
    storage = out / "cache" / "prefect-results"
    assert done["result_storage"] == str(storage)
    assert storage.stat().st_mode & 0o777 == 0o700  # persisted results hold text
    assert not (out / ".incoming").exists()


def test_prefect_database_holds_no_transcript_text(first_run, tmp_path_factory):
    """Run records, states, events and artifacts name files and counts, never their text:
    a persisted result is a path in the database, its content stays under ``out``."""
    import sqlite3

    _, out, summary = first_run
    done = summary["incremental"]
    # the server records task runs from events, after the flow returned
    task_states(summary["run_id"], {"ingest-batch": done["ingest_batches"],
                                    "code-batch": done["code_batches"], "write-outputs": 1})
    home = tmp_path_factory.getbasetemp() / "prefect-server-home"
    database = b"".join(p.read_bytes() for p in home.glob("prefect.db*"))
    assert b"ingest-batch" in database and b"qualcode-frequencies" in database
    for phrase in ("nine-month cover assignment", "fragmented the state into rival"):
        assert phrase in (ROOT / "corpus").joinpath(
            "transcripts/yem_int_01.txt" if "nine" in phrase else "literature/excerpts.csv"
        ).read_text(encoding="utf-8")
        assert phrase.encode() not in database
    with sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True) as db:
        stored = [json.loads(data) for (data,) in db.execute(
            "select data from task_run_state where data is not null")]
    assert stored and all(set(d) <= {"storage_key", "expiration", "serializer",
                                     "prefect_version", "storage_block_id"} for d in stored)
    assert any(d["storage_key"].startswith(str(out / "cache" / "prefect-results"))
               for d in stored)


def test_unchanged_rerun_is_cached_and_byte_identical(first_run, copied, on_server, assets):
    _, first_out, first = first_run
    corpus, out = copied
    summary = run_flow(corpus, out, assets.codebook)
    done = summary["incremental"]
    assert done["files_read"] == 0 and done["segments_scored"] == 0
    assert done["ingest_batches_cached"] == done["ingest_batches"]
    assert done["code_batches_cached"] == done["code_batches"]
    states = task_states(summary["run_id"], {"ingest-batch": done["ingest_batches"],
                                             "code-batch": done["code_batches"],
                                             "write-outputs": 1})
    assert set(states["ingest-batch"]) == {"Cached"}
    assert set(states["code-batch"]) == {"Cached"}
    assert len(states["ingest-batch"]) == done["ingest_batches"]
    # nothing changed, so the outputs were not even rewritten; the manifest says so
    assert done["outputs_rewritten"] is False and states["write-outputs"] == ["Cached"]
    assert outputs(out) == outputs(first_out)
    assert comparable(manifest(out)) == comparable(manifest(first_out))
    assert manifest(out)["run_id"] == summary["run_id"] != first["run_id"]
    assert manifest(out)["outputs_written_by"] == first["run_id"]

    # an output deleted by hand is noticed: the set is written again
    (out / "quotes.md").unlink()
    again = run_flow(corpus, out, assets.codebook)
    assert again["incremental"]["outputs_rewritten"] is True
    assert again["incremental"]["files_read"] == again["incremental"]["segments_scored"] == 0
    assert outputs(out) == outputs(first_out)


def test_cached_batches_whose_records_are_gone_run_again(first_run, copied, on_server,
                                                        assets):
    from flows.incremental import results_dir

    _, first_out, first = first_run
    corpus, out = copied
    packs = list(results_dir(out).glob("pack-*"))
    assert packs  # the per-file records; Prefect's batch results only point at them
    for pack in packs:
        pack.unlink()
    summary = run_flow(corpus, out, assets.codebook)
    done = summary["incremental"]
    assert summary["failed_batches"] == []
    assert done["files_read"] == first["incremental"]["files_read"] > 0
    assert done["ingest_batches_cached"] == done["code_batches_cached"] == 0
    assert outputs(out) == outputs(first_out)
    assert list(results_dir(out).glob("pack-*"))  # written again
    again = run_flow(corpus, out, assets.codebook)
    assert again["incremental"]["files_read"] == 0


def test_an_added_file_is_the_only_one_read_and_scored(first_run, copied, on_server, assets):
    _, first_out, _ = first_run
    corpus, out = copied
    (corpus / "transcripts" / "new_int_01.txt").write_text(
        "---\ndoc_id: NEW-INT-01\ncase: yemen\n---\n"
        "Interviewer: How did you get the permits back?\n\n"
        "Respondent: The elders spoke to the governor and we agreed to share the "
        "distribution lists with the local council.\n\n"
        "Interviewer: And then?\n\n"
        "Respondent: The checkpoints opened again after two weeks.\n", encoding="utf-8")
    summary = run_flow(corpus, out, assets.codebook)
    done = summary["incremental"]
    assert done["files_read"] == 1 and done["files_scored"] == 1
    assert done["segments_scored"] == 2  # the respondent's two turns
    assert done["ingest_batches"] - done["ingest_batches_cached"] <= 2
    states = task_states(summary["run_id"], {"ingest-batch": done["ingest_batches"],
                                             "code-batch": done["code_batches"]})
    assert states["ingest-batch"].count("Cached") == done["ingest_batches_cached"]
    assert states["code-batch"].count("Cached") == done["code_batches_cached"]
    new, old = segments(out), segments(first_out)
    assert set(new.loc[new["doc_id"] == "NEW-INT-01", "segment_id"]) == {
        f"NEW-INT-01:{i}" for i in range(1, 5)}
    unchanged = new[new["doc_id"] != "NEW-INT-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(unchanged[list(old.columns)], old)


def test_a_deleted_file_leaves_the_outputs(first_run, copied, on_server, assets):
    _, first_out, first = first_run
    corpus, out = copied
    (corpus / "transcripts" / "oth_int_02.txt").unlink()
    summary = run_flow(corpus, out, assets.codebook)
    assert summary["incremental"]["files_read"] == 0
    assert summary["counts"]["files"] == first["counts"]["files"] - 1
    gone = set(segments(first_out).query("doc_id == 'OTH-INT-02'")["segment_id"])
    assert gone and not gone & set(segments(out)["segment_id"])
    codings = pd.read_csv(out / "codings.csv", dtype=str, keep_default_na=False)
    assert "OTH-INT-02" not in set(codings["doc_id"])


def test_a_failing_batch_is_retried_reported_and_done_next_run(copied, on_server, assets,
                                                               monkeypatch):
    import flows.code_corpus as module

    corpus, out = copied
    (corpus / "transcripts" / "zz_new.txt").write_text(
        "Interviewer: Anything else?\n\nRespondent: The council asked for the lists.\n",
        encoding="utf-8")
    real, calls = module.process_batch, []

    def failing(corpus_dir, paths, *args, **kwargs):  # a crash only this file triggers
        if "transcripts/zz_new.txt" in paths:
            calls.append(list(paths))
            raise MemoryError("the reader ran out of memory")
        return real(corpus_dir, paths, *args, **kwargs)

    monkeypatch.setattr(module, "process_batch", failing)
    # one worker: the patched reader runs (and counts its calls) in this process
    summary = run_flow(corpus, out, assets.codebook, workers=1)
    assert len(calls) == 1 + module.RETRIES  # tried, retried, then given up
    [failure] = summary["failed_batches"]
    assert failure["task"] == "ingest-batch" and "transcripts/zz_new.txt" in failure["files"]
    assert failure["error"].startswith("MemoryError while reading")
    skipped = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert all("batch failed 3 times" in skipped[p] for p in failure["files"])
    lost = set(failure["files"])
    kept = segments(out)
    assert kept["doc_id"].nunique() > 50  # every other batch landed
    assert manifest(out)["failed_batches"] == summary["failed_batches"]
    states = task_states(summary["run_id"],
                         {"ingest-batch": summary["incremental"]["ingest_batches"]})
    assert states["ingest-batch"].count("Failed") == 1

    monkeypatch.setattr(module, "process_batch", real)
    again = run_flow(corpus, out, assets.codebook)
    assert again["failed_batches"] == [] and again["incremental"]["files_read"] == 1
    assert again["counts"]["files"] == summary["counts"]["files"] + len(lost)
    assert "zz_new" in set(segments(out)["doc_id"])


def test_a_crash_while_writing_keeps_the_previous_outputs(copied, on_server, assets,
                                                          monkeypatch):
    import flows.code_corpus as module

    corpus, out = copied
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (corpus / "transcripts" / "yem_int_01.txt").unlink()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "write_reports", crash)  # datasets staged, reports not
    with pytest.raises(OSError):
        run_flow(corpus, out, assets.codebook)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not (out / ".incoming").exists()


def test_the_source_fingerprint_covers_the_reports_template(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    import qualcode
    from flows.incremental import source_fingerprint

    def fingerprint(*excluded: str) -> str:
        source_fingerprint.cache_clear()  # (cached for a run: the files do not change)
        return source_fingerprint(excluded)

    package = tmp_path / "qualcode"
    (package / "templates").mkdir(parents=True)
    (package / "__pycache__").mkdir()
    (package / "__init__.py").write_text("")
    (package / "templates" / "report.html.j2").write_text("<h1>{{ title }}</h1>")
    monkeypatch.setattr(qualcode, "__file__", str(package / "__init__.py"))
    try:
        before = fingerprint()
        (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
        assert fingerprint() == before  # compiled files are not source
        without = fingerprint("templates")
        (package / "templates" / "report.html.j2").write_text("<h2>{{ title }}</h2>")
        assert fingerprint() != before  # a new template rewrites report.html
        assert fingerprint("templates") == without  # and does not touch reading's keys
    finally:
        monkeypatch.undo()
        source_fingerprint.cache_clear()
