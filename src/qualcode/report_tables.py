"""Report tables: pure functions from the coded datasets (DataFrames) to tables.

Every table here is computed from ``segments.csv`` and ``codings.csv`` (and, where it
says so, ``evaluation.csv``) and nothing else, so every number can be recomputed by hand.

Conventions shared by all tables:

- Only **codable** segments count (interviewer turns and preambles never carry codes, so
  they would only dilute the shares). A coding row whose segment is unknown or not codable,
  or whose code is not in the codebook, is ignored (and reported in the notes).
- A segment counts once per code, even if ``codings.csv`` lists the pair twice.
- Codes appear in codebook order; documents in order of first appearance in
  ``segments.csv``; groups of a metadata field in sorted order (case-insensitive), with an
  empty value shown as ``(none)`` last. Values that differ only in case or spacing
  (``Yemen``, ``yemen``) are one group, named by its most frequent spelling.
- Columns that depend on ``evaluation.csv`` (``status``, the corrected estimate) appear only
  when it exists.

The frames these functions take are plain: ``segments`` has the ``segments.csv`` columns
as strings (``codable`` may be a bool or the text ``True``/``False``) and ``codings`` the
``codings.csv`` columns. :func:`prepare_segments` and :func:`prepare_codings` normalise
frames read from disk; the table functions call them, so a caller can pass raw frames.
A caller that builds several tables computes :func:`applied_matrix` once and passes it as
``applied=`` (the tables then neither re-check the frames nor rebuild the matrix).
"""

from __future__ import annotations

import itertools
import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .codebook import Codebook
from .outputs import META_PREFIX, is_true

_log = logging.getLogger(__name__)

__all__ = [
    "DOCUMENTS",
    "NONE_GROUP",
    "SEGMENTS",
    "TOTAL_ROW",
    "Applied",
    "DocumentGroups",
    "applied_matrix",
    "binary_document_matrix",
    "category_pair_table",
    "code_document_matrix",
    "coder_decided",
    "cooccurrence_table",
    "corrected_prevalence",
    "crosstab_table",
    "difference_table",
    "document_groups",
    "evaluation_by_code",
    "frequency_table",
    "group_spellings",
    "prepare_codings",
    "prepare_segments",
    "quote_table",
    "quotes_markdown",
    "records_by_code",
]

NONE_GROUP = "(none)"  # group label for an empty metadata value
TOTAL_ROW = "(codable segments)"  # denominator row of a cross-tab; never a valid code id
DOCUMENTS, SEGMENTS = "documents", "segments"  # differences' ``unit``: what is independent
SEGMENT_CORE = (
    "segment_id", "doc_id", "source_type", "speaker", "turn", "char_start", "char_end",
    "text", "codable", "reviewed",
)
HUMAN = "human"


# --------------------------------------------------------------------------- inputs


def prepare_segments(segments: pd.DataFrame) -> pd.DataFrame:
    """``segments.csv`` as strings, with ``codable`` (and ``reviewed``, if there) as bool
    and duplicate ids dropped."""
    for col in ("segment_id", "doc_id"):
        if col not in segments.columns:
            raise ValueError(f"segments table has no {col!r} column")
    if _is_prepared(segments):  # the report functions pass prepared tables to each other
        return segments
    seg = segments.copy()
    for col in seg.columns:
        if col not in _FLAGS:
            seg[col] = _as_text(seg[col])
    if "codable" not in seg.columns:
        seg["codable"] = True
    for col in _FLAGS:
        if col in seg.columns and seg[col].dtype != bool:
            seg[col] = np.array([is_true(_text(v)) for v in seg[col].tolist()], dtype=bool)
    return seg.drop_duplicates("segment_id", keep="first").reset_index(drop=True)


_FLAGS = ("codable", "reviewed")  # segments.csv's True/False columns


def _is_prepared(seg: pd.DataFrame) -> bool:
    return ("codable" in seg.columns
            and all(seg[c].dtype == bool for c in _FLAGS if c in seg.columns)
            and all(_all_text(seg[c]) for c in seg.columns if c not in _FLAGS)
            and seg["segment_id"].is_unique
            and isinstance(seg.index, pd.RangeIndex) and seg.index.start == 0
            and seg.index.step == 1)


def _all_text(values: pd.Series) -> bool:
    if isinstance(values.dtype, pd.StringDtype):
        return not values.isna().any()
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) in (
        "string", "empty")


def _as_text(values: pd.Series) -> pd.Series:
    return values if _all_text(values) else values.map(_text)


def prepare_codings(codings: pd.DataFrame | None) -> pd.DataFrame:
    """``codings.csv`` with ``score`` as float (missing → NaN) and text columns as str."""
    columns = ["segment_id", "doc_id", "code_id", "category", "score", "method", "evidence"]
    if codings is None or codings.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        frame["score"] = frame["score"].astype(float)
        return frame
    cod = codings.copy()
    for col in columns:
        if col not in cod.columns:
            cod[col] = ""
    for col in cod.columns:
        if col != "score":
            cod[col] = _as_text(cod[col])
    cod["score"] = pd.to_numeric(cod["score"], errors="coerce").astype(float)
    return cod.reset_index(drop=True)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value)


@dataclass(slots=True)
class Applied:
    """The codes applied to codable segments, as a 0/1 matrix, plus what was ignored."""

    segment_ids: list[str]
    doc_ids: list[str]
    code_ids: list[str]
    matrix: np.ndarray  # codable segments × codes, int 0/1
    codings: pd.DataFrame  # the coding rows that count (one per segment and code)
    ignored: dict[str, int] = field(default_factory=dict)
    # all segments (codable or not) as prepared by prepare_segments
    segments: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def segments_per_code(self) -> np.ndarray:
        return self.matrix.sum(axis=0).astype(int)


def applied_matrix(segments: pd.DataFrame, codings: pd.DataFrame | None,
                   code_ids: Sequence[str]) -> Applied:
    """Codable segments × codes (0/1) from ``segments`` and ``codings``.

    Of duplicate (segment, code) rows the strongest is kept: a human decision first, then
    the highest score.
    """
    seg = prepare_segments(segments)
    cod = prepare_codings(codings)
    is_codable = seg["codable"].to_numpy(dtype=bool)
    codable = seg.loc[is_codable]
    seg_ids = codable["segment_id"].tolist()
    # per coding row: its segment's row in seg (-1: unknown), in the matrix (-1: unknown or
    # not codable), and its code's column (-1: not in the codebook)
    position = pd.Index(seg["segment_id"]).get_indexer(cod["segment_id"])
    row_of = np.where(is_codable, np.cumsum(is_codable) - 1, -1)
    row = np.append(row_of, -1)[position]
    col = _lookup({cid: j for j, cid in enumerate(code_ids)}, cod["code_id"])
    ignored = {
        "unknown_code": int((col < 0).sum()),
        "unknown_segment": int((position < 0).sum()),
        "not_codable": int(((position >= 0) & (row < 0)).sum()),
    }
    keep = (col >= 0) & (row >= 0)
    cod = cod[keep].copy()
    cod["_human"] = cod["method"].str.lower().eq(HUMAN)
    cod["_order"] = row[keep]
    cod["_col"] = col[keep]
    before = len(cod)
    cod = (cod.sort_values(["_human", "score"], ascending=[False, False], kind="stable",
                           na_position="last")
              .drop_duplicates(["_order", "_col"], keep="first")
              .sort_values(["_order"], kind="stable"))
    ignored["duplicate"] = before - len(cod)
    # the segment's own doc_id is authoritative
    doc_ids = codable["doc_id"].tolist()
    cod["doc_id"] = cod["segment_id"].map(dict(zip(seg_ids, doc_ids, strict=True)))
    matrix = np.zeros((len(seg_ids), len(code_ids)), dtype=int)
    matrix[cod["_order"].to_numpy(), cod["_col"].to_numpy()] = 1
    return Applied(seg_ids, doc_ids, list(code_ids), matrix,
                   cod.drop(columns=["_order", "_col"]).reset_index(drop=True), ignored, seg)


def _lookup(index: dict[str, int], values: pd.Series) -> np.ndarray:
    """``index[v]`` for every value ``v`` (-1 where it has none)."""
    found = pd.Index(list(index), dtype=object).get_indexer(values)
    return np.append(np.fromiter(index.values(), dtype=int, count=len(index)), -1)[found]


def _applied(segments: pd.DataFrame, codings: pd.DataFrame | None, codebook: Codebook,
             applied: Applied | None) -> Applied:
    """``applied`` when the caller computed it already, else :func:`applied_matrix`."""
    if applied is not None:
        return applied
    return applied_matrix(segments, codings, codebook.code_ids)


def _per_document(applied: Applied) -> tuple[list[str], np.ndarray]:
    """Documents with codable segments (in order) and their coded segments per code."""
    index, docs = pd.factorize(np.asarray(applied.doc_ids, dtype=object))
    counts = np.zeros((len(docs), len(applied.code_ids)), dtype=int)
    np.add.at(counts, index, applied.matrix)
    return list(docs), counts


def evaluation_by_code(evaluation: pd.DataFrame | None, code_ids: Sequence[str]
                       ) -> dict[str, dict[str, object]]:
    """Per codebook code: ``status``, ``tpr``, ``fpr``, ``n_pos``, ``n_neg`` from the evaluation.

    ``n_pos`` is the evaluation's ``support`` (human positives). ``n_neg`` (human negatives,
    the denominator of ``fpr``) is taken from ``tn + fp``, else a ``negatives`` column,
    else a total (``n``, ``reviewed``, ``evaluated``) minus ``support``; when the evaluation
    gives none of these, ``n_neg = support`` — conservative, since codes are usually rarer
    than their absence, so the true ``n_neg`` is larger and the interval narrower.
    Summary rows (``micro_avg`` ...) and codes not in the codebook are ignored.
    """
    if evaluation is None or "code_id" not in evaluation.columns:
        return {}
    ev = evaluation.copy()
    ev["code_id"] = ev["code_id"].map(_text)
    ev = ev[ev["code_id"].isin(set(code_ids))].drop_duplicates("code_id")

    def num(row: pd.Series, *names: str) -> float:
        for name in names:
            if name in row.index:
                value = pd.to_numeric(pd.Series([row[name]]), errors="coerce").iloc[0]
                if not pd.isna(value):
                    return float(value)
        return math.nan

    found: dict[str, dict[str, object]] = {}
    for _, row in ev.iterrows():
        support = num(row, "support")
        tn, fp = num(row, "tn"), num(row, "fp")
        n_neg = tn + fp
        if math.isnan(n_neg):
            n_neg = num(row, "negatives", "n_negative", "support_negative")
        if math.isnan(n_neg):
            n_neg = num(row, "n", "reviewed", "evaluated", "n_reviewed") - support
        if math.isnan(n_neg) or n_neg < 0:
            n_neg = support
        found[row["code_id"]] = {
            "status": _text(row["status"]).strip() if "status" in row.index else "",
            "tpr": num(row, "tpr"),
            "fpr": num(row, "fpr"),
            "n_pos": support,
            "n_neg": n_neg,
        }
    return found


# --------------------------------------------------------------------------- frequencies


def corrected_prevalence(
    k: int, n: int, tpr: float, fpr: float, n_pos: float, n_neg: float, *,
    draws: int = 4000, level: float = 0.95, rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Adjusted classify-and-count: the share of segments that truly carry a code.

    Point estimate (Forman's adjusted count; Rogan–Gladen's estimator in epidemiology)::

        p_obs = k / n                        # share the classifier coded
        p_adj = (p_obs - fpr) / (tpr - fpr)  # clipped to [0, 1]

    because ``E[p_obs] = tpr·p + fpr·(1 - p)`` for a true share ``p``.

    Interval: Monte Carlo propagation of all three sources of uncertainty, each drawn
    from its Jeffreys posterior (a parametric bootstrap that behaves at 0 and 1)::

        p_obs* ~ Beta(k + ½, n - k + ½)
        tpr*   ~ Beta(tp + ½, n_pos - tp + ½),  tp = round(tpr · n_pos)
        fpr*   ~ Beta(fp + ½, n_neg - fp + ½),  fp = round(fpr · n_neg)
        p_adj* = clip((p_obs* - fpr*) / (tpr* - fpr*), 0, 1)

    and the interval is the central ``level`` quantile range of ``p_adj*``. Draws with
    ``tpr* <= fpr*`` (a classifier no better than chance) have no estimate; when more than
    ``(1 - level) / 2`` of the draws are like that the interval is ``[0, 1]``, otherwise
    they are left out. ``n_pos`` is the evaluation's support; the smaller ``n_pos`` and
    ``n_neg``, the wider the interval.

    Returns ``(p_adj, low, high)`` as shares; all NaN when the correction is undefined
    (no codable segments, missing rates or support, or ``tpr <= fpr``).
    """
    nan = (math.nan, math.nan, math.nan)
    if (n <= 0 or any(math.isnan(x) for x in (tpr, fpr, n_pos, n_neg))
            or n_pos <= 0 or tpr <= fpr):
        return nan
    tpr, fpr = min(max(tpr, 0.0), 1.0), min(max(fpr, 0.0), 1.0)
    n_neg = max(n_neg, 1.0)
    point = min(max((k / n - fpr) / (tpr - fpr), 0.0), 1.0)
    rng = rng if rng is not None else np.random.default_rng(0)
    tp, fp = round(tpr * n_pos), round(fpr * n_neg)
    p_star = rng.beta(k + 0.5, n - k + 0.5, draws)
    tpr_star = rng.beta(tp + 0.5, n_pos - tp + 0.5, draws)
    fpr_star = rng.beta(fp + 0.5, n_neg - fp + 0.5, draws)
    gap = tpr_star - fpr_star
    ok = gap > 0
    tail = (1.0 - level) / 2.0
    if (~ok).mean() > tail:
        return point, 0.0, 1.0
    adj = np.clip((p_star[ok] - fpr_star[ok]) / gap[ok], 0.0, 1.0)
    low, high = np.quantile(adj, [tail, 1.0 - tail])
    return point, float(low), float(high)


def _data_rng(seed: int, *data: object) -> np.random.Generator:
    """A random stream for one code's computation, seeded by its inputs: a code's result
    depends neither on the other codes nor on its id (a renamed codebook gives the same
    intervals and p-values; seeded by the id, renaming moved them in the last digits)."""
    digest = zlib.crc32(b"\x00".join(
        np.ascontiguousarray(d).tobytes() if isinstance(d, np.ndarray) else repr(d).encode()
        for d in data))
    return np.random.default_rng([seed, digest])


def _share(count: float, total: float, digits: int = 4) -> float:
    return round(count / total, digits) if total else math.nan


def coder_decided(applied: Applied) -> np.ndarray:
    """Per codable segment, whether a coder decided its codes: a ``human`` coding, or
    ``reviewed`` in ``segments.csv`` (a segment decided "no code" has no coding row)."""
    cod, seg = applied.codings, applied.segments
    human = (set(cod.loc[cod["method"] == "human", "segment_id"]) if "method" in cod.columns
             else set())
    if "reviewed" in seg.columns:
        human |= set(seg.loc[seg["reviewed"].to_numpy(dtype=bool), "segment_id"])
    return np.array([sid in human for sid in applied.segment_ids], dtype=bool)


def frequency_table(
    segments: pd.DataFrame,
    codings: pd.DataFrame | None,
    codebook: Codebook,
    evaluation: pd.DataFrame | None = None,
    *,
    draws: int = 4000,
    seed: int = 0,
    applied: Applied | None = None,
) -> pd.DataFrame:
    """``frequencies.csv``: per code, segments and documents coded and their shares.

    ``share_of_segments = segments / codable segments``; ``share_of_documents = documents /
    documents with at least one codable segment``. With an evaluation, also
    ``corrected_segments`` (= the segments coders decided that carry the code + the other
    codable segments × ``p_adj`` of the classifier's share among them) and its 95% interval
    ``corrected_low``/``corrected_high`` from :func:`corrected_prevalence`, and the code's
    ``status`` (``human`` means the classifier is not trusted for this code).
    ``applied``: :func:`applied_matrix` of ``segments`` and ``codings`` if already computed.
    """
    applied = _applied(segments, codings, codebook, applied)
    n = len(applied.segment_ids)
    docs, per_doc = _per_document(applied)
    n_docs = len(docs)
    segments_per_code = applied.matrix.sum(axis=0)
    documents_per_code = (per_doc > 0).sum(axis=0)
    rows = []
    for j, code in enumerate(codebook.codes):
        k = int(segments_per_code[j])
        d = int(documents_per_code[j])
        rows.append({
            "code_id": code.id, "name": code.name, "category": code.category,
            "segments": k, "documents": d,
            "share_of_segments": _share(k, n), "share_of_documents": _share(d, n_docs),
        })
    table = pd.DataFrame(rows, columns=["code_id", "name", "category", "segments", "documents",
                                        "share_of_segments", "share_of_documents"])
    if evaluation is not None:
        ev = evaluation_by_code(evaluation, codebook.code_ids)
        # Segments a coder decided are known: the correction applies to the classifier's
        # decisions on the others only, so it never goes below what coders confirmed.
        reviewed = coder_decided(applied)
        known = applied.matrix[reviewed].sum(axis=0)
        n_model = n - int(reviewed.sum())
        corrected = []
        for j, row in enumerate(rows):
            e = ev.get(row["code_id"], {})
            if n and not n_model:  # coders decided every segment: the count is known
                p = low = high = 0.0
            else:
                given = (row["segments"] - int(known[j]), n_model,
                         *(float(e.get(key, math.nan)) for key in ("tpr", "fpr", "n_pos",
                                                                   "n_neg")))
                p, low, high = corrected_prevalence(*given, draws=draws,
                                                    rng=_data_rng(seed, *given))
            corrected.append({
                "corrected_segments": round(known[j] + p * n_model, 2),
                "corrected_low": round(known[j] + low * n_model, 2),
                "corrected_high": round(known[j] + high * n_model, 2),
                "status": e.get("status", ""),
            })
        table = pd.concat([table, pd.DataFrame(corrected, index=table.index)], axis=1)
    return table


def _statuses(codebook: Codebook, evaluation: pd.DataFrame | None) -> dict[str, str] | None:
    if evaluation is None:
        return None
    ev = evaluation_by_code(evaluation, codebook.code_ids)
    return {cid: str(ev.get(cid, {}).get("status", "")) for cid in codebook.code_ids}


# --------------------------------------------------------------------------- cross-tabs


def _group_labels(seg: pd.DataFrame, column: str
                  ) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """Group of every codable segment (an index into the labels), the sorted labels, and
    the spellings merged into a group (for groups with more than one).

    Values that differ only in case or spacing (``Yemen``, ``yemen``, `` YEMEN``) are one
    group, labelled with its most frequent spelling (of equals, the first in sorted order);
    an empty value is the group ``(none)``, last.
    """
    raw, labels = pd.factorize(seg.loc[seg["codable"].to_numpy(dtype=bool), column])
    counts = np.bincount(raw[raw >= 0], minlength=len(labels))
    spelled = [" ".join(str(v).split()) for v in labels]  # few distinct values
    keys = [s.casefold() for s in spelled]
    spellings: dict[str, dict[str, int]] = {}
    for spelling, key, n in zip(spelled, keys, counts.tolist(), strict=True):
        found = spellings.setdefault(key, {})
        found[spelling] = found.get(spelling, 0) + n
    label_of = {key: min(found, key=lambda s, f=found: (-f[s], s)) if key else NONE_GROUP
                for key, found in spellings.items()}
    distinct = sorted((label for key, label in label_of.items() if key), key=str.casefold)
    if "" in label_of:
        distinct.append(NONE_GROUP)
    position = {g: i for i, g in enumerate(distinct)}
    index = np.array([position[label_of[k]] for k in keys], dtype=int)[raw]
    merged = {label_of[key]: sorted(found) for key, found in
              sorted(spellings.items(), key=lambda item: position[label_of[item[0]]])
              if key and len(found) > 1}
    return index, distinct, merged


def _groups(seg: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str]]:
    """Group of every codable segment (an index into the labels), and the sorted labels."""
    index, distinct, _ = _group_labels(seg, column)
    return index, distinct


def group_spellings(segments: pd.DataFrame, column: str) -> dict[str, list[str]]:
    """Per group of ``column`` that merges several spellings (``Yemen``, ``yemen``), the
    spellings (see :func:`crosstab_table`); empty when every group has one."""
    return _group_labels(prepare_segments(segments), column)[2]


def _group_counts(applied: Applied, column: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Groups, codes × groups counts of coded segments, and codable segments per group."""
    index, groups = _groups(applied.segments, column)
    onehot = np.zeros((len(index), len(groups)), dtype=int)
    onehot[np.arange(len(index)), index] = 1
    return groups, _cross_counts(applied.matrix, onehot), onehot.sum(axis=0)


def _cross_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for 0/1 matrices, through float64 (BLAS): exact, as counts stay < 2**53."""
    return (a.T.astype(np.float64) @ b.astype(np.float64)).round().astype(int)


def crosstab_table(segments: pd.DataFrame, codings: pd.DataFrame | None, codebook: Codebook,
                   column: str, evaluation: pd.DataFrame | None = None, *,
                   applied: Applied | None = None) -> pd.DataFrame:
    """``frequencies_by_<field>.csv``: per code, coded segments and column shares per group.

    Columns: ``code_id, name, category``, then ``segments_<group>`` for every group,
    ``segments_total``, then ``share_<group>`` (coded / codable segments of that group) and
    ``share_total`` (``_all_groups`` instead of ``_total`` if a group is called "total");
    ``status`` with an evaluation. The last row, ``code_id`` =
    ``(codable segments)``, holds the denominators. ``applied`` as in :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    groups, counts, totals = _group_counts(applied, column)
    statuses = _statuses(codebook, evaluation)
    n = int(totals.sum())
    total_name = "total" if "total" not in groups else "all_groups"
    rows = []
    for j, code in enumerate(codebook.codes):
        row: dict[str, object] = {"code_id": code.id, "name": code.name,
                                  "category": code.category}
        for g, group in enumerate(groups):
            row[f"segments_{group}"] = int(counts[j, g])
        row[f"segments_{total_name}"] = int(counts[j].sum())
        for g, group in enumerate(groups):
            row[f"share_{group}"] = _share(counts[j, g], totals[g])
        row[f"share_{total_name}"] = _share(counts[j].sum(), n)
        if statuses is not None:
            row["status"] = statuses[code.id]
        rows.append(row)
    total: dict[str, object] = {"code_id": TOTAL_ROW, "name": "Codable segments (denominator)",
                                "category": ""}
    for g, group in enumerate(groups):
        total[f"segments_{group}"] = int(totals[g])
    total[f"segments_{total_name}"] = n
    rows.append(total)
    columns = ["code_id", "name", "category", *(f"segments_{g}" for g in groups),
               f"segments_{total_name}", *(f"share_{g}" for g in groups),
               f"share_{total_name}"]
    if statuses is not None:
        columns.append("status")
    return pd.DataFrame(rows, columns=columns)


def difference_table(segments: pd.DataFrame, codings: pd.DataFrame | None, codebook: Codebook,
                     column: str, evaluation: pd.DataFrame | None = None, *,
                     alpha: float = 0.05, seed: int = 0, resamples: int = 9999,
                     permutations: int = 4999, applied: Applied | None = None
                     ) -> pd.DataFrame:
    """``differences_by_<field>.csv``: which codes differ between groups beyond chance.

    Two tests per code, on the codable segments with a value (``(none)`` is no group to
    compare: counted in :func:`crosstab_table`, left out here):

    - **Segment test** (``test, chi2, p_value, q_value, cramers_v``), on the 2 × g table
      coded / not coded × group, as if segments were independent: Fisher's exact test
      (two-sided) for 2 groups (``test = fisher``); else Pearson's chi-square when every
      expected count is ≥ 5 (``chi2``), else the Fisher–Freeman–Halton test with a Monte
      Carlo p-value (``resamples`` tables, fixed seed; ``fisher_mc``).
    - **Document test** (``test_documents, p_documents, p_documents_min, q_documents``),
      when the field has one group per document (``unit = documents``): the same chi-square,
      compared with the chi-squares of the group labels shuffled between whole documents
      (see :func:`_document_tests`), so that one talkative interview counts as one document.
      A field that varies within a document (``unit = segments``) leaves these empty.

    ``significant`` follows the document test where there is one (``q_documents <
    alpha``), else the segment test (``q_value < alpha``). ``q_*`` are Benjamini–Hochberg
    adjusted over the codes tested, ``cramers_v = sqrt(chi2 / n)``, ``documents`` the
    documents with a segment in a compared group, ``p_documents_min`` the smallest
    ``p_documents`` those documents allow. With 2 groups, ``difference_<a>_minus_<b>`` is
    the difference in shares. Columns, in this order: ``code_id, name, category``,
    ``segments_<group>``…, ``share_<group>``…, [``difference_<a>_minus_<b>``], ``test, chi2,
    p_value, q_value, cramers_v, unit, documents, test_documents, p_documents,
    p_documents_min, q_documents, significant`` [, ``status``].

    A code coded in none or in all compared segments, or a field with fewer than 2 groups,
    is not tested (empty). A test that fails (an error in the statistics library) is left
    empty too, with ``<test>: failed`` and a logged warning. ``applied`` as in
    :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    groups, counts, totals = _group_counts(applied, column)
    keep = (totals > 0) & np.array([g != NONE_GROUP for g in groups], dtype=bool)
    groups = [g for g, k in zip(groups, keep, strict=True) if k]
    counts, totals = counts[:, keep], totals[keep]
    statuses = _statuses(codebook, evaluation)
    two = len(groups) == 2
    diff_col = f"difference_{groups[0]}_minus_{groups[1]}" if two else None
    rows = []
    for j, code in enumerate(codebook.codes):
        row: dict[str, object] = {"code_id": code.id, "name": code.name,
                                  "category": code.category}
        for g, group in enumerate(groups):
            row[f"segments_{group}"] = int(counts[j, g])
        shares = [counts[j, g] / totals[g] for g in range(len(groups))]
        for g, group in enumerate(groups):
            row[f"share_{group}"] = round(shares[g], 4)
        if diff_col:
            row[diff_col] = round(shares[0] - shares[1], 4)
        row.update(_test(counts[j], totals, seed=seed, resamples=resamples,
                         code_id=code.id))
        if statuses is not None:
            row["status"] = statuses[code.id]
        rows.append(row)
    table = pd.DataFrame(rows)
    table["q_value"] = _bh(table.get("p_value")).map(_sig)

    docs = document_groups(applied, column)
    compared = len(groups) >= 2
    table["unit"] = (DOCUMENTS if docs.per_document else SEGMENTS) if compared else ""
    table["documents"] = len(docs.doc_ids)
    found: dict[str, object] = {"test_documents": "", "p_documents": math.nan,
                                "p_documents_min": math.nan}
    if compared and docs.per_document:
        coded = counts.sum(axis=1)
        found |= _document_tests(applied, docs, codebook.code_ids,
                                 (coded > 0) & (coded < totals.sum()), field=column,
                                 seed=seed, permutations=permutations)
    for name, value in found.items():
        table[name] = value
    table["q_documents"] = _bh(table["p_documents"]).map(_sig)
    decides = table["q_documents"] if docs.per_document else table["q_value"]
    table["significant"] = [("" if math.isnan(v) else bool(v < alpha)) for v in decides]
    columns = ["code_id", "name", "category", *(f"segments_{g}" for g in groups),
               *(f"share_{g}" for g in groups), *([diff_col] if diff_col else []),
               "test", "chi2", "p_value", "q_value", "cramers_v", "unit", "documents",
               "test_documents", "p_documents", "p_documents_min", "q_documents",
               "significant"]
    if statuses is not None:
        columns.append("status")
    return table.reindex(columns=columns)


def _bh(p_values: pd.Series | None) -> pd.Series:
    """Benjamini–Hochberg adjusted p-values over the non-empty ones (NaN stays NaN)."""
    if p_values is None:
        return pd.Series(dtype=float)
    p = pd.to_numeric(p_values, errors="coerce").astype(float)
    q = pd.Series(math.nan, index=p.index, dtype=float)
    tested = p.notna()
    if tested.any():
        q[tested] = stats.false_discovery_control(p[tested].to_numpy(), method="bh")
    return q


@dataclass(slots=True)
class DocumentGroups:
    """How the compared groups of a field lie on documents (see :func:`document_groups`)."""

    groups: list[str]  # the compared groups (with segments, not ``(none)``), sorted
    doc_ids: list[str]  # documents with a codable segment in a compared group, in order
    doc_index: np.ndarray  # per codable segment: its row in doc_ids (-1: not compared)
    doc_group: np.ndarray  # per document: its group (-1: its segments are in several)
    varying: int  # documents whose segments fall into two or more groups

    @property
    def per_document(self) -> bool:
        """Whether every document's compared segments are in one group."""
        return bool(self.doc_ids) and self.varying == 0

    @property
    def sizes(self) -> list[int]:
        """Documents per group (when :attr:`per_document`)."""
        return np.bincount(self.doc_group[self.doc_group >= 0],
                           minlength=len(self.groups)).tolist()

    @property
    def arrangements(self) -> int:
        """The distinct ways to give the documents these group labels (a multinomial)."""
        return _arrangement_count(self.sizes) if self.per_document else 0


def document_groups(applied: Applied, column: str) -> DocumentGroups:
    """The documents behind :func:`difference_table`'s groups of ``column``.

    Only the codable segments of compared groups count: a document whose other segments
    have no value (``(none)``) still has one group. Spellings are merged as in
    :func:`crosstab_table`.
    """
    index, groups = _groups(applied.segments, column)
    totals = np.bincount(index, minlength=len(groups))
    keep = (totals > 0) & np.array([g != NONE_GROUP for g in groups], dtype=bool)
    renumber = np.where(keep, np.cumsum(keep) - 1, -1)
    group = renumber[index] if len(index) else np.zeros(0, dtype=int)
    compared = group >= 0
    doc_of, doc_ids = pd.factorize(np.asarray(applied.doc_ids, dtype=object)[compared])
    doc_index = np.full(len(group), -1, dtype=int)
    doc_index[compared] = doc_of
    low = np.full(len(doc_ids), np.iinfo(int).max)
    high = np.full(len(doc_ids), -1)
    np.minimum.at(low, doc_of, group[compared])
    np.maximum.at(high, doc_of, group[compared])
    one = low == high
    return DocumentGroups([g for g, k in zip(groups, keep, strict=True) if k],
                          [str(d) for d in doc_ids], doc_index, np.where(one, low, -1),
                          int((~one).sum()))


# Enumerate arrangements only while their label matrix stays small (int16 cells).
_EXACT_CELLS = 1 << 22
# Shuffles are drawn in blocks of about this many document labels (memory, not results).
_BLOCK_CELLS = 1 << 21
# Tolerance (relative, absolute below 1) for chi-squares equal in theory but apart in the
# last bits.
_TIE = 1e-9


def _document_tests(applied: Applied, docs: DocumentGroups, code_ids: Sequence[str],
                    tested: np.ndarray, *, field: str, seed: int, permutations: int
                    ) -> dict[str, list[object]]:
    """The document-level permutation test of every code in ``tested`` (a field with one
    group per document); ``test_documents``, ``p_documents``, ``p_documents_min`` per code.

    Statistic: Pearson's chi-square of the code's 2 × g segment table (coded / not coded ×
    group), the ``chi2`` the segment test reports. Only its reference distribution changes:
    instead of the chi-square (or hypergeometric) distribution of independent segments,
    the chi-squares of the same segments when the group labels are shuffled between
    documents, each document's segments staying together (the permutation null: the group
    says nothing about a document's coding). A talkative interview that carries a code
    in many segments then pushes the chi-square up just as much in the shuffles where it
    lands in another group, so it weighs as one document. The chi-square (not, say, the
    mean of per-document shares) keeps the table's question — do the groups' *segment*
    shares differ? — so ``p_value`` and ``p_documents`` differ only in what counts as
    chance; it is two-sided and works for any number of groups.

    p-value: ``(number of arrangements with a chi-square ≥ the observed) / (number of
    arrangements)`` over all distinct arrangements of the labels (``permutation_exact``)
    when there are at most ``permutations`` of them; else ``(1 + that number among
    permutations random shuffles) / (1 + permutations)`` (``permutation_mc``).
    ``p_documents_min`` is the smallest p-value possible: exact, the share of arrangements
    as extreme as the most extreme one; Monte Carlo, ``1 / (1 + permutations)``.

    Random shuffles are drawn two ways, to the same distribution: documents shuffled
    (one set of shuffles per field, from ``seed`` and the field's name, shared by its
    codes), or, for a code whose documents come in few kinds (the same numbers of
    segments and of coded segments, e.g. one-paragraph excerpts), how many documents of
    each kind fall into each group (multivariate hypergeometric, from ``seed`` and the
    code). Either way a code's p-value depends on the seed, the documents and its own
    codings only.
    """
    n_codes = len(code_ids)
    result: dict[str, list[object]] = {"test_documents": [""] * n_codes,
                                       "p_documents": [math.nan] * n_codes,
                                       "p_documents_min": [math.nan] * n_codes}
    codes = np.flatnonzero(tested)
    if not len(codes):
        return result
    labels, sizes, k = docs.doc_group, docs.sizes, len(docs.groups)
    n_docs = len(labels)
    compared = docs.doc_index >= 0
    n = np.bincount(docs.doc_index[compared], minlength=n_docs)
    coded = np.zeros((n_docs, len(codes)), dtype=np.int64)
    np.add.at(coded, docs.doc_index[compared], applied.matrix[compared][:, codes])
    name = "permutation_mc"
    try:
        observed = _chi2_of(_label_sums(labels[None, :], n, coded, k), n, coded)[0]
        arrangements = _arrangement_count(sizes)
        if arrangements <= permutations and arrangements * n_docs <= _EXACT_CELLS:
            name = "permutation_exact"
            null = _chi2_of(_label_sums(_arrangements(sizes), n, coded, k), n, coded)
            p = _at_least(null, observed) / arrangements
            floor = _at_least(null, null.max(axis=0)) / arrangements
        else:
            null = _shuffled_chi2(labels, n, coded, k=k, seed=seed, field=field,
                                  permutations=permutations)
            p = (1 + _at_least(null, observed)) / (1 + permutations)
            floor = np.full(len(codes), 1 / (1 + permutations))
    except Exception as exc:  # as in _test: one test never stops the report
        _log.warning("document-level test not run (%d documents, groups %s): %s: %s",
                     n_docs, docs.groups, type(exc).__name__, exc)
        for j in codes:
            result["test_documents"][j] = f"{name}: failed"
        return result
    for i, j in enumerate(codes):
        result["test_documents"][j] = name
        result["p_documents"][j] = _sig(float(min(p[i], 1.0)))
        result["p_documents_min"][j] = _sig(float(floor[i]))
    return result


def _arrangement_count(sizes: Sequence[int]) -> int:
    """``(Σ sizes)! / Π sizes!``: the distinct ways to label documents with these sizes."""
    count, total = 1, 0
    for size in sizes:
        total += size
        count *= math.comb(total, size)
    return count


def _arrangements(sizes: Sequence[int]) -> np.ndarray:
    """Every distinct labelling of ``Σ sizes`` documents with ``sizes[g]`` labelled ``g``,
    one per row (int16)."""
    d, first = sum(sizes), sizes[0]
    if len(sizes) == 1:
        return np.zeros((1, d), dtype=np.int16)
    rest = _arrangements(sizes[1:]) + 1  # labels of the documents not in group 0
    chosen = np.array(list(itertools.combinations(range(d), first)), dtype=np.intp)
    free = np.ones((len(chosen), d), dtype=bool)
    free[np.arange(len(chosen))[:, None], chosen] = False
    others = np.nonzero(free)[1].reshape(len(chosen), d - first)
    out = np.zeros((len(chosen), len(rest), d), dtype=np.int16)
    out[np.arange(len(chosen))[:, None, None], np.arange(len(rest))[None, :, None],
        others[:, None, :]] = rest[None, :, :]
    return out.reshape(-1, d)


def _label_sums(labels: np.ndarray, n: np.ndarray, coded: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``labels`` (arrangements × documents): segments per group (rows × k) and
    coded segments per group and code (rows × k × codes). Sums of integers in float64
    (BLAS), exact below 2**53."""
    values = np.column_stack([n, coded]).astype(np.float64)
    sums = np.empty((len(labels), k, values.shape[1]))
    rows = max(1, _BLOCK_CELLS // max(labels.shape[1], 1))
    for start in range(0, len(labels), rows):
        block = labels[start:start + rows]
        for g in range(k):
            sums[start:start + len(block), g] = (block == g).astype(np.float64) @ values
    return sums[:, :, 0], sums[:, :, 1:]


def _chi2_of(sums: tuple[np.ndarray, np.ndarray], n: np.ndarray, coded: np.ndarray
             ) -> np.ndarray:
    """Pearson's chi-square of each code's 2 × k table (rows × codes) from group sums.

    As ``Σ_g (N·c_g - K·n_g)² / (n_g·K·(N - K))`` (``c_g`` coded of ``n_g`` segments in
    group g, ``K`` of ``N`` in all): the numerator is an integer, so a table without any
    difference gives exactly 0.
    """
    totals, hits = sums
    total, k = float(n.sum()), coded.sum(axis=0).astype(np.float64)
    gap = total * hits - k * totals[:, :, None]
    return (gap * gap / (totals[:, :, None] * (k * (total - k)))).sum(axis=1)


def _at_least(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per code, how many of ``null`` (rows × codes) reach ``observed`` (codes), counting
    values equal in theory but apart in the last bits as equal."""
    return (null >= observed - _TIE * np.maximum(observed, 1.0)).sum(axis=0)


def _shuffled_chi2(labels: np.ndarray, n: np.ndarray, coded: np.ndarray, *, k: int,
                   seed: int, field: str, permutations: int) -> np.ndarray:
    """Chi-squares (permutations × codes) of random shuffles of the documents' labels."""
    null = np.empty((permutations, coded.shape[1]))
    sizes = np.bincount(labels, minlength=k)
    # a document's kind: its segments and coded segments (interchangeable documents)
    base = coded.max(axis=0) + 1
    kinds = [np.unique(n * base[i] + coded[:, i], return_counts=True)
             for i in range(coded.shape[1])]
    by_kind = _by_kind([len(found) for found, _ in kinds], len(n), k)
    for i in np.flatnonzero(by_kind):
        found, counts = kinds[i]
        order = np.argsort(-counts, kind="stable")  # large kinds first: faster draws
        found, counts = found[order], counts[order]
        per_group = _drawn_kinds(counts, sizes, _data_rng(seed, found, counts, sizes),
                                 permutations)
        kind_n, kind_c = np.divmod(found, base[i])
        sums = (per_group @ kind_n.astype(np.float64),
                (per_group @ kind_c.astype(np.float64))[:, :, None])
        null[:, i] = _chi2_of(sums, n, coded[:, [i]])[:, 0]
    shuffled = np.flatnonzero(~by_kind)
    if len(shuffled):
        rng = _data_rng(seed, "documents", field)
        block, small = max(1, _BLOCK_CELLS // len(labels)), labels.astype(np.int16)
        for start in range(0, permutations, block):
            rows = min(block, permutations - start)
            drawn = rng.permuted(np.broadcast_to(small, (rows, len(labels))), axis=1)
            null[start:start + rows, shuffled] = _chi2_of(
                _label_sums(drawn, n, coded[:, shuffled], k), n, coded[:, shuffled])
    return null


def _by_kind(kinds: Sequence[int], n_docs: int, k: int) -> np.ndarray:
    """Which codes to draw by kinds of documents rather than by shuffling documents: the
    cheaper plan (speed only; both give the same distribution). Rough costs per shuffle,
    in ns (numpy 2): a hypergeometric draw ~100; shuffling a document ~15 and summing it
    into the groups ~3 per group, plus ~0.6 per group and code."""
    by_kind = 100.0 * (k - 1) * np.asarray(kinds, dtype=float)
    per_code = 0.6 * k * n_docs
    shuffles = (15 + 3 * k) * n_docs + np.minimum(by_kind, per_code).sum()
    if by_kind.sum() <= shuffles:
        return np.ones(len(by_kind), dtype=bool)
    return by_kind < per_code


def _drawn_kinds(kinds: np.ndarray, sizes: np.ndarray, rng: np.random.Generator,
                 draws: int) -> np.ndarray:
    """``draws`` random allocations of documents to groups, as counts (draws × groups ×
    kinds): ``kinds[t]`` interchangeable documents of kind ``t``, ``sizes[g]`` documents
    per group — what a shuffle of the labels gives, drawn kind by kind (a multivariate
    hypergeometric as a chain of hypergeometric draws, vectorised over the draws)."""
    out = np.zeros((len(sizes), len(kinds), draws), dtype=np.int64)
    left = np.repeat(np.asarray(kinds, dtype=np.int64)[:, None], draws, axis=1)
    for g in range(len(sizes) - 1):
        need = np.full(draws, sizes[g], dtype=np.int64)
        rest = left.sum(axis=0)
        for t in range(len(kinds) - 1):
            rest -= left[t]
            out[g, t] = rng.hypergeometric(left[t], rest, need)
            need -= out[g, t]
        out[g, -1] = need
        left -= out[g]
    out[-1] = left
    return out.transpose(2, 0, 1).astype(np.float64)


def _sig(value: float, digits: int = 4) -> float:
    """Round to ``digits`` significant digits (p-values can be tiny)."""
    if value is None or math.isnan(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def _test(coded: np.ndarray, totals: np.ndarray, *, seed: int, resamples: int,
          code_id: str) -> dict[str, object]:
    """One code's test (see :func:`difference_table`). A test that fails leaves ``p_value``
    empty and says so in ``test`` (``fisher_mc: failed``), with a logged warning: one
    test never stops the report."""
    empty = {"test": "", "chi2": math.nan, "p_value": math.nan, "cramers_v": math.nan}
    n, k = int(totals.sum()), int(coded.sum())
    if len(totals) < 2 or k == 0 or k == n:
        return empty
    table = np.vstack([coded, totals - coded]).astype(int)
    name, result = "chi2", dict(empty)
    try:
        chi2, p_chi2, _, expected = stats.chi2_contingency(table, correction=False)
        result |= {"chi2": _sig(float(chi2)), "cramers_v": round(math.sqrt(chi2 / n), 4)}
        if table.shape[1] == 2:
            name = "fisher"
            p = float(stats.fisher_exact(table).pvalue)
        elif expected.min() < 5:
            name = "fisher_mc"
            p = _fisher_mc(table, _data_rng(seed, table), resamples)
        else:
            p = float(p_chi2)
    except Exception as exc:  # a statistics routine's bug must not cost the other tables
        _log.warning("%s test for code %s not run (table %s): %s: %s", name, code_id,
                     table.tolist(), type(exc).__name__, exc)
        return result | {"test": f"{name}: failed"}
    return result | {"test": name, "p_value": _sig(min(p, 1.0))}


def _fisher_mc(table: np.ndarray, rng: np.random.Generator, resamples: int) -> float:
    """Fisher–Freeman–Halton Monte Carlo p-value: the share of ``resamples`` random tables
    with the margins of ``table`` that are at most as probable as it (plus one, over
    ``resamples + 1``).

    What ``stats.fisher_exact(table, method=MonteCarloMethod(n_resamples=resamples,
    rng=rng))`` computes, to the same draws and p-value, without its bug (scipy 1.17):
    there a table whose total is at least ``resamples`` × its cells makes the batch of
    resampled tables be taken for one table (``cannot reshape array``).
    """
    dist = stats.random_table(table.sum(axis=1), table.sum(axis=0), seed=rng)
    observed = dist.pmf(table)
    null = dist.pmf(dist.rvs(size=resamples))
    # scipy's tolerance for probabilities equal in theory, apart in floating point
    gamma = abs(observed * np.finfo(float).eps * 100)
    return float(min((np.sum(null <= observed + gamma) + 1) / (resamples + 1), 1.0))


# --------------------------------------------------------------------------- co-occurrence


def cooccurrence_table(segments: pd.DataFrame, codings: pd.DataFrame | None,
                       codebook: Codebook, *, applied: Applied | None = None) -> pd.DataFrame:
    """``cooccurrence.csv``: code × code, cells = codable segments with both codes.

    The diagonal is the number of segments with the code; first column ``code_id``.
    ``applied`` as in :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    both = _cross_counts(applied.matrix, applied.matrix)
    table = pd.DataFrame(both.astype(int), columns=codebook.code_ids)
    table.insert(0, "code_id", codebook.code_ids)
    return table


def category_pair_table(segments: pd.DataFrame, codings: pd.DataFrame | None,
                        codebook: Codebook, category_a: str, category_b: str,
                        evaluation: pd.DataFrame | None = None, *,
                        applied: Applied | None = None) -> pd.DataFrame:
    """``cooccurrence_<a>_x_<b>.csv``: codes of category a (rows) × codes of category b.

    Columns: ``code_id, name, segments`` (segments with the row code), then one count column
    per code of b (segments with both), then ``jaccard_<code>`` per code of b:
    ``both / (segments with a + segments with b - both)``, empty when neither occurs;
    ``status`` of the row code with an evaluation. ``applied`` as in :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    index = {cid: j for j, cid in enumerate(codebook.code_ids)}
    rows_codes, cols_codes = codebook.codes_in(category_a), codebook.codes_in(category_b)
    statuses = _statuses(codebook, evaluation)
    x = applied.matrix
    single = x.sum(axis=0)
    rows = []
    for a in rows_codes:
        ia = index[a.id]
        row: dict[str, object] = {"code_id": a.id, "name": a.name, "segments": int(single[ia])}
        both = {b.id: int((x[:, ia] & x[:, index[b.id]]).sum()) for b in cols_codes}
        row.update(both)
        for b in cols_codes:
            union = single[ia] + single[index[b.id]] - both[b.id]
            row[f"jaccard_{b.id}"] = round(both[b.id] / union, 4) if union else math.nan
        if statuses is not None:
            row["status"] = statuses[a.id]
        rows.append(row)
    columns = ["code_id", "name", "segments", *(b.id for b in cols_codes),
               *(f"jaccard_{b.id}" for b in cols_codes)]
    if statuses is not None:
        columns.append("status")
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- documents


def code_document_matrix(segments: pd.DataFrame, codings: pd.DataFrame | None,
                         codebook: Codebook, *, binary: bool = False,
                         applied: Applied | None = None) -> pd.DataFrame:
    """``code_document_matrix[_binary].csv``: one row per document.

    Columns: ``doc_id, source_type``, the metadata fields (the document's first non-empty
    value), ``n_segments`` (all segments), ``n_codable`` (codable segments), then one column
    per code: the number of codable segments with the code (``binary``: 1 if any).
    A metadata field named like a code id is written as ``meta_<field>``.
    ``applied`` as in :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    seg = applied.segments
    doc_index, unique_docs = pd.factorize(seg["doc_id"])  # order of first appearance
    docs = unique_docs.tolist()
    meta = [c for c in seg.columns if c not in SEGMENT_CORE]
    # per document, the first value that is not blank
    described = [c for c in ("source_type", *meta) if c in seg.columns]
    filled = seg[described].astype(str)
    filled = filled.mask(pd.DataFrame({c: _blank(filled[c]) for c in described},
                                      index=filled.index, columns=described, dtype=bool))
    first = filled.groupby(doc_index, sort=False).first().reindex(range(len(docs))).fillna("")
    table = pd.DataFrame({"doc_id": docs})
    table["source_type"] = first["source_type"].to_numpy() if "source_type" in first else ""
    for col in meta:
        name = META_PREFIX + col if col in set(codebook.code_ids) else col
        table[name] = first[col].to_numpy()
    codable = seg["codable"].to_numpy(dtype=bool)
    table["n_segments"] = np.bincount(doc_index, minlength=len(docs))
    table["n_codable"] = np.bincount(doc_index[codable], minlength=len(docs))
    values = np.zeros((len(docs), len(applied.code_ids)), dtype=int)
    np.add.at(values, doc_index[codable], applied.matrix)  # matrix rows: codable segments
    for j, cid in enumerate(codebook.code_ids):
        table[cid] = values[:, j]
    return binary_document_matrix(table, codebook) if binary else table


def binary_document_matrix(matrix: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """The binary matrix from :func:`code_document_matrix`'s counts: 1 if any segment."""
    return matrix.assign(**{cid: (matrix[cid] > 0).astype(int) for cid in codebook.code_ids})


def _blank(values: pd.Series) -> np.ndarray:
    """Which values are empty or whitespace (each distinct value is stripped once)."""
    codes, distinct = pd.factorize(values)
    return np.array([not v.strip() for v in distinct], dtype=bool)[codes]


# --------------------------------------------------------------------------- quotes


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if limit <= 0 or len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _previous_turn(columns: Mapping[str, np.ndarray], position: int) -> str:
    """"speaker: text" of the turn before row ``position`` in its document ("" if none).

    For a transcript turn split into parts the previous *turn* is the one before the first
    part (usually the interviewer's question); for excerpts and prose paragraphs it is the
    previous segment. A document is a run of consecutive rows with its ``doc_id``.
    ``columns``: the segments' ``doc_id`` and those of ``turn, speaker, text`` it has.
    """
    def cell(column: str, row: int) -> str:
        return columns[column][row] if column in columns else ""

    doc, turn = columns["doc_id"], cell("turn", position)
    for row in range(position - 1, -1, -1):
        if doc[row] != doc[position]:
            break
        if not turn or cell("turn", row) != turn:
            who, words = cell("speaker", row), cell("text", row)
            return f"{who}: {words}" if who else words
    return ""


def quote_table(segments: pd.DataFrame, codings: pd.DataFrame | None, codebook: Codebook,
                evaluation: pd.DataFrame | None = None, *, per_code: int = 3,
                context_chars: int = 240, applied: Applied | None = None) -> pd.DataFrame:
    """``quotes.csv``: per code, its strongest segments.

    Order within a code: human-confirmed first, then the highest score, then corpus order.
    Columns: ``code_id, name, category, rank, segment_id, doc_id, speaker, citation, score,
    method, text, context`` (+ ``status``); ``text`` is the whole segment, ``context`` the
    previous turn in the same document, truncated to ``context_chars``.
    ``applied`` as in :func:`frequency_table`.
    """
    applied = _applied(segments, codings, codebook, applied)
    seg = applied.segments
    statuses = _statuses(codebook, evaluation)
    position = pd.Series(np.arange(len(seg)), index=seg["segment_id"].to_numpy())
    cod = applied.codings.assign(_order=applied.codings["segment_id"].map(position))
    cod = cod.sort_values(["code_id", "_human", "score", "_order"],
                          ascending=[True, False, False, True], kind="stable",
                          na_position="last")
    top = cod.groupby("code_id", sort=False).head(max(per_code, 0))
    chosen: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for c, s in zip(top.to_dict("records"),
                    seg.iloc[top["_order"].to_numpy()].to_dict("records"), strict=True):
        chosen.setdefault(c["code_id"], []).append((c, s))
    turns = {c: seg[c].to_numpy() for c in ("doc_id", "turn", "speaker", "text")
             if c in seg.columns}
    rows = []
    for code in codebook.codes:
        for rank, (c, s) in enumerate(chosen.get(code.id, []), start=1):
            row = {
                "code_id": code.id, "name": code.name, "category": code.category,
                "rank": rank, "segment_id": c["segment_id"], "doc_id": s["doc_id"],
                "speaker": s.get("speaker", ""), "citation": s.get("citation", ""),
                "score": c["score"], "method": c["method"], "text": s.get("text", ""),
                "context": _truncate(_previous_turn(turns, c["_order"]), context_chars),
            }
            if statuses is not None:
                row["status"] = statuses[code.id]
            rows.append(row)
    columns = ["code_id", "name", "category", "rank", "segment_id", "doc_id", "speaker",
               "citation", "score", "method", "text", "context"]
    if statuses is not None:
        columns.append("status")
    return pd.DataFrame(rows, columns=columns)


def quotes_markdown(quotes: pd.DataFrame, codebook: Codebook) -> str:
    """``quotes.md``: the quotes grouped by category and code, ready to paste."""
    lines = [f"# Quotes — {codebook.name} (v{codebook.version})", ""]
    has_status = "status" in quotes.columns
    by_code = records_by_code(quotes)
    for category in codebook.categories:
        codes = codebook.codes_in(category.id)
        if not codes:
            continue
        lines += [f"## {category.name}", ""]
        for code in codes:
            chosen = by_code.get(code.id, [])
            lines += [f"### {code.name} (`{code.id}`)", ""]
            if has_status and chosen and chosen[0]["status"] == HUMAN:
                lines += ["> **Status `human`:** the classifier is not trusted for this "
                          "code; check these quotes by hand.", ""]
            if not chosen:
                lines += ["_No coded segments._", ""]
                continue
            for q in chosen:
                if q["context"]:
                    lines += [f"_Context:_ {q['context']}", ""]
                lines += [f"> {line}" if line.strip() else ">"
                          for line in str(q["text"]).splitlines() or [""]]
                source = [f"`{q['segment_id']}`"]
                if q["speaker"]:
                    source.append(str(q["speaker"]))
                if q["citation"]:
                    source.append(str(q["citation"]))
                lines += [">", f"> — {', '.join(source)} ({_how_coded(q)})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _how_coded(quote: Mapping[str, Any]) -> str:
    """``rule, score 0.91``; for a coder's decision the score is the classifier's, not the
    coder's confidence, and says so."""
    score = "" if pd.isna(quote["score"]) else f"{float(quote['score']):.2f}"
    if quote["method"] == HUMAN:
        return "coder's decision" + (f"; classifier's score {score}" if score else "")
    return f"{quote['method']}" + (f", score {score}" if score else "")


def records_by_code(table: pd.DataFrame) -> dict[Any, list[dict[str, Any]]]:
    """The rows of a table as dicts, grouped by ``code_id`` (in table order)."""
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for record in table.to_dict("records"):
        grouped.setdefault(record["code_id"], []).append(record)
    return grouped
