"""How far the classifier can be trusted: grouped cross-validation against coders.

Unit = segment. For each code the reviewed segments' human decisions are compared with
the classifier's out-of-fold decisions (folds keep a document's segments together) and
with the codebook rules alone. Trust status from Krippendorff's alpha:
``auto`` (>= 0.80), ``check`` (0.667-0.80), ``human`` (below, or too few reviews).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from .codebook import Codebook
from .model import CodebookClassifier, multilabel_targets
from .outputs import EVALUATION_CSV, write_csv
from .reliability import cohen_kappa, nominal_alpha
from .rules import RuleMatcher
from .training import TrainingSet, cache_dir

AUTO, CHECK, HUMAN = "auto", "check", "human"
AUTO_ALPHA, CHECK_ALPHA = 0.80, 0.667
MIN_POSITIVES = 5  # fewer reviewed positives than this: alpha is too unstable to trust
MIN_REVIEWED = 30
COLUMNS = (
    "code_id", "name", "category", "reviewed", "support", "tp", "fp", "fn", "tn",
    "precision", "recall", "f1", "kappa", "alpha", "tpr", "fpr",
    "rules_precision", "rules_recall", "rules_f1", "rules_alpha", "status",
)
SUMMARY_IDS = ("micro_avg", "macro_avg")


@dataclass(slots=True)
class CrossValidation:
    truth: np.ndarray  # (n, k) 0/1 human decisions
    model: np.ndarray  # (n, k) out-of-fold classifier decisions
    rules: np.ndarray  # (n, k) rule hits
    folds: int


def cross_validate(
    codebook: Codebook,
    data: TrainingSet,
    out: str | Path | None = None,
    backend: str | None = None,
    folds: int = 5,
    **model_params: Any,
) -> CrossValidation:
    """Out-of-fold decisions of the full classifier, and the rules' hits, on ``data``."""
    n_groups = len(set(data.groups))
    if len(data.texts) < 2 or n_groups < 2:
        raise ValueError(
            f"evaluation needs reviewed segments from at least 2 documents (found "
            f"{len(data.texts)} segments in {n_groups} documents) — add review sheets to "
            "the corpus's reviews/ folder"
        )
    code_ids = list(codebook.code_ids)
    truth = multilabel_targets(data.labels, code_ids)
    predicted = np.zeros_like(truth)
    cache = str(cache_dir(out)) if out is not None else None
    splitter = GroupKFold(n_splits=min(folds, n_groups))
    texts = np.asarray(data.texts, dtype=object)
    groups = np.asarray(data.groups, dtype=object)
    for train, test in splitter.split(texts, groups=groups):
        model = CodebookClassifier(codebook, backend=backend, cache_dir=cache, **model_params)
        model.fit(list(texts[train]), truth[train], groups=list(groups[train]))
        predicted[test] = model.predict(list(texts[test]))
    matcher = RuleMatcher(codebook)
    rules = matcher.hit_matrix(matcher.match(data.texts)).astype(np.int64)
    return CrossValidation(truth, predicted, rules, splitter.get_n_splits())


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def code_metrics(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Agreement of one code's decisions with the human ones (0/1 vectors)."""
    t, p = np.asarray(truth, bool), np.asarray(pred, bool)
    tp, fp = int((t & p).sum()), int((~t & p).sum())
    fn, tn = int((t & ~p).sum()), int((~t & ~p).sum())
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": precision, "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "kappa": cohen_kappa(t.astype(int), p.astype(int)),
        "alpha": nominal_alpha([t.astype(int), p.astype(int)]),
        "tpr": recall, "fpr": _ratio(fp, fp + tn),
    }


def trust_status(alpha: float, support: int, reviewed: int) -> str:
    if support < MIN_POSITIVES or reviewed < MIN_REVIEWED or not np.isfinite(alpha):
        return HUMAN
    if alpha >= AUTO_ALPHA:
        return AUTO
    return CHECK if alpha >= CHECK_ALPHA else HUMAN


def evaluation_rows(codebook: Codebook, cv: CrossValidation) -> list[dict[str, Any]]:
    """Per-code rows (codebook order), then micro and macro averages."""
    rows: list[dict[str, Any]] = []
    n = len(cv.truth)
    for j, code in enumerate(codebook.codes):
        full = code_metrics(cv.truth[:, j], cv.model[:, j])
        rules = code_metrics(cv.truth[:, j], cv.rules[:, j])
        support = int(cv.truth[:, j].sum())
        rows.append({
            "code_id": code.id, "name": code.name, "category": code.category,
            "reviewed": n, "support": support, **full,
            "rules_precision": rules["precision"], "rules_recall": rules["recall"],
            "rules_f1": rules["f1"], "rules_alpha": rules["alpha"],
            "status": trust_status(full["alpha"], support, n),
        })
    micro = code_metrics(cv.truth.ravel(), cv.model.ravel())
    micro_rules = code_metrics(cv.truth.ravel(), cv.rules.ravel())
    present = [r for r in rows if r["support"] > 0]

    def mean(key: str, source: Sequence[dict[str, Any]] = present) -> float:
        values = [r[key] for r in source if np.isfinite(r[key])]
        return float(np.mean(values)) if values else float("nan")

    rows.append({"code_id": "micro_avg", "name": "all codes pooled", "category": "",
                 "reviewed": n, "support": int(cv.truth.sum()),
                 **{k: micro[k] for k in ("tp", "fp", "fn", "tn", "precision", "recall", "f1",
                                          "kappa", "alpha", "tpr", "fpr")},
                 "rules_precision": micro_rules["precision"],
                 "rules_recall": micro_rules["recall"], "rules_f1": micro_rules["f1"],
                 "rules_alpha": micro_rules["alpha"], "status": ""})
    rows.append({"code_id": "macro_avg", "name": "mean over codes with support",
                 "category": "", "reviewed": n, "support": int(cv.truth.sum()),
                 **{k: mean(k) for k in ("precision", "recall", "f1", "kappa", "alpha",
                                         "tpr", "fpr", "rules_precision", "rules_recall",
                                         "rules_f1", "rules_alpha")},
                 "tp": "", "fp": "", "fn": "", "tn": "", "status": ""})
    return rows


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if not np.isfinite(value) else f"{value:.4f}"
    return value


def write_evaluation(out: str | Path, rows: Sequence[dict[str, Any]]) -> str:
    return write_csv(Path(out) / EVALUATION_CSV, COLUMNS,
                     ([_cell(r.get(c, "")) for c in COLUMNS] for r in rows))


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers for the model's metadata and the console."""
    by_id = {r["code_id"]: r for r in rows}
    codes = [r for r in rows if r["code_id"] not in SUMMARY_IDS]
    return {
        "reviewed": codes[0]["reviewed"] if codes else 0,
        "macro_f1": by_id["macro_avg"]["f1"],
        "micro_f1": by_id["micro_avg"]["f1"],
        "mean_alpha": by_id["macro_avg"]["alpha"],
        "rules_macro_f1": by_id["macro_avg"]["rules_f1"],
        "status": {s: sum(r["status"] == s for r in codes) for s in (AUTO, CHECK, HUMAN)},
    }


def format_evaluation(rows: Sequence[dict[str, Any]]) -> str:
    """A readable console table."""
    lines = [f"{'code':28} {'n+':>4} {'prec':>5} {'rec':>5} {'F1':>5} {'alpha':>6} "
             f"{'rules F1':>8}  status"]
    for r in rows:
        def f(key: str, width: int, r: dict[str, Any] = r) -> str:
            v = r[key]
            return f"{v:>{width}.2f}" if isinstance(v, float) and np.isfinite(v) else \
                f"{'-':>{width}}"
        lines.append(f"{r['code_id'][:28]:28} {r['support']:>4} {f('precision', 5)} "
                     f"{f('recall', 5)} {f('f1', 5)} {f('alpha', 6)} {f('rules_f1', 8)}  "
                     f"{r['status']}")
    return "\n".join(lines)
