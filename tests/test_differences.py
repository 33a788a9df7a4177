"""``differences_by_<field>.csv``: the document-level permutation test.

Segments of one interview are not independent. When a field has one value per document,
the group labels are shuffled between whole documents and each code's chi-square is
compared with the shuffled ones (``p_documents``); that test decides ``significant``. A
field that varies within documents keeps the segment test (``unit = segments``).
"""

from __future__ import annotations

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
from qualcode.report_tables import difference_table, document_groups

CODEBOOK = """\
name: Differences codebook
version: "0.1"
categories:
  - id: tactic
    name: Tactics
codes:
  - id: a
    name: Code a
    category: tactic
    definition: The first code.
  - id: b
    name: Code b
    category: tactic
    definition: The second code.
"""
SEG_COLUMNS = ["segment_id", "doc_id", "source_type", "speaker", "turn", "char_start",
               "char_end", "text", "codable", "case", "role"]
COD_COLUMNS = ["segment_id", "doc_id", "code_id", "category", "score", "method", "evidence"]


@pytest.fixture(scope="module")
def codebook(tmp_path_factory: pytest.TempPathFactory) -> Codebook:
    path = tmp_path_factory.mktemp("codebook") / "codebook.yaml"
    path.write_text(CODEBOOK, encoding="utf-8")
    return load_codebook(path)


def _only_a(tmp_path: Path) -> Codebook:
    path = tmp_path / "only_a.yaml"
    path.write_text(CODEBOOK.split("  - id: b\n")[0], encoding="utf-8")
    return load_codebook(path)


def _frames(docs: list[tuple[str, int, int, int]], role: str | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """segments and codings: per document ``(case, segments, coded a, coded b)``; code a on
    the document's first ``coded a`` segments, b on its last ``coded b``. ``role``
    ``"alternate"``: the field ``role`` alternates within every document."""
    segs, cods = [], []
    for d, (case, n, a, b) in enumerate(docs):
        doc = f"doc{d}"
        for i in range(n):
            sid = f"{doc}:{i}"
            who = ("chief", "deputy")[i % 2] if role == "alternate" else "chief"
            segs.append([sid, doc, "interview", "R", str(i), "0", "1", "text", True, case, who])
            if i < a:
                cods.append([sid, doc, "a", "tactic", "0.9", "rule", ""])
            if i >= n - b:
                cods.append([sid, doc, "b", "tactic", "0.9", "rule", ""])
    return pd.DataFrame(segs, columns=SEG_COLUMNS), pd.DataFrame(cods, columns=COD_COLUMNS)


def _brute_force_p(docs: list[tuple[str, int, int, int]], code: int) -> float:
    """Exact document-level p-value by listing every distinct arrangement of the cases."""
    cases = sorted({d[0] for d in docs})
    n = np.array([d[1] for d in docs], dtype=float)
    hits = np.array([d[2 + code] for d in docs], dtype=float)

    def chi2(labels: tuple[str, ...]) -> float:
        index = np.array([cases.index(c) for c in labels])
        coded = np.bincount(index, weights=hits, minlength=len(cases))
        total = np.bincount(index, weights=n, minlength=len(cases))
        return float(stats.chi2_contingency(np.vstack([coded, total - coded]),
                                            correction=False)[0])

    observed = chi2(tuple(d[0] for d in docs))
    null = [chi2(p) for p in _distinct_orders([d[0] for d in docs])]
    return float(np.mean(np.array(null) >= observed * (1 - 1e-9)))


def _distinct_orders(labels: list[str]) -> list[tuple[str, ...]]:
    """Every distinct ordering of ``labels`` (a multiset), each once."""
    if not labels:
        return [()]
    return [(first, *rest) for first in sorted(set(labels))
            for rest in _distinct_orders(_without(labels, first))]


def _without(labels: list[str], label: str) -> list[str]:
    rest = list(labels)
    rest.remove(label)
    return rest


# One talkative interview: doc0 (case A) has 40 segments, 30 of them coded a. The nine other
# documents have 10 segments each with one coded a. Code b is in 3 of 10 segments of every
# A document (12 of doc0's 40) and in no B document.
TALKATIVE = [("A", 40, 30, 12), *[("A", 10, 1, 3)] * 4, *[("B", 10, 1, 0)] * 5]


def test_one_talkative_interview_is_one_document(codebook: Codebook) -> None:
    table = difference_table(*_frames(TALKATIVE), codebook, "case").set_index("code_id")
    # Segments: a in 34 of A's 80 segments and 5 of B's 50: Fisher's test finds this
    # overwhelming (p ≈ 2e-5) and q < 0.05.
    assert table.loc["a", ["segments_A", "segments_B"]].tolist() == [34, 5]
    fisher = stats.fisher_exact([[34, 5], [46, 45]]).pvalue
    assert fisher < 1e-4
    assert table.loc["a", "test"] == "fisher"
    assert table.loc["a", "p_value"] == pytest.approx(fisher, rel=1e-3)
    assert table.loc["a", "q_value"] < 0.05
    # Documents: the nine others are alike (10 segments, 1 coded), so every one of the
    # C(10, 5) = 252 arrangements puts doc0 with four alike documents against five: every
    # arrangement has the observed chi-square, p = 252/252 = 1, and no arrangement of
    # these documents could give less.
    assert table.loc["a", ["unit", "documents", "test_documents"]].tolist() == [
        "documents", 10, "permutation_exact"]
    assert table.loc["a", "p_documents"] == 1.0
    assert table.loc["a", "p_documents_min"] == 1.0
    # b differs document by document (every A document 30 %, every B document 0 %): only
    # the observed split and its mirror image (A and B swapped, 5 documents each) separate
    # coded from uncoded documents, so p = 2/252, the smallest possible.
    assert table.loc["b", "p_documents"] == pytest.approx(2 / 252, rel=1e-3)
    assert table.loc["b", "p_documents"] == pytest.approx(_brute_force_p(TALKATIVE, 1),
                                                          rel=1e-3)
    assert table.loc["b", "p_documents_min"] == pytest.approx(2 / 252, rel=1e-3)
    # BH over the two codes: q_b = 2 × (2/252) / 1 = 0.0159, q_a = 1
    assert table.loc[["a", "b"], "q_documents"].tolist() == pytest.approx(
        [1.0, 4 / 252], rel=1e-3)
    assert table.loc[["a", "b"], "significant"].tolist() == [False, True]


def test_exact_enumeration_worked_by_hand(codebook: Codebook) -> None:
    # Four documents (segments, coded a): case A: w (3, 3); B: x (1, 0); C: y (2, 0), z (2, 1).
    # 4 of 8 segments coded (share 1/2), so Pearson's chi-square of the 2 × 3 table is
    #   chi2 = sum over groups of (2·coded - segments)² / segments
    # Observed: A (3, 3) → 9/3 = 3, B (1, 0) → 1, C = y+z (4, 1) → 4/4 = 1: chi2 = 5.
    # The 4! / (1! 1! 2!) = 12 arrangements (A's document, B's document; C the other two):
    #   w,x: 3 + 1 + 1 = 5        x,w: 5
    #   w,y: 3 + 2 + (b+z: (3,1) → 1/3) = 5.33      y,w: 5.33
    #   w,z: 3 + 0 + (x+y: (3,0) → 3) = 6           z,w: 6
    #   x,y: 1 + 2 + (w+z: (5,4) → 9/5) = 4.8       y,x: 4.8
    #   x,z: 1 + 0 + (w+y: (5,3) → 1/5) = 1.2       z,x: 1.2
    #   y,z: 2 + 0 + (w+x: (4,3) → 1) = 3           z,y: 3
    # 6 of 12 reach 5: p = 0.5. The largest, 6, is reached by 2: p_min = 2/12.
    docs = [("A", 3, 3, 0), ("B", 1, 0, 0), ("C", 2, 0, 0), ("C", 2, 1, 0)]
    table = difference_table(*_frames(docs), codebook, "case").set_index("code_id")
    assert table.loc["a", "chi2"] == pytest.approx(5.0)
    assert table.loc["a", "test"] == "fisher_mc"  # expected counts below 5
    assert table.loc["a", ["unit", "documents", "test_documents"]].tolist() == [
        "documents", 4, "permutation_exact"]
    assert table.loc["a", "p_documents"] == pytest.approx(0.5)
    assert table.loc["a", "p_documents_min"] == pytest.approx(2 / 12, abs=1e-4)
    assert table.loc["a", "p_documents"] == pytest.approx(_brute_force_p(docs, 0), abs=1e-4)
    assert not table.loc["a", "significant"]
    # b is coded nowhere: not tested, by either test
    assert table.loc["b", "test"] == "" and table.loc["b", "test_documents"] == ""
    assert math.isnan(table.loc["b", "p_documents"])
    assert table.loc["b", "significant"] == ""
    assert rt._arrangement_count([1, 1, 2]) == 12
    assert len({tuple(r) for r in rt._arrangements([1, 1, 2])}) == 12


def test_field_varying_within_documents_keeps_the_segment_test(codebook: Codebook) -> None:
    # 'role' alternates chief / deputy within every document: documents cannot be shuffled
    docs = [("A", 20, 10, 0), ("A", 20, 8, 0), ("B", 20, 2, 0), ("B", 20, 1, 0)]
    segments, codings = _frames(docs, role="alternate")
    table = difference_table(segments, codings, codebook, "role").set_index("code_id")
    # code a on each document's first segments: chief 11, deputy 10 of 40 each
    assert table.loc["a", ["segments_chief", "segments_deputy"]].tolist() == [11, 10]
    assert table.loc["a", ["unit", "documents"]].tolist() == ["segments", 4]
    assert table.loc["a", "test_documents"] == ""
    assert table.loc[["a", "b"], ["p_documents", "p_documents_min", "q_documents"]
                     ].isna().all(axis=None)
    fisher = stats.fisher_exact([[11, 10], [29, 30]]).pvalue
    assert table.loc["a", "p_value"] == pytest.approx(fisher, rel=1e-3)
    assert table.loc["a", "significant"] == (table.loc["a", "q_value"] < 0.05)
    found = document_groups(rt.applied_matrix(segments, codings, codebook.code_ids), "role")
    assert (found.varying, found.per_document, found.arrangements) == (4, False, 0)
    # by case, the same data is a document-level field
    by_case = difference_table(segments, codings, codebook, "case").set_index("code_id")
    assert by_case.loc["a", "unit"] == "documents"
    assert by_case.loc["a", "p_documents"] == pytest.approx(_brute_force_p(docs, 0), abs=1e-4)


def test_a_document_with_some_segments_without_a_value_keeps_its_group(
        codebook: Codebook) -> None:
    # doc0's last two segments have no case: they are left out, doc0 stays in group A
    docs = [("A", 6, 3, 0), ("A", 4, 2, 0), ("B", 5, 0, 0), ("B", 5, 1, 0)]
    segments, codings = _frames(docs)
    segments.loc[[4, 5], "case"] = ""
    table = difference_table(segments, codings, codebook, "case").set_index("code_id")
    assert table.loc["a", ["segments_A", "segments_B", "unit", "documents"]].tolist() == [
        5, 1, "documents", 4]
    assert table.loc["a", "p_documents"] == pytest.approx(
        _brute_force_p([("A", 4, 3, 0), *docs[1:]], 0), abs=1e-4)


@pytest.mark.parametrize(("segments_per_doc", "seed"), [(1, 2), (7, 1)])
def test_random_shuffles_match_the_exact_p_value(codebook: Codebook, monkeypatch:
                                                 pytest.MonkeyPatch,
                                                 segments_per_doc: int, seed: int) -> None:
    # 12 documents, 6 per case: 924 arrangements. With 900 permutations the p-value is
    # drawn at random (one-segment documents: by kinds of documents; longer ones: by
    # shuffling documents), and must agree with the exact one (0.18 and 0.03 here).
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(12):
        n = segments_per_doc + (d % 3 if segments_per_doc > 1 else 0)
        share = 0.6 if d < 6 else 0.25
        docs.append(("A" if d < 6 else "B", n, int(rng.binomial(n, share)), 0))
    segments, codings = _frames(docs)
    kinds_used = []
    drawn_kinds = rt._drawn_kinds
    monkeypatch.setattr(rt, "_drawn_kinds", lambda *a, **k: kinds_used.append(1)
                        or drawn_kinds(*a, **k))
    exact = difference_table(segments, codings, codebook, "case").set_index("code_id")
    assert exact.loc["a", "test_documents"] == "permutation_exact"
    assert exact.loc["a", "p_documents"] == pytest.approx(_brute_force_p(docs, 0), abs=1e-4)
    drawn = difference_table(segments, codings, codebook, "case",
                             permutations=900).set_index("code_id")
    assert drawn.loc["a", "test_documents"] == "permutation_mc"
    assert bool(kinds_used) == (segments_per_doc == 1)
    p = exact.loc["a", "p_documents"]
    assert 0.001 < p < 0.5  # a p-value the comparison can resolve
    assert drawn.loc["a", "p_documents"] == pytest.approx(p, abs=4 * math.sqrt(p / 900))
    assert drawn.loc["a", "p_documents_min"] == pytest.approx(1 / 901, rel=1e-3)


def _many_documents(n_docs: int, seed: int) -> list[tuple[str, int, int, int]]:
    """Documents in cases A, B, C with different lengths: random (Monte Carlo) tests."""
    rng = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        n = int(rng.integers(3, 40))
        docs.append(("ABC"[d % 3], n, int(rng.binomial(n, 0.3)), int(rng.binomial(n, 0.1))))
    return docs


def test_same_seed_same_p_value(codebook: Codebook, tmp_path: Path) -> None:
    segments, codings = _frames(_many_documents(60, seed=2))
    first = difference_table(segments, codings, codebook, "case", seed=3)
    again = difference_table(segments, codings, codebook, "case", seed=3)
    assert (first["test_documents"] == "permutation_mc").all()
    assert first["p_documents"].tolist() == again["p_documents"].tolist()
    other = difference_table(segments, codings, codebook, "case", seed=4)
    assert other["p_documents"].tolist() != first["p_documents"].tolist()
    # a code's p-value does not depend on the other codes of the codebook
    alone = difference_table(segments, codings, _only_a(tmp_path), "case", seed=3)
    assert alone.loc[0, "p_documents"] == first.loc[0, "p_documents"]


def test_report_says_which_test_decided(codebook: Codebook, tmp_path: Path) -> None:
    segments, codings = _frames(TALKATIVE, role="alternate")
    write_csv(tmp_path / "segments.csv", SEG_COLUMNS, segments.to_numpy().tolist())
    write_csv(tmp_path / "codings.csv", COD_COLUMNS, codings.to_numpy().tolist())
    write_reports(tmp_path, codebook, ReportSettings(crosstab_fields=("case", "role")))
    by_case = pd.read_csv(tmp_path / "differences_by_case.csv", encoding="utf-8-sig")
    assert by_case["unit"].tolist() == ["documents", "documents"]
    assert by_case["significant"].tolist() == [False, True]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "A (n=80; 5 docs)" in html and "<th class=\"num\">p documents</th>" in html
    assert "so the test that decides\nis a <strong>document test</strong>" in html
    # the role varies within every document: segment test, with the caveat
    assert ("&#39;role&#39; differs between segments of the same document (in 10 of 10 "
            "documents)") in html
    assert "these tests count segments as independent" in html
    # 252 arrangements, all counted: a floor note, but no code is out of reach
    assert "(A 5, B 5) can be split between the groups in only 252 ways" in html
    assert "no document-level p-value can be below 0.00397." in html
    assert "no code can reach" not in html
