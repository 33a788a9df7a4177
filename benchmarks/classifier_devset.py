"""Classifier quality on the labelled dev set (../shared/devset), next to issue 3's baselines.

    .venv/bin/python benchmarks/classifier_devset.py [--codebook codebook.yaml] [--cache DIR]
        [--backend semantic|fast] [--set name=value ...] [--only cv,tune,holdout,codebook,rules]
        [--devset DIR]

``--devset benchmarks/blind/bld`` (or ``ble``) measures the same on a blind set: text written
from codebook-spec.md alone by people who never saw the rules, the honest check of how far
the dev-set numbers carry to new material (see benchmarks/blind/README.md).

Settings reported:
- ``cv``: 5-fold cross-validation grouped by document over all 291 gold segments (gold used
  as reviews), the target of issue 3;
- ``tune``: the same over the tuning part only (what model choices were made on);
- ``holdout``: trained on the tuning part, scored on a held-out part (4 transcripts + 30
  excerpts) that no choice was made on;
- ``codebook``: trained on the codebook alone, scored on all gold segments;
- ``rules``: the codebook's rules alone (a hit is a decision).

Macro F1 averages per-code F1; alpha is Krippendorff's alpha (nominal, gold vs model, unit =
segment, per code 0/1), averaged over codes. Embeddings are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qualcode.codebook import load_codebook  # noqa: E402
from qualcode.ingest import ingest_corpus  # noqa: E402
from qualcode.model import (  # noqa: E402
    CodebookClassifier,
    f1_per_code,
    krippendorff_alpha_nominal,
    multilabel_targets,
)
from qualcode.rules import RuleMatcher  # noqa: E402
from qualcode.segment import segment_documents  # noqa: E402

DEVSET = ROOT.parent / "shared" / "devset"
# Held out of every model choice: one transcript per case and format, and 30 excerpts drawn
# with a fixed seed.
HELD_OUT_TRANSCRIPTS = ("MMR-INT-04", "MMR-INT-13", "OTH-INT-06", "YEM-INT-09")
HELD_OUT_EXCERPTS, HELD_OUT_SEED = 30, 42
BASELINES = [
    ("TF-IDF (1-2 grams) + one-vs-rest LR", 0.08, 0.03),
    ("MiniLM frozen + LR, threshold 0.5", 0.48, 0.40),
    ("MiniLM frozen + LR, tuned thresholds", 0.50, 0.42),
    ("cosine to codebook definitions", 0.25, 0.14),
    ("second coder (ceiling)", 0.95, 0.93),
]


def load_devset(devset: Path) -> tuple[list[str], list[str], list[list[str]], list[str]]:
    """Segment ids, texts, gold codes and doc ids of the gold rows, via qualcode's ingest."""
    segments = {s.segment_id: s for s in
                segment_documents(ingest_corpus(devset / "corpus").documents)}
    ids, texts, codes, docs = [], [], [], []
    with open(devset / "gold.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            seg = segments[row["segment_id"]]
            ids.append(row["segment_id"])
            texts.append(seg.text)
            codes.append([c for c in row["codes"].split(";") if c])
            docs.append(row["doc_id"])
    return ids, texts, codes, docs


def held_out_mask(docs: list[str]) -> np.ndarray:
    """The held-out part of the dev set (none for another labelled set, such as a blind
    set under ``benchmarks/blind``, which is all held out)."""
    if not set(HELD_OUT_TRANSCRIPTS) <= set(docs):
        return np.zeros(len(docs), dtype=bool)
    excerpts = sorted({d for d in docs if d not in HELD_OUT_TRANSCRIPTS and "-INT-" not in d})
    chosen = set(random.Random(HELD_OUT_SEED).sample(excerpts, HELD_OUT_EXCERPTS))
    chosen |= set(HELD_OUT_TRANSCRIPTS)
    return np.array([d in chosen for d in docs])


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    f1 = f1_per_code(truth, pred)
    alphas = [krippendorff_alpha_nominal(truth[:, j], pred[:, j]) for j in range(truth.shape[1])]
    tp = float((truth & pred).sum())
    return {
        "macro_f1": float(f1.mean()),
        "alpha": float(np.nanmean(alphas)),
        "micro_p": tp / max(float(pred.sum()), 1.0),
        "micro_r": tp / max(float(truth.sum()), 1.0),
    }


def cross_validate(make, texts, Y, docs, idx, folds=5):
    pred = np.zeros_like(Y)
    fit_s = pred_s = 0.0
    for tr, te in GroupKFold(folds).split(idx, groups=np.asarray(docs)[idx]):
        tr, te = idx[tr], idx[te]
        t0 = time.perf_counter()
        model = make().fit([texts[i] for i in tr], Y[tr], groups=[docs[i] for i in tr])
        t1 = time.perf_counter()
        pred[te] = model.predict([texts[i] for i in te])
        fit_s, pred_s = fit_s + t1 - t0, pred_s + time.perf_counter() - t1
    return pred[idx], fit_s, pred_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--codebook", type=Path, default=ROOT / "codebook.yaml")
    ap.add_argument("--cache", default=str(ROOT / "outputs" / "cache" / "embeddings"))
    ap.add_argument("--backend", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a CodebookClassifier parameter, e.g. --set sentence_weight=0.5")
    ap.add_argument("--only", default="cv,tune,holdout,codebook,rules")
    args = ap.parse_args(argv)

    params = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    codebook = load_codebook(args.codebook)
    t0 = time.perf_counter()
    ids, texts, gold, docs = load_devset(args.devset)
    Y = multilabel_targets(gold, codebook.code_ids)
    hold = held_out_mask(docs)
    print(f"dev set: {len(ids)} segments, {len(set(docs))} documents, {Y.sum()} codings; "
          f"held out: {hold.sum()} segments ({time.perf_counter() - t0:.1f}s to ingest)")

    def make(**extra):
        return CodebookClassifier(codebook, backend=args.backend, cache_dir=args.cache,
                                  **{**params, **extra})

    t0 = time.perf_counter()
    warm = make().fit([], None)
    warm.predict(texts)  # encodes every dev text once (cached on disk for later runs)
    print(f"backend {warm.backend_} ({warm.embedding_model_id_}); first encode + codebook fit "
          f"{time.perf_counter() - t0:.1f}s; params {params or 'defaults'}")

    rows = []
    wanted = args.only.split(",")
    everything = np.arange(len(texts))
    if "cv" in wanted:
        pred, fit_s, pred_s = cross_validate(make, texts, Y, docs, everything)
        rows.append(("5-fold grouped CV, all gold as reviews", scores(Y, pred), fit_s, pred_s))
    if "tune" in wanted and hold.any():
        tune = np.flatnonzero(~hold)
        pred, fit_s, pred_s = cross_validate(make, texts, Y, docs, tune)
        rows.append(("5-fold grouped CV, tuning part only", scores(Y[tune], pred), fit_s,
                     pred_s))
    if "holdout" in wanted and hold.any():
        tune, test = np.flatnonzero(~hold), np.flatnonzero(hold)
        t0 = time.perf_counter()
        model = make().fit([texts[i] for i in tune], Y[tune], groups=[docs[i] for i in tune])
        t1 = time.perf_counter()
        pred = model.predict([texts[i] for i in test])
        rows.append(("held-out part, trained on tuning part", scores(Y[test], pred), t1 - t0,
                     time.perf_counter() - t1))
    if "codebook" in wanted:
        t0 = time.perf_counter()
        model = make().fit([], None)
        t1 = time.perf_counter()
        pred = model.predict(texts)
        rows.append(("codebook only (no reviews), all gold", scores(Y, pred), t1 - t0,
                     time.perf_counter() - t1))
        if hold.any():
            rows.append(("codebook only, held-out part", scores(Y[hold], pred[hold]), 0, 0))

    if "rules" in wanted:
        matcher = RuleMatcher(codebook)
        t0 = time.perf_counter()
        hits = matcher.hit_matrix(matcher.match(texts)).astype(np.int64)
        rows.append(("codebook rules alone, all gold", scores(Y, hits), 0,
                     time.perf_counter() - t0))
        if hold.any():
            rows.append(("codebook rules alone, held-out part", scores(Y[hold], hits[hold]),
                         0, 0))

    print(f"\n{'setting':48s} {'macro F1':>8s} {'alpha':>6s} {'P':>5s} {'R':>5s} "
          f"{'fit s':>6s} {'pred s':>6s}")
    for name, s, fit_s, pred_s in rows:
        print(f"{name:48s} {s['macro_f1']:8.3f} {s['alpha']:6.3f} {s['micro_p']:5.2f} "
              f"{s['micro_r']:5.2f} {fit_s:6.1f} {pred_s:6.1f}")
    print("\nbaselines (issue 3, 5-fold grouped CV)")
    for name, f1, alpha in BASELINES:
        print(f"{name:48s} {f1:8.2f} {alpha:6.2f}")
    print("targets: CV macro F1 >= 0.65 and alpha >= 0.60; codebook only macro F1 >= 0.40")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
