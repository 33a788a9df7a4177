"""Codebook rules compiled into spaCy matchers.

Each code's ``rules`` (``phrases``, ``patterns``, ``exclude_phrases``, ``exclude_patterns``)
become one PhraseMatcher over lower-case text, one over lemmas and one token Matcher. A hit
inside a sentence that also matches one of the code's exclusions is dropped. The pipeline is
``spacy.blank("en")`` + lookup lemmas from spacy-lookups-data + punctuation sentence
boundaries, so the same pass also gives the sentences the model uses.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spacy
from spacy.attrs import IDX, IS_SPACE, LEMMA, LENGTH, LOWER, ORTH, SENT_START
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
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
        self.ends = frozenset(strings.add(p) for p in _SENT_END)
        self.skip = self.ends | frozenset(strings.add(p) for p in _CLOSERS)

    def __call__(self, doc: Doc) -> Doc:
        if not len(doc):
            return doc
        ends, skip = self.ends, self.skip
        start = [-1] * len(doc)
        start[0] = 1
        pending = False
        for i, (orth, space) in enumerate(doc.to_array([ORTH, IS_SPACE]).tolist()):
            if pending:
                if orth in skip or space:
                    continue
                start[i] = 1
                pending = False
            # A blank line ends a sentence; a single line break (wrapped text) does not.
            if orth in ends or (space and doc[i].text.count("\n") > 1):
                pending = True
        doc.from_array([SENT_START], np.array(start, dtype=np.int64).reshape(-1, 1)
                       .astype(np.uint64))
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
        # One Matcher per token pattern, run only on sentences holding every word the
        # pattern requires: spaCy's Matcher walks every token for every pattern (with IN
        # sets checked in Python), which at hundreds of patterns runs at ~10k words/s.
        self._patterns: list[tuple[Matcher, list[tuple[int, frozenset[int]]]]] = []
        self.n_rules = 0
        for code in codebook.codes:
            phrases, patterns, ex_phrases, ex_patterns = _rules(code)
            self._add(code.id, code.id, phrases, patterns)
            self._add(code.id, _EXCLUDE + code.id, ex_phrases, ex_patterns)
            self.n_rules += len(phrases) + len(patterns)
        self._active = [m for m in (self._lower, self._lemma) if len(m)]
        # Inverted index on each pattern's most selective required token.
        self._anchors: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})
        self._always: list[int] = []
        for i, (_, reqs) in enumerate(self._patterns):
            if not reqs:
                self._always.append(i)
                continue
            col, hashes = min(reqs, key=lambda r: len(r[1]))
            for h in hashes:
                self._anchors[col].setdefault(h, []).append(i)
        self._anchor_keys = (frozenset(self._anchors[0]), frozenset(self._anchors[1]))

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
                matcher = Matcher(self.nlp.vocab, validate=True)
                matcher.add(label, [pattern])
            except Exception as exc:  # spaCy raises several types for bad patterns
                raise RuleError(
                    f"R002: code {code_id!r}: rules.{where}[{i}] is not a valid spaCy token "
                    f"pattern ({exc}). See https://spacy.io/usage/rule-based-matching and fix "
                    "it in the codebook."
                ) from exc
            self._patterns.append((matcher, self._requirements(pattern)))

    def _requirements(self, pattern: list[dict[str, Any]]) -> list[tuple[int, frozenset[int]]]:
        """(column, word hashes) per required token: one of the words must be in a sentence.

        Column 0 holds lower-case forms, column 1 lemmas. ORTH/TEXT values are checked on
        their lower-case form, which only lets more sentences through.
        """
        strings = self.nlp.vocab.strings
        reqs = []
        for token in pattern:
            op = str(token.get("OP", "1"))
            bounds = re.match(r"\{(\d*)", op)
            if op not in ("1", "+") and not (bounds and bounds.group(1) not in ("", "0")):
                continue
            for attr, col in (("LEMMA", 1), ("LOWER", 0), ("ORTH", 0), ("TEXT", 0)):
                value = token.get(attr)
                if isinstance(value, dict) and set(value) == {"IN"}:
                    value = value["IN"]
                if isinstance(value, str):
                    value = [value]
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    words = [v if col else v.lower() for v in value]
                    reqs.append((col, frozenset(strings.add(w) for w in words)))
                    break
        return reqs

    def docs(self, texts: Iterable[str]) -> Iterable[Doc]:
        return self.nlp.pipe(texts, batch_size=self.batch_size)

    def match_doc(self, doc: Doc, text: str | None = None) -> RuleResult:
        """Hits and sentence boundaries of one processed doc (``text``: its text, if known)."""
        if not len(doc):
            return RuleResult()
        arr = doc.to_array([IDX, LENGTH, SENT_START, IS_SPACE]).astype(np.int64)
        tok_start, tok_end = arr[:, 0], arr[:, 0] + arr[:, 1]
        starts = np.flatnonzero(arr[:, 2] == 1)
        # A sentence ends at its last token that is not whitespace (a blank line).
        words = np.flatnonzero(arr[:, 3] == 0)
        last = np.searchsorted(words, np.append(starts[1:], len(doc)), side="left") - 1
        spans = [(int(tok_start[s]), int(tok_end[words[w]]))
                 for s, w in zip(starts.tolist(), last.tolist(), strict=True)
                 if w >= 0 and words[w] >= s]
        result = RuleResult(sentences=spans)
        matches = [m for matcher in self._active for m in matcher(doc)]
        if self._patterns:
            matches += self._token_matches(doc, starts)
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

    def _token_matches(self, doc: Doc, starts: np.ndarray) -> list[tuple[int, int, int]]:
        words = doc.to_array([LOWER, LEMMA])
        in_doc = (set(words[:, 0].tolist()), set(words[:, 1].tolist()))
        candidates = set(self._always)
        for col in (0, 1):
            index = self._anchors[col]
            for h in in_doc[col] & self._anchor_keys[col]:
                candidates.update(index[h])
        possible = [self._patterns[i] for i in sorted(candidates)
                    if all(not hashes.isdisjoint(in_doc[col])
                           for col, hashes in self._patterns[i][1])]
        if not possible:
            return []
        bounds = np.append(starts, len(doc)).tolist()
        sents = [(a, b, set(words[a:b, 0].tolist()), set(words[a:b, 1].tolist()))
                 for a, b in itertools.pairwise(bounds)]
        found = []
        for matcher, reqs in possible:
            for a, b, lower, lemma in sents:
                cols = (lower, lemma)
                if all(not hashes.isdisjoint(cols[col]) for col, hashes in reqs):
                    found += [(k, a + s, a + e) for k, s, e in matcher(doc[a:b])]
        return found

    def match_docs(self, texts: Sequence[str]) -> Iterator[tuple[Doc, RuleResult]]:
        """Each text's processed doc and its rule result, in order (one ``nlp.pipe`` pass);
        callers that need more than the hits (token features) read the doc."""
        for doc, text in zip(self.docs(texts), texts, strict=True):
            yield doc, self.match_doc(doc, text)

    def match(self, texts: Iterable[str]) -> list[RuleResult]:
        """Rule hits and sentence spans for each text, in order (one ``nlp.pipe`` pass)."""
        return [result for _, result in self.match_docs(list(texts))]

    def hit_matrix(self, results: Sequence[RuleResult]) -> np.ndarray:
        """0/1 matrix, one row per result and one column per code (in ``code_ids`` order)."""
        out = np.zeros((len(results), len(self.code_ids)), dtype=np.float32)
        col = {c: j for j, c in enumerate(self.code_ids)}
        for i, res in enumerate(results):
            for code_id in res.hits:
                out[i, col[code_id]] = 1.0
        return out
