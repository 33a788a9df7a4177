"""The codebook-driven multi-label classifier, a scikit-learn estimator.

It learns, in rising priority, from the codebook (each code's definition, include/exclude
guidance and positive/negative examples, down-weighted) and from labelled segments: the
codebook's own (``labelled_segments``, weighted ``segments_weight``) and the human-reviewed
ones. Two heads per code score a segment:

- a *segment head*: logistic regression on the segment's vector (hashed features of the
  whole segment; with the semantic backend, the mean of its sentences' embeddings, which
  halves the encoding and covers turns longer than the encoder's 256-token window);
- a *sentence head*: logistic regression on sentence embeddings, trained with each sentence
  taking its segment's labels (multiple-instance learning) plus the codebook rows, and
  max-pooled over the segment's sentences, because a code is often carried by one sentence
  of a long turn.

With the semantic backend and labelled segments, both heads exist twice, on sentence-model
embeddings and on hashed words + lemmas, and their probabilities are averaged
(``lexical_weight``). The score is a weighted mean of the heads. Codebook rules enter as a
per-code bonus added to the score where the code's rules hit. With enough labelled
positives, each code's threshold and rule bonus are tuned together for F1 on grouped inner
cross-validation, so the labelled segments decide how far the rules are trusted; from
definitions and examples alone a rule hit decides and the model alone must clear a high
threshold (precision before recall). Supervised encoder fine-tuning (``finetune_epochs``)
is available for experiments but off: on the three unread blind sets it moved codebook-only
macro F1 by -0.01 to +0.04 (within their noise) and made every fit 8-13 minutes on 2 cores
instead of ~20 s (benchmarks/finetune_encoder.py, README "What we measured").
Nothing here knows any particular codebook.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from .embed import (
    FAST,
    CachedEmbedder,
    Embedder,
    FastEmbedder,
    get_embedder,
)
from .parallel import fork_map
from .rules import RuleMatcher, RuleResult

RULE = "rule"
MODEL = "model"


class NotFittedError(RuntimeError):
    """predict was called before fit."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a code was applied to a segment."""

    code_id: str
    score: float
    method: str  # RULE when a rule decided it, MODEL otherwise
    sentence: str = ""  # the sentence that scored highest for the code
    example: str = ""  # the codebook example closest to that sentence
    matched: tuple[str, ...] = ()  # words matched by the code's rules

    @property
    def text(self) -> str:
        parts = []
        if self.matched:
            parts.append("matched: " + "; ".join(self.matched))
        if self.sentence:
            parts.append(f'sentence: "{self.sentence}"')
        if self.example:
            parts.append(f'closest example: "{self.example}"')
        return " | ".join(parts)


@dataclass(slots=True)
class _Prepared:
    """Everything computed once per batch of texts."""

    seg: np.ndarray | sp.csr_matrix
    sent: np.ndarray | sp.csr_matrix
    sent_seg: np.ndarray  # segment index of each sentence
    sentences: list[str]
    rules: list[RuleResult]
    rule_hits: np.ndarray  # (n, n_codes) 0/1
    views: list[tuple[Any, Any]] = field(default_factory=list)  # (seg, sent) per embedding


def _lr(C: float, seed: int, sparse: bool = False) -> LogisticRegression:
    # lbfgs crawls on the fast backend's 2**18 hashed columns; liblinear does not.
    # (the dual problem: far more columns than rows).
    return LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed,
                              solver="liblinear" if sparse else "lbfgs", dual=sparse)


class _SparseLinear:
    """A fitted logistic regression on hashed features, kept as its non-zero weights only.

    sklearn keeps a dense 2**18 coefficient row per head (2 MB each); pickled models stay
    small this way.
    """

    def __init__(self, model: LogisticRegression) -> None:
        self.coef = sp.csr_matrix(model.coef_.astype(np.float32))  # (1, features)
        self.intercept = float(model.intercept_[0])

    def predict_proba(self, X: Any) -> np.ndarray:
        z = (X @ self.coef.T).toarray().ravel() + self.intercept
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])


def _segment_max(values: np.ndarray, seg_of: np.ndarray, n: int) -> np.ndarray:
    """Per segment, the max of its sentences' values (0 for a segment without sentences)."""
    out = np.full((n, values.shape[1]), -np.inf, dtype=np.float64)
    np.maximum.at(out, seg_of, values)
    out[np.isneginf(out)] = 0.0
    return out


@dataclass(slots=True)
class _Words:
    """Word tokens of a batch of segments, with the segment and kept sentence of each."""

    words: np.ndarray  # (tokens, 3) from doc_words
    segment: np.ndarray  # segment index per token
    in_sentence: np.ndarray  # bool: the token lies in a sentence the sentence head scores
    sentence: np.ndarray  # that sentence's row, for the tokens in_sentence

    @classmethod
    def of(cls, stacked: np.ndarray, segment: np.ndarray, seg_of: np.ndarray,
           spans: np.ndarray) -> _Words:
        """``stacked`` word tokens and the ``segment`` of each, in ``seg_of``'s sentences
        (their character ``spans`` in their segments)."""
        # One sorted key per token and per sentence start: (segment, character offset).
        shift = np.int64(1) << np.int64(40)
        key = segment * shift + stacked[:, 2].astype(np.int64)
        starts, ends = seg_of * shift + spans[:, 0], seg_of * shift + spans[:, 1]
        row = np.searchsorted(starts, key, side="right") - 1
        inside = row >= 0
        inside[inside] = key[inside] < ends[row[inside]]
        return cls(stacked, segment, inside, row[inside])


@functools.lru_cache(maxsize=8)
def _dense_block(heads: tuple[_SparseLinear, ...], n_features: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The heads' weights as a dense block over only the features some head uses, and each
    feature's row in it (-1: none uses it), so that scoring is a sparse-dense product, not
    sparse-sparse. Built once per set of heads (it cost ~17 ms per scoring call)."""
    coefs = [h.coef for h in heads]
    used = np.unique(np.concatenate([c.indices for c in coefs]))
    W = np.zeros((len(used), len(heads)), dtype=np.float32)
    for col, c in enumerate(coefs):
        W[np.searchsorted(used, c.indices), col] = c.data
    lookup = np.full(n_features, -1, dtype=np.int64)
    lookup[used] = np.arange(len(used))
    return W, lookup


def _predict_heads(models: Sequence[Any], X: Any) -> np.ndarray:
    """(rows, codes) probabilities of one head per code; the hashed-feature heads in one
    sparse product instead of one per code."""
    out = np.zeros((X.shape[0], len(models)))
    linear = [j for j, m in enumerate(models) if isinstance(m, _SparseLinear)]
    if linear:
        X = sp.csr_matrix(X)
        W, lookup = _dense_block(tuple(models[j] for j in linear), X.shape[1])
        at = lookup[X.indices]
        keep = at >= 0
        indptr = np.concatenate(([0], np.cumsum(keep)))[X.indptr]
        Xu = sp.csr_matrix((X.data[keep], at[keep], indptr), shape=(X.shape[0], len(W)))
        z = np.asarray(Xu @ W, dtype=np.float64) + [models[j].intercept for j in linear]
        out[:, linear] = 1.0 / (1.0 + np.exp(-z))
    for j, model in enumerate(models):
        if isinstance(model, float):
            out[:, j] = model
        elif not isinstance(model, _SparseLinear):
            out[:, j] = model.predict_proba(X)[:, 1]
    return out


def _mean_rows(vectors: np.ndarray, seg_of: np.ndarray, n: int) -> np.ndarray:
    """Per segment, the L2-normalised mean of its sentences' vectors (zeros without any)."""
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    np.add.at(out, seg_of, vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


_THRESHOLDS = np.round(np.arange(0.2, 0.951, 0.05), 2)
_BONUSES = np.round(np.arange(0.0, 1.01, 0.1), 1)


def _f1(pred: np.ndarray, truth: np.ndarray, beta: float = 1.0) -> float:
    """F-beta (F1 by default; ``beta`` < 1 weighs precision more)."""
    b2 = beta * beta
    denom = float(b2 * truth.sum() + pred.sum())
    return (1.0 + b2) * float(np.sum(pred & (truth == 1))) / denom if denom else 0.0


def _tune_decision(score: np.ndarray, rule_hit: np.ndarray, truth: np.ndarray,
                   use_rules: bool = True, max_threshold: float = 1.0, beta: float = 1.0
                   ) -> tuple[float, float]:
    """Threshold (at most ``max_threshold``) and rule bonus with the best F-beta
    (``score + bonus * hit >= threshold``).

    Ties go to the higher threshold (fewer false positives), then to the larger bonus.
    """
    hit = (rule_hit > 0).astype(float)
    thresholds = _THRESHOLDS[np.less_equal(_THRESHOLDS, max_threshold + 1e-9)]
    best, best_f1 = (float(thresholds[-1]), 1.0 if use_rules else 0.0), -1.0
    for t in thresholds[::-1]:
        for b in (_BONUSES[::-1] if use_rules else _BONUSES[:1]):
            f1 = _f1(score + b * hit >= t, truth, beta)
            if f1 > best_f1 + 1e-9:
                best, best_f1 = (float(t), float(b)), f1
    return best


class CodebookClassifier(BaseEstimator):
    """Multi-label coder of segments: codebook examples, rules and reviewed segments.

    ``fit(texts, y, groups=None)``: ``y`` is an (n, n_codes) 0/1 matrix in
    ``codebook.code_ids`` order, or one iterable of code ids per text; ``groups`` (e.g.
    document ids) keeps a document's segments together in the inner cross-validation.
    ``fit([], None)`` learns from the codebook alone.
    """

    def __init__(
        self,
        codebook: Any = None,
        *,
        backend: str | None = None,
        embedding_model: str | None = None,
        cache_dir: str | None = None,
        finetune_epochs: int = 0,
        min_finetune_segments: int = 100,
        C: float = 3.0,
        sentence_weight: float = 0.5,
        lexical_weight: float = 0.5,
        codebook_weight: float = 0.5,
        segments_weight: float = 1.0,
        use_rules: bool = True,
        use_guidance: bool = True,
        threshold: float = 0.5,
        codebook_only_threshold: float = 0.75,
        ruleless_threshold: float = 0.55,
        max_tuned_threshold: float = 0.7,
        codebook_only_beta: float = 0.5,
        min_positives_to_tune: int = 8,
        inner_folds: int = 2,
        min_sentence_words: int = 3,
        segment_from_sentences: bool = True,
        random_state: int = 0,
    ) -> None:
        self.codebook = codebook
        self.backend = backend
        self.embedding_model = embedding_model
        self.cache_dir = cache_dir
        self.finetune_epochs = finetune_epochs
        self.min_finetune_segments = min_finetune_segments
        self.C = C
        self.sentence_weight = sentence_weight
        self.lexical_weight = lexical_weight
        self.codebook_weight = codebook_weight
        self.segments_weight = segments_weight
        self.use_rules = use_rules
        self.use_guidance = use_guidance
        self.threshold = threshold
        self.codebook_only_threshold = codebook_only_threshold
        self.ruleless_threshold = ruleless_threshold
        self.max_tuned_threshold = max_tuned_threshold
        self.codebook_only_beta = codebook_only_beta
        self.min_positives_to_tune = min_positives_to_tune
        self.inner_folds = inner_folds
        self.min_sentence_words = min_sentence_words
        self.segment_from_sentences = segment_from_sentences
        self.random_state = random_state

    # ------------------------------------------------------------------ plumbing

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for transient in ("_encoder", "_matcher", "_example_cache", "_last", "_lex"):
            state.pop(transient, None)
        return state

    def _embedder(self) -> Embedder:
        enc = getattr(self, "_encoder", None)
        if enc is None:
            base = getattr(self, "embedder_", None)
            if base is None:
                base = get_embedder(self.backend, self.embedding_model)
            enc = base if self.cache_dir is None or getattr(base, "model_id", "").startswith(
                "hashing") else CachedEmbedder(base, self.cache_dir)
            self._encoder = enc
        return enc

    def ready(self) -> None:
        """Build now what is otherwise built on first use: the rule matcher, the encoders
        and the codebook examples' vectors (e.g. before forking processes that score)."""
        self._check()
        self._rule_matcher()
        self._lexical()
        self._example_vectors()

    def _rule_matcher(self) -> RuleMatcher:
        matcher = getattr(self, "_matcher", None)
        if matcher is None:
            matcher = self._matcher = RuleMatcher(self.codebook)
        return matcher

    def _sentences(self, texts: Sequence[str], results: Sequence[RuleResult]
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The sentences the sentence head scores: their texts, segment index and
        (start, end) character span in the segment."""
        sentences: list[str] = []
        seg_of: list[int] = []
        spans: list[tuple[int, int]] = []
        for i, (text, res) in enumerate(zip(texts, results, strict=True)):
            parts = [(text[a:b].strip(), a, b) for a, b in res.sentences]
            parts = [p for p in parts if p[0]]
            long = [p for p in parts if len(p[0].split()) >= self.min_sentence_words]
            if not parts and text.strip():
                parts = [(text.strip(), len(text) - len(text.lstrip()), len(text.rstrip()))]
            # Tiny sentences ("Yes.") score noisily on their own; keep them only if alone.
            for p, a, b in long or parts[:1]:
                sentences.append(p)
                seg_of.append(i)
                spans.append((a, b))
        return (sentences, np.asarray(seg_of, dtype=np.int64),
                np.asarray(spans, dtype=np.int64).reshape(-1, 2))

    def _prepare(self, texts: Sequence[str]) -> _Prepared:
        texts = list(texts)
        n = len(texts)
        matcher = self._rule_matcher()
        encoders = [e for e in (self._embedder(), self._lexical()) if e is not None]
        hashed = any(isinstance(e, FastEmbedder) for e in encoders)
        if hashed:
            results, words, of = matcher.match_words(texts)
        else:
            results = matcher.match(texts)
        sentences, seg_of, spans = self._sentences(texts, results)
        if hashed:
            tokens = _Words.of(words, of, seg_of, spans)
        views = []
        for enc in encoders:
            if isinstance(enc, FastEmbedder):
                views.append((enc.from_words(tokens.words, tokens.segment, n),
                              enc.from_words(tokens.words[tokens.in_sentence],
                                             tokens.sentence, len(sentences))))
            elif getattr(self, "segment_from_sentences", False):  # False: saved before
                sent = np.asarray(enc.encode(sentences), dtype=np.float32).reshape(
                    len(sentences), -1)
                views.append((_mean_rows(sent, seg_of, n), sent))
            else:
                both = enc.encode(texts + sentences)
                views.append((both[:n], both[n:]))
        return _Prepared(views[0][0], views[0][1], seg_of, sentences, results,
                         matcher.hit_matrix(results), views)

    def _lexical(self) -> FastEmbedder | None:
        """Hashed words and lemmas beside the sentence model: with labelled segments they add
        what the frozen sentence model misses (measured: model-only CV macro F1 0.48 -> 0.56)."""
        # Without labelled segments a bag of words learns little from a few short examples.
        labelled = getattr(self, "n_labelled_", getattr(self, "n_reviewed_", 0))
        if self.lexical_weight <= 0 or getattr(self, "backend_", FAST) == FAST or not labelled:
            return None
        lex = getattr(self, "_lex", None)
        if lex is None:
            lex = self._lex = FastEmbedder()
        return lex

    def _targets(self, y: Any, n: int) -> np.ndarray:
        ids = self.classes_
        if y is None:
            return np.zeros((n, len(ids)), dtype=np.int64)
        if isinstance(y, np.ndarray) or (len(y) and isinstance(y[0], np.ndarray)):
            arr = np.asarray(y, dtype=np.int64)
            if arr.ndim != 2 or arr.shape != (n, len(ids)):
                raise ValueError(f"y has shape {arr.shape}; expected ({n}, {len(ids)}) "
                                 "(one 0/1 column per code, in codebook order).")
            return arr
        col = {c: j for j, c in enumerate(ids)}
        arr = np.zeros((n, len(ids)), dtype=np.int64)
        for i, codes in enumerate(y):
            for c in codes:
                if c not in col:
                    raise ValueError(f"unknown code id {c!r} in y; known: {', '.join(ids)}")
                arr[i, col[c]] = 1
        return arr

    def _codebook_rows(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Codebook examples as training rows: texts, per-code labels (-1 = unknown), owner."""
        texts: list[str] = []
        labels: list[np.ndarray] = []
        owner: list[int] = []
        k = len(self.classes_)
        for j, code in enumerate(self.codebook.codes):
            pos = list(code.examples.positive)
            neg = list(code.examples.negative)
            if self.use_guidance:
                pos += [code.definition, *code.include]
                neg += list(code.exclude)
            for text, value in [(t, 1) for t in pos] + [(t, 0) for t in neg]:
                row = np.full(k, -1, dtype=np.int64)
                row[j] = value
                texts.append(text)
                labels.append(row)
                owner.append(j)
        lab = np.vstack(labels) if labels else np.zeros((0, k), dtype=np.int64)
        # A positive example of one code is evidence against codes of the same category
        # that are not related to it (they are meant to be told apart).
        cat = [c.category for c in self.codebook.codes]
        related = [set(c.related) for c in self.codebook.codes]
        ids = self.classes_
        for r in range(len(lab)):
            j = owner[r]
            if lab[r, j] != 1:
                continue
            for q in range(k):
                if q != j and cat[q] == cat[j] and ids[q] not in related[j] \
                        and ids[j] not in related[q]:
                    lab[r, q] = 0
        return texts, lab, np.asarray(owner, dtype=np.int64)

    # ------------------------------------------------------------------ heads

    def _fit_heads(self, P: _Prepared, Y: np.ndarray, idx: np.ndarray,
                   cb: _Prepared | None, cb_labels: np.ndarray, weight: np.ndarray
                   ) -> list[dict[Any, Any]]:
        """Fit both heads of every code, per embedding, on segments ``idx`` (each of weight
        ``weight[i]``) and the codebook's example rows."""
        sent_rows = np.flatnonzero(np.isin(P.sent_seg, idx))
        # Codebook rows weigh less than reviews, but are all there is without reviews.
        cb_weight = self.codebook_weight if len(idx) else 1.0
        use_cb = cb is not None and cb_weight > 0
        heads = []
        for j in range(Y.shape[1]):
            head: dict[Any, Any] = {}
            ys, ws = [Y[idx, j]], [weight[idx]]
            yt, wt = [Y[P.sent_seg[sent_rows], j]], [weight[P.sent_seg[sent_rows]]]
            if use_cb:
                known = np.flatnonzero(cb_labels[:, j] >= 0)
                srows = np.flatnonzero(np.isin(cb.sent_seg, known))
                ys.append(cb_labels[known, j])
                ws.append(np.full(len(known), cb_weight))
                yt.append(cb_labels[cb.sent_seg[srows], j])
                wt.append(np.full(len(srows), cb_weight))
            for v, (seg, sent) in enumerate(P.views):
                Xs, Xt = [seg[idx]], [sent[sent_rows]]
                if use_cb:
                    Xs.append(cb.views[v][0][known])
                    Xt.append(cb.views[v][1][srows])
                for name, Xp, yp, wp in (("seg", Xs, ys, ws), ("sent", Xt, yt, wt)):
                    yy = np.concatenate(yp)
                    if not len(yy) or yy.min() == yy.max():
                        head[name, v] = float(yy[0]) if len(yy) else 0.0
                        continue
                    # (not on threads: liblinear seeds the C library's global random
                    # generator, so fits at once would change each other's results)
                    sparse = sp.issparse(Xp[0])
                    stack = sp.vstack if sparse else np.vstack
                    model = _lr(self.C, self.random_state, sparse).fit(
                        stack(Xp), yy, sample_weight=np.concatenate(wp))
                    head[name, v] = _SparseLinear(model) if sparse else model
            heads.append(head)
        return heads

    def _head_scores(self, heads: list[dict[str, Any]], P: _Prepared, idx: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (len(idx), k), plus per-code best sentence row of each segment."""
        idx = np.asarray(idx)
        n, k = len(idx), len(heads)
        sent_rows = np.flatnonzero(np.isin(P.sent_seg, idx))
        local = np.searchsorted(idx, P.sent_seg[sent_rows]) if len(sent_rows) else sent_rows
        seg_p = np.zeros((n, k))
        sent_p = np.zeros((len(sent_rows), k))
        weights = [1.0] if len(P.views) == 1 else [1 - self.lexical_weight, self.lexical_weight]
        everything = n == len(P.rules) and np.array_equal(idx, np.arange(n))
        for v, (seg, sent) in enumerate(P.views):
            Xs = seg if everything else seg[idx]
            Xt = sent if len(sent_rows) == sent.shape[0] else sent[sent_rows]
            for name, Xp, out in (("seg", Xs, seg_p), ("sent", Xt, sent_p)):
                if Xp.shape[0]:
                    out += weights[v] * _predict_heads([head[name, v] for head in heads], Xp)
        best = np.full((n, k), -1, dtype=np.int64)
        pooled = np.zeros((n, k))
        if len(sent_rows):
            pooled = _segment_max(sent_p, local, n)
            # Per segment and code, its first sentence with the top score (``local`` is
            # in segment order).
            segs, first = np.unique(local, return_index=True)
            rows = np.arange(len(sent_rows))[:, None]
            top = np.where(sent_p == pooled[local], rows, len(sent_rows))
            found = np.minimum.reduceat(top, first, axis=0)
            best[segs] = sent_rows[np.where(found < len(sent_rows), found, first[:, None])]
        w = self.sentence_weight
        return (1 - w) * seg_p + w * pooled, best, sent_rows

    def _combine(self, scores: np.ndarray, rule_hits: np.ndarray) -> np.ndarray:
        """Final scores: the model score plus each code's rule bonus where its rules hit."""
        bonus = getattr(self, "rule_bonus_", None)
        if bonus is None:
            return scores
        return np.clip(scores + bonus * (rule_hits > 0), 0.0, 1.0)

    # ------------------------------------------------------------------ API

    def fit(self, X: Sequence[str] | None, y: Any = None, groups: Sequence[Any] | None = None
            ) -> CodebookClassifier:
        """Learn from the codebook and from reviewed segments ``X`` with labels ``y``."""
        if self.codebook is None:
            raise ValueError("CodebookClassifier needs a codebook (codebook=load_codebook(...)).")
        texts = list(X or [])
        self.classes_ = list(self.codebook.code_ids)
        self.codebook_sha256_ = getattr(self.codebook, "sha256", "")
        Y = self._targets(y, len(texts))
        cb_texts, cb_labels, _ = self._codebook_rows()
        self.n_reviewed_ = len(texts)
        texts, Y, groups, weight = self._with_codebook_segments(texts, Y, groups)
        self.n_labelled_ = len(texts)  # reviewed + the codebook's labelled segments

        base = get_embedder(self.backend, self.embedding_model)
        self.backend_ = "fast" if base.model_id.startswith("hashing") else "semantic"
        self.embedder_ = base
        self._encoder = self._last = self._example_cache = self._matcher = None
        if self.finetune_epochs and self.backend_ == "semantic" \
                and len(texts) >= self.min_finetune_segments:
            self.embedder_ = base.finetuned(texts, Y, epochs=self.finetune_epochs,
                                            seed=self.random_state)
        self.embedding_model_id_ = self.embedder_.model_id

        P = self._prepare(texts) if texts else None
        cb = self._prepare(cb_texts) if cb_texts else None
        if P is None:
            P = _Prepared(np.zeros((0, 1)), np.zeros((0, 1)), np.zeros(0, np.int64), [], [],
                          np.zeros((0, len(self.classes_))), [(np.zeros((0, 1)),) * 2])
            if cb is not None:
                P.views = [(seg[:0], sent[:0]) for seg, sent in cb.views]
                P.seg, P.sent = P.views[0]
        enough = Y.sum(0) >= self.min_positives_to_tune
        folds = self._inner_folds(Y, groups) if texts and enough.any() else []
        # The model and the inner folds' models at once, on all cores (liblinear seeds the
        # C library's global random generator, so not on threads: see _fit_heads), each
        # on one BLAS thread: on small matrices BLAS threads spin against each other
        # (one codebook-only fit, semantic backend, 2 cores: 24 s with them, 2.2 s without).
        with threadpool_limits(limits=1, user_api="blas"):
            fitted = fork_map(lambda idx: self._fit_heads(P, Y, idx, cb, cb_labels, weight),
                              [np.arange(len(texts))] + [tr for tr, _ in folds])
        self.heads_ = fitted[0]

        k = len(self.classes_)
        self.thresholds_ = np.full(k, self.codebook_only_threshold if not texts
                                   else self.threshold)
        if not texts:
            # Rules are written for precision, so from the codebook alone the model adds a
            # code only when very sure; a code without rules has only the model, and a
            # lower bar (dev set, no rules at all: alpha 0.18 at 0.7, 0.41 at 0.55).
            bare = [not (self.use_rules and c.rules.count) for c in self.codebook.codes]
            self.thresholds_[np.asarray(bare, dtype=bool)] = self.ruleless_threshold
        # From the codebook alone a rule hit decides (rules are written for precision).
        self.rule_bonus_ = np.full(k, 1.0 if self.use_rules else 0.0)
        self.tuned_ = np.zeros(k, dtype=bool)
        if folds:
            oof = np.zeros(Y.shape)
            for (_, te), heads in zip(folds, fitted[1:], strict=True):
                oof[te] = self._head_scores(heads, P, te)[0]
            for j in np.flatnonzero(enough):
                # How far to trust this code's rules is learned from the reviews (out of
                # fold), not assumed: rules written on one corpus can misfire on another.
                # Rules written while reading these very reviews look perfect out of fold,
                # which would push the model's own bar so high that it adds nothing on new
                # text: it is capped (trained on the dev set, coding a blind set: macro F1
                # 0.48 without the cap, 0.57 with it at 0.7).
                # Without reviews (on the codebook's labelled segments) precision counts
                # twice (F0.5): coding from the codebook alone is precision before recall
                # (blind sets, codebook only: precision 0.63-0.69 -> 0.72-0.79 at the same
                # or better macro F1 and alpha).
                self.thresholds_[j], self.rule_bonus_[j] = _tune_decision(
                    oof[:, j], P.rule_hits[:, j], Y[:, j], use_rules=self.use_rules,
                    max_threshold=self.max_tuned_threshold,
                    beta=1.0 if self.n_reviewed_ else self.codebook_only_beta)
                self.tuned_[j] = True
        self.cb_examples_ = [list(c.examples.positive) for c in self.codebook.codes]
        return self

    def _with_codebook_segments(self, texts: list[str], Y: np.ndarray,
                                groups: Sequence[Any] | None
                                ) -> tuple[list[str], np.ndarray, list[Any] | None, np.ndarray]:
        """Reviewed segments with the codebook's labelled segments in front (when it has
        them and ``segments_weight`` > 0), their groups and each row's weight."""
        labelled = getattr(self.codebook, "training_segments", None)
        seg_texts, seg_codes, seg_groups = labelled() if labelled else ([], [], [])
        if not seg_texts or self.segments_weight <= 0:
            return texts, Y, None if groups is None else list(groups), np.ones(len(texts))
        n = len(texts)
        own = [str(g) for g in groups] if groups is not None else [str(i) for i in range(n)]
        return (
            seg_texts + texts,
            np.vstack([multilabel_targets(seg_codes, self.classes_), Y]),
            [f"\0codebook\0{g}" for g in seg_groups] + own,
            np.concatenate([np.full(len(seg_texts), self.segments_weight), np.ones(n)]),
        )

    def _inner_folds(self, Y: np.ndarray, groups: Sequence[Any] | None
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, test) rows of the grouped inner folds that tune the thresholds (none
        with fewer than two groups)."""
        n = len(Y)
        g = np.asarray(groups) if groups is not None else np.arange(n)
        folds = min(self.inner_folds, len(np.unique(g)))
        if folds < 2:
            return []
        return list(GroupKFold(folds).split(np.zeros(n), groups=g))

    def _check(self) -> None:
        if not hasattr(self, "heads_"):
            raise NotFittedError("call fit() (or load a trained model) before predicting.")

    def _score(self, X: Sequence[str]) -> tuple[_Prepared, np.ndarray, np.ndarray, np.ndarray]:
        self._check()
        texts = tuple(X)
        last = getattr(self, "_last", None)
        if last is not None and last[0] == texts:  # explain() right after predict_proba()
            return last[1]
        P = self._prepare(texts)
        idx = np.arange(len(P.rules))
        scores, best, _ = self._head_scores(self.heads_, P, idx)
        out = (P, self._combine(scores, P.rule_hits), best, scores)
        self._last = (texts, out)
        return out

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """Scores in [0, 1], shape (n, n_codes), columns in ``classes_`` order."""
        return self._score(X)[1]

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """0/1 decisions, shape (n, n_codes)."""
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int64)

    def explain(self, X: Sequence[str]) -> list[list[Evidence]]:
        """Per text, the applied codes with score, method and evidence."""
        P, scores, best, model_scores = self._score(X)
        decided = scores >= self.thresholds_
        without_rules = self._combine(model_scores, np.zeros_like(P.rule_hits)) >= self.thresholds_
        closest = self._closest_examples(P, decided, best)
        out: list[list[Evidence]] = []
        for i in range(len(P.rules)):
            row: list[Evidence] = []
            for j in np.flatnonzero(decided[i]):
                code_id = self.classes_[j]
                hit = P.rules[i].hits.get(code_id)
                by_rule = hit is not None and not without_rules[i, j]
                sentence = P.sentences[best[i, j]] if best[i, j] >= 0 else ""
                row.append(Evidence(code_id, float(scores[i, j]), RULE if by_rule else MODEL,
                                    sentence, closest.get((i, j), ""),
                                    hit.evidence if hit else ()))
            out.append(row)
        return out

    def _closest_examples(self, P: _Prepared, decided: np.ndarray, best: np.ndarray
                          ) -> dict[tuple[int, int], str]:
        """For each applied code, the codebook example closest to the segment's best
        sentence for it (one matrix product per code)."""
        found: dict[tuple[int, int], str] = {}
        for j, (vecs, texts) in enumerate(self._example_vectors()):
            rows = np.flatnonzero(decided[:, j] & (best[:, j] >= 0))
            if not len(texts) or not len(rows):
                continue
            sims = P.sent[best[rows, j]] @ vecs.T
            sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
            for i, e in zip(rows.tolist(), np.argmax(sims, axis=1).tolist(), strict=True):
                found[i, j] = texts[e]
        return found

    def _example_vectors(self) -> list[tuple[Any, list[str]]]:
        cached = getattr(self, "_example_cache", None)
        if cached is None:
            enc = self._embedder()
            cached = []
            for texts in self.cb_examples_:
                if not texts:
                    cached.append((np.zeros((0, 1)), texts))
                elif isinstance(enc, FastEmbedder):  # tokenised by the rules' pipeline
                    cached.append((enc.encode_docs(self._rule_matcher().docs(texts)), texts))
                else:
                    cached.append((enc.encode(texts), texts))
            self._example_cache = cached
        return cached


def multilabel_targets(labels: Iterable[Iterable[str]], code_ids: Sequence[str]) -> np.ndarray:
    """(n, n_codes) 0/1 matrix from one iterable of code ids per segment."""
    col = {c: j for j, c in enumerate(code_ids)}
    labels = list(labels)
    out = np.zeros((len(labels), len(code_ids)), dtype=np.int64)
    for i, codes in enumerate(labels):
        for c in codes:
            if c in col:
                out[i, col[c]] = 1
    return out


def f1_per_code(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 of each column; 1.0 where a code is absent from both truth and prediction."""
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    tp = (truth & pred).sum(0)
    denom = truth.sum(0) + pred.sum(0)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)


def krippendorff_alpha_nominal(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Krippendorff's alpha for two coders, nominal values (NaN without variation)."""
    from .reliability import nominal_alpha

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("a and b must be 1-D and of equal length (one value per unit).")
    return nominal_alpha([a.tolist(), b.tolist()])
