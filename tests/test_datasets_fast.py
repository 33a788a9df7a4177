"""The fast dataset writers produce exactly the bytes csv.writer and f"{v:.4f}" produce."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qualcode import parallel
from qualcode.classify import CodingResult
from qualcode.codebook import Codebook, load_codebook
from qualcode.corpus import Batch
from qualcode.datasets import (
    CODED_SEGMENTS_CSV,
    CODING_COLUMNS,
    CODINGS_CSV,
    SCORE_COLUMNS,
    SCORES_CSV,
    SEGMENTS_CSV,
    score_texts,
    write_datasets,
)
from qualcode.documents import Segment
from qualcode.outputs import CSV_ENCODING, csv_cells, csv_join, csv_lines, csv_text, segment_rows

TRICKY = [
    "plain", "", " ", " lead", "trail ", "a,b", 'say "hi"', '"', '""', "line\nbreak",
    "cr\rhere", "crlf\r\nend", 'all, "of"\nthem', "=SUM(A1:A2)", "+1", "-1", "@x", "tab\tin",
    "semi;colon", "x\x00y", "accents éàü – dash", "emoji 🙂", "'quote'",
]


def writer_lines(rows: list[list[Any]]) -> list[str]:
    """The reference: csv.writer's records, one row at a time."""
    out = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(row)
        out.append(buffer.getvalue()[:-2])
    return out


@pytest.mark.parametrize("value", TRICKY)
def test_csv_cells_match_csv_writer_for_tricky_strings(value: str) -> None:
    assert csv_cells([value, "plain"]) == [writer_lines([[value, "z"]])[0][:-2], "plain"]


def test_csv_cells_match_csv_writer_for_mixed_types() -> None:
    columns: list[list[Any]] = [
        TRICKY,
        [1, 0, -5, 10**30, True, False, "3", "a,b"],
        [None, 1.5, float("nan"), np.float64(0.25), np.int64(3), "x", 2],
        [np.str_("np, str"), "b"],
        ["", "", ""],
    ]
    for column in columns:
        assert csv_cells(column) == [writer_lines([[v, "z"]])[0][:-2] for v in column]


def test_csv_lines_and_join_match_csv_text() -> None:
    rows = [[a, b, i] for i, (a, b) in enumerate(zip(TRICKY, reversed(TRICKY), strict=True))]
    header = ["id", "text", "n"]
    assert csv_lines(rows) == writer_lines(rows)
    assert csv_join(header, csv_lines(rows)) == csv_text(header, rows)
    # Ragged rows and one-field rows (an empty lone field is written as "") use csv.writer.
    odd = [["a"], [""], [None], ["x", "y,z"], [], ["", ""]]
    assert csv_lines(odd) == writer_lines(odd)
    assert csv_lines([[""], ["a,b"]]) == ['""', '"a,b"']
    assert csv_lines([]) == []


def test_score_texts_match_format_on_hard_values() -> None:
    ties = (np.arange(-2000, 2000) + 0.5) / 1e4  # x.xxxx5: rounding ties, in binary near-ties
    near = np.concatenate([np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf)])
    special = np.array([0.0, -0.0, 1e-300, -1e-300, 4.9e-5, 5e-5, 5.1e-5, -5e-5, 0.99995,
                        0.999949999, 1.0, -1.0, 123456.78905, 1e12, 4.5e11, 1e20, -1e20,
                        math.inf, -math.inf, math.nan, -math.nan, 2.0**52, 2.0**60])
    rng = np.random.default_rng(7)
    values = np.concatenate([ties, near, special, rng.random(20_000), rng.normal(0, 50, 5_000),
                             np.round(rng.random(5_000), 5)])
    got = score_texts(values.reshape(-1, 1))
    assert got.shape == (values.size, 1)
    assert got.ravel().tolist() == [f"{v:.4f}" for v in values.tolist()]
    assert score_texts(np.zeros((0, 3))).shape == (0, 3)
    assert score_texts(np.array([[1, 2]], dtype=np.float32)).tolist() == [["1.0000", "2.0000"]]


def reference_tables(
    segments: list[Segment], coding: CodingResult, codebook: Codebook
) -> dict[str, str]:
    """The straightforward row-by-row build of the coding tables, written by csv.writer."""
    category = {c.id: c.category for c in codebook.codes}
    doc_of = {s.segment_id: s.doc_id for s in segments}
    row_of = {sid: i for i, sid in enumerate(coding.segment_ids)}
    codes = coding.code_ids
    thresholds = [f"{t:.4f}" for t in np.asarray(coding.thresholds, dtype=float).tolist()]
    decisions = coding.decisions.astype(int).tolist()
    codings, scores = [], []
    for i, (sid, row, flags) in enumerate(
            zip(coding.segment_ids, coding.scores.tolist(), decisions, strict=True)):
        texts = [f"{v:.4f}" for v in row]
        scores.extend([sid, c, t, th, f]
                      for c, t, th, f in zip(codes, texts, thresholds, flags, strict=True))
        for j in (j for j, flag in enumerate(flags) if flag):
            codings.append([sid, doc_of[sid], codes[j], category[codes[j]], texts[j],
                            coding.methods[i, j], coding.evidence[i].get(codes[j], "")])
    header, rows = segment_rows(segments)
    wide = []
    for seg, row in zip(segments, rows, strict=True):
        i = row_of.get(seg.segment_id)
        flags = decisions[i] if i is not None else [0] * len(codes)
        wide.append([*row, ";".join(c for c, f in zip(codes, flags, strict=True) if f), *flags])
    return {
        SEGMENTS_CSV: csv_text(header, rows),
        CODINGS_CSV: csv_text(CODING_COLUMNS, codings),
        CODED_SEGMENTS_CSV: csv_text([*header, "codes", *codes], wide),
        SCORES_CSV: csv_text(SCORE_COLUMNS, scores),
    }


def tricky_batch() -> Batch:
    segments = []
    for n, name in enumerate(TRICKY + ["doc"] * 20):
        doc = f"{name}-{n}"
        for t in range(3):
            meta = {"case": name, "text": "shadowed"} if n % 2 else {"year": str(2000 + n)}
            segments.append(Segment(
                segment_id=f"{doc}:{t}", doc_id=doc, source_type="interview",
                speaker=name if t else "", turn=t if n % 3 else None, char_start=10 * t,
                char_end=10 * t + 9, text=f'{name} said "{t}",\nthen {TRICKY[t]}',
                codable=t != 2, metadata=meta))
    return Batch(segments=[segments[i:i + 3] for i in range(0, len(segments), 3)])


def tricky_coding(batch: Batch, codebook: Codebook) -> CodingResult:
    codable = [s for segs in batch.segments for s in segs if s.codable]
    codes = codebook.code_ids
    rng = np.random.default_rng(3)
    scores = rng.random((len(codable), len(codes)))
    scores[0, :4] = [0.00005, -0.0, math.nan, 0.12345]  # a tie, a signed zero, a nan
    scores[1] = np.round(scores[1], 4) + 0.00005
    decisions = scores >= 0.6
    decisions[2] = True
    decisions[3] = False
    methods = np.where(decisions, "rule", "").astype(object)
    evidence = [{c: f'matched: "{c}", ok\n{i}' for c in codes[::2]} for i in range(len(codable))]
    return CodingResult([s.segment_id for s in codable], codes, scores,
                        np.full(len(codes), 0.6), decisions, methods, evidence)


@pytest.mark.parametrize("processes", [1, 2])
def test_write_datasets_matches_row_by_row_csv_writer(
    tmp_path: Path, codebook_path: Path, processes: int
) -> None:
    codebook = load_codebook(codebook_path)
    batch = tricky_batch()
    coding = tricky_coding(batch, codebook)
    try:  # with 2, the wide tables are written by a worker process
        manifest = write_datasets(tmp_path, batch, codebook=codebook, run_id="r", started="",
                                  seconds=0.0, parameters={}, coding=coding,
                                  processes=processes)
    finally:
        parallel.shutdown()
    segments = [s for segs in batch.segments for s in segs]
    for name, text in reference_tables(segments, coding, codebook).items():
        data = text.encode(CSV_ENCODING)
        assert (tmp_path / name).read_bytes() == data, name
        assert manifest["outputs"][name] == hashlib.sha256(data).hexdigest(), name
    assert list(manifest["outputs"]) == [SEGMENTS_CSV, CODINGS_CSV, CODED_SEGMENTS_CSV,
                                         SCORES_CSV]


def test_a_metadata_field_named_like_a_code_gets_a_prefix(tmp_path: Path,
                                                           codebook_path: Path) -> None:
    codebook = load_codebook(codebook_path)
    codes = codebook.code_ids
    k = len(codes)
    segment = Segment(segment_id="D:1", doc_id="D", source_type="interview", speaker="R",
                      turn=1, char_start=0, char_end=5, text="hello", codable=True,
                      metadata={codes[0]: "a column of the manifest", "case": "yemen",
                                "text": "front matter 'text'", "meta_text": "and 'meta_text'"})
    coding = CodingResult(["D:1"], codes, np.zeros((1, k)), np.full(k, 0.5),
                          np.zeros((1, k), dtype=bool), np.full((1, k), "", dtype=object), [{}])
    write_datasets(tmp_path, Batch(segments=[[segment]]), codebook=codebook, run_id="r",
                   started="", seconds=0.0, parameters={}, coding=coding)
    with (tmp_path / CODED_SEGMENTS_CSV).open(encoding=CSV_ENCODING, newline="") as f:
        header = next(csv.reader(f))
    assert len(header) == len(set(header))
    assert header.count(codes[0]) == 1 and f"meta_{codes[0]}" in header and "case" in header
    assert {"meta_text", "meta_meta_text"} <= set(header)
    with (tmp_path / SEGMENTS_CSV).open(encoding=CSV_ENCODING, newline="") as f:
        rows = list(csv.DictReader(f))
    assert f"meta_{codes[0]}" in rows[0] and len(rows[0]) == len(header) - k - 1
    assert rows[0]["meta_meta_text"] == "front matter 'text'"
    assert rows[0]["meta_text"] == "and 'meta_text'" and rows[0]["text"] == "hello"


WRITE_OUTPUTS = """
import sys
from pathlib import Path
from qualcode.outputs import atomic_write_bytes, atomic_write_text, write_csv, write_json
out = Path(sys.argv[1])
write_csv(out / "table.csv", ["a"], [[1]])
write_json(out / "manifest.json", {"a": 1})
atomic_write_text(out / "report.html", "<p>hi</p>")
(out / "old.csv").write_text("x")
write_csv(out / "old.csv", ["a"], [[2]])  # replacing a file
atomic_write_bytes(out / "cache.pkl", b"private", private=True)
write_json(out / "cache.json", {}, private=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_open_would_give_and_private_files_0600(
        tmp_path: Path, umask: int) -> None:
    subprocess.run([sys.executable, "-c", WRITE_OUTPUTS, str(tmp_path)], check=True,
                   umask=umask)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    public = 0o666 & ~umask  # 0o644 under umask 022, as open(..., "w") gives
    assert modes == {"table.csv": public, "manifest.json": public, "report.html": public,
                     "old.csv": public, "cache.pkl": 0o600, "cache.json": 0o600}
    if umask == 0o022:
        assert modes["table.csv"] == 0o644


def test_a_second_run_on_the_same_outputs_is_refused_while_the_first_writes(tmp_path):
    from qualcode.outputs import OutputsBusy, exclusive_outputs

    @exclusive_outputs
    def run(out: str) -> str:
        return "written"

    out = tmp_path / "outputs"  # not there yet: two first runs must lock each other too
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom qualcode.outputs import exclusive_outputs\n"
        "@exclusive_outputs\ndef run(out):\n    print('holding', flush=True); time.sleep(30)\n"
        f"run(out={str(out)!r})")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(OutputsBusy, match="another qualcode run is writing to"):
            run(out=str(out))
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the lock goes with the process that held it
        try:
            assert run(out=str(out)) == "written"
            break
        except OutputsBusy:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert list(out.iterdir()) == []  # the lock adds nothing to the folder


def test_the_outputs_lock_is_reentrant_within_a_process(tmp_path):
    from qualcode.outputs import exclusive_outputs, outputs_lock

    @exclusive_outputs
    def run(out: str) -> str:
        return "written"

    out = tmp_path / "outputs"
    with outputs_lock(out):  # as the CLI holds it around its flow
        assert run(out=str(out)) == "written"
        assert run(out=str(tmp_path / "." / "outputs")) == "written"  # same folder
        probe = subprocess.run([sys.executable, "-c", (
            "from qualcode.outputs import outputs_lock\n"
            f"with outputs_lock({str(out)!r}):\n    pass")], capture_output=True, text=True)
        assert "another qualcode run is writing to" in probe.stderr  # still held
    probe = subprocess.run([sys.executable, "-c", (
        "from qualcode.outputs import outputs_lock\n"
        f"with outputs_lock({str(out)!r}):\n    print('free')")], capture_output=True,
        text=True)
    assert probe.stdout.strip() == "free", probe.stderr


def test_worker_processes_forked_during_a_run_do_not_keep_its_lock(tmp_path):
    import multiprocessing

    from qualcode.outputs import exclusive_outputs

    workers = []

    context = multiprocessing.get_context("fork")

    @exclusive_outputs
    def run(out: str) -> str:
        started = context.Event()
        worker = context.Process(target=_started_then_sleep, args=(started,))
        worker.start()  # as the flow's worker pool, which outlives the run
        assert started.wait(10)
        workers.append(worker)
        return "written"

    try:
        assert run(out=str(tmp_path)) == "written"
        assert run(out=str(tmp_path)) == "written"  # the next run, workers still alive
        assert all(w.is_alive() for w in workers)
    finally:
        for worker in workers:
            worker.kill()
            worker.join()


def _started_then_sleep(started) -> None:
    started.set()
    time.sleep(30)


def test_a_source_type_set_in_the_manifest_is_the_source_type_column(
        tmp_path: Path, codebook_path: Path) -> None:
    # the manifest's source_type overrides the column; it is no second, partly empty column
    codebook = load_codebook(codebook_path)
    k = len(codebook.code_ids)
    segments = [
        Segment(segment_id="D:1", doc_id="D", source_type="literature", speaker="R", turn=1,
                char_start=0, char_end=5, text="hello", codable=True,
                metadata={"source_type": "literature", "case": "yemen"}),
        Segment(segment_id="E:1", doc_id="E", source_type="interview", speaker="R", turn=1,
                char_start=0, char_end=5, text="hello", codable=True,
                metadata={"case": "myanmar"}),
    ]
    coding = CodingResult(["D:1", "E:1"], codebook.code_ids, np.zeros((2, k)),
                          np.full(k, 0.5), np.zeros((2, k), dtype=bool),
                          np.full((2, k), "", dtype=object), [{}, {}])
    write_datasets(tmp_path, Batch(segments=[segments]), codebook=codebook, run_id="r",
                   started="", seconds=0.0, parameters={}, coding=coding)
    with (tmp_path / SEGMENTS_CSV).open(encoding=CSV_ENCODING, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["segment_id", "doc_id", "source_type", "speaker", "turn",
                             "char_start", "char_end", "text", "codable", "reviewed", "case"]
    assert [r["source_type"] for r in rows] == ["literature", "interview"]
