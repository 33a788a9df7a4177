"""Segments → Codings: a score, decision, method and evidence per segment and code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .codebook import Codebook
from .documents import Segment
from .model import CodebookClassifier

HUMAN = "human"


@dataclass(slots=True)
class CodingResult:
    """Coding of the codable segments; arrays are (segments, codes) in codebook order."""

    segment_ids: list[str]
    code_ids: list[str]
    scores: np.ndarray
    thresholds: np.ndarray
    decisions: np.ndarray  # bool
    methods: np.ndarray  # str: rule, model or human (for applied codes)
    evidence: list[dict[str, str]] = field(default_factory=list)  # per segment: code -> text

    def rows(self, start: int, stop: int) -> CodingResult:
        """The coding of segments ``start:stop``."""
        return CodingResult(self.segment_ids[start:stop], self.code_ids,
                            self.scores[start:stop], self.thresholds,
                            self.decisions[start:stop], self.methods[start:stop],
                            self.evidence[start:stop])

    @classmethod
    def concat(cls, parts: Sequence[CodingResult], code_ids: Sequence[str],
               thresholds: np.ndarray) -> CodingResult:
        k = len(code_ids)
        if not parts:
            return cls([], list(code_ids), np.zeros((0, k)), thresholds,
                       np.zeros((0, k), dtype=bool), np.zeros((0, k), dtype=object), [])
        return cls(
            [s for p in parts for s in p.segment_ids],
            list(code_ids),
            np.vstack([p.scores for p in parts]),
            thresholds,
            np.vstack([p.decisions for p in parts]),
            np.vstack([p.methods for p in parts]),
            [e for p in parts for e in p.evidence],
        )


def code_segments(
    segments: Sequence[Segment],
    model: CodebookClassifier,
    codebook: Codebook,
    human: Mapping[str, frozenset[str]] | None = None,
) -> CodingResult:
    """Code every codable segment; a segment a human reviewed takes the human decision."""
    human = human or {}
    codable = [s for s in segments if s.codable]
    code_ids = list(codebook.code_ids)
    k = len(code_ids)
    if list(model.classes_) != code_ids:
        raise ValueError(
            "the model was trained for other code ids than the codebook's — retrain it "
            "(qualcode train)"
        )
    texts = [s.text for s in codable]
    scores = model.predict_proba(texts) if texts else np.zeros((0, k))
    thresholds = np.asarray(model.thresholds_, dtype=float)
    decisions = scores >= thresholds
    methods = np.full(decisions.shape, "", dtype=object)
    evidence: list[dict[str, str]] = [{} for _ in codable]
    explained = model.explain(texts) if texts else []
    column = {c: j for j, c in enumerate(code_ids)}
    for i, items in enumerate(explained):
        for item in items:
            j = column[item.code_id]
            methods[i, j] = item.method
            evidence[i][item.code_id] = item.text
    for i, seg in enumerate(codable):
        codes = human.get(seg.segment_id)
        if codes is None:
            continue
        decisions[i] = [c in codes for c in code_ids]
        methods[i] = np.where(decisions[i], HUMAN, "")
        evidence[i] = {c: "reviewed by a coder" for c in codes}
    return CodingResult([s.segment_id for s in codable], code_ids, scores, thresholds,
                        decisions, methods, evidence)
