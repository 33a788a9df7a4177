"""Codebook rules compiled into spaCy matchers.

Each code's ``rules`` (``phrases``, ``patterns``, ``exclude_phrases``, ``exclude_patterns``)
become one PhraseMatcher over lower-case text, one over lemmas and one token Matcher per
pattern. A hit inside a sentence that also matches one of the code's exclusions is dropped.
The pipeline is ``spacy.blank("en")`` + lookup lemmas from spacy-lookups-data + punctuation
sentence boundaries, so the same pass also gives the sentences the model uses.

spaCy's Matcher walks every token for every pattern (IN sets are checked in Python), which
at a hundred patterns is several times slower than tokenising. So a pattern's Matcher runs
only on the sentences that can match it, found in two steps that never drop a real match:
array operations over a whole batch keep the sentences holding every word the pattern
requires, then a regex compiled from the pattern (see :meth:`RuleMatcher._compile`) must
find it in the sentence written as one string; the regex also bounds the stretch of the
sentence the Matcher needs to see. The Matcher still decides every match. Work per doc is
kept to a minimum (one token array read and write for the whole pipeline, see
:meth:`RuleMatcher._batches`): at ~80 tokens per segment, spaCy's per-doc calls dominate.

A line break inside a paragraph (hard-wrapped text), a tab or a run of spaces separates two
words as a single space does: rules match across them (spaCy would make each a token of its
own between the words). A blank line stays a sentence end. Evidence and sentence offsets
are in the original text.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import spacy
from spacy.attrs import IDS, IDX, IS_PUNCT, IS_SPACE, LEMMA, LENGTH, LOWER, ORTH, SENT_START
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.strings import get_string_id
from spacy.tokens import Doc
from spacy.util import load_language_data, minibatch, registry

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


def _stacked(docs: list[Doc], attrs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The docs' token attributes as one array, and each doc's first row (plus the end)."""
    arr = np.concatenate([doc.to_array(attrs) for doc in docs])
    return arr, np.cumsum([0] + [len(doc) for doc in docs])


def _scatter(docs: list[Doc], bounds: np.ndarray, attrs: list[int], values: np.ndarray) -> None:
    """Writes rows ``bounds[i]:bounds[i + 1]`` of ``values`` into doc ``i``."""
    for doc, a, b in zip(docs, bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        doc.from_array(attrs, values[a:b])


class _BatchComponent:
    """A pipeline component that sets one attribute for a whole batch of docs at once."""

    attr: int
    reads: list[int]

    def __call__(self, doc: Doc) -> Doc:
        self._set([doc])
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        for batch in minibatch(docs, batch_size):
            self._set(batch)
            yield from batch

    def _set(self, docs: list[Doc]) -> None:
        docs = [doc for doc in docs if len(doc)]
        if docs:
            arr, bounds = _stacked(docs, self.reads)
            _scatter(docs, bounds, [self.attr], self.values(arr, bounds))

    def values(self, arr: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """The attribute for stacked docs (columns ``reads``, doc ``bounds``)."""
        raise NotImplementedError


@functools.cache
def _lemma_table(lang: str) -> tuple[dict[int, int], frozenset[str]]:
    """Word hash -> lemma hash (also for the word's lower, capitalised and upper-case forms)
    and the lemmas, built once per process: a string's id (its hash, or its symbol number)
    is the same in every vocabulary."""
    table = load_language_data(registry.lookups.get(lang)["lemma_lookup"])
    lemma_of = {get_string_id(form): get_string_id(lemma) for form, lemma in table.items()}
    for form, lemma in table.items():
        for variant in (form.lower(), form.capitalize(), form.upper()):
            lemma_of.setdefault(get_string_id(variant), get_string_id(lemma))
    return lemma_of, frozenset(table.values())


def lemma_of_word(word: str, lang: str = "en") -> str | None:
    """The lemma the pipeline gives ``word`` when that is another word and ``word`` is no
    lemma itself ("talks" -> "talk"; ``None`` for "talk", "left" or an unknown word): a
    LEMMA pattern value that can never match."""
    lemma_of, lemmas = _lemma_table(lang)
    if word in lemmas:
        return None
    lemma = lemma_of.get(get_string_id(word))
    if lemma is None:
        return None
    text = shared_nlp().vocab.strings[lemma]
    return None if text == word.lower() else text


def dead_lemmas(pattern: list[dict[Any, Any]]) -> list[tuple[str, str]]:
    """(value, its lemma) for each LEMMA value of a token pattern that no token can have
    (see :func:`lemma_of_word`)."""
    return [(word, lemma) for token in pattern for key, value in token.items()
            if str(key).upper() == "LEMMA"
            for word in sorted(_allowed_words(value) or ())
            if (lemma := lemma_of_word(word)) is not None]


@Language.factory("qualcode_lemmas")
class LookupLemmas(_BatchComponent):
    """Lookup lemmas from spacy-lookups-data, case-insensitive, set for a batch at once.

    Same table as ``nlp.add_pipe("lemmatizer", config={"mode": "lookup"})``, but a word is
    also found when capitalised ("Suspended" -> "suspend") and an unknown word's lemma is its
    lower-case form, so lemma patterns written in lower case always apply. One array
    operation per batch instead of a Python call per token: spaCy's lemmatizer alone costs
    three quarters of blank-English tokenisation speed.
    """

    attr, reads = LEMMA, [ORTH, LOWER]

    def __init__(self, nlp: Language, name: str = "qualcode_lemmas") -> None:
        self.lemma_of, lemmas = _lemma_table(nlp.lang)
        strings = nlp.vocab.strings
        for lemma in lemmas:  # so that a token's lemma_ can be read back as text
            strings.add(lemma)

    def values(self, arr: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        # Each distinct word once (a token's lower form is its word's).
        words, first, which = np.unique(arr[:, 0], return_index=True, return_inverse=True)
        lemmas = map(self.lemma_of.get, words.tolist(), arr[first, 1].tolist())
        return np.fromiter(lemmas, dtype=np.uint64, count=len(words))[which]


@Language.factory("qualcode_sentences")
class PunctSentences(_BatchComponent):
    """Sentence starts after . ! ? (and any closing quotes or brackets) and after blank lines."""

    attr, reads = SENT_START, [ORTH, IS_SPACE]

    def __init__(self, nlp: Language, name: str = "qualcode_sentences") -> None:
        strings = nlp.vocab.strings
        self.strings = strings
        self.ends = np.array(sorted({strings.add(p) for p in _SENT_END}), dtype=np.uint64)
        self.skip = np.array(sorted({strings.add(p) for p in _SENT_END + _CLOSERS}),
                             dtype=np.uint64)
        self._blank_line: dict[int, bool] = {}  # whitespace token -> holds two line breaks

    def values(self, arr: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        orth, space = arr[:, 0], arr[:, 1] != 0
        end = np.isin(orth, self.ends)
        # A blank line ends a sentence; a single line break (wrapped text) does not.
        spaces = np.flatnonzero(space)
        if len(spaces):
            kinds, which = np.unique(orth[spaces], return_inverse=True)
            blank = np.array([self._is_blank(k) for k in kinds.tolist()], dtype=bool)
            end[spaces[blank[which]]] = True
        # The first token after an end that is no closer or whitespace starts a sentence:
        # one that has an end between it and the previous such token of its doc.
        begins = np.flatnonzero(~(space | np.isin(orth, self.skip)))
        first = bounds[:-1]
        doc_start = first[np.searchsorted(first, begins, side="right") - 1]
        before = np.maximum(np.concatenate(([-1], begins[:-1])), doc_start - 1)
        n_ends = np.concatenate(([0], np.cumsum(end)))
        sent_start = np.full(len(arr), -1, dtype=np.int64)
        sent_start[begins[n_ends[begins] > n_ends[before + 1]]] = 1
        sent_start[first] = 1
        return sent_start.astype(np.uint64)

    def _is_blank(self, orth: int) -> bool:
        blank = self._blank_line.get(orth)
        if blank is None:
            blank = self._blank_line[orth] = self.strings[orth].count("\n") > 1
        return blank


def make_nlp() -> Language:
    """``spacy.blank("en")`` with case-insensitive lookup lemmas and sentence boundaries."""
    nlp = spacy.blank("en")
    nlp.add_pipe("qualcode_lemmas")
    nlp.add_pipe("qualcode_sentences")
    nlp.initialize()
    # spaCy's 1M-character limit guards parsers and NER (~1 GB per 100k characters); this
    # pipeline only tokenises and looks up, so one very long segment is no danger.
    nlp.max_length = 2**62
    return nlp


@functools.lru_cache(maxsize=1)
def shared_nlp() -> Language:
    """One :func:`make_nlp` pipeline for the whole process (rule matchers, hashed
    features): building one takes ~0.6 s (spaCy's tokenizer exceptions, the lemma table).
    Its components keep only caches, so sharing it changes no result."""
    return make_nlp()


def _rules(code: Any) -> tuple[list[str], list[Any], list[str], list[Any]]:
    r = getattr(code, "rules", None)

    def get(name: str) -> list[Any]:
        value = r.get(name) if isinstance(r, dict) else getattr(r, name, None)
        return list(value or [])

    return get("phrases"), get("patterns"), get("exclude_phrases"), get("exclude_patterns")


# A sentence as one string for the pattern regexes: "\x01lower\x02lemma\x03" per token.
_CONTROL = re.compile("[\x00-\x03]")
_ANY_TOKEN = "\x01[^\x02]*\x02[^\x03]*\x03"
_ATTR_NAMES = {v: k for k, v in IDS.items()}
_COLUMNS = [SENT_START, IS_SPACE, IDX, LENGTH, LOWER, LEMMA, IS_PUNCT]

# White space that spaCy makes a token of its own: anything but one plain space.
_SPACE_TOKEN = re.compile(r"\s{2,}|[^\S ]")


def _word_gaps_as_spaces(text: str) -> tuple[str, np.ndarray | None]:
    """``text`` with each white-space run that holds no blank line written as one space,
    and the shifts back: a character at ``i`` of the result is at ``i + add[j]`` of
    ``text``, ``j`` the last with ``pos[j] <= i`` (``None``: nothing changed)."""
    if _SPACE_TOKEN.search(text) is None:
        return text, None
    parts: list[str] = []
    pos, add = [0], [0]
    last = removed = 0
    for gap in _SPACE_TOKEN.finditer(text):
        run = gap.group()
        if run.count("\n") > 1:  # a blank line: kept, it ends a sentence
            continue
        parts += [text[last:gap.start()], " "]
        pos.append(gap.start() - removed + 1)
        removed += len(run) - 1
        add.append(removed)
        last = gap.end()
    if len(pos) == 1:
        return text, None
    parts.append(text[last:])
    return "".join(parts), np.array([pos, add], dtype=np.int64)


def _shift_back(idx: np.ndarray, bounds: np.ndarray,
                shifts: Sequence[np.ndarray | None]) -> None:
    """Token offsets (``idx``, rows ``bounds[k]:bounds[k + 1]`` for doc ``k``) moved, in
    place, from the texts :func:`_word_gaps_as_spaces` wrote back into the original ones."""
    for k, shift in enumerate(shifts):
        if shift is not None:
            doc = idx[bounds[k]:bounds[k + 1]]
            doc += shift[1][np.searchsorted(shift[0], doc, side="right") - 1].astype(doc.dtype)


class _Pieces(dict[int, str]):
    """String hash -> its text (control characters removed) in a sentence encoding."""

    def __init__(self, strings: Any, fmt: str) -> None:
        super().__init__()
        self.strings, self.fmt = strings, fmt

    def __missing__(self, key: int) -> str:
        piece = self[key] = self.fmt % _CONTROL.sub("", self.strings[key])
        return piece


@dataclass(slots=True)
class _Pattern:
    """A token pattern: its Matcher, a regex that finds at least what the Matcher finds
    (compiled on first use: many patterns never get that far, and compiling them all took
    half of building a matcher), the words a sentence must hold, per required token:
    (column, string hashes), and the most tokens a match can have (``None``: no limit)."""

    matcher: Matcher
    source: str
    requires: list[tuple[int, frozenset[int]]]
    longest: int | None = None
    _regex: re.Pattern[str] | None = None

    def regex(self) -> re.Pattern[str]:
        if self._regex is None:
            self._regex = re.compile(self.source)
        return self._regex


class RuleMatcher:
    """All codes' rules, compiled once; ``match(texts)`` runs them over a batch."""

    def __init__(self, codebook: Any, *, nlp: Language | None = None, batch_size: int = 256):
        self.nlp = nlp or shared_nlp()
        self.batch_size = batch_size
        self.code_ids: list[str] = [c.id for c in codebook.codes]
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._lemma = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self._patterns: list[_Pattern] = []
        self._labels: dict[int, tuple[str, bool]] = {}  # match id -> code id, is exclusion
        self.n_rules = 0
        for code in codebook.codes:
            phrases, patterns, ex_phrases, ex_patterns = _rules(code)
            self._add(code.id, code.id, phrases, patterns)
            self._add(code.id, _EXCLUDE + code.id, ex_phrases, ex_patterns)
            self.n_rules += len(phrases) + len(patterns)
        self._active = [m for m in (self._lower, self._lemma) if len(m)]
        self._index_requirements()
        self._lexicon: _Lexicon | None = None
        strings = self.nlp.vocab.strings
        self._pieces = (_Pieces(strings, "\x01%s\x02"), _Pieces(strings, "%s\x03"))

    def _add(self, code_id: str, label: str, phrases: list[str], patterns: list[Any]) -> None:
        self._labels[self.nlp.vocab.strings.add(label)] = (code_id, label != code_id)
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
            self._patterns.append(self._compile(matcher, pattern))

    def _compile(self, matcher: Matcher, pattern: list[dict[Any, Any]]) -> _Pattern:
        """The pattern's regex over a sentence encoding, and its required tokens.

        LOWER, LEMMA and ORTH/TEXT values (strings or ``IN`` lists) become literals, ``OP``
        a quantifier. Everything else (other attributes, NOT_IN, REGEX, ``!`` tokens) is
        left out or becomes a one-token wildcard, and an unknown operator ``*``: the regex
        may find more than the Matcher, never less.
        """
        vocab = self.nlp.vocab
        parts, requires, longest = [], [], 0.0
        for token in pattern:
            fields: list[set[str] | None] = [None, None]  # allowed lower forms, lemmas
            op: Any = "1"
            for key, value in token.items():
                name = key.upper() if isinstance(key, str) else _ATTR_NAMES.get(key, "")
                if name == "OP":
                    op = value
                    continue
                allowed = _allowed_words(value)
                if allowed is None or name not in ("LOWER", "LEMMA", "ORTH", "TEXT"):
                    continue
                if name in ("ORTH", "TEXT"):  # a token's lower form is its lexeme's
                    allowed = {vocab[w].lower_ for w in allowed}
                col = 1 if name == "LEMMA" else 0
                fields[col] = allowed if fields[col] is None else fields[col] & allowed
            quantifier = _quantifier(op)
            longest += _most(quantifier)
            if op == "!" or fields == [None, None]:
                parts.append(f"(?:{_ANY_TOKEN}){quantifier}")
                continue
            lower, lemma = ("[^\x02]*" if words is None else _alternatives(words)
                            for words in fields)
            parts.append(f"(?:\x01{lower}\x02{lemma}\x03){quantifier}")
            if quantifier in ("", "+") or re.match(r"\{[1-9]", quantifier):
                col = 0 if fields[0] is not None else 1
                words = fields[col] or set()
                requires.append((col, frozenset(vocab.strings.add(w) for w in words)))
        regex = "".join(parts)
        return _Pattern(matcher, regex, requires,
                        None if longest == math.inf else int(longest))

    def _index_requirements(self) -> None:
        """CSR-style indexes word -> required tokens ("atoms") per column, atom -> patterns."""
        atoms: dict[tuple[int, frozenset[int]], int] = {}
        of_atom: list[list[int]] = []
        for p, pattern in enumerate(self._patterns):
            for req in set(pattern.requires):
                if req not in atoms:
                    atoms[req] = len(of_atom)
                    of_atom.append([])
                of_atom[atoms[req]].append(p)
        self._n_atoms = len(of_atom)
        self._atom_patterns = _csr(of_atom)
        self._need = np.zeros(len(self._patterns), dtype=np.int64)
        for patterns in of_atom:
            self._need[patterns] += 1
        self._words: list[_WordIndex] = []
        self._key_atoms: list[tuple[np.ndarray, np.ndarray]] = []
        for column in (0, 1):
            by_word: dict[int, list[int]] = {}
            for (col, hashes), atom in atoms.items():
                for h in hashes if col == column else ():
                    by_word.setdefault(h, []).append(atom)
            self._words.append(_WordIndex(list(by_word)))
            self._key_atoms.append(_csr([by_word[h] for h in self._words[-1].keys.tolist()]))

    def _candidates(self, lower: np.ndarray, lemma: np.ndarray, sentence: np.ndarray,
                    real: np.ndarray) -> tuple[list[int], list[int]]:
        """(sentence, pattern) pairs where the sentence holds every word the pattern needs;
        ``sentence`` numbers each token's sentence, ``real`` marks the sentences to use."""
        n, n_patterns = len(real), len(self._patterns)
        present = np.zeros((n, self._n_atoms), dtype=bool)
        for hashes, words, key_atoms in zip((lower, lemma), self._words, self._key_atoms,
                                            strict=True):
            tokens, keys = words.find(hashes)
            rows, atoms = _expand(key_atoms, keys)
            present[sentence[tokens][rows], atoms] = True
        sents, atoms = np.divmod(np.flatnonzero(present), self._n_atoms)
        rows, patterns = _expand(self._atom_patterns, atoms)
        held = np.bincount(sents[rows] * n_patterns + patterns, minlength=n * n_patterns)
        ok = (held.reshape(n, n_patterns) == self._need) & real[:, None]
        sents, patterns = np.divmod(np.flatnonzero(ok), n_patterns)
        return sents.tolist(), patterns.tolist()

    def docs(self, texts: Iterable[str]) -> Iterable[Doc]:
        """The texts processed by ``self.nlp``, in order (each with its word gaps written as
        one space: the doc's text is not the text, its words are the text's words)."""
        return (doc for _, docs, _ in self._batches(texts) for doc in docs)

    def _batches(self, texts: Iterable[str]) -> Iterator[
            tuple[list[str], list[Doc], tuple[np.ndarray, np.ndarray] | None]]:
        """Batches of texts, their processed docs and, if at hand, the docs' ``_COLUMNS``.

        With the pipeline of :func:`make_nlp` both components run here, fused: one array
        read and one write per doc serve them and the rule matching (reading and writing
        token attributes costs more per doc than the components' own work).
        """
        pipes = [proc for _, proc in self.nlp.pipeline]
        fused = [type(proc) for proc in pipes] == [LookupLemmas, PunctSentences]
        if fused and (self._lexicon is None or self._lexicon.lemmas is not pipes[0]):
            self._lexicon = _Lexicon(self.nlp.vocab, pipes[0])
        for batch in minibatch(texts, self.batch_size):
            spaced = [_word_gaps_as_spaces(text) for text in batch]
            if fused:
                docs = [self.nlp.make_doc(text) for text, _ in spaced]
            else:
                docs = list(self.nlp.pipe([text for text, _ in spaced],
                                          batch_size=self.batch_size))
            full = [i for i, doc in enumerate(docs) if len(doc)]
            if not full:
                yield batch, docs, None
                continue
            full_docs = [docs[i] for i in full]
            shifts = [spaced[i][1] for i in full]
            if not fused:
                columns, bounds = _stacked(full_docs, _COLUMNS)
                _shift_back(columns[:, 2], bounds, shifts)
                yield batch, docs, (columns, bounds)
                continue
            arr, bounds = _stacked(full_docs, [ORTH, IDX])
            _shift_back(arr[:, 1], bounds, shifts)
            lemma, lower, space, length, punct = self._lexicon.rows(arr[:, 0]).T
            start = pipes[1].values(np.column_stack([arr[:, 0], space]), bounds)
            _scatter(full_docs, bounds, [LEMMA, SENT_START], np.column_stack([lemma, start]))
            columns = np.column_stack([start, space, arr[:, 1], length, lower, lemma, punct])
            yield batch, docs, (columns, bounds)

    def _match_batch(self, docs: Sequence[Doc], texts: Sequence[str],
                     columns: tuple[np.ndarray, np.ndarray] | None) -> list[RuleResult]:
        """Hits and sentence boundaries of a batch's docs, with array operations over all
        their tokens (``columns``: the non-empty docs' ``_COLUMNS``, offsets into
        ``texts``, and bounds, as :meth:`_batches` gives them)."""
        results = [RuleResult() for _ in docs]
        full = [i for i, doc in enumerate(docs) if len(doc)]
        if not full or columns is None:
            return results
        arr, bounds = columns
        is_start = arr[:, 0] == 1
        # Sentences of all docs in a row; a doc's tokens before its first sentence start
        # (only with a custom pipeline) form a group that is no sentence.
        group = is_start.copy()
        group[bounds[:-1]] = True
        g_start = np.flatnonzero(group)
        g_end = np.append(g_start[1:], len(arr))
        real = is_start[g_start]
        # A sentence ends at its last token that is not whitespace (a blank line).
        words = np.append(np.flatnonzero(arr[:, 1] == 0), len(arr))  # (sentinel)
        last = words[np.maximum(np.searchsorted(words, g_end) - 1, 0)]
        has_words = real & (last >= g_start) & (last < g_end)
        last = np.minimum(last, len(arr) - 1)
        tok_start = arr[:, 2].astype(np.int64)
        tok_end = tok_start + arr[:, 3].astype(np.int64)
        spans = [(a, b) if ok else None for a, b, ok in zip(
            tok_start[g_start].tolist(), tok_end[last].tolist(), has_words.tolist(),
            strict=True)]
        doc_groups = np.searchsorted(g_start, bounds).tolist()
        found: list[list[tuple[int, int, int]]] = [[] for _ in full]
        if self._patterns:
            doc_of = np.searchsorted(bounds, g_start, side="right") - 1
            self._token_matches([docs[i] for i in full], arr, bounds.tolist(),
                                np.cumsum(group) - 1, g_start.tolist(), g_end.tolist(),
                                doc_of.tolist(), real, found)
        starts_all = (g_start[real]).tolist()
        real_groups = np.cumsum(real).tolist()
        tok_start_l, tok_end_l = tok_start.tolist(), tok_end.tolist()
        for k, i in enumerate(full):
            doc, result = docs[i], results[i]
            g_lo, g_hi = doc_groups[k], doc_groups[k + 1]
            result.sentences = [s for s in spans[g_lo:g_hi] if s is not None]
            matches = [m for matcher in self._active for m in matcher(doc)] + found[k]
            if not matches:
                continue
            offset = bounds[k]
            r_lo = real_groups[g_lo - 1] if g_lo else 0
            starts = [s - offset for s in starts_all[r_lo:real_groups[g_hi - 1]]]
            result.hits = self._hits(matches, starts, tok_start_l, tok_end_l, offset,
                                     texts[i])
        return results

    def _token_matches(self, docs: list[Doc], arr: np.ndarray, bounds: list[int],
                       sentence: np.ndarray, g_start: list[int], g_end: list[int],
                       doc_of: list[int], real: np.ndarray,
                       found: list[list[tuple[int, int, int]]]) -> None:
        """Adds each doc's token pattern matches to ``found``: each pattern's Matcher runs on
        the sentences that hold its required words and where its regex finds something."""
        sents, patterns = self._candidates(arr[:, 4], arr[:, 5], sentence, real)
        if not sents:
            return
        encoded = self._encode(arr, sents, g_start, g_end)
        for g, p in zip(sents, patterns, strict=True):
            text = encoded[g]
            pattern = self._patterns[p]
            regex = pattern.regex()
            first = regex.search(text)
            if first is None:
                continue
            # spaCy's Matcher steps through the tokens once, each partial match looking only
            # at the current token, and reports a match at the latest on the token after
            # it. So it finds what it finds on the whole sentence on the stretch from where
            # the regex first matches to one token past the longest match from where the
            # regex last matches. (Token offsets: "\x01" starts each token.)
            k = doc_of[g]
            start = g_start[g] - bounds[k]
            a = start + text.count("\x01", 0, first.start())
            b = g_end[g] - bounds[k]
            if pattern.longest is not None:
                last = first.start()
                while (later := regex.search(text, last + 1)) is not None:
                    last = later.start()
                b = min(b, start + text.count("\x01", 0, last) + pattern.longest + 1)
            found[k] += [(key, a + s, a + e) for key, s, e in pattern.matcher(docs[k][a:b])]

    def _encode(self, arr: np.ndarray, sents: list[int], g_start: list[int],
                g_end: list[int]) -> dict[int, str]:
        """The given sentences (group numbers) as "\x01lower\x02lemma\x03" per token."""
        groups = sorted(set(sents))
        starts = np.array([g_start[g] for g in groups])
        sizes = np.array([g_end[g] - g_start[g] for g in groups])
        tokens = np.arange(int(sizes.sum())) + np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
        parts = [""] * (2 * len(tokens))
        parts[0::2] = map(self._pieces[0].__getitem__, arr[tokens, 4].tolist())
        parts[1::2] = map(self._pieces[1].__getitem__, arr[tokens, 5].tolist())
        ends = (2 * np.cumsum(sizes)).tolist()
        return {g: "".join(parts[a:b])
                for g, a, b in zip(groups, [0, *ends[:-1]], ends, strict=True)}

    def _hits(self, matches: list[tuple[int, int, int]], starts: list[int],
              tok_start: list[int], tok_end: list[int], offset: int, text: str
              ) -> dict[str, RuleHit]:
        """Hits per code from one doc's matches (match id, first token, end token), without
        those in a sentence (``starts``: first tokens) matching one of the code's exclusions;
        the doc's tokens' character offsets are ``tok_start/end[offset:]``."""
        found: dict[str, set[tuple[int, int, int]]] = {}
        excluded: set[tuple[str, int]] = set()
        for match_id, start, end in matches:
            code_id, exclusion = self._labels[match_id]
            sent = bisect.bisect_right(starts, start) - 1
            if exclusion:
                last = bisect.bisect_right(starts, end - 1) - 1
                excluded.update((code_id, k) for k in range(sent, last + 1))
            else:
                found.setdefault(code_id, set()).add((start, end, sent))
        hits = {}
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
            chars = tuple((tok_start[offset + s], tok_end[offset + e - 1]) for s, e in merged)
            # (a match across a line break reads as the words it matched)
            evidence = tuple(dict.fromkeys(" ".join(text[a:b].split()) for a, b in chars))
            hits[code_id] = RuleHit(code_id, evidence, chars)
        return hits

    def match_docs(self, texts: Sequence[str]) -> Iterator[tuple[Doc, RuleResult]]:
        """Each text's processed doc and its rule result, in order (one pass of
        ``self.nlp``); callers that need more than the hits (token features) read the doc."""
        for batch, docs, columns in self._batches(texts):
            yield from zip(docs, self._match_batch(docs, batch, columns), strict=True)

    def match_words(self, texts: Sequence[str]
                    ) -> tuple[list[RuleResult], np.ndarray, np.ndarray]:
        """:meth:`match`, and the texts' word tokens as :func:`~qualcode.embed.doc_words`
        gives them (offsets into the texts), stacked, with each row's text index; they come
        from the arrays the rule pass holds (reading the docs again cost a tenth of
        scoring)."""
        results: list[RuleResult] = []
        words, rows = [], []
        for batch, docs, columns in self._batches(texts):
            first = len(results)
            results.extend(self._match_batch(docs, batch, columns))
            if columns is None:  # no words at all
                continue
            arr, bounds = columns
            keep = (arr[:, 1] == 0) & (arr[:, 6] == 0)  # not space, not punctuation
            full = np.flatnonzero([len(doc) > 0 for doc in docs])
            stacked, of = arr[keep][:, [4, 5, 2]], np.repeat(full, np.diff(bounds))[keep]
            words.append(stacked)
            rows.append(of + first)
        if not words:
            return results, np.zeros((0, 3), dtype=np.uint64), np.zeros(0, dtype=np.int64)
        return results, np.concatenate(words), np.concatenate(rows)

    def match(self, texts: Iterable[str]) -> list[RuleResult]:
        """Rule hits and sentence spans for each text, in order (one pass of ``self.nlp``)."""
        return [result for _, result in self.match_docs(list(texts))]

    def hit_matrix(self, results: Sequence[RuleResult]) -> np.ndarray:
        """0/1 matrix, one row per result and one column per code (in ``code_ids`` order)."""
        out = np.zeros((len(results), len(self.code_ids)), dtype=np.float32)
        col = {c: j for j, c in enumerate(self.code_ids)}
        for i, res in enumerate(results):
            for code_id in res.hits:
                out[i, col[code_id]] = 1.0
        return out


class _Lexicon(dict[int, int]):
    """Word (orth hash) -> row in ``table`` of its lemma (as :class:`LookupLemmas` sets it),
    lower-case form, is-space flag, length and is-punctuation flag. Looking these up once
    per distinct word of a batch is cheaper than reading the lexeme attributes of every
    token."""

    def __init__(self, vocab: Any, lemmas: LookupLemmas) -> None:
        super().__init__()
        self.vocab, self.lemmas = vocab, lemmas
        self.table = np.zeros((1024, 5), dtype=np.uint64)

    def __missing__(self, orth: int) -> int:
        lex, row = self.vocab[orth], len(self)
        if row == len(self.table):
            self.table = np.concatenate([self.table, np.zeros_like(self.table)])
        self.table[row] = (self.lemmas.lemma_of.get(orth, lex.lower), lex.lower, lex.is_space,
                           len(lex.orth_), lex.is_punct)
        self[orth] = row
        return row

    def rows(self, orth: np.ndarray) -> np.ndarray:
        """(lemma, lower, is space, length, is punctuation) of each token (``orth``)."""
        words, which = np.unique(orth, return_inverse=True)
        rows = np.fromiter(map(self.__getitem__, words.tolist()), dtype=np.int64,
                           count=len(words))
        return self.table[rows[which]]


class _WordIndex:
    """Sorted string hashes, and where many hashes are among them, at once: a table on the
    hashes' low bits, with a binary search only for the slots two of the words share."""

    def __init__(self, hashes: list[int]) -> None:
        self.keys = np.array(sorted(hashes), dtype=np.uint64)
        size = 1 << max(10, (4 * len(self.keys)).bit_length())
        self.mask = np.uint64(size - 1)
        self.table = np.full(size, -1, dtype=np.int64)
        slots = (self.keys & self.mask).astype(np.int64)
        self.table[slots] = np.arange(len(self.keys))
        used, count = np.unique(slots, return_counts=True)
        self.table[used[count > 1]] = -2

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the given hashes that are keys, and their rows in ``keys``."""
        at = self.table[(hashes & self.mask).astype(np.int64)]
        shared = np.flatnonzero(at == -2)
        if len(shared):
            found = np.searchsorted(self.keys, hashes[shared])
            at[shared] = np.minimum(found, len(self.keys) - 1)
        maybe = np.flatnonzero(at >= 0)
        hit = maybe[self.keys[at[maybe]] == hashes[maybe]]
        return hit, at[hit]


def _csr(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ints as (row pointers, values)."""
    ptr = np.cumsum([0] + [len(values) for values in lists])
    return ptr, np.array([v for values in lists for v in values], dtype=np.int64)


def _expand(csr: tuple[np.ndarray, np.ndarray], rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The values of the given CSR rows, each with its position in ``rows``."""
    ptr, values = csr
    count = ptr[rows + 1] - ptr[rows]
    first = np.cumsum(count) - count
    at = np.arange(int(count.sum())) + np.repeat(ptr[rows] - first, count)
    return np.repeat(np.arange(len(rows)), count), values[at]


def _allowed_words(value: Any) -> set[str] | None:
    """The strings a token attribute value allows (a string or ``{"IN": [...]}``), or None
    when it is anything else (NOT_IN, REGEX, comparisons, ...) and so allows any word."""
    if isinstance(value, str):
        return {value}
    if not isinstance(value, dict):
        return None
    allowed = None
    for key, words in value.items():
        if isinstance(key, str) and key.upper() == "IN" and isinstance(words, list | tuple) \
                and all(isinstance(w, str) for w in words):
            allowed = set(words) if allowed is None else allowed & set(words)
    return allowed


def _alternatives(words: set[str]) -> str:
    """A regex matching exactly these words (control characters removed, as in sentences)."""
    return "(?:" + "|".join(sorted({re.escape(_CONTROL.sub("", w)) for w in words})
                            or ["(?!)"]) + ")"


def _most(quantifier: str) -> float:
    """How many tokens a regex quantifier from :func:`_quantifier` allows at most."""
    if quantifier in ("*", "+") or quantifier.endswith(",}"):
        return math.inf
    return int(quantifier.strip("{}").split(",")[-1]) if quantifier.startswith("{") else 1


def _quantifier(op: Any) -> str:
    """spaCy's OP as a regex quantifier; an unknown one as ``*``."""
    simple = {"1": "", "?": "?", "*": "*", "+": "+", "!": ""}
    if isinstance(op, str) and op in simple:
        return simple[op]
    bounds = re.fullmatch(r"\{(\d*)(,?)(\d*)\}", op) if isinstance(op, str) else None
    if bounds is None:
        return "*"
    low, comma, high = bounds.groups()
    if not comma:
        return f"{{{int(low)}}}" if low else "*"
    return f"{{{int(low or 0)},{int(high) if high else ''}}}"
