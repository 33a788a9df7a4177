"""Reliability: published worked examples, a second implementation on random data, MASI,
the bootstrap, and the agreement table written to outputs/reliability.csv."""

from __future__ import annotations

import math
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from qualcode.outputs import write_csv
from qualcode.reliability import (
    COLUMNS,
    POOLED,
    _alpha_resampled,
    _counts,
    _delta,
    _nominal,
    _resample_weights,
    agreement_table,
    alpha_interval,
    classifier_decisions,
    cohen_kappa,
    format_agreement,
    krippendorff_alpha,
    masi_distance,
    nominal_alpha,
    percent_agreement,
    write_reliability,
)
from qualcode.reviews import append_reviews, load_reviews

N = None
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: four
# observers, twelve units, values 1-5, missing data; nominal alpha = 0.743.
KRIPPENDORFF_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
# Same paper, section A: binary data, two observers, ten units; alpha = 0.095.
KRIPPENDORFF_A = [
    [0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    [1, 1, 1, 0, 0, 1, 0, 0, 0, 0],
]


def _table(yes_yes: int, yes_no: int, no_yes: int, no_no: int) -> tuple[list[str], list[str]]:
    pairs = ([("y", "y")] * yes_yes + [("y", "n")] * yes_no + [("n", "y")] * no_yes
             + [("n", "n")] * no_no)
    return [a for a, _ in pairs], [b for _, b in pairs]


def test_krippendorff_worked_example_with_missing_data() -> None:
    assert round(krippendorff_alpha(KRIPPENDORFF_C), 3) == 0.743
    assert round(nominal_alpha(KRIPPENDORFF_C), 3) == 0.743
    # the paper's coincidence matrix: n_c = 9, 13, 10, 5, 3 (n = 40 pairable values) and
    # off-diagonal coincidences summing to 8, so alpha = 1 - 39 * 8 / sum_{c!=k} n_c n_k
    counts, values = _counts(KRIPPENDORFF_C)
    assert values == [1, 2, 3, 4, 5] and list(counts.sum(axis=0)) == [9, 13, 10, 5, 3]
    n_c = np.array([9, 13, 10, 5, 3])
    expected = 1 - 39 * 8 / (n_c.sum() ** 2 - (n_c**2).sum())
    assert krippendorff_alpha(KRIPPENDORFF_C) == pytest.approx(expected)


def test_krippendorff_binary_example() -> None:
    assert round(krippendorff_alpha(KRIPPENDORFF_A), 3) == 0.095
    assert nominal_alpha(KRIPPENDORFF_A) == pytest.approx(1 - 19 * 4 / (14 * 6))
    assert percent_agreement(KRIPPENDORFF_A) == pytest.approx(0.6)


@pytest.mark.parametrize(("cells", "kappa"), [
    # the classic 2x2 example (50 grant proposals): p_o = 0.70, p_e = 0.50, kappa = 0.40
    ((20, 5, 10, 15), 0.40),
    # same agreement (60%), different marginals: kappa 0.1304 vs 0.2593
    ((45, 15, 25, 15), 0.06 / 0.46),
    ((25, 35, 5, 35), 0.14 / 0.54),
])
def test_cohen_kappa_textbook_examples(cells: tuple[int, int, int, int], kappa: float) -> None:
    a, b = _table(*cells)
    assert cohen_kappa(a, b) == pytest.approx(kappa)
    assert round(cohen_kappa(a, b), 4) == round(kappa, 4)


def _random_data(rng: np.random.Generator, coders: int, units: int, values: int,
                 missing: float) -> list[list[int | None]]:
    truth = rng.integers(0, values, units)
    data = []
    for _ in range(coders):
        noisy = np.where(rng.random(units) < 0.3, rng.integers(0, values, units), truth)
        data.append([None if rng.random() < missing else int(v) for v in noisy])
    return data


@pytest.mark.parametrize("seed", range(8))
def test_own_alpha_agrees_with_the_krippendorff_package(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = _random_data(rng, coders=int(rng.integers(2, 6)), units=int(rng.integers(5, 60)),
                        values=int(rng.integers(2, 5)), missing=0.3)
    matrix = np.array([[np.nan if v is None else v for v in row] for row in data], float)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha(data) == pytest.approx(expected)
    assert nominal_alpha(data) == pytest.approx(expected)
    # the vectorised bootstrap formula, with every unit once, is the same alpha
    counts, values = _counts(data)
    once = _alpha_resampled(counts, _delta(values, _nominal), np.ones((1, len(counts))))
    assert once[0] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(8))
def test_own_kappa_agrees_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    a, b = _random_data(rng, coders=2, units=40, values=int(rng.integers(2, 5)), missing=0.2)
    both = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    expected = cohen_kappa_score([x for x, _ in both], [y for _, y in both])
    assert cohen_kappa(a, b) == pytest.approx(expected)


def test_bootstrap_equals_recomputing_alpha_on_resampled_units() -> None:
    data = _random_data(np.random.default_rng(7), coders=3, units=25, values=3, missing=0.2)
    counts, values = _counts(data)
    weights = _resample_weights(len(counts), 20, seed=5)
    assert (weights.sum(axis=1) == len(counts)).all()
    fast = _alpha_resampled(counts, _delta(values, _nominal), weights)
    for b in range(20):
        resampled = np.repeat(counts, weights[b].astype(int), axis=0)
        slow = krippendorff.alpha(value_counts=resampled, level_of_measurement="nominal")
        assert fast[b] == pytest.approx(slow)


def test_interval_is_seeded_and_contains_alpha() -> None:
    alpha, low, high = alpha_interval(KRIPPENDORFF_C, n_boot=500, seed=1)
    assert alpha == pytest.approx(0.7434, abs=1e-4)
    assert low < alpha < high <= 1
    assert alpha_interval(KRIPPENDORFF_C, n_boot=500, seed=1) == (alpha, low, high)
    assert alpha_interval(KRIPPENDORFF_C, n_boot=500, seed=2) != (alpha, low, high)


def test_masi_distance() -> None:
    a, ab, ac, b = {"a"}, {"a", "b"}, {"a", "c"}, {"b"}
    assert masi_distance(a, a) == 0
    assert masi_distance(set(), set()) == 0
    assert masi_distance(a, ab) == pytest.approx(1 - 1 / 2 * 2 / 3)  # subset
    assert masi_distance(ab, ac) == pytest.approx(1 - 1 / 3 * 1 / 3)  # overlap
    assert masi_distance(a, b) == 1 and masi_distance(a, set()) == 1  # disjoint


def test_masi_alpha_equals_nominal_alpha_on_single_label_data() -> None:
    labels = [[None if v is None else f"code{v}" for v in row] for row in KRIPPENDORFF_C]
    sets = [[None if v is None else frozenset({v}) for v in row] for row in labels]
    assert krippendorff_alpha(sets, masi_distance) == pytest.approx(
        krippendorff_alpha(labels))
    for seed in range(5):
        data = _random_data(np.random.default_rng(seed), 3, 30, 4, 0.25)
        sets = [[None if v is None else frozenset({str(v)}) for v in row] for row in data]
        assert krippendorff_alpha(sets, masi_distance) == pytest.approx(nominal_alpha(data))


@pytest.mark.parametrize("seed", range(5))
def test_masi_alpha_of_the_package_agrees_with_the_own_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = ["a", "b", "c", "d"]

    def pick() -> frozenset[str]:
        return frozenset(c for c in codes if rng.random() < 0.35)

    truth = [pick() for _ in range(30)]
    sets = [[None if rng.random() < 0.2 else (t if rng.random() < 0.6 else pick())
             for t in truth] for _ in range(3)]
    alpha, low, high = alpha_interval(sets, masi_distance, n_boot=200, seed=seed)
    assert alpha == pytest.approx(krippendorff_alpha(sets, masi_distance))
    assert low <= alpha <= high


def test_alpha_is_undefined_without_variation() -> None:
    assert math.isnan(krippendorff_alpha([[0, 0, 0], [0, 0, 0]]))
    assert math.isnan(nominal_alpha([[0, 0, 0], [0, 0, 0]]))
    assert percent_agreement([[0, 0, 0], [0, 0, 0]]) == 1
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))


# ------------------------------------------------------------------ the agreement table


def _reviews(folder: Path, decisions: dict[str, list[str | None]], coders: list[str]):
    rows = []
    for sid, per_coder in decisions.items():
        for coder, codes in zip(coders, per_coder, strict=True):
            if codes is not None:
                rows.append({"segment_id": sid, "codes": codes, "coder": coder})
    append_reviews(folder, rows)
    return load_reviews(folder, ["apple", "banana", "cherry"])


def test_table_pooled_masi_row_is_nominal_alpha_for_single_codes(tmp_path: Path) -> None:
    coders = ["ana", "bo", "cy", "dee"]
    decisions = {f"S:{u + 1}": [None if v is None else f"c{v}" for v in unit]
                 for u, unit in enumerate(zip(*KRIPPENDORFF_C, strict=True))}
    codes = [f"c{v}" for v in range(1, 6)]
    append_reviews(tmp_path, [{"segment_id": s, "codes": c, "coder": coder}
                              for s, per in decisions.items()
                              for coder, c in zip(coders, per, strict=True) if c])
    reviews = load_reviews(tmp_path, codes)
    table = agreement_table(reviews, codes, n_boot=200)
    pooled = table[(table.code_id == POOLED) & (table.comparison == "coders")].iloc[0]
    assert pooled.alpha == pytest.approx(0.743, abs=5e-4)
    assert pooled.units == 11  # unit 12 has a single value: not pairable
    assert pooled.coders == "ana, bo, cy, dee"
    assert pooled.alpha_low < pooled.alpha < pooled.alpha_high


def test_agreement_table_rows_and_values(tmp_path: Path) -> None:
    a, b = KRIPPENDORFF_A
    decisions = {f"S:{i}": ["apple" if x else "", "apple" if y else "", None]
                 for i, (x, y) in enumerate(zip(a, b, strict=True))}
    decisions["S:0"][2] = "apple;banana"  # a third coder on one unit
    reviews = _reviews(tmp_path / "r", decisions, ["ana", "bo", "cy"])
    table = agreement_table(reviews, ["apple", "banana", "cherry"], n_boot=100)
    assert list(table.columns) == list(COLUMNS)
    assert list(table.code_id.unique()) == [POOLED, "apple", "banana", "cherry"]
    assert list(table.comparison.unique()) == ["coders", "coder-coder"]
    pair = table[(table.code_id == "apple") & (table.coders == "ana vs bo")].iloc[0]
    assert pair.units == 10
    assert pair.alpha == pytest.approx(0.095, abs=5e-4)
    assert pair.percent_agreement == pytest.approx(0.6)
    assert pair.kappa == pytest.approx(cohen_kappa_score(a, b))
    cherry = table[(table.code_id == "cherry") & (table.coders == "ana vs bo")].iloc[0]
    assert cherry.percent_agreement == 1 and math.isnan(cherry.alpha)  # never applied
    assert agreement_table(reviews, ["apple", "banana", "cherry"], n_boot=100).equals(table)

    path = write_reliability(tmp_path / "outputs", table)
    assert path == tmp_path / "outputs" / "reliability.csv"
    text = path.read_text(encoding="utf-8-sig").splitlines()
    assert text[0] == ",".join(COLUMNS)
    assert any(line.startswith("cherry,coder-coder,ana vs bo,10,1.0000,") for line in text)
    shown = format_agreement(table)
    assert "ALL (MASI)" in shown and "ana vs bo" in shown and "0.095" in shown


def test_classifier_against_coders_and_the_adjudicated_reference(tmp_path: Path) -> None:
    decisions = {
        "S:1": ["apple", "apple"], "S:2": ["banana", ""], "S:3": ["", ""],
        "S:4": ["apple;banana", "apple"], "S:5": ["cherry", "cherry"],
    }
    folder = tmp_path / "r"
    _reviews(folder, decisions, ["ana", "bo"])
    append_reviews(folder, [{"segment_id": "S:2", "codes": "", "coder": "adjudicator"}])
    reviews = load_reviews(folder, ["apple", "banana", "cherry"])
    assert reviews.decisions()["S:2"] == frozenset()
    out = tmp_path / "outputs"
    scores = []
    predicted = {"S:1": {"apple"}, "S:2": set(), "S:3": {"banana"}, "S:4": {"apple"},
                 "S:5": {"cherry"}, "S:6": {"apple"}}
    for sid, codes in predicted.items():
        for code in ("apple", "banana", "cherry"):
            # S:2 was overridden by a human: the decision column says 1, the score does not
            decided = int(code in codes or (sid == "S:2" and code == "banana"))
            scores.append([sid, code, "0.9000" if code in codes else "0.1000", "0.5000",
                           decided])
    write_csv(out / "scores.csv", ["segment_id", "code_id", "score", "threshold", "decision"],
              scores)
    clf = classifier_decisions(out, ["apple", "banana", "cherry"])
    assert clf == {sid: frozenset(c) for sid, c in predicted.items()}
    table = agreement_table(reviews, ["apple", "banana", "cherry"], clf, n_boot=50)
    assert list(table.comparison.unique()) == ["coders", "classifier-coder",
                                               "classifier-reference"]
    ref = table[(table.code_id == POOLED) & (table.comparison == "classifier-reference")]
    row = ref.iloc[0]
    assert row.coders == "classifier vs reference" and row.units == 5
    # reference: S:1 apple, S:2 none (adjudicated), S:3 none, S:4 apple (+banana 1 of 2),
    # S:5 cherry; the classifier misses only S:3 (banana) and S:4 (banana)
    assert row.percent_agreement == pytest.approx(3 / 5)
    vs_ana = table[(table.code_id == "apple") & (table.coders == "classifier vs ana")].iloc[0]
    assert vs_ana.percent_agreement == 1 and vs_ana.kappa == pytest.approx(1)
    assert "adjudicator" not in " ".join(table.coders)


def test_classifier_decisions_fall_back_to_codings(tmp_path: Path) -> None:
    write_csv(tmp_path / "segments.csv", ["segment_id", "codable"],
              [["S:1", "True"], ["S:2", "True"], ["S:3", "False"], ["S:4", "True"]])
    write_csv(tmp_path / "codings.csv", ["segment_id", "code_id", "method"],
              [["S:1", "apple", "rule"], ["S:2", "banana", "human"], ["S:1", "cherry", "model"]])
    assert classifier_decisions(tmp_path) == {"S:1": {"apple", "cherry"}, "S:4": frozenset()}
    assert classifier_decisions(tmp_path / "nothing") == {}


def test_tables_with_a_field_over_pythons_default_csv_limit_are_read(tmp_path: Path) -> None:
    # csv refuses fields over 131,072 characters unless told otherwise (import qualcode)
    long = "The convoy waited at the checkpoint. " * 5000
    write_csv(tmp_path / "segments.csv", ["segment_id", "codable", "text"],
              [["S:1", "True", long], ["S:2", "True", "short"]])
    write_csv(tmp_path / "codings.csv", ["segment_id", "code_id", "method", "evidence"],
              [["S:1", "apple", "rule", long]])
    assert classifier_decisions(tmp_path) == {"S:1": {"apple"}, "S:2": frozenset()}


def test_no_second_coder_gives_an_empty_table(tmp_path: Path) -> None:
    reviews = _reviews(tmp_path, {"S:1": ["apple"]}, ["ana"])
    table = agreement_table(reviews, ["apple"], n_boot=10)
    assert table.empty and list(table.columns) == list(COLUMNS)
    assert "two or more coders" in format_agreement(table)


def test_coders_who_never_share_a_segment_are_not_compared(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    _reviews(folder, {"S:1": ["apple"]}, ["ana"])
    _reviews(folder, {"S:2": ["banana"]}, ["bo"])
    _reviews(folder, {"S:3": [""]}, ["cy"])
    reviews = load_reviews(folder, ["apple", "banana"])
    assert len(reviews.reviews) == 3
    table = agreement_table(reviews, ["apple", "banana"], n_boot=10)
    assert table.empty  # no rows of zero units, one per pair of coders and code
    assert "two or more coders" in format_agreement(table)
    clf = {"S:1": frozenset({"apple"}), "S:2": frozenset(), "S:3": frozenset()}
    table = agreement_table(reviews, ["apple", "banana"], clf, n_boot=10)
    assert set(table.coders) == {"classifier vs ana", "classifier vs bo", "classifier vs cy",
                                 "classifier vs reference"}
    assert (table.units > 0).all()
