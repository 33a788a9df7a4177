"""Embedding backends: offline packaged model, checksum refusal, fast fallback, cache reuse."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from qualcode.embed import (
    FAST,
    PACKAGED_MODEL_SHA256,
    SEMANTIC,
    CachedEmbedder,
    EmbeddingCache,
    EmbeddingError,
    FastEmbedder,
    SemanticEmbedder,
    available_backends,
    file_sha256,
    get_embedder,
    packaged_model_path,
    verify_model_file,
)

TEXTS = ["The commander suspended the permits.", "Permits were suspended by the commander.",
         "We baked bread on Thursday."]

semantic = pytest.mark.skipif(SEMANTIC not in available_backends(),
                              reason="the semantic extra is not installed")


@pytest.fixture(scope="module")
def model() -> SemanticEmbedder:
    if SEMANTIC not in available_backends():
        pytest.skip("the semantic extra is not installed")
    return SemanticEmbedder()


def test_fast_backend_is_always_available() -> None:
    assert FAST in available_backends()
    assert isinstance(get_embedder(FAST), FastEmbedder)


def test_fast_embedder_shares_lemmas() -> None:
    vecs = FastEmbedder().encode(TEXTS)
    assert vecs.shape == (3, FastEmbedder().dim)
    norms = np.sqrt(np.asarray(vecs.multiply(vecs).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-5)
    sims = (vecs @ vecs.T).toarray()
    assert sims[0, 1] > 0.5 > sims[0, 2]


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="E107"):
        get_embedder("gpu-magic")


@semantic
def test_packaged_model_file_has_the_published_checksum() -> None:
    assert file_sha256(packaged_model_path() / "model.safetensors") == PACKAGED_MODEL_SHA256


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not the model")
    with pytest.raises(EmbeddingError, match=r"E103.*expected 53aa5117"):
        verify_model_file(weights, PACKAGED_MODEL_SHA256)
    with pytest.raises(EmbeddingError, match="E103"):
        SemanticEmbedder(tmp_path, sha256=PACKAGED_MODEL_SHA256)


@semantic
def test_semantic_model_loads_offline_and_separates_meaning(model: SemanticEmbedder) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    vecs = model.encode(TEXTS)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2] + 0.3
    assert model.encode([]).shape == (0, 384)


@semantic
def test_cache_is_reused_across_instances(model: SemanticEmbedder, tmp_path: Path) -> None:
    first = CachedEmbedder(model, tmp_path)
    vecs = first.encode([*TEXTS, TEXTS[0]])
    assert first.encoded == 3
    assert np.array_equal(vecs[0], vecs[3])
    again = CachedEmbedder(model, tmp_path)
    assert np.allclose(again.encode(TEXTS[::-1]), vecs[:3][::-1])
    assert again.encoded == 0
    again.encode(["A new text."])
    assert again.encoded == 1
    assert sorted(p.parent.name for p in tmp_path.rglob("*.npz")) == ["all-MiniLM-L6-v2"] * 2


def test_cache_keys_include_the_model_and_compact(tmp_path: Path) -> None:
    a, b = EmbeddingCache(tmp_path, "model-a"), EmbeddingCache(tmp_path, "model-b")
    assert a.key("text") != b.key("text")
    for i in range(3):
        a.put([a.key(f"t{i}")], np.full((1, 4), i, dtype=np.float32))
    a.compact()
    fresh = EmbeddingCache(tmp_path, "model-a")
    found, vecs = fresh.get([a.key("t2"), a.key("missing")])
    assert found.tolist() == [True, False] and vecs[0].tolist() == [2, 2, 2, 2]
    assert len(list((tmp_path / "model-a").glob("*.npz"))) == 1 and len(fresh) == 3


@semantic
def test_pickle_round_trip_and_finetuned_copy(model: SemanticEmbedder) -> None:
    clone = pickle.loads(pickle.dumps(model))
    assert np.allclose(clone.encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    tuned = model.finetuned(TEXTS, np.array([[1], [1], [0]]), epochs=1, batch_size=3)
    assert tuned.model_id.startswith("all-MiniLM-L6-v2-ft-")
    assert not np.allclose(tuned.encode(TEXTS), model.encode(TEXTS))
    restored = pickle.loads(pickle.dumps(tuned))
    assert np.allclose(restored.encode(TEXTS), tuned.encode(TEXTS), atol=1e-5)


def test_cache_shards_are_merged_beyond_a_limit_and_bad_ones_passed_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EmbeddingCache, "MAX_SHARDS", 4)
    cache = EmbeddingCache(tmp_path, "model-a")
    for i in range(5):  # as five runs, each with new texts
        cache.put([cache.key(f"t{i}")], np.full((1, 4), i, dtype=np.float32))
    shards = list((tmp_path / "model-a").glob("*.npz"))
    assert len(shards) == 1  # the fifth shard made them one
    (tmp_path / "model-a" / "damaged.npz").write_bytes(b"PK\x03\x04 cut short")
    fresh = EmbeddingCache(tmp_path, "model-a")
    found, vecs = fresh.get([cache.key("t4"), cache.key("t0")])
    assert found.tolist() == [True, True] and vecs[0].tolist() == [4, 4, 4, 4]
    assert len(fresh) == 5


def test_local_models_in_folders_of_one_name_cache_apart(model: SemanticEmbedder,
                                                          tmp_path: Path) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from qualcode.embed import packaged_model_path

    same, other = tmp_path / "a" / "model", tmp_path / "b" / "model"
    shutil.copytree(packaged_model_path(), same)
    shutil.copytree(packaged_model_path(), other)
    weights = load_file(other / "model.safetensors")
    name = next(n for n in weights if "word_embeddings" in n)
    weights[name] = weights[name] + torch.ones_like(weights[name])  # another model
    save_file(weights, other / "model.safetensors")
    a, b = SemanticEmbedder(same), SemanticEmbedder(other)
    assert a.model_id.startswith("model-") and b.model_id.startswith("model-")
    assert a.model_id != b.model_id
    assert SemanticEmbedder(tmp_path / "a" / "model").model_id == a.model_id
    cached_a = CachedEmbedder(a, tmp_path / "cache")
    cached_b = CachedEmbedder(b, tmp_path / "cache")
    text = ["The convoy waited at the checkpoint."]
    assert not np.allclose(cached_a.encode(text), cached_b.encode(text))
