"""Contrastive (SetFit-style) fine-tuning of the sentence encoder: what it costs, what it buys.

    .venv/bin/python benchmarks/finetune_encoder.py [--loss cosine|mnrl|none]
        [--iterations N] [--epochs N] [--batch-size N] [--lr X] [--max-seq-length N]
        [--threads 2] [--seed 0] [--out DIR] [--model DIR] [--cache DIR]
        [--sets blf,blg,bli] [--only codebook,cv] [--cv-sets bli] [--set NAME=VALUE ...]
        [--json FILE]

Fine-tunes the packaged all-MiniLM-L6-v2 (checked against its sha256) on pairs built from the
multi-label codes of the codebook's labelled segments (``Codebook.training_segments``, the
rows ``CodebookClassifier`` learns from), saves it to ``--out`` (default: a new directory
under the system's temporary folder), then trains ``CodebookClassifier(embedding_model=that
directory)`` from the codebook alone, once, and scores it on each blind set that is in no
training data (``benchmarks/blind/blf``, ``blg``, ``bli``: macro F1, mean Krippendorff's
alpha, micro precision and recall, as ``classifier_devset.py`` computes them). ``--only cv``
adds 5-fold cross-validation grouped by document on each of ``--cv-sets`` (the set's gold as
reviews, the codebook's labelled segments in training too, the encoder fixed).

Losses (sentence-transformers, one pass over the pairs per ``--epochs``):
- ``cosine``: ``CosineSimilarityLoss`` on sampled pairs as SetFit samples them: per segment
  and ``--iterations``, one positive (another segment sharing one of its codes, target 1)
  and one negative (a segment sharing none of them, target 0; segments without codes are
  only ever negatives of coded ones);
- ``mnrl``: ``MultipleNegativesRankingLoss`` on (segment, segment sharing a code) pairs,
  one per coded segment and ``--iterations``, batched so that the pairs of a batch were
  drawn for distinct codes (fewer false in-batch negatives than random batches);
- ``none``: no contrastive fine-tuning: the frozen encoder, or with ``--set
  finetune_epochs=N`` the supervised fine-tuning built into ``CodebookClassifier`` (whose
  cost is then timed apart from the rest of the fit).

Costs are wall seconds and CPU seconds (this process and its forked children, from
``resource.getrusage``) of the fine-tuning and of one whole codebook-only fit with a cold
embeddings cache (every text encoded by the new encoder); the load average is printed with
them. Other work on the machine slows the wall clock and inflates the CPU seconds too
(torch's threads wait for a core): the frozen baseline's cold fit took 37 CPU s at load 1
and 95 at load 10, so compare costs measured at similar load.

Measured 2026-11-28 (2 cores, 807 labelled segments; macro F1 codebook only, blf / blg /
bli): frozen 0.709 / 0.743 / 0.694; ``cosine`` 0.727 / 0.766 / 0.685 (seed 1: 0.723 / 0.751
/ 0.679), 443-712 CPU s to fine-tune; ``mnrl`` 0.714 / 0.756 / 0.679, 462 CPU s; the
classifier's ``finetune_epochs=2`` 0.700 / 0.787 / 0.698 (569 CPU s), ``=4`` 0.721 / 0.767 /
0.710 (664 CPU s, paid again at every retraining). 5-fold CV with the ``cosine`` encoder:
0.712 / 0.720 / 0.706 against 0.716 / 0.727 / 0.701 frozen. All within the ~0.03 noise of
88-156 segments.

Nothing is written into the repository. Embeddings are cached under ``--cache`` (default: a
new temporary directory) in a subdirectory named by the sha256 of the encoder's weights
(qualcode's cache keyed a local model by its directory's name alone until this measurement
found it; it now keys it by its weights too).

Examples (2 CPU cores):

    .venv/bin/python benchmarks/finetune_encoder.py --loss none            # frozen baseline
    .venv/bin/python benchmarks/finetune_encoder.py --loss none --set finetune_epochs=2
    .venv/bin/python benchmarks/finetune_encoder.py --loss cosine --out /tmp/ft/cosine
    .venv/bin/python benchmarks/finetune_encoder.py --model /tmp/ft/cosine --only cv \\
        --cv-sets bli
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from classifier_devset import cross_validate, load_devset, scores  # noqa: E402

from qualcode.codebook import load_codebook  # noqa: E402
from qualcode.embed import (  # noqa: E402
    PACKAGED_MODEL_SHA256,
    SemanticEmbedder,
    file_sha256,
    packaged_model_path,
    verify_model_file,
)
from qualcode.model import CodebookClassifier, multilabel_targets  # noqa: E402

BLIND = ROOT / "benchmarks" / "blind"


# ---------------------------------------------------------------------------- costs

class Cost:
    """Wall and CPU seconds (this process + its waited-for children) since creation."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = self._cpu()

    @staticmethod
    def _cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def done(self) -> dict[str, float]:
        return {"wall_s": time.perf_counter() - self.wall0, "cpu_s": self._cpu() - self.cpu0,
                "load": os.getloadavg()[0]}


def fmt_cost(c: dict[str, float]) -> str:
    return f"{c['cpu_s']:.0f} CPU s, {c['wall_s']:.0f} wall s (load {c['load']:.1f})"


# ---------------------------------------------------------------------------- pairs

def code_matrix(codes: Sequence[frozenset[str]], code_ids: Sequence[str]) -> np.ndarray:
    return multilabel_targets(codes, code_ids).astype(bool)


def cosine_pairs(Y: np.ndarray, iterations: int, rng: np.random.Generator
                 ) -> list[tuple[int, int, float]]:
    """SetFit-style pairs: per segment and iteration a positive (shares a code, 1.0) and a
    negative (shares none, 0.0); uncoded segments are negatives of coded ones only."""
    coded = Y.any(1)
    share = (Y.astype(np.int64) @ Y.T.astype(np.int64)) > 0
    by_code = [np.flatnonzero(Y[:, j]) for j in range(Y.shape[1])]
    pairs: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i in rng.permutation(len(Y)):
            if coded[i]:
                j = int(rng.choice(np.flatnonzero(Y[i])))
                others = by_code[j][by_code[j] != i]
                if len(others):
                    pairs.append((int(i), int(rng.choice(others)), 1.0))
                neg = np.flatnonzero(~share[i])
            else:
                neg = np.flatnonzero(coded)
            if len(neg):
                pairs.append((int(i), int(rng.choice(neg)), 0.0))
    order = rng.permutation(len(pairs))
    return [pairs[k] for k in order]


def mnrl_batches(Y: np.ndarray, iterations: int, batch_size: int, rng: np.random.Generator
                 ) -> list[list[tuple[int, int]]]:
    """(anchor, positive) pairs sharing a pivot code, one per coded segment and iteration,
    packed into batches whose pairs have distinct pivot codes (a segment of another pair
    may still carry this pair's code: multi-label segments make some in-batch negatives
    false, fewer than random batches would)."""
    by_code = [np.flatnonzero(Y[:, j]) for j in range(Y.shape[1])]
    pending: list[tuple[int, int, int]] = []
    for _ in range(iterations):
        for i in rng.permutation(len(Y)):
            if not Y[i].any():
                continue
            j = int(rng.choice(np.flatnonzero(Y[i])))
            others = by_code[j][by_code[j] != i]
            if len(others):
                pending.append((int(i), int(rng.choice(others)), j))
    batches: list[list[tuple[int, int]]] = []
    while pending:
        batch: list[tuple[int, int]] = []
        pivots: set[int] = set()
        rest = []
        for a, p, j in pending:
            if len(batch) < batch_size and j not in pivots:
                batch.append((a, p))
                pivots.add(j)
            else:
                rest.append((a, p, j))
        if len(batch) < 2:  # a lone pair has no in-batch negative
            break
        batches.append(batch)
        pending = rest
    return batches


# ---------------------------------------------------------------------------- training

def finetune(texts: list[str], Y: np.ndarray, args: argparse.Namespace, out: Path
             ) -> dict[str, Any]:
    """Fine-tune the packaged encoder contrastively, save it to ``out``; what it cost."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CosineSimilarityLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    base = packaged_model_path()
    verify_model_file(base / "model.safetensors", PACKAGED_MODEL_SHA256)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    model.max_seq_length = args.max_seq_length
    cost = Cost()
    if args.loss == "cosine":
        loss = CosineSimilarityLoss(model)
        batches: list[tuple[list[list[str]], Any]] = []
        for _ in range(args.epochs):
            pairs = cosine_pairs(Y, args.iterations, rng)
            for b in range(0, len(pairs), args.batch_size):
                chunk = pairs[b:b + args.batch_size]
                batches.append(([[texts[i] for i, _, _ in chunk], [texts[j] for _, j, _ in chunk]],
                                torch.tensor([t for _, _, t in chunk], dtype=torch.float32)))
    else:
        loss = MultipleNegativesRankingLoss(model)
        batches = []
        for _ in range(args.epochs):
            for chunk in mnrl_batches(Y, args.iterations, args.batch_size, rng):
                batches.append(([[texts[a] for a, _ in chunk], [texts[p] for _, p in chunk]],
                                torch.arange(len(chunk))))
    n_pairs = sum(len(cols[0]) for cols, _ in batches)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * len(batches)), len(batches))
    prep = getattr(model, "preprocess", None) or model.tokenize
    model.train()
    losses = []
    for cols, labels in batches:
        features = [prep(col) for col in cols]
        value = loss(features, labels)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(value.detach()))
    model.eval()
    model.save(str(out))
    spent = cost.done()
    k = max(1, len(losses) // 10)
    print(f"fine-tuned ({args.loss}): {n_pairs} pairs in {len(batches)} batches, loss "
          f"{np.mean(losses[:k]):.3f} -> {np.mean(losses[-k:]):.3f}; {fmt_cost(spent)}; "
          f"saved to {out}")
    return {**spent, "pairs": n_pairs, "batches": len(batches)}


def timed_supervised() -> dict[str, Any]:
    """Time ``SemanticEmbedder.finetuned`` (the classifier's ``finetune_epochs``) apart."""
    record: dict[str, Any] = {}
    original = SemanticEmbedder.finetuned

    def wrapper(self: SemanticEmbedder, *a: Any, **kw: Any) -> SemanticEmbedder:
        cost = Cost()
        tuned = original(self, *a, **kw)
        record.update(cost.done())
        return tuned

    SemanticEmbedder.finetuned = wrapper  # type: ignore[method-assign]
    return record


# ---------------------------------------------------------------------------- evaluation

def parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def evaluate(make: Callable[[], CodebookClassifier], sets: Sequence[str], cv_sets: Sequence[str],
             blind: Path, code_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    data = {}
    for name in dict.fromkeys([*sets, *cv_sets]):
        _, texts, gold, docs = load_devset(blind / name)
        data[name] = (texts, multilabel_targets(gold, code_ids), docs)
    if sets:
        cost = Cost()
        model = make().fit([], None)
        fit = cost.done()
        encoded = getattr(model._embedder(), "encoded", "?")
        print(f"codebook-only fit (encoder {model.embedding_model_id_}, {encoded} texts "
              f"encoded, the rest cached): {fmt_cost(fit)}")
        for name in sets:
            texts, Y, _ = data[name]
            cost = Cost()
            pred = model.predict(texts)
            rows.append({"set": name, "setting": "codebook only", **scores(Y, pred),
                         "fit": fit, "predict": cost.done()})
    for name in cv_sets:
        texts, Y, docs = data[name]
        cost = Cost()
        pred, _, _ = cross_validate(make, texts, Y, docs, np.arange(len(texts)))
        rows.append({"set": name, "setting": "5-fold grouped CV", **scores(Y, pred),
                     "cv": cost.done()})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loss", choices=("cosine", "mnrl", "none"), default="cosine")
    ap.add_argument("--iterations", type=int, default=1,
                    help="rounds of pair sampling per segment and epoch (SetFit's "
                         "num_iterations; 1 gives ~2 pairs per labelled segment)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-5, help="SetFit's default body rate")
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to save the fine-tuned encoder (default: a new temp dir)")
    ap.add_argument("--model", type=Path, default=None,
                    help="evaluate this saved encoder instead of fine-tuning one")
    ap.add_argument("--cache", type=Path, default=None,
                    help="embeddings cache root (default: a new temp dir)")
    ap.add_argument("--codebook", type=Path, default=ROOT / "codebook.yaml")
    ap.add_argument("--blind", type=Path, default=BLIND)
    ap.add_argument("--sets", default="blf,blg,bli")
    ap.add_argument("--only", default="codebook")
    ap.add_argument("--cv-sets", default=None, help="sets to cross-validate (default --sets)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a CodebookClassifier parameter, e.g. --set finetune_epochs=2")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    params = parse_params(args.set)
    codebook = load_codebook(args.codebook)
    wanted = args.only.split(",")
    sets = [s for s in args.sets.split(",") if s] if "codebook" in wanted else []
    cv_sets = ([s for s in (args.cv_sets or args.sets).split(",") if s]
               if "cv" in wanted else [])
    for path in (args.out, args.model, args.cache, args.json):
        if path is not None and ROOT in path.resolve().parents:
            ap.error(f"{path} is inside the repository; give a path outside it")
    print(f"load average {os.getloadavg()}; torch threads {torch.get_num_threads()}; "
          f"cores {os.cpu_count()}")

    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    model_dir: Path | None = args.model
    if model_dir is None and args.loss != "none":
        texts, codes, _ = codebook.training_segments()
        Y = code_matrix(codes, codebook.code_ids)
        print(f"{len(texts)} labelled segments, {int(Y.any(1).sum())} with codes, "
              f"{Y.shape[1]} codes")
        model_dir = args.out or Path(tempfile.mkdtemp(prefix="qualcode-ft-"))
        model_dir.mkdir(parents=True, exist_ok=True)
        result["finetune"] = finetune(texts, Y, args, model_dir)

    tag = "packaged" if model_dir is None else file_sha256(model_dir / "model.safetensors")[:16]
    cache_root = args.cache or Path(tempfile.mkdtemp(prefix="qualcode-ft-cache-"))
    cache = cache_root / tag
    supervised = timed_supervised() if params.get("finetune_epochs") else None

    def make() -> CodebookClassifier:
        return CodebookClassifier(codebook, backend="semantic", cache_dir=str(cache),
                                  embedding_model=None if model_dir is None else str(model_dir),
                                  **params)

    rows = evaluate(make, sets, cv_sets, args.blind, codebook.code_ids)
    if supervised:
        print(f"of which the classifier's supervised fine-tuning (last fit): "
              f"{fmt_cost(supervised)}")
        result["supervised_finetune"] = supervised
    result["rows"] = rows
    print(f"\n{'set':5s} {'setting':20s} {'macro F1':>8s} {'alpha':>6s} {'P':>5s} {'R':>5s}")
    for r in rows:
        print(f"{r['set']:5s} {r['setting']:20s} {r['macro_f1']:8.3f} {r['alpha']:6.3f} "
              f"{r['micro_p']:5.2f} {r['micro_r']:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    print(f"encoder: {model_dir or 'packaged all-MiniLM-L6-v2'}; embeddings cache: {cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
