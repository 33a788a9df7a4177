"""Codebook rules compiled into spaCy matchers.

Each code's ``rules`` (``phrases``, ``patterns``, ``exclude_phrases``, ``exclude_patterns``)
become one PhraseMatcher over lower-case text, one over lemmas and one token Matcher. A hit
inside a sentence that also matches one of the code's exclusions is dropped. The pipeline is
``spacy.blank("en")`` + lookup lemmas from spacy-lookups-data + punctuation sentence
boundaries, so the same pass also gives the sentences the model uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.attrs import IDX, IS_SPACE, LEMMA, LENGTH, LOWER, ORTH, SENT_START
from spacy.tokens import Doc
from spacy.util import load_language_data, registry

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


_SENT_END = (".", "!", "?", "…", "...")
_CLOSERS = ('"', "'", ")", "]", "’", "”", "»")


@Language.factory("qualcode_lemmas")
class LookupLemmas:
    """Lookup lemmas from spacy-lookups-data, case-insensitive, set for a whole doc at once.

    Same table as ``nlp.add_pipe("lemmatizer", config={"mode": "lookup"})``, but a word is
    also found when capitalised ("Suspended" -> "suspend") and an unknown word's lemma is its
    lower-case form, so lemma patterns written in lower case always apply. One array
    operation per doc instead of a Python call per token: spaCy's lemmatizer alone costs
    three quarters of blank-English tokenisation speed.
    """

    def __init__(self, nlp: Language, name: str = "qualcode_lemmas") -> None:
        table = load_language_data(registry.lookups.get(nlp.lang)["lemma_lookup"])
        strings = nlp.vocab.strings
        self.lemma_of: dict[int, int] = {}
        for form, lemma in table.items():
            self.lemma_of[strings.add(form)] = strings.add(lemma)
        for form, lemma in table.items():
            for variant in (form.lower(), form.capitalize(), form.upper()):
                self.lemma_of.setdefault(strings.add(variant), strings[lemma])

    def __call__(self, doc: Doc) -> Doc:
        if len(doc):
            arr = doc.to_array([ORTH, LOWER])
            get = self.lemma_of.get
            lemmas = np.fromiter(
                (get(o, low) for o, low in arr.tolist()), dtype=np.uint64, count=len(arr)
            )
            doc.from_array([LEMMA], lemmas.reshape(-1, 1))
        return doc


@Language.factory("qualcode_sentences")
class PunctSentences:
    """Sentence starts after . ! ? (and any closing quotes or brackets) and after blank lines."""

    def __init__(self, nlp: Language, name: str = "qualcode_sentences") -> None:
        strings = nlp.vocab.strings
        self.ends = np.array([strings.add(p) for p in _SENT_END], dtype=np.uint64)
        self.closers = np.array([strings.add(p) for p in _CLOSERS], dtype=np.uint64)

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if not n:
            return doc
        arr = doc.to_array([ORTH, IS_SPACE])
        end = np.isin(arr[:, 0], self.ends) | (arr[:, 1] == 1)
        skip = end | np.isin(arr[:, 0], self.closers)
        start = np.full(n, -1, dtype=np.int32)
        start[0] = 1
        for p in np.flatnonzero(end).tolist():
            q = p + 1
            while q < n and skip[q]:
                q += 1
            if q < n:
                start[q] = 1
        doc.from_array([SENT_START], start.reshape(-1, 1).astype(np.uint64))
        return doc


def make_nlp() -> Language:
    """``spacy.blank("en")`` with case-insensitive lookup lemmas and sentence boundaries."""
    nlp = spacy.blank("en")
    nlp.add_pipe("qualcode_lemmas")
    nlp.add_pipe("qualcode_sentences")
    nlp.initialize()
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

    def match_doc(self, doc: Doc, text: str | None = None) -> RuleResult:
        """Hits and sentence boundaries of one processed doc (``text``: its text, if known)."""
        if not len(doc):
            return RuleResult()
        arr = doc.to_array([IDX, LENGTH, SENT_START]).astype(np.int64)
        tok_start, tok_end = arr[:, 0], arr[:, 0] + arr[:, 1]
        starts = np.flatnonzero(arr[:, 2] == 1)
        ends = np.append(starts[1:], len(doc)) - 1
        result = RuleResult(sentences=list(zip(tok_start[starts].tolist(),
                                               tok_end[ends].tolist(), strict=True)))
        matches = self._lower(doc) + self._lemma(doc) + self._tokens(doc)
        if not matches:
            return result
        sent_of = np.searchsorted(starts, [m[1] for m in matches], side="right") - 1
        strings = self.nlp.vocab.strings
        found: dict[str, set[tuple[int, int, int]]] = {}
        excluded: set[tuple[str, int]] = set()
        for (match_id, start, end), sent in zip(matches, sent_of.tolist(), strict=True):
            label = strings[match_id]
            if label.startswith(_EXCLUDE):
                last = int(np.searchsorted(starts, end - 1, side="right")) - 1
                excluded.update((label[len(_EXCLUDE):], k) for k in range(sent, last + 1))
            else:
                found.setdefault(label, set()).add((start, end, sent))
        text = doc.text if text is None else text  # doc.text walks every token in Python
        for code_id, spans in found.items():
            kept = sorted((s, e) for s, e, k in spans if (code_id, k) not in excluded)
            if not kept:
                continue
            # Overlapping matches (one phrase found by several matchers) merge into one span.
            merged: list[tuple[int, int]] = []
            for s, e in kept:
                if merged and s < merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
                else:
                    merged.append((s, e))
            chars = tuple((int(tok_start[s]), int(tok_end[e - 1])) for s, e in merged)
            evidence = tuple(dict.fromkeys(text[a:b] for a, b in chars))
            result.hits[code_id] = RuleHit(code_id, evidence, chars)
        return result

    def match(self, texts: Iterable[str]) -> list[RuleResult]:
        """Rule hits and sentence spans for each text, in order (one ``nlp.pipe`` pass)."""
        texts = list(texts)
        return [self.match_doc(d, t) for d, t in zip(self.docs(texts), texts, strict=True)]

    def hit_matrix(self, results: Sequence[RuleResult]) -> np.ndarray:
        """0/1 matrix, one row per result and one column per code (in ``code_ids`` order)."""
        out = np.zeros((len(results), len(self.code_ids)), dtype=np.float32)
        col = {c: j for j, c in enumerate(self.code_ids)}
        for i, res in enumerate(results):
            for code_id in res.hits:
                out[i, col[code_id]] = 1.0
        return out
