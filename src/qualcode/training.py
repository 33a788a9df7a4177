"""Training data from reviews, and the saved model under ``<out>/model/``.

A saved model is reused only while the codebook, the training data (reviewed segments'
texts and decisions) and the backend are unchanged; otherwise it is retrained, so a
researcher only adds review files and reruns.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .codebook import Codebook
from .documents import Segment
from .embed import default_backend
from .model import CodebookClassifier
from .outputs import atomic_write_bytes, write_json
from .provenance import now, versions

MODEL_DIR = "model"
MODEL_FILE = "model.pkl"
MODEL_META = "model.json"
CACHE_DIR = "cache"


@dataclass(slots=True)
class TrainingSet:
    segment_ids: list[str]
    texts: list[str]
    labels: list[frozenset[str]]
    groups: list[str]  # document ids, so cross-validation keeps documents together
    unmatched: int  # reviewed segment ids not found among the current segments

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for sid, text, codes in sorted(zip(self.segment_ids, self.texts, self.labels,
                                           strict=True)):
            digest.update(f"{sid}\0{text}\0{';'.join(sorted(codes))}\n".encode())
        return digest.hexdigest()


def training_set(segments: Sequence[Segment], decisions: Mapping[str, frozenset[str]]
                 ) -> TrainingSet:
    """The reviewed, codable segments with their human decisions."""
    by_id = {s.segment_id: s for s in segments if s.codable}
    ids = [sid for sid in by_id if sid in decisions]
    return TrainingSet(
        segment_ids=ids,
        texts=[by_id[s].text for s in ids],
        labels=[decisions[s] for s in ids],
        groups=[by_id[s].doc_id for s in ids],
        unmatched=sum(1 for sid in decisions if sid not in by_id),
    )


def _classifier_source_sha256() -> str:
    """Hash of the classifier's code: a saved model pickled by other code is not reused."""
    from . import embed, model, rules

    digest = hashlib.sha256()
    for module in (model, embed, rules):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def fingerprint(codebook: Codebook, data: TrainingSet, backend: str) -> dict[str, Any]:
    """What a saved model must match to be reused."""
    return {
        "code_ids": list(codebook.code_ids),
        "codebook_sha256": codebook.sha256,
        "training_sha256": data.sha256,
        "backend": backend,
        "classifier_sha256": _classifier_source_sha256(),
    }


def model_dir(out: str | Path) -> Path:
    return Path(out) / MODEL_DIR


def cache_dir(out: str | Path) -> Path:
    return Path(out) / CACHE_DIR


def _saved_meta(out: str | Path) -> dict[str, Any]:
    """The saved model's ``model.json`` ({} when there is none or it cannot be read)."""
    try:
        meta = json.loads((model_dir(out) / MODEL_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _unpickled(out: str | Path) -> CodebookClassifier | None:
    """The saved model, or None when it cannot be loaded: pickled by other code (a module
    renamed since), for a backend not installed here, or damaged. It is then retrained."""
    try:
        with (model_dir(out) / MODEL_FILE).open("rb") as handle:
            model = pickle.load(handle)
    except Exception:  # any failure to load means: train again
        return None
    return model if isinstance(model, CodebookClassifier) else None


def stale_reason(meta: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """Why a saved model cannot be used (``None`` when it can)."""
    if not meta:
        return "no saved model"
    if meta.get("code_ids") != wanted["code_ids"]:
        return "the saved model was trained for other code ids"
    if meta.get("codebook_sha256") != wanted["codebook_sha256"]:
        return "the codebook changed"
    if meta.get("training_sha256") != wanted["training_sha256"]:
        return "the reviews changed"
    if meta.get("backend") != wanted["backend"]:
        return f"the backend changed to {wanted['backend']}"
    if meta.get("classifier_sha256") != wanted["classifier_sha256"]:
        return "qualcode's classifier code changed"
    return None


def train(
    codebook: Codebook,
    data: TrainingSet,
    out: str | Path,
    backend: str | None = None,
    embedding_model: str | None = None,
    evaluation: Mapping[str, Any] | None = None,
) -> tuple[CodebookClassifier, dict[str, Any]]:
    """Fit the classifier on the codebook and ``data`` and save it under ``out/model``."""
    backend = backend or default_backend()
    model = CodebookClassifier(
        codebook, backend=backend, embedding_model=embedding_model,
        cache_dir=str(cache_dir(out)),
    )
    model.fit(data.texts, data.labels, groups=data.groups)
    meta = {
        **fingerprint(codebook, data, backend),
        "model_id": f"{model.embedding_model_id_}+{len(data.texts)}reviewed"
                    f"@{data.sha256[:12]}",
        "embedding_model": model.embedding_model_id_,
        "reviewed_segments": len(data.texts),
        "trained_at": now(),
        "versions": versions(),
        "thresholds": dict(zip(codebook.code_ids, map(float, model.thresholds_), strict=True)),
        "evaluation": dict(evaluation or {}),
    }
    if not evaluation:  # an earlier model's trust statuses are not this one's
        from .evaluate import EVALUATION_CSV

        (Path(out) / EVALUATION_CSV).unlink(missing_ok=True)
    folder = model_dir(out)
    # the old metadata goes first: a crash before the new is written leaves no model that
    # a later run could take for the old one
    (folder / MODEL_META).unlink(missing_ok=True)
    atomic_write_bytes(folder / MODEL_FILE, pickle.dumps(model), private=True)
    write_json(folder / MODEL_META, meta)
    return model, meta


def ensure_model(
    codebook: Codebook,
    data: TrainingSet,
    out: str | Path,
    backend: str | None = None,
    embedding_model: str | None = None,
    evaluate: bool = False,
) -> tuple[CodebookClassifier, dict[str, Any], str | None]:
    """The saved model if still valid, else a newly trained one; and why it was retrained.

    With ``evaluate``, a retraining first cross-validates on the reviews (when they come
    from at least ``MIN_EVALUATION_DOCUMENTS`` documents) and writes ``evaluation.csv``.
    """
    backend = backend or default_backend()
    meta = _saved_meta(out)
    # unpickled only when it is the wanted model: unpickling a semantic model loads its
    # sentence model, which a fast run must not need
    reason = stale_reason(meta, fingerprint(codebook, data, backend))
    if reason is None:
        model = _unpickled(out)
        if model is not None:
            model.codebook = codebook
            return model, meta, None
        reason = "the saved model could not be loaded"
    evaluation: dict[str, Any] = {}
    if evaluate:
        evaluation = evaluate_and_write(codebook, data, out, backend)
    model, meta = train(codebook, data, out, backend, embedding_model, evaluation)
    return model, meta, reason


MIN_EVALUATION_DOCUMENTS = 3


def evaluate_and_write(codebook: Codebook, data: TrainingSet, out: str | Path,
                       backend: str | None, folds: int = 5) -> dict[str, Any]:
    """Cross-validate, write ``evaluation.csv`` and return its summary ({} if too few
    reviews: then an ``evaluation.csv`` left from an earlier model is removed, since its
    trust statuses and error rates were not this model's)."""
    from .evaluate import (
        EVALUATION_CSV,
        cross_validate,
        evaluation_rows,
        summary,
        write_evaluation,
    )

    if len(set(data.groups)) < MIN_EVALUATION_DOCUMENTS:
        (Path(out) / EVALUATION_CSV).unlink(missing_ok=True)
        return {}
    rows = evaluation_rows(codebook, cross_validate(codebook, data, out, backend, folds))
    write_evaluation(out, rows)
    return summary(rows)
