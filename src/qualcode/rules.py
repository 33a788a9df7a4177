"""Codebook rules compiled into spaCy matchers.

Each code's ``rules`` (``phrases``, ``patterns``, ``exclude_phrases``, ``exclude_patterns``)
become one PhraseMatcher over lower-case text, one over lemmas and one token Matcher. A hit
inside a sentence that also matches one of the code's exclusions is dropped. The pipeline is
``spacy.blank("en")`` + the lookup lemmatizer from spacy-lookups-data + a sentencizer, so the
same pass also gives the sentence boundaries the model uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

_EXCLUDE = "\x00not\x00"  # prefix of exclusion match labels; cannot clash with a code id


class RuleError(ValueError):
    """A codebook rule that spaCy cannot compile; the message names the code and the fix."""


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A code's rule matched a segment: the matched words and where they are."""

    code_id: str
    evidence: tuple[str, ...]  # unique matched words, in text order
    spans: tuple[tuple[int, int], ...]  # character offsets into the segment text

    @property
    def text(self) -> str:
        return "; ".join(self.evidence)


@dataclass(slots=True)
class RuleResult:
    """Rule hits of one segment, keyed by code id, and its sentence boundaries."""

    hits: dict[str, RuleHit] = field(default_factory=dict)
    sentences: list[tuple[int, int]] = field(default_factory=list)


def make_nlp() -> Language:
    """``spacy.blank("en")`` with a case-insensitive lookup lemmatizer and a sentencizer."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("sentencizer")
    nlp.initialize()
    # The lookup table is keyed by lower-case forms; add capitalised and upper-case keys so a
    # sentence-initial "Suspended" gets the lemma "suspend" too.
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_lookup")
    for form, lemma in list(table.items()):
        if isinstance(form, str):
            for variant in (form.capitalize(), form.upper()):
                if variant != form and variant not in table:
                    table[variant] = lemma
    return nlp


def _rules(code: Any) -> tuple[list[str], list[Any], list[str], list[Any]]:
    r = getattr(code, "rules", None)

    def get(name: str) -> list[Any]:
        value = r.get(name) if isinstance(r, dict) else getattr(r, name, None)
        return list(value or [])

    return get("phrases"), get("patterns"), get("exclude_phrases"), get("exclude_patterns")


class RuleMatcher:
    """All codes' rules, compiled once; ``match(texts)`` runs them over a batch."""

    def __init__(self, codebook: Any, *, nlp: Language | None = None, batch_size: int = 256):
        self.nlp = nlp or make_nlp()
        self.batch_size = batch_size
        self.code_ids: list[str] = [c.id for c in codebook.codes]
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._lemma = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self._tokens = Matcher(self.nlp.vocab, validate=True)
        self.n_rules = 0
        for code in codebook.codes:
            phrases, patterns, ex_phrases, ex_patterns = _rules(code)
            self._add(code.id, code.id, phrases, patterns)
            self._add(code.id, _EXCLUDE + code.id, ex_phrases, ex_patterns)
            self.n_rules += len(phrases) + len(patterns)

    def _add(self, code_id: str, label: str, phrases: list[str], patterns: list[Any]) -> None:
        if phrases:
            docs = [d for d in self.nlp.pipe(str(p) for p in phrases) if len(d)]
            self._lower.add(label, [self.nlp.make_doc(d.text) for d in docs])
            self._lemma.add(label, docs)
        for i, pattern in enumerate(patterns):
            where = "exclude_patterns" if label.startswith(_EXCLUDE) else "patterns"
            if not isinstance(pattern, list) or not all(isinstance(t, dict) for t in pattern):
                raise RuleError(
                    f"R001: code {code_id!r}: rules.{where}[{i}] must be a list of token "
                    f"dicts such as [{{'LEMMA': 'suspend'}}, {{'LOWER': 'aid'}}], got "
                    f"{pattern!r}. Fix it in the codebook."
                )
            try:
                self._tokens.add(label, [pattern])
            except Exception as exc:  # spaCy raises several types for bad patterns
                raise RuleError(
                    f"R002: code {code_id!r}: rules.{where}[{i}] is not a valid spaCy token "
                    f"pattern ({exc}). See https://spacy.io/usage/rule-based-matching and fix "
                    "it in the codebook."
                ) from exc

    def docs(self, texts: Iterable[str]) -> Iterable[Doc]:
        return self.nlp.pipe(texts, batch_size=self.batch_size)

    def match_doc(self, doc: Doc) -> RuleResult:
        """Hits and sentence boundaries of one processed doc."""
        sents = [(s.start, s.end, s.start_char, s.end_char) for s in doc.sents]
        result = RuleResult(sentences=[(a, b) for _, _, a, b in sents])
        matches = self._lower(doc) + self._lemma(doc) + self._tokens(doc)
        if not matches:
            return result
        starts = np.array([s[0] for s in sents])
        strings = self.nlp.vocab.strings
        found: dict[str, list[tuple[int, int]]] = {}
        excluded: set[tuple[str, int]] = set()
        for match_id, start, end in matches:
            label = strings[match_id]
            if label.startswith(_EXCLUDE):
                first = int(np.searchsorted(starts, start, side="right")) - 1
                last = int(np.searchsorted(starts, end - 1, side="right")) - 1
                excluded.update((label[len(_EXCLUDE):], k) for k in range(first, last + 1))
            else:
                found.setdefault(label, []).append((start, end))
        for code_id, spans in found.items():
            kept = sorted(
                {sp for sp in spans
                 if (code_id, int(np.searchsorted(starts, sp[0], side="right")) - 1)
                 not in excluded}
            )
            if not kept:
                continue
            # Overlapping matches (a phrase found by both matchers) collapse to the longest.
            merged: list[tuple[int, int]] = []
            for s, e in kept:
                if merged and s < merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
                else:
                    merged.append((s, e))
            chars = tuple((doc[s:e].start_char, doc[s:e].end_char) for s, e in merged)
            evidence = tuple(dict.fromkeys(doc[s:e].text for s, e in merged))
            result.hits[code_id] = RuleHit(code_id, evidence, chars)
        return result

    def match(self, texts: Iterable[str]) -> list[RuleResult]:
        """Rule hits and sentence spans for each text, in order (one ``nlp.pipe`` pass)."""
        return [self.match_doc(doc) for doc in self.docs(texts)]

    def hit_matrix(self, results: Sequence[RuleResult]) -> np.ndarray:
        """0/1 matrix, one row per result and one column per code (in ``code_ids`` order)."""
        out = np.zeros((len(results), len(self.code_ids)), dtype=np.float32)
        col = {c: j for j, c in enumerate(self.code_ids)}
        for i, res in enumerate(results):
            for code_id in res.hits:
                out[i, col[code_id]] = 1.0
        return out
