"""Group-difference tests on large tables: scipy's Monte Carlo Fisher test fails when a
table's total is at least resamples × cells; the report must still give a p-value (and a
test that fails must leave an empty, noted cell, never stop the report)."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import qualcode.report_tables as rt
from qualcode.codebook import Codebook, load_codebook
from qualcode.outputs import write_csv
from qualcode.report import ReportSettings, write_reports
from qualcode.report_tables import difference_table

CODEBOOK = """\
name: Audit codebook
version: "0.1"
categories:
  - id: tactic
    name: Tactics
codes:
  - id: common
    name: Common code
    category: tactic
    definition: Coded often.
  - id: rare
    name: Rare code
    category: tactic
    definition: Coded in a few segments.
"""
SEG_HEADER = ["segment_id", "doc_id", "source_type", "speaker", "turn", "char_start",
              "char_end", "text", "codable", "case"]
COD_HEADER = ["segment_id", "doc_id", "code_id", "category", "score", "method", "evidence"]


@pytest.fixture(scope="module")
def codebook(tmp_path_factory: pytest.TempPathFactory) -> Codebook:
    path = tmp_path_factory.mktemp("codebook") / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    return load_codebook(path)


def _exact_ffh(coded: np.ndarray, totals: np.ndarray) -> float:
    """Exact Fisher–Freeman–Halton p-value of a 2 × g table, by enumerating every table."""
    k, dist = int(coded.sum()), stats.multivariate_hypergeom
    observed = dist.pmf(coded, totals, k)
    p = 0.0
    for cells in itertools.product(*(range(min(k, int(t)) + 1) for t in totals)):
        if sum(cells) == k:
            prob = dist.pmf(cells, totals, k)
            p += prob if prob <= observed * (1 + 1e-9) else 0.0
    return p


@pytest.mark.parametrize(("coded", "totals", "resamples"), [
    ([1, 0, 2, 3], [61, 70, 82, 80000], 9999),  # the reported crash
    ([0, 1, 0, 3], [61, 70, 82, 80000], 9999),  # a moderate p-value
    ([1, 0, 1], [20, 25, 2000], 300),  # total at least resamples × cells, smaller
])
def test_large_table_gets_a_valid_monte_carlo_p_value(coded: list[int], totals: list[int],
                                                      resamples: int) -> None:
    c, t = np.array(coded), np.array(totals)
    result = rt._test(c, t, seed=0, resamples=resamples, code_id="x")
    assert result["test"] == "fisher_mc"
    exact = _exact_ffh(c, t)
    se = math.sqrt(max(exact, 1 / resamples) * (1 - exact) / resamples)
    floor = 1 / (resamples + 1)  # a Monte Carlo p-value is never below this
    assert result["p_value"] == pytest.approx(max(exact, floor), abs=4 * se + floor)


@pytest.mark.parametrize(("coded", "totals"), [
    ([1, 0, 2, 3], [61, 70, 82, 7000]), ([0, 3, 1], [12, 40, 9]), ([2, 0, 0, 1, 4], [5] * 5),
])
def test_monte_carlo_p_value_unchanged_where_scipy_works(coded: list[int],
                                                         totals: list[int]) -> None:
    table = np.vstack([coded, np.array(totals) - coded])
    method = stats.MonteCarloMethod(n_resamples=9999, rng=rt._data_rng(0, table))
    scipy_p = float(stats.fisher_exact(table, method=method).pvalue)
    result = rt._test(np.array(coded), np.array(totals), seed=0, resamples=9999, code_id="x")
    assert result["p_value"] == rt._sig(scipy_p)


def _outputs(folder: Path, sizes: dict[str, int], rare: dict[str, int]) -> Path:
    """segments.csv and codings.csv: ``sizes[case]`` codable segments per case, ``common``
    on every fifth segment, ``rare`` on the first ``rare[case]`` segments of a case."""
    segs, cods = [], []
    for case, size in sizes.items():
        for i in range(size):
            doc, turn = f"{case}{i // 500}", i % 500 + 1
            sid = f"{doc}:{turn}"
            segs.append([sid, doc, "interview", "R", turn, 0, 4, "text", True, case])
            if i % 5 == 0:
                cods.append([sid, doc, "common", "tactic", "0.9", "rule", ""])
            if i < rare.get(case, 0):
                cods.append([sid, doc, "rare", "tactic", "0.9", "rule", ""])
    write_csv(folder / "segments.csv", SEG_HEADER, segs)
    write_csv(folder / "codings.csv", COD_HEADER, cods)
    return folder


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig").set_index("code_id")


def test_report_with_one_big_group_writes_its_tables(tmp_path: Path,
                                                     codebook: Codebook) -> None:
    # 3 cases, 60,200 codable segments: 9999 resamples × 6 cells ≤ the total
    out = _outputs(tmp_path, {"A": 100, "B": 100, "C": 60000}, {"A": 1, "B": 1, "C": 1})
    written = write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    assert {"differences_by_case.csv", "frequencies_by_case.csv", "report.html"} <= set(written)
    diff = _read(out / "differences_by_case.csv")
    assert diff.loc["rare", "test"] == "fisher_mc"
    assert 0 < diff.loc["rare", "p_value"] <= 0.01  # 2 of 3 in 200 segments, 1 in 60,000
    assert diff.loc["common", "test"] == "chi2"


def test_failed_test_leaves_its_cell_empty_with_a_note(
        tmp_path: Path, codebook: Codebook, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> float:
        raise ValueError("cannot reshape array")

    monkeypatch.setattr(rt, "_fisher_mc", broken)
    out = _outputs(tmp_path, {"A": 30, "B": 30, "C": 300}, {"A": 1, "C": 1})
    with caplog.at_level(logging.WARNING, logger="qualcode.report_tables"):
        write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    diff = _read(out / "differences_by_case.csv")
    assert diff.loc["rare", "test"] == "fisher_mc: failed"
    assert diff.loc[["rare"], ["p_value", "q_value"]].isna().all(axis=None)
    assert diff.loc["rare", "chi2"] > 0  # the statistic itself is still shown
    # one document per case: the document test does not need the failed one, and decides
    # (3 documents, one per case: 3! = 6 arrangements, all with the same chi-square)
    assert diff.loc["rare", "test_documents"] == "permutation_exact"
    assert diff.loc["rare", "p_documents"] == 1.0
    assert not diff.loc["rare", "significant"]
    assert diff.loc["common", "test"] == "chi2" and diff.loc["common", "p_value"] > 0
    # q over the codes tested: the one p-value left is its own q
    assert diff.loc["common", "q_value"] == pytest.approx(diff.loc["common", "p_value"])
    # the page names the test as a reader knows it
    assert "Fisher–Freeman–Halton, Monte Carlo: failed" in (out / "report.html").read_text(
        encoding="utf-8")
    assert any("rare" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_difference_table_direct_call_survives_a_failing_test(
        codebook: Codebook, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise FloatingPointError("overflow")

    monkeypatch.setattr(rt.stats, "fisher_exact", broken)
    segments = pd.DataFrame({
        "segment_id": [f"D:{i}" for i in range(1, 21)], "doc_id": "D",
        "source_type": "interview", "speaker": "R", "turn": [str(i) for i in range(1, 21)],
        "char_start": "0", "char_end": "1", "text": "x", "codable": True,
        "case": ["A"] * 10 + ["B"] * 10})
    codings = pd.DataFrame({"segment_id": ["D:1", "D:2", "D:15"], "doc_id": "D",
                            "code_id": "rare", "category": "tactic", "score": "0.9",
                            "method": "rule", "evidence": ""})
    table = difference_table(segments, codings, codebook, "case").set_index("code_id")
    assert table.loc["rare", "test"] == "fisher: failed"
    assert math.isnan(table.loc["rare", "p_value"])
    assert table.loc["common", "test"] == ""  # coded nowhere: not tested, as before


def test_spellings_of_one_value_are_one_group_and_none_is_not_tested(
        tmp_path: Path, codebook: Codebook) -> None:
    # 'Yemen' and 'yemen ' are one case; segments without a case are counted, not tested
    out = _outputs(tmp_path, {"Yemen": 10, "yemen ": 10, "Myanmar": 12, "": 6},
                   {"Yemen": 5, "yemen ": 5, "": 6})
    write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    freq = _read(out / "frequencies_by_case.csv")
    assert [c for c in freq.columns if c.startswith("segments_")] == [
        "segments_Myanmar", "segments_Yemen", "segments_(none)", "segments_total"]
    assert freq.loc["rare", ["segments_Myanmar", "segments_Yemen", "segments_(none)"]
                    ].tolist() == [0, 10, 6]
    assert freq.loc["(codable segments)", "segments_Yemen"] == 20
    assert freq.loc["rare", "share_Yemen"] == pytest.approx(0.5)
    diff = _read(out / "differences_by_case.csv")
    assert [c for c in diff.columns if c.startswith("segments_")] == [
        "segments_Myanmar", "segments_Yemen"]
    assert diff.loc["rare", "test"] == "fisher"
    expected = stats.fisher_exact([[0, 10], [12, 10]]).pvalue
    assert diff.loc["rare", "p_value"] == pytest.approx(expected, rel=1e-3)
    assert diff.loc["rare", "difference_Myanmar_minus_Yemen"] == pytest.approx(-0.5)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Yemen (&#39;Yemen&#39;, &#39;yemen&#39;)" in html
    assert "6 codable segment(s) have no value" in html
    # one case per document: the document test decides, and 3 documents allow little
    assert diff.loc["rare", "unit"] == "documents" and diff.loc["rare", "documents"] == 3
    assert diff.loc["rare", "p_documents"] == pytest.approx(1 / 3, abs=1e-4)
    assert not diff.loc["rare", "significant"]
    assert "so the test that decides\nis a <strong>document test</strong>" in html
    assert "Each of the 3 documents has one case" in html
    assert ("its 3 documents (Myanmar 1, Yemen 2) can be split between the groups in only 3 "
            "ways") in html
    assert "no code can reach q &lt; 0.05 by &#39;case&#39;" in html


def test_failed_document_test_leaves_its_cells_empty(
        tmp_path: Path, codebook: Codebook, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise MemoryError("no room for the arrangements")

    monkeypatch.setattr(rt, "_arrangements", broken)
    out = _outputs(tmp_path, {"A": 30, "B": 30, "C": 300}, {"A": 1, "C": 1})
    with caplog.at_level(logging.WARNING, logger="qualcode.report_tables"):
        write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    diff = _read(out / "differences_by_case.csv")
    assert diff["test_documents"].tolist() == ["permutation_exact: failed"] * 2
    assert diff[["p_documents", "q_documents", "significant"]].isna().all(axis=None)
    assert diff.loc["common", "p_value"] > 0  # the segment test is unaffected
    assert "document test failed" in (out / "report.html").read_text(encoding="utf-8")
    assert any("document-level test" in r.getMessage() for r in caplog.records)


def test_no_codable_segments_is_explained(tmp_path: Path, codebook: Codebook) -> None:
    out = tmp_path / "outputs"
    write_csv(out / "segments.csv", SEG_HEADER,
              [["D:1", "D", "interview", "Interviewer", 1, 0, 4, "Why?", False, "A"]])
    write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "There are no codable segments" in html
    assert "No test by &#39;case&#39;" in html
    assert "Not tested: fewer than two groups" in html
    assert "counts segments as independent" not in html
    freq = pd.read_csv(out / "frequencies.csv", encoding="utf-8-sig")
    assert freq["segments"].tolist() == [0, 0] and freq["share_of_segments"].isna().all()
