"""End-to-end: the Prefect flow and the CLI on real corpora, asserting on the outputs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from qualcode.codebook import CodebookError
from qualcode.ingest import ingest_corpus
from qualcode.outputs import SEGMENT_COLUMNS

from .conftest import ROOT

pytestmark = pytest.mark.prefect


def _read_segments(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "segments.csv", dtype=str, keep_default_na=False)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_flow_segments_sample_corpus(prefect_harness, sample_corpus, codebook_path, tmp_path):
    from flows.code_corpus import code_corpus

    out = tmp_path / "outputs"
    summary = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                          batch_size=4, backend="fast", evaluate=False)
    segments = _read_segments(out)
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))

    assert list(segments.columns[: len(SEGMENT_COLUMNS)]) == list(SEGMENT_COLUMNS)
    assert {"case", "date"} <= set(segments.columns)
    assert segments["segment_id"].is_unique
    assert manifest["skipped"] == []
    assert manifest["counts"]["segments"] == len(segments) == summary["counts"]["segments"]
    assert manifest["counts"]["codable_segments"] == (segments["codable"] == "True").sum()
    assert manifest["codebook"]["sha256"] == _sha(codebook_path)
    assert manifest["outputs"]["segments.csv"] == _sha(out / "segments.csv")
    files = sorted(p for p in sample_corpus.rglob("*.*") if p.parent != sample_corpus
                   and p.parent.name != "reviews" and not p.name.startswith("."))
    assert {i["path"]: i["sha256"] for i in manifest["inputs"]} == {
        p.relative_to(sample_corpus).as_posix(): _sha(p) for p in files
    }

    # every segment is the exact slice of its document's text, and ids follow the contract
    docs = {d.doc_id: d for d in ingest_corpus(sample_corpus).documents}
    assert set(segments["doc_id"]) == set(docs)
    for row in segments.itertuples():
        doc = docs[row.doc_id]
        assert doc.text[int(row.char_start) : int(row.char_end)] == row.text
        suffix = row.segment_id.removeprefix(f"{row.doc_id}:")
        if row.source_type == "interview":
            assert suffix.split(".")[0] == row.turn
        elif doc.layout == "excerpt":
            assert suffix == "1" and row.turn == ""
    interviews = segments[segments["source_type"] == "interview"]
    assert interviews["doc_id"].nunique() >= 10
    interviewer = interviews["speaker"].str.casefold() == "interviewer"
    assert interviewer.any() and (interviews.loc[interviewer, "codable"] == "False").all()
    assert (segments["source_type"] == "literature").sum() >= 40

    # a second run gives byte-identical segments (stable ids)
    first = (out / "segments.csv").read_bytes()
    second = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                         backend="fast", evaluate=False)
    assert (out / "segments.csv").read_bytes() == first
    assert second["model"]["retrained"] is None  # unchanged reviews: the saved model is reused
    _check_codings_and_reports(out, segments, sample_corpus)


def _check_codings_and_reports(out: Path, segments: pd.DataFrame, corpus: Path) -> None:
    """codings.csv agrees with coded_segments.csv, humans win, reports recompute."""
    codings = pd.read_csv(out / "codings.csv", dtype=str, keep_default_na=False)
    coded = pd.read_csv(out / "coded_segments.csv", dtype=str, keep_default_na=False)
    assert list(codings.columns) == ["segment_id", "doc_id", "code_id", "category", "score",
                                     "method", "evidence"]
    assert list(coded["segment_id"]) == list(segments["segment_id"])
    codable = set(segments.loc[segments["codable"] == "True", "segment_id"])
    assert set(codings["segment_id"]) <= codable
    pairs = {(r.segment_id, r.code_id) for r in codings.itertuples()}
    wide = {(r["segment_id"], c) for _, r in coded.iterrows() for c in r["codes"].split(";")
            if c}
    assert pairs == wide
    assert set(codings["method"]) <= {"rule", "model", "human"}
    reviews = pd.read_csv(corpus / "reviews" / "coder_a.csv", dtype=str, keep_default_na=False)
    only_a = set(reviews["segment_id"]) - set(
        pd.read_csv(corpus / "reviews" / "coder_b.csv", dtype=str)["segment_id"])
    for row in reviews[reviews["segment_id"].isin(only_a)].itertuples():
        applied = set(codings.loc[codings["segment_id"] == row.segment_id, "code_id"])
        assert applied == {c for c in row.codes.split(";") if c}, row.segment_id
        assert set(codings.loc[codings["segment_id"] == row.segment_id, "method"]) <= {"human"}
    assert (codings["method"] != "human").any()  # the unreviewed documents were coded too
    # segments.csv says which segments a coder decided, "no code" decisions included
    reviewed = set(segments.loc[segments["reviewed"] == "True", "segment_id"])
    no_code = {r.segment_id for r in reviews.itertuples() if not r.codes.strip()} & codable
    assert no_code and no_code <= reviewed <= codable
    assert reviewed >= set(codings.loc[codings["method"] == "human", "segment_id"])

    freq = pd.read_csv(out / "frequencies.csv")
    n_codable = len(codable)
    for row in freq.itertuples():
        hits = codings[codings["code_id"] == row.code_id]
        assert row.segments == hits["segment_id"].nunique()
        assert row.documents == hits["doc_id"].nunique()
        assert row.share_of_segments == pytest.approx(row.segments / n_codable, abs=1e-4)
    cooc = pd.read_csv(out / "cooccurrence.csv").set_index("code_id")
    sets = codings.groupby("segment_id")["code_id"].apply(set)
    for a in cooc.index[:5]:
        for b in cooc.columns[:5]:
            assert cooc.loc[a, b] == sum(1 for codes in sets if a in codes and b in codes)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<html" in html and "http://" not in html.replace("http://www.w3.org", "")
    assert (out / "reliability.csv").is_file()


def _bad_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    (corpus / "transcripts").mkdir(parents=True)
    good = "Interviewer: Where do you work?\n\nRespondent: In Saada, with a local partner.\n"
    (corpus / "transcripts" / "good.txt").write_text(good, encoding="utf-8")
    (corpus / "transcripts" / "empty.txt").write_bytes(b"")
    (corpus / "transcripts" / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "transcripts" / "corrupt.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (corpus / "transcripts" / "undecodable.txt").write_bytes(b"Interviewer: caf\x81\x8d\x90\n")
    dup = "---\ndoc_id: GOOD\n---\nInterviewer: Hello?\n\nRespondent: Hello.\n"
    (corpus / "transcripts" / "a_dup.txt").write_text(dup, encoding="utf-8")
    (corpus / "transcripts" / "b_dup.txt").write_text(dup, encoding="utf-8")
    (root / "outside.txt").write_text("Interviewer: secret?\n\nRespondent: SECRET-TEXT\n")
    # read, with a note (not a skip): NUL padding left by an interrupted copy
    padded = "Interviewer: And the road?\n\nRespondent: It opened in May.\n"
    (corpus / "transcripts" / "padded.txt").write_bytes(padded.encode() + b"\0" * 64)
    (corpus / "manifest.csv").write_text(
        "file,doc_id,case\n"
        "transcripts/good.txt,YEM-GOOD,yemen\n"
        "transcripts/missing.txt,MISSING,yemen\n"
        "../outside.txt,OUTSIDE,yemen\n",
        encoding="utf-8",
    )
    return corpus


def test_flow_bad_input_keeps_good_files(prefect_harness, codebook_path, tmp_path):
    from flows.code_corpus import code_corpus

    corpus = _bad_corpus(tmp_path)
    out = tmp_path / "outputs"
    summary = code_corpus(corpus=str(corpus), codebook=str(codebook_path), out=str(out),
                          backend="fast")
    segments = _read_segments(out)
    assert set(segments["doc_id"]) == {"YEM-GOOD", "GOOD", "padded"}
    assert "SECRET-TEXT" not in (out / "segments.csv").read_text(encoding="utf-8-sig")
    reasons = {(s["path"], s["reason"].split(" — ")[0]) for s in summary["skipped"]}
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    assert manifest["skipped"] == summary["skipped"]
    by_path = {}
    for entry in manifest["skipped"]:
        by_path.setdefault(entry["path"], []).append(entry["reason"])
    assert "is empty" in by_path["transcripts/empty.txt"][0]
    assert "binary" in by_path["transcripts/binary.txt"][0]
    assert ".docx" in by_path["transcripts/corrupt.docx"][0]
    assert "UTF-8" in by_path["transcripts/undecodable.txt"][0]
    assert "duplicate doc_id 'GOOD'" in by_path["transcripts/b_dup.txt"][0]
    manifest_problems = " | ".join(by_path["manifest.csv"])
    assert "'transcripts/missing.txt' does not exist" in manifest_problems
    assert "outside the corpus folder" in manifest_problems
    assert len(reasons) == 7
    assert manifest["counts"]["skipped"] == len(manifest["skipped"])
    assert manifest["notes"] == summary["notes"] == [{
        "path": "transcripts/padded.txt", "line": 4, "reason": manifest["notes"][0]["reason"]}]
    assert manifest["notes"][0]["reason"].startswith("ended in 64 NUL bytes")
    assert manifest["counts"]["notes"] == 1
    from qualcode.report import artifact_markdown

    assert ("## Notes on files that were read (1)\n\n- `transcripts/padded.txt:4`: ended in"
            in artifact_markdown(out))
    assert "Notes on files that were read (1)" in (out / "report.html").read_text("utf-8")


def test_a_file_that_crashes_reading_or_coding_does_not_take_its_batch_down(
    prefect_harness, sample_corpus, codebook_path, tmp_path, monkeypatch
):
    """Fault injection (no real file crashes qualcode that we know of): one file fails in
    reading, another in coding; both are skipped with their reason, the rest is coded."""
    import flows.code_corpus as flow_module
    from flows.code_corpus import code_corpus
    from qualcode import parallel
    from qualcode.corpus import process_batch

    unreadable, uncodable = "transcripts/mmr_int_01.txt", "transcripts/yem_int_02.txt"

    def reading(corpus, paths, *args):
        if unreadable in paths:
            raise RuntimeError("injected reading failure")
        return process_batch(corpus, paths, *args)

    def scoring(*args):
        if any(s.segment_id.startswith("YEM-INT-02:") for s in args[3]):
            raise RuntimeError("injected coding failure")
        return score_here(*args)

    score_here = parallel.score_here
    monkeypatch.setattr(flow_module, "process_batch", reading)
    monkeypatch.setattr(parallel, "score_here", scoring)
    out = tmp_path / "outputs"
    # one process: the injected faults live in this one
    summary = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                          backend="fast", workers=1)
    assert summary["failed_batches"] == []
    why = {s["path"]: s["reason"] for s in summary["skipped"]}
    assert why[unreadable].startswith("could not be read (RuntimeError in qualcode")
    assert why[uncodable].startswith("could not be coded (RuntimeError in qualcode")
    docs = set(_read_segments(out)["doc_id"])
    assert "YEM-INT-02" not in docs and not any(d.startswith("MMR-INT-01") for d in docs)
    expected = {d.doc_id for d in ingest_corpus(sample_corpus).documents}
    assert docs == expected - {"YEM-INT-02", "MMR-INT-01"}
    coded = pd.read_csv(out / "codings.csv", dtype=str)
    assert not coded["doc_id"].eq("YEM-INT-02").any() and coded["doc_id"].nunique() > 50
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    assert {s["path"] for s in manifest["skipped"]} >= {unreadable, uncodable}
    assert unreadable in {f["path"] for f in manifest["inputs"]}  # still listed as an input


def test_run_exits_with_status_1_when_a_batch_failed(
    prefect_harness, codebook_path, tmp_path, monkeypatch, capsys
):
    import flows.code_corpus as flow_module
    from qualcode import cli
    from qualcode.corpus import process_batch

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        (corpus / f"{name}.txt").write_text(
            "Interviewer: Why?\n\nRespondent: The convoy waited two days at the checkpoint."
            "\n", encoding="utf-8")

    def reading(corpus_dir, paths, *args):
        if "b.txt" in paths:
            raise MemoryError("injected")
        return process_batch(corpus_dir, paths, *args)

    monkeypatch.setattr(flow_module, "process_batch", reading)
    out = tmp_path / "outputs"
    status = cli.main(["run", "--corpus", str(corpus), "--codebook", str(codebook_path),
                       "--out", str(out), "--backend", "fast", "--workers", "1",
                       "--batch-size", "1"])
    printed = capsys.readouterr()
    assert status == 1
    assert "FAILED         ingest-batch on 1 file(s): MemoryError while reading b.txt" \
        in printed.out
    assert "exit status 1" in printed.err
    assert set(_read_segments(out)["doc_id"]) == {"a"}  # everything else was written


def test_evaluate_reports_problems_in_the_review_files(prefect_harness, sample_corpus,
                                                       codebook_path, tmp_path, capsys):
    from qualcode import cli

    with (sample_corpus / "reviews" / "coder_a.csv").open("a", encoding="utf-8") as f:
        f.write("SAM-003:1,armed_group_presure,coder_a\n")  # a typo
    status = cli.main(["evaluate", "--corpus", str(sample_corpus), "--codebook",
                       str(codebook_path), "--out", str(tmp_path / "out"), "--backend", "fast",
                       "--folds", "2"])
    printed = capsys.readouterr()
    assert status == 0
    assert "warning: " in printed.err and "armed_group_presure" in printed.err
    assert "coder_a.csv" in printed.err
    assert (tmp_path / "out" / "evaluation.csv").is_file()


def test_run_lists_review_problems_apart_from_skipped_files(
    prefect_harness, sample_corpus, codebook_path, tmp_path
):
    from flows.code_corpus import code_corpus

    with (sample_corpus / "reviews" / "coder_a.csv").open("a", encoding="utf-8") as f:
        f.write("SAM-003:1,armed_group_presure,coder_a\nNOPE-9:1,,coder_a\n")
    summary = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path),
                          out=str(tmp_path / "out"), backend="fast", workers=1)
    problems = [(p["path"], p["reason"].split(" — ")[0]) for p in summary["review_problems"]]
    assert ("reviews/coder_a.csv",
            "unknown code id 'armed_group_presure' (did you mean 'armed_group_pressure'?)"
            ) in problems
    assert ("reviews/coder_a.csv", "unknown segment 'NOPE-9:1'") in problems
    assert summary["counts"]["review_problems"] == len(problems)
    assert not any(s["path"].startswith("reviews/") for s in summary["skipped"])
    manifest = json.loads((tmp_path / "out" / "run_manifest.json").read_text(encoding="utf-8"))
    assert manifest["review_problems"] == summary["review_problems"]


def test_evaluate_without_enough_reviews_says_so_in_one_line(sample_corpus, codebook_path,
                                                               tmp_path, capsys):
    from qualcode import cli

    for sheet in (sample_corpus / "reviews").glob("*.csv"):
        sheet.unlink()
    status = cli.main(["evaluate", "--corpus", str(sample_corpus), "--codebook",
                       str(codebook_path), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert status == 1
    assert printed.err.startswith("error: evaluation needs reviewed segments from at least 2 "
                                  "documents;") and "holds 0 from 0" in printed.err
    assert "Traceback" not in printed.err + printed.out
    assert not (tmp_path / "out").exists()


def test_invalid_codebook_stops_before_outputs(prefect_harness, sample_corpus, tmp_path):
    from flows.code_corpus import code_corpus

    bad = tmp_path / "codebook.yaml"
    bad.write_text("name: broken\nversion: '1'\ncategories: []\ncodes:\n  - id: x\n")
    out = tmp_path / "outputs"
    out.mkdir()
    (out / "segments.csv").write_text("previous run\n")
    with pytest.raises(CodebookError):
        code_corpus(corpus=str(sample_corpus), codebook=str(bad), out=str(out))
    assert (out / "segments.csv").read_text() == "previous run\n"
    assert sorted(p.name for p in out.iterdir()) == ["segments.csv"]


def _cli(*args: str, cwd: Path, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(env_home)}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "qualcode.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=600,
    )


def test_cli_invalid_codebook_exits_1_and_names_the_line(tmp_path, sample_corpus):
    bad = tmp_path / "codebook.yaml"
    bad.write_text("name: broken\nversion: '1'\ncategories: []\ncodes:\n  - id: x\n")
    result = _cli("run", "--corpus", str(sample_corpus), "--codebook", str(bad),
                  "--out", str(tmp_path / "out"), cwd=tmp_path, env_home=tmp_path / "home")
    assert result.returncode == 1
    assert "codebook.yaml:5" in result.stderr
    assert not (tmp_path / "out").exists()


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("case", ["out_is_a_file", "out_inside_corpus", "zero_turn_chars",
                                  "one_fold", "bad_timezone", "corpus_is_a_file",
                                  "no_interviewer_labels", "bad_dask_address",
                                  "no_dask_scheduler", "bad_cron"])
def test_cli_user_errors_exit_2_with_one_line_before_prefect_starts(
        tmp_path, sample_corpus, codebook_path, case):
    (tmp_path / "afile").write_text("not a folder")
    paths = ["--corpus", str(sample_corpus), "--codebook", str(codebook_path)]
    args, says = {
        "out_is_a_file": (["run", *paths, "--out", "afile"], "is a file, not a folder"),
        "out_inside_corpus": (["run", *paths, "--out", str(sample_corpus / "outputs")],
                              "is inside the corpus folder"),
        "zero_turn_chars": (["run", *paths, "--max-turn-chars", "0"], "must be at least 100"),
        "one_fold": (["evaluate", *paths, "--folds", "1"], "must be at least 2"),
        "bad_timezone": (["schedule", *paths, "--cron", "0 2 * * *", "--timezone",
                          "Mars/Olympus"], "is not a time zone"),
        "corpus_is_a_file": (["run", "--corpus", "afile", "--codebook", str(codebook_path)],
                             "corpus folder 'afile' is a file, not a folder"),
        "no_interviewer_labels": (["run", *paths, "--interviewer-labels", " , "],
                                  "--interviewer-labels names no label"),
        "bad_dask_address": (["run", *paths, "--dask-address", "scheduler"],
                             "is not the address of a Dask scheduler"),
        "no_dask_scheduler": (["run", *paths, "--dask-address",
                               f"tcp://127.0.0.1:{_closed_port()}"],
                              "no Dask scheduler answers at"),
        "bad_cron": (["schedule", *paths, "--cron", "0 2 * *"], "is not a valid cron"),
    }[case]
    result = _cli(*args, cwd=tmp_path, env_home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    if case == "bad_cron":  # Prefect's Cron checks it: Prefect is imported, no server started
        assert not (tmp_path / "home" / "server.log").exists()
    else:
        assert not (tmp_path / "home").exists()  # Prefect never started
    assert not (sample_corpus / "outputs").exists()


@pytest.mark.parametrize("command", ["run", "train", "agreement"])
def test_cli_run_on_outputs_another_run_writes_exits_2_before_prefect_starts(
        tmp_path, sample_corpus, codebook_path, command):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    held = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a run in progress holds it
        result = _cli(command, "--corpus", str(sample_corpus), "--codebook", str(codebook_path),
                      "--out", str(out), cwd=tmp_path, env_home=tmp_path / "home")
    finally:
        os.close(held)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: another qualcode run is writing to '{out}' — wait until it has finished, "
        "or choose another --out"]
    assert not (tmp_path / "home").exists()  # Prefect never started
    assert list(out.iterdir()) == []


def test_cli_an_unwritable_prefect_home_is_one_line_not_a_timeout(
        tmp_path, sample_corpus, codebook_path):
    (tmp_path / "afile").write_text("not a folder")
    home = tmp_path / "afile" / "home"  # cannot be created, even by root
    paths = ["--corpus", str(sample_corpus), "--codebook", str(codebook_path)]
    for args, status in ((["run", *paths, "--out", "out"], 2),
                         (["train", *paths, "--out", "out"], 2),
                         (["server", "start"], 1)):
        result = subprocess.run(
            [sys.executable, "-m", "qualcode.cli", *args], cwd=tmp_path, timeout=120,
            env={**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
                 "PREFECT_HOME": str(home)}, capture_output=True, text=True)
        assert result.returncode == status, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert f"'{home}'" in result.stderr and "cannot be written" in result.stderr, args
        assert "PREFECT_HOME" in result.stderr, args
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_cli_sigterm_stops_a_run_like_ctrl_c_and_its_temporary_server(
        tmp_path, codebook_path):
    """SIGTERM (a scheduler's timeout, `kill`) used to kill the command and leave Prefect's
    temporary server running, orphaned."""
    import signal
    import time

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Interviewer: What changed?\n\nRespondent: The elders "
                                  "spoke to the governor.\n", encoding="utf-8")
    home = tmp_path / "home"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "qualcode.cli", "run", "--corpus", "corpus", "--codebook",
         str(codebook_path), "--out", "out", "--backend", "fast", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if "Starting temporary server" in line:
                break
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(1)
    left = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"PREFECT_HOME={home}\0".encode() in environ.read_bytes():
                left.append(environ.parent.name)
        except OSError:
            continue
    for pid in left:  # do not leave them running when the test fails
        os.kill(int(pid), signal.SIGKILL)
    err = "".join(lines) + err
    assert process.returncode == 143, err
    assert "terminated: the outputs are those of the last complete run" in err
    assert not (tmp_path / "out" / "segments.csv").exists()
    assert left == [], "processes of the run left behind"


def test_an_invalid_cron_is_refused(tmp_path):
    from flows.deployments import cron_schedule

    assert cron_schedule("0 2 * * *", "UTC").cron == "0 2 * * *"
    with pytest.raises(ValueError, match="cron"):
        cron_schedule("not a cron", "UTC")


def test_ctrl_c_exits_130_with_a_message(monkeypatch, capsys):
    from qualcode import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_command", interrupted)
    assert cli.main(["report"]) == 130
    assert "interrupted: the outputs are those of the last complete run" in (
        capsys.readouterr().err)


def test_cli_run_prints_clean_summary(tmp_path):
    """The real command on Prefect's temporary server: a summary, no tracebacks."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(
        "Interviewer: What changed?\n\nRespondent: The permits came back after the elders "
        "spoke to the governor.\n", encoding="utf-8")
    (corpus / "notes.rtf").write_text("{\\rtf1 notes}")
    result = _cli("run", "--corpus", "corpus", "--codebook", str(ROOT / "codebook.yaml"),
                  "--out", "out", cwd=tmp_path, env_home=tmp_path / "home")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output
    assert "documents      1" in result.stdout
    assert "notes.rtf: unsupported file type '.rtf'" in result.stdout
    # a fresh PREFECT_HOME: the first run says it sets up Prefect's database
    assert "the first run sets up Prefect's local database" in result.stdout
    assert ": read and coded in " in result.stdout and "\n  files          " in result.stdout
    segments = _read_segments(tmp_path / "out")
    assert list(segments["segment_id"]) == ["a:1", "a:2"]
    assert (tmp_path / "home").is_dir()  # Prefect kept its files in PREFECT_HOME

    # Reading these outputs with a codebook of other code ids is refused, not zeroed.
    data = yaml.safe_load((ROOT / "codebook.yaml").read_text(encoding="utf-8"))
    dropped = data["codes"].pop()["id"]
    for code in data["codes"]:
        code["related"] = [r for r in code.get("related") or [] if r != dropped]
    (tmp_path / "fewer.yaml").write_text(yaml.safe_dump(data, sort_keys=False),
                                         encoding="utf-8")
    for command in (["report"], ["agreement"], ["review", "export"]):
        result = _cli(*command, "--codebook", "fewer.yaml", "--out", "out", cwd=tmp_path,
                      env_home=tmp_path / "home")
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"were coded with other code ids than fewer.yaml (coded with {dropped})" \
            in result.stderr, command
    assert _cli("report", "--codebook", str(ROOT / "codebook.yaml"), "--out", "out",
                cwd=tmp_path, env_home=tmp_path / "home").returncode == 0


def test_docx_zip_is_detected_as_damaged(tmp_path):
    """A .docx that is a valid zip but not a Word document is reported, not crashed on."""
    path = tmp_path / "c" / "x.docx"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not word")
    result = ingest_corpus(path.parent)
    assert result.documents == []
    assert "docx" in result.skipped[0].reason


def test_reliability_compares_the_classifier_on_every_reviewed_segment(
        prefect_harness, sample_corpus, codebook_path, tmp_path) -> None:
    """reliability.csv is written while scores.csv is still being written (or, in one
    process, before it): the classifier's decisions must come from the run itself. Its
    table equals one recomputed afterwards from scores.csv, as `qualcode agreement` does."""
    from flows.code_corpus import code_corpus
    from qualcode.codebook import load_codebook
    from qualcode.reliability import agreement_table, classifier_decisions, write_reliability
    from qualcode.reviews import load_reviews

    out = tmp_path / "outputs"
    code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                backend="fast", workers=1)
    book = load_codebook(codebook_path)
    reviews = load_reviews(sample_corpus / "reviews", book.code_ids)
    recomputed = write_reliability(tmp_path / "again", agreement_table(
        reviews, book, classifier_decisions(out, book.code_ids)))
    table = pd.read_csv(out / "reliability.csv", dtype=str, keep_default_na=False)
    pooled = table[(table["code_id"] == "ALL (MASI)")
                   & table["coders"].str.startswith("classifier vs")].set_index("coders")
    reviewed = {r.segment_id for r in reviews.reviews}
    assert int(pooled.loc["classifier vs reference", "units"]) == len(reviewed) == 139
    assert (out / "reliability.csv").read_bytes() == recomputed.read_bytes()
