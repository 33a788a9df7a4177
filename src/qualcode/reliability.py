"""Inter-coder reliability on explicit units: one unit = one segment.

Every reviewed segment is a unit; a coder who did not review it is *missing* there (not
"no code"). Only units with decisions from at least two of the compared coders (pairable
units) count. Per code the value of a coder on a unit is 1/0 (code applied or not); pooled
over all codes it is the segment's *set* of codes.

``outputs/reliability.csv`` (:func:`write_reliability`), one row per code and comparison:

- ``code_id``: a code id, or ``ALL (MASI)`` for the row pooled over all codes;
- ``comparison``: ``coders`` (all human coders together; the adjudicator is not a coder),
  ``coder-coder`` (one pair; only when there are three or more coders, with two the
  ``coders`` row is that pair), ``classifier-coder`` (the classifier against one coder) or
  ``classifier-reference`` (against the reference decision: the adjudicator's, else the
  coders' majority, :meth:`~qualcode.reviews.ReviewSet.decisions`);
- ``coders``: who is compared (``alice, bob``, ``alice vs bob``, ``classifier vs alice``,
  ``classifier vs reference``);
- ``units``: pairable units (segments with at least two of their decisions);
- ``percent_agreement``: per unit, the share of agreeing pairs among its ``m(m-1)`` ordered
  pairs of decisions, averaged over units (with two coders: the share of units on which they
  agree); pooled: identical code sets;
- ``kappa``: Cohen's kappa when exactly two are compared, ``(p_o - p_e) / (1 - p_e)`` with
  ``p_e = sum_c p_1(c) p_2(c)`` from each one's own marginals; empty for more than two and
  for the pooled row;
- ``alpha``: Krippendorff's alpha, ``1 - D_o / D_e = 1 - (n - 1) * sum_ck o_ck d_ck /
  sum_ck n_c n_k d_ck``, with the coincidence matrix ``o_ck = sum_u n_uc (n_uk - [c=k]) /
  (m_u - 1)`` over pairable units, ``n_c = sum_k o_ck``, ``n = sum_c n_c``. Per code the
  distance is nominal (``d = 0`` if equal, else 1); pooled it is MASI (Passonneau 2006):
  ``d(A, B) = 1 - J * M`` with ``J = |A & B| / |A | B|`` and ``M`` = 1 if ``A = B``, 2/3
  if one contains the other, 1/3 if they overlap otherwise, 0 if disjoint (two empty sets
  are equal: ``d = 0``). With exactly one code per segment MASI is the nominal distance,
  so the pooled alpha is plain nominal alpha. Empty (undefined) when ``D_e = 0``, i.e. all
  decisions are the same (e.g. nobody applied the code): agreement is then perfect but
  carries no information;
- ``alpha_low``, ``alpha_high``: a percentile bootstrap interval (95% by default): units
  are resampled with replacement ``n_boot`` times (seeded; the same resamples for every
  code of a comparison) and alpha recomputed (Zapf et al. 2016, BMC Med Res Methodol
  16:93, recommend this for nominal alpha).

Point estimates of alpha come from the maintained ``krippendorff`` package;
:func:`krippendorff_alpha` is an independent coincidence-matrix implementation, a
cross-check in the tests; the bootstrap recomputes alpha from resampled coincidence
counts. Classifier rows compare the classifier's own decisions (score >= threshold in
``scores.csv``, before a human decision replaced them). When the model was trained on
these reviews, they are in-sample figures: the cross-validated ones are in
``evaluation.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import krippendorff
import numpy as np
import pandas as pd

from .codebook import Codebook
from .outputs import (
    CODINGS_CSV,
    RELIABILITY_CSV,
    SCORES_CSV,
    SEGMENTS_CSV,
    is_true,
    read_csv_rows,
    write_csv,
)
from .reviews import ReviewSet, is_adjudicator

__all__ = [
    "COLUMNS",
    "POOLED",
    "RELIABILITY_CSV",
    "agreement_table",
    "alpha_interval",
    "classifier_decisions",
    "coding_decisions",
    "cohen_kappa",
    "format_agreement",
    "krippendorff_alpha",
    "masi_distance",
    "nominal_alpha",
    "percent_agreement",
    "write_reliability",
]

POOLED = "ALL (MASI)"
COLUMNS = ("code_id", "comparison", "coders", "units", "percent_agreement", "kappa", "alpha",
           "alpha_low", "alpha_high")
CLASSIFIER = "classifier"
REFERENCE = "reference"

Distance = Callable[[Any, Any], float]
Ratings = Mapping[str, frozenset[str]]  # segment_id -> codes


# ------------------------------------------------------------------------ coefficients


def masi_distance(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """MASI distance between two sets of codes (Passonneau 2006), in [0, 1]."""
    a, b = set(a), set(b)
    if a == b:
        return 0.0
    union = len(a | b)
    common = len(a & b)
    if common == 0:
        return 1.0
    monotonicity = 2 / 3 if common == min(len(a), len(b)) else 1 / 3
    return 1.0 - common / union * monotonicity


def _nominal(a: Any, b: Any) -> float:
    return 0.0 if a == b else 1.0


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _counts(data: Sequence[Sequence[Any]]) -> tuple[np.ndarray, list[Hashable]]:
    """Coders x units data (``None``/NaN = missing) → pairable units x values counts."""
    columns = list(zip(*data, strict=True)) if data else []
    units = [[v for v in col if not _is_missing(v)] for col in columns]
    units = [u for u in units if len(u) >= 2]
    values = list(dict.fromkeys(v for u in units for v in u))
    index = {v: j for j, v in enumerate(values)}
    counts = np.zeros((len(units), len(values)))
    for i, u in enumerate(units):
        for v in u:
            counts[i, index[v]] += 1
    return counts, values


def _delta(values: Sequence[Any], distance: Distance) -> np.ndarray:
    return np.array([[distance(a, b) for b in values] for a in values], dtype=float)


def krippendorff_alpha(data: Sequence[Sequence[Any]], distance: Distance | str = "nominal"
                       ) -> float:
    """Krippendorff's alpha from the coincidence matrix, any distance, missing allowed.

    ``data`` is coders x units (``None`` or NaN = missing); ``distance`` is ``"nominal"``
    or a function of two values with ``d(v, v) = 0``. NaN when undefined.
    """
    dist = _nominal if distance == "nominal" else distance
    counts, values = _counts(data)
    if len(values) < 2:
        return float("nan")
    delta = _delta(values, dist)  # type: ignore[arg-type]
    o = np.zeros((len(values), len(values)))
    for row in counts:
        o += (np.outer(row, row) - np.diag(row)) / (row.sum() - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    expected = n_c @ delta @ n_c
    if expected == 0:
        return float("nan")
    return float(1 - (n - 1) * np.sum(o * delta) / expected)


def _alpha_resampled(counts: np.ndarray, delta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Alpha for each row of unit ``weights`` (B x units), by the per-unit decomposition

    ``sum_ck o_ck d_ck = sum_u (C_u d C_u) / (m_u - 1)`` (``d`` has a zero diagonal), so a
    resample of units is a weighted sum: all resamples in two matrix products.
    """
    m = counts.sum(axis=1)
    per_unit = np.einsum("uv,vw,uw->u", counts, delta, counts) / (m - 1)
    n = weights @ m
    observed = weights @ per_unit
    n_c = weights @ counts
    expected = np.einsum("bv,vw,bw->b", n_c, delta, n_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1 - (n - 1) * observed / expected
    alpha[expected <= 1e-12] = np.nan
    return alpha


def _package_alpha(counts: np.ndarray, delta: np.ndarray) -> float:
    if counts.shape[0] == 0 or counts.shape[1] < 2:
        return float("nan")

    def metric(v1: Any, v2: Any, i1: Any, i2: Any, n_v: Any, dtype: Any = np.float64) -> Any:
        return delta[i1, i2].astype(dtype)

    try:
        value = krippendorff.alpha(value_counts=counts, level_of_measurement=metric)
    except (ValueError, ZeroDivisionError):
        return float("nan")
    return float(value) if np.isfinite(value) else float("nan")


def nominal_alpha(data: Sequence[Sequence[Any]]) -> float:
    """Nominal Krippendorff's alpha by the ``krippendorff`` package (coders x units)."""
    counts, values = _counts(data)
    return _package_alpha(counts, _delta(values, _nominal))


def alpha_interval(data: Sequence[Sequence[Any]], distance: Distance | str = "nominal", *,
                   n_boot: int = 1000, seed: int = 0, confidence: float = 0.95
                   ) -> tuple[float, float, float]:
    """``(alpha, low, high)``: alpha and its unit-bootstrap percentile interval."""
    dist = _nominal if distance == "nominal" else distance
    counts, values = _counts(data)
    delta = _delta(values, dist)  # type: ignore[arg-type]
    weights = _resample_weights(len(counts), n_boot, seed)
    low, high = _interval(counts, delta, weights, confidence)
    return _package_alpha(counts, delta), low, high


def _resample_weights(units: int, n_boot: int, seed: int) -> np.ndarray:
    """How often each unit is drawn in each of ``n_boot`` resamples (n_boot x units)."""
    if units == 0 or n_boot <= 0:
        return np.zeros((0, units))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(n_boot, units))
    flat = (draws + np.arange(n_boot)[:, None] * units).ravel()
    return np.bincount(flat, minlength=n_boot * units).reshape(n_boot, units).astype(float)


def _interval(counts: np.ndarray, delta: np.ndarray, weights: np.ndarray,
              confidence: float) -> tuple[float, float]:
    if counts.shape[0] < 2 or counts.shape[1] < 2 or weights.shape[0] == 0:
        return float("nan"), float("nan")
    alphas = _alpha_resampled(counts, delta, weights)
    alphas = alphas[np.isfinite(alphas)]
    if alphas.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(alphas, [tail, 100 - tail])
    return float(low), float(high)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two coders over the units both coded (``None``/NaN = missing)."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True)
             if not _is_missing(x) and not _is_missing(y)]
    if not pairs:
        return float("nan")
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    first: dict[Any, int] = {}
    second: dict[Any, int] = {}
    for x, y in pairs:
        first[x] = first.get(x, 0) + 1
        second[y] = second.get(y, 0) + 1
    expected = sum(first[c] * second.get(c, 0) for c in first) / (n * n)
    if expected >= 1 - 1e-12:
        return float("nan")
    return (observed - expected) / (1 - expected)


def percent_agreement(data: Sequence[Sequence[Any]]) -> float:
    """Mean over pairable units of the share of agreeing ordered pairs (coders x units)."""
    counts, _ = _counts(data)
    return _percent(counts)


def _percent(counts: np.ndarray) -> float:
    if counts.shape[0] == 0:
        return float("nan")
    m = counts.sum(axis=1)
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))))


# ------------------------------------------------------------------------ the table


def classifier_decisions(out_dir: str | Path, code_ids: Sequence[str] | None = None
                         ) -> dict[str, frozenset[str]]:
    """The classifier's own decisions per codable segment, from the outputs folder.

    From ``scores.csv``: a code applies when ``score >= threshold`` — the model's decision
    even where a human's later replaced it (the ``decision`` column breaks ties that the
    file's rounding creates). Without ``scores.csv``: ``codings.csv`` rows whose method is
    not ``human`` (segments a human decided are left out); codable segments of
    ``segments.csv`` without a row get no code. ``{}`` when neither file exists.
    """
    out = Path(out_dir)
    known = set(code_ids) if code_ids is not None else None
    decided: dict[str, set[str]] = {}
    scores = out / SCORES_CSV
    if scores.is_file():
        for row in read_csv_rows(scores):
            sid, code = row.get("segment_id", ""), row.get("code_id", "")
            decided.setdefault(sid, set())
            if known is not None and code not in known:
                continue
            score, threshold = row.get("score", ""), row.get("threshold", "")
            try:
                if score.strip() == threshold.strip():
                    applies = is_true(row.get("decision", ""))
                else:
                    applies = float(score) >= float(threshold)
            except ValueError:
                continue
            if applies:
                decided[sid].add(code)
        return {sid: frozenset(c) for sid, c in decided.items()}
    codings = out / CODINGS_CSV
    if not codings.is_file():
        return {}
    segments = out / SEGMENTS_CSV
    if segments.is_file():
        for row in read_csv_rows(segments):
            if is_true(row.get("codable", "True")):
                decided.setdefault(row.get("segment_id", ""), set())
    human: set[str] = set()
    for row in read_csv_rows(codings):
        sid, code = row.get("segment_id", ""), row.get("code_id", "")
        if row.get("method", "").strip().lower() == "human":
            human.add(sid)
        elif known is None or code in known:
            decided.setdefault(sid, set()).add(code)
    return {sid: frozenset(c) for sid, c in decided.items() if sid not in human}


def coding_decisions(segment_ids: Sequence[str], code_ids: Sequence[str], scores: np.ndarray,
                     thresholds: np.ndarray, only: Collection[str] | None = None
                     ) -> dict[str, frozenset[str]]:
    """The classifier's own decisions (``score >= threshold``, before any human decision
    replaced them) from a run's scores in memory, as :func:`classifier_decisions` reads them
    back from ``scores.csv``; ``only``: the segment ids wanted (default: all)."""
    applied = np.asarray(scores) >= np.asarray(thresholds, dtype=float)
    wanted = range(len(segment_ids)) if only is None else [
        i for i, sid in enumerate(segment_ids) if sid in only]
    return {segment_ids[i]: frozenset(code_ids[j] for j in np.flatnonzero(applied[i]))
            for i in wanted}


def _comparisons(reviews: ReviewSet, classifier: Ratings | None
                 ) -> list[tuple[str, str, list[Ratings]]]:
    by_coder: dict[str, dict[str, frozenset[str]]] = {}
    for (sid, coder), review in reviews.latest().items():
        if not is_adjudicator(coder):
            by_coder.setdefault(coder, {})[sid] = review.codes
    coders = sorted(by_coder, key=str.casefold)
    found: list[tuple[str, str, list[Ratings]]] = []
    if len(coders) >= 2:
        found.append(("coders", ", ".join(coders), [by_coder[c] for c in coders]))
    if len(coders) >= 3:
        for a, b in combinations(coders, 2):
            found.append(("coder-coder", f"{a} vs {b}", [by_coder[a], by_coder[b]]))
    if classifier:
        for c in coders:
            found.append(("classifier-coder", f"{CLASSIFIER} vs {c}", [classifier, by_coder[c]]))
        found.append(("classifier-reference", f"{CLASSIFIER} vs {REFERENCE}",
                      [classifier, reviews.decisions()]))
    return found


def agreement_table(
    reviews: ReviewSet,
    codebook: Codebook | Sequence[str] | None = None,
    classifier: Ratings | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Reliability per code and pooled, for every comparison (columns :data:`COLUMNS`).

    ``reviews`` are the coders' decisions (each coder's latest per segment counts);
    ``codebook`` gives the codes and their order (default: the codes that occur);
    ``classifier`` maps segment ids to the classifier's codes
    (:func:`classifier_decisions`). Rows: the pooled ``ALL (MASI)`` rows first, then each
    code in codebook order; within a code, the comparisons in a fixed order.
    """
    if codebook is None:
        code_ids = sorted({c for r in reviews.reviews for c in r.codes})
    else:
        code_ids = (list(codebook.code_ids) if isinstance(codebook, Codebook)
                    else list(codebook))
    comparisons = _comparisons(reviews, classifier)
    rows: dict[str, list[list[Any]]] = {POOLED: [], **{c: [] for c in code_ids}}
    for index, (comparison, label, raters) in enumerate(comparisons):
        units = sorted(sid for sid in set().union(*raters)
                       if sum(sid in r for r in raters) >= 2)
        if not units:  # coders who never decided the same segment: nothing to compare
            continue
        sets = [[r.get(sid) for sid in units] for r in raters]
        weights = _resample_weights(len(units), n_boot, seed + index)
        pooled_counts, values = _counts(sets)
        delta = _delta(values, masi_distance)
        low, high = _interval(pooled_counts, delta, weights, confidence)
        rows[POOLED].append([POOLED, comparison, label, len(units), _percent(pooled_counts),
                             float("nan"), _package_alpha(pooled_counts, delta), low, high])
        for code in code_ids:
            data = [[None if s is None else int(code in s) for s in coder] for coder in sets]
            counts, values = _counts(data)
            delta = _delta(values, _nominal)
            kappa = cohen_kappa(*data) if len(data) == 2 else float("nan")
            low, high = _interval(counts, delta, weights, confidence)
            rows[code].append([code, comparison, label, len(units), _percent(counts), kappa,
                               _package_alpha(counts, delta), low, high])
    return pd.DataFrame([r for group in rows.values() for r in group], columns=list(COLUMNS))


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else f"{value:.4f}"
    return str(value)


def write_reliability(out_dir: str | Path, table: pd.DataFrame) -> Path:
    """Write ``<out_dir>/reliability.csv`` atomically (4 decimals, undefined = empty)."""
    path = Path(out_dir) / RELIABILITY_CSV
    write_csv(path, list(COLUMNS),
              ([_cell(v) for v in row] for row in table[list(COLUMNS)].itertuples(index=False)))
    return path


def _verdict(alpha: float) -> str:
    # Krippendorff (2004): rely on alpha >= .800, tentative conclusions from .667.
    if not np.isfinite(alpha):
        return ""
    return "reliable" if alpha >= 0.8 else "tentative" if alpha >= 0.667 else "unreliable"


def format_agreement(df: pd.DataFrame) -> str:
    """A readable console table of :func:`agreement_table`'s result."""
    if df.empty:
        return ("no agreement to compute: it needs segments that two or more coders "
                "reviewed, or reviews and the classifier's decisions — for a second "
                "coding, give another coder the same segments without their codes (qualcode "
                "review export --strategy random --include-reviewed --blank --coder NAME)")

    def num(value: Any, digits: int = 2) -> str:
        return "–" if not np.isfinite(value) else f"{value:.{digits}f}"

    header = ["code", "coders", "units", "agree", "kappa", "alpha", "95% interval", ""]
    body = [[
        str(r.code_id), str(r.coders), str(r.units),
        "–" if not np.isfinite(r.percent_agreement) else f"{r.percent_agreement:.0%}",
        num(r.kappa, 3), num(r.alpha, 3),
        "" if not np.isfinite(r.alpha_low) else f"[{r.alpha_low:.2f}, {r.alpha_high:.2f}]",
        _verdict(r.alpha),
    ] for r in df.itertuples(index=False)]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    right = {2, 3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for row, cells in zip(df.itertuples(index=False), body, strict=True):
        if previous is not None and row.code_id != previous:
            out.append("")
        out.append(line(cells))
        previous = row.code_id
    out.append("")
    out.append("unit = segment; alpha: Krippendorff's (nominal per code, MASI pooled); "
               "reliable >= 0.80, tentative >= 0.667")
    return "\n".join(out)
