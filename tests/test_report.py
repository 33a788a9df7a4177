"""Reports: every number recomputed from segments.csv + codings.csv (real files in tmp_path).

The hand-built case: three documents, two cases, four codes in three categories (not the
default codebook's ids, so nothing may depend on them).

    doc  case  source      codable segments         codes
    D1   A     interview   D1:2  D1:4.1  D1:4.2      t1 m1 | t1 | t2(human)
    D2   B     interview   D2:2  D2:3                t1(human) m1 r1 | -
    D3   B     literature  D3:1  D3:2  D3:3          t2 m1 | t1 | -

Non-codable: D1:0 (preamble), D1:1, D1:3, D2:1 (interviewer turns).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from qualcode.codebook import Codebook, load_codebook
from qualcode.outputs import write_csv
from qualcode.report import (
    ReportSettings,
    artifact_markdown,
    frequency_table_rows,
    write_reports,
)
from qualcode.report_tables import TOTAL_ROW, corrected_prevalence, evaluation_by_code

CODEBOOK = """\
name: Report test codebook
version: "0.1"
categories:
  - id: tactic
    name: Tactics
  - id: mechanism
    name: Mechanisms
  - id: result
    name: Results
codes:
  - id: t1
    name: Tactic one
    category: tactic
    definition: The first tactic.
  - id: t2
    name: Tactic two
    category: tactic
    definition: The second tactic.
  - id: m1
    name: Mechanism one
    category: mechanism
    definition: The mechanism.
  - id: r1
    name: Result one
    category: result
    definition: The result.
"""
CODES = ["t1", "t2", "m1", "r1"]
SEG_HEADER = ["segment_id", "doc_id", "source_type", "speaker", "turn", "char_start",
              "char_end", "text", "codable", "case", "citation"]
SCRIPT = "<script>alert('x')</script>"
SEGMENTS = [
    ["D1:0", "D1", "interview", "", 0, 0, 10, "Interview D1", False, "A", ""],
    ["D1:1", "D1", "interview", "Interviewer", 1, 11, 30, "What helped most?", False, "A", ""],
    ["D1:2", "D1", "interview", "Respondent", 2, 31, 80,
     f"We built trust over years {SCRIPT} & it paid off.", True, "A", ""],
    ["D1:3", "D1", "interview", "Interviewer", 3, 81, 95, "And after that?", False, "A", ""],
    ["D1:4.1", "D1", "interview", "Respondent", 4, 96, 120, "We kept visiting.", True, "A",
     ""],
    ["D1:4.2", "D1", "interview", "Respondent", 4, 121, 150, "Then we paused the programme.",
     True, "A", ""],
    ["D2:1", "D2", "interview", "Interviewer", 1, 0, 20, "Tell me about access.", False, "B",
     ""],
    ["D2:2", "D2", "interview", "Respondent", 2, 21, 90,
     "The elders trusted us, so they needed us, and we got a fair deal.", True, "B", ""],
    ["D2:3", "D2", "interview", "Respondent", 3, 91, 110, "Nothing else.", True, "B", ""],
    ["D3:1", "D3", "literature", "", "", 0, 40, "Agencies suspended aid jointly.", True, "B",
     "Smith (2020), p. 4"],
    ["D3:2", "D3", "literature", "", "", 41, 80, "Trust was built slowly.", True, "B",
     "Smith (2020), p. 4"],
    ["D3:3", "D3", "literature", "", "", 81, 99, "Unrelated paragraph.", True, "B",
     "Smith (2020), p. 4"],
]
COD_HEADER = ["segment_id", "doc_id", "code_id", "category", "score", "method", "evidence"]
CODINGS = [
    ["D1:2", "D1", "t1", "tactic", "0.9000", "rule", "built trust"],
    ["D1:2", "D1", "m1", "mechanism", "0.7000", "model", ""],
    ["D1:4.1", "D1", "t1", "tactic", "0.6000", "model", ""],
    ["D1:4.2", "D1", "t2", "tactic", "", "human", ""],
    ["D2:2", "D2", "t1", "tactic", "1.0000", "human", ""],
    ["D2:2", "D2", "m1", "mechanism", "0.8000", "model", ""],
    ["D2:2", "D2", "r1", "result", "0.5000", "rule", "fair deal"],
    ["D3:1", "D3", "t2", "tactic", "0.5500", "model", ""],
    ["D3:1", "D3", "m1", "mechanism", "0.6500", "model", ""],
    ["D3:2", "D3", "t1", "tactic", "0.9500", "model", ""],
    # ignored: a non-codable segment, an unknown code, a duplicate of D2:2 t1
    ["D1:1", "D1", "t1", "tactic", "0.9900", "rule", ""],
    ["D3:3", "D3", "zz", "other", "0.9900", "rule", ""],
    ["D2:2", "D2", "t1", "tactic", "0.4000", "model", ""],
]
# the columns evaluate.py writes (tp/fp/fn/tn give the sizes behind tpr and fpr)
EVAL_HEADER = ["code_id", "name", "category", "reviewed", "support", "tp", "fp", "fn", "tn",
               "precision", "recall", "f1", "kappa", "alpha", "tpr", "fpr", "status"]
EVALUATION = [
    ["t1", "Tactic one", "tactic", 100, 40, 32, 6, 8, 54, 0.84, 0.8, 0.82, 0.7, 0.7, 0.8, 0.1,
     "auto"],
    ["t2", "Tactic two", "tactic", 100, 10, 6, 18, 4, 72, 0.25, 0.6, 0.35, 0.2, 0.2, 0.6, 0.2,
     "human"],
    ["m1", "Mechanism one", "mechanism", 100, 30, 27, 7, 3, 63, 0.79, 0.9, 0.84, 0.75, 0.75,
     0.9, 0.1, "check"],
    ["r1", "Result one", "result", 100, 4, 2, 60, 2, 36, 0.03, 0.5, 0.06, 0.0, 0.0, 0.5, 0.625,
     "human"],
    ["micro_avg", "all codes pooled", "", 100, 84, 67, 91, 17, 225, 0.42, 0.8, 0.55, 0.4, 0.4,
     0.8, 0.29, ""],
]
SETTINGS = ReportSettings(crosstab_fields=("case", "source_type", "nonexistent"),
                          category_pairs=(("tactic", "mechanism"), ("tactic", "result"),
                                          ("tactic", "missing")))


@pytest.fixture(scope="module")
def codebook(tmp_path_factory: pytest.TempPathFactory) -> Codebook:
    path = tmp_path_factory.mktemp("codebook") / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    return load_codebook(path)


def _manifest(out: Path) -> None:
    (out / "run_manifest.json").write_text(json.dumps({
        "run_id": "run-123", "started": "2025-01-01T00:00:00+00:00",
        "finished": "2025-01-01T00:01:00+00:00", "seconds": 60.0,
        "versions": {"python": "3.11", "qualcode": "0.1.0"},
        "codebook": {"path": "codebook.yaml", "sha256": "ab" * 32,
                     "name": "Report test codebook", "version": "0.1"},
        "counts": {"files": 4, "documents": 3, "segments": 12, "skipped": 1},
        "skipped": [{"path": "transcripts/broken.pdf", "reason": "has no text layer — run OCR",
                     "line": None}],
        "inputs": [],
    }), encoding="utf-8")


def _coded_outputs(folder: Path) -> Path:
    write_csv(folder / "segments.csv", SEG_HEADER, SEGMENTS)
    write_csv(folder / "codings.csv", COD_HEADER, CODINGS)
    _manifest(folder)
    return folder


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The hand-built case without an evaluation (reports not written yet)."""
    return _coded_outputs(tmp_path / "outputs")


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory, codebook: Codebook
             ) -> tuple[Path, dict[str, str]]:
    """The hand-built case with evaluation.csv and reliability.csv, reports written once."""
    folder = _coded_outputs(tmp_path_factory.mktemp("reported"))
    write_csv(folder / "evaluation.csv", EVAL_HEADER, EVALUATION)
    write_csv(folder / "reliability.csv", ["code_id", "alpha_between_coders", "units"],
              [["t1", "0.71", 12], ["m1", "0.5", 9]])
    return folder, write_reports(folder, codebook, SETTINGS)


def read(path: Path) -> pd.DataFrame:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf"), f"{path.name} has no BOM"
    return pd.read_csv(path, encoding="utf-8-sig")


# --------------------------------------------------------------------------- hand-computed


def test_frequencies_hand_computed(reported: tuple[Path, dict[str, str]]) -> None:
    out, hashes = reported
    freq = read(out / "frequencies.csv")
    assert list(freq.columns) == ["code_id", "name", "category", "segments", "documents",
                                  "share_of_segments", "share_of_documents",
                                  "corrected_segments", "corrected_low", "corrected_high",
                                  "status"]
    assert freq["code_id"].tolist() == CODES
    assert freq["segments"].tolist() == [4, 2, 3, 1]
    assert freq["documents"].tolist() == [3, 2, 3, 1]
    assert freq["share_of_segments"].tolist() == pytest.approx([4 / 8, 2 / 8, 3 / 8, 1 / 8],
                                                               abs=1e-4)
    assert freq["share_of_documents"].tolist() == pytest.approx([1, 2 / 3, 1, 1 / 3],
                                                                abs=1e-4)
    assert not any(c.startswith("Unnamed") for c in freq.columns)  # no index column
    expected = {"frequencies.csv", "frequencies_by_case.csv", "differences_by_case.csv",
                "frequencies_by_source_type.csv", "differences_by_source_type.csv",
                "cooccurrence.csv", "cooccurrence_tactic_x_mechanism.csv",
                "cooccurrence_tactic_x_result.csv", "code_document_matrix.csv",
                "code_document_matrix_binary.csv", "quotes.csv", "quotes.md", "report.html"}
    assert set(hashes) == expected
    assert {p.name for p in out.iterdir()} >= expected


def test_crosstab_and_differences_hand_computed(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    by_case = read(out / "frequencies_by_case.csv")
    assert list(by_case.columns) == ["code_id", "name", "category", "segments_A", "segments_B",
                                     "segments_total", "share_A", "share_B", "share_total",
                                     "status"]
    codes = by_case.set_index("code_id")
    assert codes.loc[CODES, "segments_A"].tolist() == [2, 1, 1, 0]
    assert codes.loc[CODES, "segments_B"].tolist() == [2, 1, 2, 1]
    assert codes.loc[CODES, "share_A"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 0],
                                                                 abs=1e-4)
    assert codes.loc[CODES, "share_B"].tolist() == pytest.approx([2 / 5, 1 / 5, 2 / 5, 1 / 5],
                                                                 abs=1e-4)
    assert codes.loc[TOTAL_ROW, ["segments_A", "segments_B", "segments_total"]].tolist() == [
        3, 5, 8]

    by_source = read(out / "frequencies_by_source_type.csv").set_index("code_id")
    assert by_source.loc[CODES, "segments_interview"].tolist() == [3, 1, 2, 1]
    assert by_source.loc[CODES, "segments_literature"].tolist() == [1, 1, 1, 0]

    diff = read(out / "differences_by_case.csv").set_index("code_id")
    assert diff.loc["t1", "test"] == "fisher"
    table = np.array([[2, 2], [1, 3]])  # t1: coded A, B / not coded A, B
    assert diff.loc["t1", "p_value"] == pytest.approx(stats.fisher_exact(table).pvalue,
                                                      rel=1e-3)
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    assert diff.loc["t1", "cramers_v"] == pytest.approx(math.sqrt(chi2 / 8), abs=1e-4)
    assert diff.loc["t1", "difference_A_minus_B"] == pytest.approx(2 / 3 - 2 / 5, abs=1e-4)
    p = diff.loc[CODES, "p_value"].to_numpy()
    assert diff.loc[CODES, "q_value"].to_numpy() == pytest.approx(
        stats.false_discovery_control(p, method="bh"), rel=1e-3)
    assert set(diff["significant"]) == {False}
    assert list(diff.columns) == [
        "name", "category", "segments_A", "segments_B", "share_A", "share_B",
        "difference_A_minus_B", "test", "chi2", "p_value", "q_value", "cramers_v", "unit",
        "documents", "test_documents", "p_documents", "p_documents_min", "q_documents",
        "significant", "status"]
    # Document test: case A = D1, B = D2 + D3, so 3 arrangements (which document is A).
    # t1 per document (segments, coded): D1 (3, 2), D2 (2, 1), D3 (3, 1); 4 of 8 coded, so
    # chi2 = sum over groups of (2·coded - segments)² / segments:
    #   A = D1: 1/3 + 1/5 (observed);  A = D2: 0 + 0;  A = D3: 1/3 + 1/5
    # p = 2/3 (two arrangements reach the observed chi2), and no p can be below 2/3.
    assert diff.loc["t1", "chi2"] == pytest.approx(1 / 3 + 1 / 5, rel=1e-3)
    assert diff.loc["t1", ["unit", "documents", "test_documents"]].tolist() == [
        "documents", 3, "permutation_exact"]
    assert diff.loc["t1", "p_documents"] == pytest.approx(2 / 3, abs=1e-4)
    assert diff.loc["t1", "p_documents_min"] == pytest.approx(2 / 3, abs=1e-4)
    assert diff.loc[CODES, "q_documents"].to_numpy() == pytest.approx(
        stats.false_discovery_control(diff.loc[CODES, "p_documents"].to_numpy(), method="bh"),
        rel=1e-3)


def test_cooccurrence_hand_computed(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    co = read(out / "cooccurrence.csv")
    assert list(co.columns) == ["code_id", *CODES]
    assert co.set_index("code_id").loc[CODES, CODES].to_numpy().tolist() == [
        [4, 0, 2, 1],
        [0, 2, 1, 0],
        [2, 1, 3, 1],
        [1, 0, 1, 1],
    ]
    pair = read(out / "cooccurrence_tactic_x_mechanism.csv")
    assert list(pair.columns) == ["code_id", "name", "segments", "m1", "jaccard_m1", "status"]
    assert pair["m1"].tolist() == [2, 1]
    assert pair["jaccard_m1"].tolist() == pytest.approx([2 / 5, 1 / 4])
    result = read(out / "cooccurrence_tactic_x_result.csv")
    assert result["r1"].tolist() == [1, 0]
    assert result["jaccard_r1"].tolist() == pytest.approx([1 / 4, 0])
    assert not (out / "cooccurrence_tactic_x_missing.csv").exists()


def test_code_document_matrix_hand_computed(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    counts = read(out / "code_document_matrix.csv")
    assert list(counts.columns) == ["doc_id", "source_type", "case", "citation", "n_segments",
                                    "n_codable", *CODES]
    assert counts["doc_id"].tolist() == ["D1", "D2", "D3"]
    assert counts["case"].tolist() == ["A", "B", "B"]
    assert counts["n_segments"].tolist() == [6, 3, 3]
    assert counts["n_codable"].tolist() == [3, 2, 3]
    assert counts[CODES].to_numpy().tolist() == [[2, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 0]]
    binary = read(out / "code_document_matrix_binary.csv")
    assert binary[CODES].to_numpy().tolist() == [[1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 0]]


def test_a_segment_reviewed_as_no_code_is_known_to_the_corrected_estimate(
        tmp_path: Path, codebook: Codebook) -> None:
    # segments.csv's ``reviewed`` column: D3:3 was reviewed and given no code, so it is
    # known too (it has no coding row that could say so)
    folder = tmp_path / "outputs"
    rows = [[*row[:9], row[0] in ("D1:4.2", "D2:2", "D3:3"), *row[9:]] for row in SEGMENTS]
    write_csv(folder / "segments.csv", [*SEG_HEADER[:9], "reviewed", *SEG_HEADER[9:]], rows)
    write_csv(folder / "codings.csv", COD_HEADER, CODINGS)
    write_csv(folder / "evaluation.csv", EVAL_HEADER, EVALUATION)
    _manifest(folder)
    write_reports(folder, codebook, SETTINGS)
    freq = read(folder / "frequencies.csv").set_index("code_id")
    # t1: 1 known (D2:2) + 5 classifier-decided × (3/5 - .1) / .7 (was 6 × (3/6 - .1) / .7)
    assert freq.loc["t1", "corrected_segments"] == pytest.approx(1 + 5 * 0.5 / 0.7, abs=0.01)
    assert freq.loc["t1", "segments"] == 4  # the counts themselves are unchanged
    matrix = read(folder / "code_document_matrix.csv")
    assert "reviewed" not in matrix.columns  # a segment's flag, not document metadata
    # every codable segment reviewed: the corrected counts are the counts, exactly
    rows = [[*row[:9], True, *row[9:]] for row in SEGMENTS]
    write_csv(folder / "segments.csv", [*SEG_HEADER[:9], "reviewed", *SEG_HEADER[9:]], rows)
    write_reports(folder, codebook, SETTINGS)
    freq = read(folder / "frequencies.csv").set_index("code_id")
    for column in ("corrected_segments", "corrected_low", "corrected_high"):
        assert freq[column].tolist() == freq["segments"].astype(float).tolist(), column


def test_quotes_order_and_context(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    read(out / "quotes.csv")  # BOM check
    quotes = pd.read_csv(out / "quotes.csv", dtype=str, keep_default_na=False)
    assert list(quotes.columns) == ["code_id", "name", "category", "rank", "segment_id",
                                    "doc_id", "speaker", "citation", "score", "method", "text",
                                    "context", "status"]
    t1 = quotes[quotes["code_id"] == "t1"]
    # human first, then highest score; three per code
    assert t1["segment_id"].tolist() == ["D2:2", "D3:2", "D1:2"]
    assert t1["rank"].tolist() == ["1", "2", "3"]
    by_id = quotes.drop_duplicates("segment_id").set_index("segment_id")
    assert by_id.loc["D2:2", "context"] == "Interviewer: Tell me about access."
    assert by_id.loc["D3:2", "context"] == "Agencies suspended aid jointly."
    assert by_id.loc["D3:2", "citation"] == "Smith (2020), p. 4"
    # the previous *turn* of a split turn's second part is the question before the turn
    assert by_id.loc["D1:4.2", "context"] == "Interviewer: And after that?"
    assert by_id.loc["D3:1", "context"] == ""
    assert SCRIPT in by_id.loc["D1:2", "text"]
    md = (out / "quotes.md").read_text(encoding="utf-8")
    assert "### Tactic one (`t1`)" in md and "Smith (2020), p. 4" in md
    assert "### Result one (`r1`)" in md


def test_corrected_estimate_hand_computed(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    freq = read(out / "frequencies.csv").set_index("code_id")
    assert list(freq.columns)[-4:] == ["corrected_segments", "corrected_low", "corrected_high",
                                       "status"]
    assert "micro_avg" not in freq.index
    # Coders decided D1:4.2 and D2:2 (a human coding): their codes are known, and the
    # correction applies to the classifier's decisions on the 6 other codable segments.
    # t1: 1 known (D2:2) + 6 × (3/6 - .1) / .7 = 1 + 3.43 = 4.43
    assert freq.loc["t1", "corrected_segments"] == pytest.approx(1 + 6 * 0.4 / 0.7, abs=0.01)
    # m1: 1 known (D2:2) + 6 × (2/6 - .1) / .8 = 1 + 1.75 = 2.75
    assert freq.loc["m1", "corrected_segments"] == pytest.approx(2.75, abs=0.01)
    # t2: 1 known (D1:4.2) + 6 × max(0, (1/6 - .2) / .4) = 1: never below what coders found
    assert freq.loc["t2", "corrected_segments"] == pytest.approx(1.0, abs=0.01)
    assert freq.loc["t2", "corrected_low"] >= 1
    # r1: tpr <= fpr, the correction is undefined
    assert math.isnan(freq.loc["r1", "corrected_segments"])
    for code in ("t1", "t2", "m1"):
        low, point, high = freq.loc[code, ["corrected_low", "corrected_segments",
                                           "corrected_high"]]
        assert 0 <= low <= point <= high <= 8
    assert freq["status"].tolist() == ["auto", "human", "check", "human"]
    # the status is carried into the other tables
    for name in ("frequencies_by_case.csv", "differences_by_case.csv", "quotes.csv",
                 "cooccurrence_tactic_x_mechanism.csv"):
        assert read(out / name).columns[-1] == "status"
    assert "Status `human`" in (out / "quotes.md").read_text(encoding="utf-8")


def test_evaluation_sizes() -> None:
    ev = pd.DataFrame({"code_id": ["a", "b", "c", "macro_avg"], "support": [10, 10, 10, 30],
                       "tn": [80, "", "", ""], "fp": [5, "", "", ""],
                       "reviewed": ["", 60, "", ""], "tpr": [0.8] * 4, "fpr": [0.1] * 4,
                       "status": ["auto", "check", "human", ""]})
    found = evaluation_by_code(ev, ["a", "b", "c"])
    assert set(found) == {"a", "b", "c"}
    assert [found[c]["n_neg"] for c in "abc"] == [85, 50, 10]  # tn+fp, reviewed-support, support
    assert [found[c]["n_pos"] for c in "abc"] == [10, 10, 10]
    assert found["c"]["status"] == "human"


def test_corrected_prevalence_interval() -> None:
    # with (almost) exact tpr/fpr the interval is the transformed Jeffreys interval of p_obs
    k, n, tpr, fpr = 30, 200, 0.8, 0.1
    point, low, high = corrected_prevalence(k, n, tpr, fpr, 10**7, 10**7, draws=20000)
    assert point == pytest.approx((k / n - fpr) / (tpr - fpr))
    b_low, b_high = stats.beta.ppf([0.025, 0.975], k + 0.5, n - k + 0.5)
    assert low == pytest.approx((b_low - fpr) / (tpr - fpr), abs=0.01)
    assert high == pytest.approx((b_high - fpr) / (tpr - fpr), abs=0.01)
    # the uncertainty in tpr/fpr from a small evaluation widens it
    _, small_low, small_high = corrected_prevalence(k, n, tpr, fpr, 20, 40, draws=20000)
    assert small_high - small_low > (high - low) * 1.2
    # reproducible with the default seed; undefined when the classifier is no better than chance
    assert corrected_prevalence(k, n, tpr, fpr, 20, 40) == corrected_prevalence(
        k, n, tpr, fpr, 20, 40)
    assert all(math.isnan(x) for x in corrected_prevalence(k, n, 0.3, 0.3, 20, 40))


# --------------------------------------------------------------------------- recomputation


def _random_outputs(folder: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    segs, cods = [], []
    for d in range(6):
        doc = f"doc{d}"
        for t in range(1, 13):
            codable = bool(t % 3)  # every third turn is an interviewer turn
            segs.append([f"{doc}:{t}", doc, ["interview", "literature"][d % 2],
                         "R" if codable else "Interviewer", t, 0, 1, f"text {d} {t}",
                         codable, ["A", "B", "C"][d % 3], ""])
            for code in CODES:
                if rng.random() < 0.3:
                    cods.append([f"{doc}:{t}", doc, code, "x", f"{rng.random():.4f}",
                                 rng.choice(["rule", "model", "human"]), ""])
    write_csv(folder / "segments.csv", SEG_HEADER, segs)
    write_csv(folder / "codings.csv", COD_HEADER, cods)
    return (pd.read_csv(folder / "segments.csv", encoding="utf-8-sig"),
            pd.read_csv(folder / "codings.csv", encoding="utf-8-sig"))


def test_every_number_recomputed_from_codings_and_segments(tmp_path: Path,
                                                           codebook: Codebook) -> None:
    out = tmp_path / "random"
    segments, codings = _random_outputs(out, seed=7)
    write_reports(out, codebook, SETTINGS)
    codable = segments[segments["codable"]]
    applied = (codings.merge(codable[["segment_id", "case"]], on="segment_id")
               .drop_duplicates(["segment_id", "code_id"]))
    n, docs = len(codable), codable["doc_id"].nunique()

    freq = read(out / "frequencies.csv").set_index("code_id")
    for code in CODES:
        rows = applied[applied["code_id"] == code]
        assert freq.loc[code, "segments"] == len(rows)
        assert freq.loc[code, "documents"] == rows["doc_id"].nunique()
        assert freq.loc[code, "share_of_segments"] == pytest.approx(len(rows) / n, abs=1e-4)
        assert freq.loc[code, "share_of_documents"] == pytest.approx(
            rows["doc_id"].nunique() / docs, abs=1e-4)

    by_case = read(out / "frequencies_by_case.csv").set_index("code_id")
    expected = pd.crosstab(applied["code_id"], applied["case"]).reindex(CODES, fill_value=0)
    sizes = codable["case"].value_counts()
    for case in ("A", "B", "C"):
        assert by_case.loc[CODES, f"segments_{case}"].tolist() == expected[case].tolist()
        assert by_case.loc[CODES, f"share_{case}"].to_numpy() == pytest.approx(
            (expected[case] / sizes[case]).to_numpy(), abs=1e-4)
        assert by_case.loc[TOTAL_ROW, f"segments_{case}"] == sizes[case]

    diff = read(out / "differences_by_case.csv").set_index("code_id")
    # the document test by brute force: every distinct arrangement of the 6 documents' cases
    docs = codable.drop_duplicates("doc_id")[["doc_id", "case"]]
    per_doc = applied.groupby(["doc_id", "code_id"]).size().unstack(fill_value=0).reindex(
        index=docs["doc_id"], columns=CODES, fill_value=0)
    doc_n = codable.groupby("doc_id").size().reindex(docs["doc_id"]).to_numpy()
    arrangements = sorted(set(itertools.permutations(docs["case"].tolist())))
    assert len(arrangements) == 90  # 6! / (2! 2! 2!)
    for code in CODES:
        coded = expected.loc[code, ["A", "B", "C"]].to_numpy()
        table = np.vstack([coded, sizes[["A", "B", "C"]].to_numpy() - coded])
        chi2, p, _, exp = stats.chi2_contingency(table, correction=False)
        assert diff.loc[code, "chi2"] == pytest.approx(chi2, rel=1e-3)
        assert diff.loc[code, "cramers_v"] == pytest.approx(math.sqrt(chi2 / n), abs=1e-4)
        assert diff.loc[code, "test"] == ("chi2" if exp.min() >= 5 else "fisher_mc")
        if diff.loc[code, "test"] == "chi2":
            assert diff.loc[code, "p_value"] == pytest.approx(p, rel=1e-3)
        hits = per_doc[code].to_numpy()
        null = []
        for cases in arrangements:
            labels = np.array([["A", "B", "C"].index(c) for c in cases])
            coded_g = np.bincount(labels, weights=hits, minlength=3)
            totals_g = np.bincount(labels, weights=doc_n, minlength=3)
            null.append(stats.chi2_contingency(np.vstack([coded_g, totals_g - coded_g]),
                                               correction=False)[0])
        exact = np.mean(np.array(null) >= chi2 * (1 - 1e-9))
        assert diff.loc[code, "test_documents"] == "permutation_exact"
        assert diff.loc[code, "p_documents"] == pytest.approx(exact, abs=1e-4)

    wide = applied.assign(one=1).pivot_table(index="segment_id", columns="code_id",
                                             values="one", fill_value=0)
    wide = wide.reindex(index=codable["segment_id"], columns=CODES, fill_value=0)
    co = read(out / "cooccurrence.csv").set_index("code_id").loc[CODES, CODES]
    assert co.to_numpy().tolist() == (wide.T @ wide).to_numpy().tolist()

    matrix = read(out / "code_document_matrix.csv").set_index("doc_id")
    per_doc = applied.groupby(["doc_id", "code_id"]).size().unstack(fill_value=0)
    per_doc = per_doc.reindex(index=matrix.index, columns=CODES, fill_value=0)
    assert matrix[CODES].to_numpy().tolist() == per_doc.to_numpy().tolist()


# --------------------------------------------------------------------------- HTML


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href", "srcset", "data"}]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html_self_contained_and_escaped(reported: tuple[Path, dict[str, str]]
                                                ) -> None:
    out, _ = reported
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "http://" not in html and "https://" not in html
    assert all(u.startswith(("#", "data:image/")) for u in parser.urls), parser.urls
    assert sum(u.startswith("data:image/svg+xml;base64,") for u in parser.urls) >= 5
    assert "&lt;script&gt;" in html and SCRIPT not in html
    text = " ".join(parser.text)
    for expected in ("run-123", "Report test codebook", "Tactics", "Mechanisms", "By case",
                     "transcripts/broken.pdf", "alpha_between_coders", "Smith (2020), p. 4",
                     "No co-occurrence table tactic × missing", "nonexistent", "human"):
        assert expected in text, expected
    assert "@media print" in html


def test_renamed_codebook_falls_back_without_evaluation(out: Path,
                                                        codebook: Codebook) -> None:
    # the codebook names no category pairs for its reports: its first two categories are used
    (out / "cooccurrence_old_x_gone.csv").write_text("stale", encoding="utf-8")
    hashes = write_reports(out, codebook)
    assert "cooccurrence_tactic_x_mechanism.csv" in hashes  # first two categories
    assert not (out / "cooccurrence_old_x_gone.csv").exists()
    assert list(read(out / "frequencies.csv").columns) == [
        "code_id", "name", "category", "segments", "documents", "share_of_segments",
        "share_of_documents"]
    for name in hashes:
        if name.endswith(".csv"):
            assert "status" not in read(out / name).columns, name
    assert read(out / "frequencies.csv")["segments"].tolist() == [4, 2, 3, 1]
    # deterministic: same inputs, same bytes
    assert write_reports(out, codebook) == hashes


def test_nothing_coded_still_writes_every_report(tmp_path: Path, codebook: Codebook) -> None:
    out = tmp_path / "uncoded"
    write_csv(out / "segments.csv", SEG_HEADER, SEGMENTS)  # no codings.csv, no manifest
    hashes = write_reports(out, codebook, SETTINGS)
    assert "report.html" in hashes and "quotes.md" in hashes
    freq = read(out / "frequencies.csv")
    assert freq["segments"].tolist() == [0, 0, 0, 0]
    assert read(out / "quotes.csv").empty
    assert "codings.csv was not found" in (out / "report.html").read_text(encoding="utf-8")
    assert "No codes applied" in artifact_markdown(out)


def test_missing_segments_is_a_clear_error(tmp_path: Path, codebook: Codebook) -> None:
    with pytest.raises(FileNotFoundError, match="qualcode run"):
        write_reports(tmp_path, codebook)


def test_artifacts_carry_no_transcript_text(reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    md = artifact_markdown(out)
    rows = frequency_table_rows(out)
    assert "run-123" in md and "Tactic one" in md and "transcripts/broken.pdf" in md
    assert "⚠ human" in md
    assert [r["code_id"] for r in rows] == CODES
    assert rows[0]["segments"] == 4 and isinstance(rows[0]["share_of_segments"], float)
    assert rows[3]["corrected_segments"] is None
    dumped = md + json.dumps(rows)
    for _, *_, text, _, _, _ in SEGMENTS:
        assert text not in dumped
    assert frequency_table_rows(out.parent / "nowhere") == []
    # a note may quote words of a file: the artifact leaves them out, keeps single tokens
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    manifest["notes"] = [{"path": "transcripts/t.docx", "line": 7, "reason": (
        "this table row is a note, not a turn ('the commander said no'); it was left out "
        "— put the speaker's name in its speaker cell, or ask 'Ana Lee'")},
        {"path": "lit/x.csv", "line": 2, "reason": "duplicate doc_id 'X-1' — rename it"}]
    (out / "run_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    md = artifact_markdown(out)
    assert ("- `transcripts/t.docx:7`: this table row is a note, not a turn ('…'); it was left "
            "out — put the speaker's name in its speaker cell, or ask '…'") in md
    assert "- `lit/x.csv:2`: duplicate doc_id 'X-1' — rename it" in md
    assert "commander" not in md


def test_quotes_say_a_coders_decision_is_no_classifier_score(
        reported: tuple[Path, dict[str, str]]) -> None:
    out, _ = reported
    md = (out / "quotes.md").read_text(encoding="utf-8")
    assert "> — `D2:2`, Respondent (coder's decision; classifier's score 1.00)" in md
    assert "> — `D1:4.2`, Respondent (coder's decision)" in md
    assert "> — `D1:2`, Respondent (rule, score 0.90)" in md
    assert "(human, score" not in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "(coder's decision; classifier's score 1.00)" in html


def test_a_renamed_codebook_gives_the_same_numbers(tmp_path: Path, codebook: Codebook) -> None:
    # Monte-Carlo intervals and p-values are seeded by each code's data, not by its id
    mapping = {code: f"renamed_{code[::-1]}" for code in CODES}
    renamed_path = tmp_path / "renamed.yaml"
    renamed_path.write_text(re.sub(r"(?m)^(  - id: )(\w+)$",
                                   lambda m: m[1] + mapping.get(m[2], m[2]), CODEBOOK),
                            encoding="utf-8")
    renamed = load_codebook(renamed_path)
    assert renamed.code_ids == [mapping[c] for c in CODES]
    tables = []
    for book, name in ((codebook, dict.fromkeys(CODES)), (renamed, mapping)):
        out = tmp_path / book.code_ids[0]
        _, codings = _random_outputs(out, seed=11)
        codings["code_id"] = [name.get(c) or c for c in codings["code_id"]]
        write_csv(out / "codings.csv", COD_HEADER, codings.astype(str).to_numpy().tolist())
        write_csv(out / "evaluation.csv", EVAL_HEADER,
                  [[name.get(row[0]) or row[0], *row[1:]] for row in EVALUATION])
        write_reports(out, book, SETTINGS)
        tables.append([read(out / f).drop(columns="code_id")
                       for f in ("frequencies.csv", "differences_by_case.csv")])
    for default, other in zip(*tables, strict=True):
        pd.testing.assert_frame_equal(default, other)
    assert "fisher_mc" in set(tables[0][1]["test"])  # a seeded test was compared
    assert tables[0][0]["corrected_low"].notna().any()


def test_a_field_named_like_a_code_is_crossed_under_its_column_name(tmp_path: Path,
                                                                  codebook: Codebook) -> None:
    # a code called 'case' makes segments.csv write the metadata field as 'meta_case'
    out = tmp_path / "outputs"
    write_csv(out / "segments.csv", [("meta_case" if h == "case" else h) for h in SEG_HEADER],
              SEGMENTS)
    write_csv(out / "codings.csv", COD_HEADER, CODINGS)
    _manifest(out)
    write_reports(out, codebook, ReportSettings(crosstab_fields=("case",)))
    by_case = read(out / "frequencies_by_meta_case.csv").set_index("code_id")
    assert by_case.loc["t1", ["segments_A", "segments_B"]].tolist() == [2, 2]
    assert (out / "differences_by_meta_case.csv").is_file()
    assert "no such column" not in (out / "report.html").read_text(encoding="utf-8")
