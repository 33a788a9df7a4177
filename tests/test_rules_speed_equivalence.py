"""The fast rule layer finds exactly what a plain spaCy implementation finds.

The reference below is deliberately simple: white-space tokens between words that hold no
blank line left out of the doc (a line break inside a paragraph separates words as a space
does), per-token lemma lookup, the sentence rule as a loop over tokens, and for every
sentence one spaCy Matcher per code (all its patterns) run on ``doc[a:b]``, plus the two
PhraseMatchers over the whole doc; exclusions drop a code's hits in any sentence one of its
exclusions touches.
"""

from __future__ import annotations

import bisect
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spacy
from spacy.attrs import LEMMA, SENT_START
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc
from spacy.util import load_language_data, registry

from qualcode.codebook import Category, Code, Codebook, Rules, load_codebook
from qualcode.corpus import flat_segments, read_corpus
from qualcode.rules import RuleMatcher, RuleResult, make_nlp

_ENDS = {".", "!", "?", "…", "..."}
_SKIP = _ENDS | {'"', "'", ")", "]", "’", "”", "»"}
_EXCLUDE = "\x00exclude\x00"

Outcome = tuple[dict[str, tuple[tuple[str, ...], tuple[tuple[int, int], ...]]],
                list[tuple[int, int]]]


class Reference:
    """Rules applied the slow, obvious way (see the module docstring)."""

    def __init__(self, book: Any) -> None:
        self.nlp = spacy.blank("en")
        strings = self.nlp.vocab.strings
        table = load_language_data(registry.lookups.get("en")["lemma_lookup"])
        self.lemma_of: dict[int, int] = {}
        for form, lemma in table.items():
            self.lemma_of[strings.add(form)] = strings.add(lemma)
        for form, lemma in table.items():
            for variant in (form.lower(), form.capitalize(), form.upper()):
                self.lemma_of.setdefault(strings.add(variant), strings[lemma])
        self.lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self.lemma = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        self.token: list[Matcher] = []
        for code in book.codes:
            r = code.rules
            for label, phrases, patterns in ((code.id, r.phrases, r.patterns),
                                             (_EXCLUDE + code.id, r.exclude_phrases,
                                              r.exclude_patterns)):
                docs = [d for d in map(self.process, phrases) if len(d)]
                if docs:
                    self.lower.add(label, [self.nlp.make_doc(d.text) for d in docs])
                    self.lemma.add(label, docs)
                if patterns:
                    matcher = Matcher(self.nlp.vocab)
                    matcher.add(label, patterns)
                    self.token.append(matcher)

    def process(self, text: str, *, word_gaps: bool = True) -> Doc:
        """The doc, and in ``self.idx`` each token's offset in ``text``."""
        doc = self.nlp.make_doc(text)
        if word_gaps:
            gap = [t.is_space and t.text.count("\n") < 2 for t in doc]
            kept = [t for t in doc if not (gap[t.i] and t.i)]  # a leading gap is a space
            self.idx = [t.idx for t in kept]
            doc = Doc(self.nlp.vocab, words=[" " if gap[t.i] else t.text for t in kept])
        else:
            self.idx = [t.idx for t in doc]
        if not len(doc):
            return doc
        lemmas = [self.lemma_of.get(t.orth, t.lower) for t in doc]
        starts = [-1] * len(doc)
        starts[0] = 1
        pending = False
        for i, t in enumerate(doc):
            if pending:
                if t.text in _SKIP or t.is_space:
                    continue
                starts[i] = 1
                pending = False
            if t.text in _ENDS or (t.is_space and t.text.count("\n") > 1):
                pending = True
        doc.from_array([LEMMA, SENT_START], np.column_stack([
            np.array(lemmas, dtype=np.uint64), np.array(starts).astype(np.uint64)]))
        return doc

    def match(self, text: str) -> Outcome:
        doc = self.process(text)
        idx = self.idx
        starts = [t.i for t in doc if t.is_sent_start]
        sentences = []
        matches = self.lower(doc) + self.lemma(doc)
        for a, b in itertools.pairwise([*starts, len(doc)]):
            words = [t for t in doc[a:b] if not t.is_space]
            if words:
                sentences.append((idx[a], idx[words[-1].i] + len(words[-1])))
            for matcher in self.token:
                matches += [(k, a + s, a + e) for k, s, e in matcher(doc[a:b])]
        found: dict[str, set[tuple[int, int, int]]] = {}
        excluded = set()
        for key, start, end in matches:
            label = self.nlp.vocab.strings[key]
            first = bisect.bisect_right(starts, start) - 1
            if label.startswith(_EXCLUDE):
                last = bisect.bisect_right(starts, end - 1) - 1
                excluded |= {(label[len(_EXCLUDE):], k) for k in range(first, last + 1)}
            else:
                found.setdefault(label, set()).add((start, end, first))
        hits = {}
        for code_id, spans in found.items():
            merged: list[list[int]] = []
            for s, e in sorted((s, e) for s, e, k in spans if (code_id, k) not in excluded):
                if merged and s < merged[-1][1]:
                    merged[-1][1] = max(e, merged[-1][1])
                else:
                    merged.append([s, e])
            chars = tuple((idx[s], idx[e - 1] + len(doc[e - 1])) for s, e in merged)
            if chars:
                hits[code_id] = (tuple(dict.fromkeys(" ".join(text[a:b].split())
                                                     for a, b in chars)), chars)
        return hits, sentences


def _outcome(result: RuleResult) -> Outcome:
    return ({c: (h.evidence, h.spans) for c, h in result.hits.items()}, result.sentences)


def _assert_same(matcher: RuleMatcher, reference: Reference, texts: list[str]) -> int:
    got = [_outcome(r) for r in matcher.match(texts)]
    for text, mine in zip(texts, got, strict=True):
        assert mine == reference.match(text), text
    return sum(len(hits) for hits, _ in got)


def _book(*codes: Code) -> Codebook:
    return Codebook(name="t", version="1", categories=[Category(id="cat", name="Cat")],
                    codes=list(codes))


def _code(code_id: str, **rules: Any) -> Code:
    return Code(id=code_id, name=code_id, category="cat", definition="d", rules=Rules(**rules))


TRICKY = _book(
    _code("quran", patterns=[[{"LOWER": "qur'anic"}, {"OP": "{0,3}"}, {"LEMMA": "principle"}]]),
    _code("negated", patterns=[[{"LOWER": {"IN": ["n't", "not", "never"]}}, {"LEMMA": "go"}]],
          exclude_patterns=[[{"LOWER": "there"}, {"ORTH": "."}]]),
    _code("bracket", patterns=[[{"ORTH": "("}, {"OP": "{1,3}"}, {"ORTH": ")"}]]),
    _code("sentence_end", patterns=[[{"LEMMA": {"IN": ["stop", "leave"]}}, {"ORTH": "."}],
                                    [{"LEMMA": "leave"}, {"IS_PUNCT": True}]]),
    _code("optional", patterns=[[{"LOWER": "walk"}, {"LOWER": "right", "OP": "?"},
                                 {"LOWER": "away"}],
                                [{"lower": "over"}, {}, {"lemma": {"in": ["coffee", "tea"]}}]]),
    _code("gap", patterns=[[{"LEMMA": "threaten"}, {"OP": "{0,3}"}, {"LEMMA": "stop"}]],
          exclude_phrases=["donor condition"]),
    _code("star_plus", patterns=[[{"LOWER": "very", "OP": "*"}, {"LOWER": "angry"}],
                                 [{"LOWER": "no", "OP": "+"}, {"LOWER": "way"}],
                                 [{"LOWER": "no", "op": "{2}"}, {"LOWER": "no", "OP": "{,1}"}],
                                 [{"LOWER": "ha", "OP": "{2,}"}]]),
    _code("negation_op", patterns=[[{"LOWER": "not", "OP": "!"}, {"LEMMA": "agree"}],
                                   [{"LOWER": "a"}, {"LOWER": {"NOT_IN": ["good", "bad"]}},
                                    {"LOWER": "deal"}]]),
    _code("case", patterns=[[{"ORTH": "UN"}, {"LOWER": "agency"}], [{"TEXT": "Geneva"}]]),
    _code("other_attrs", patterns=[[{"LIKE_NUM": True}, {"LOWER": {"IN": ["trucks", "lorries"]}}],
                                   [{"LOWER": {"REGEX": "^check"}}, {"LOWER": "point", "OP": "?"}],
                                   [{"LOWER": "a"}, {"IS_SPACE": True, "OP": "?"},
                                    {"LOWER": "b"}],
                                   [{"LENGTH": {">=": 12}}]]),
    _code("specials", patterns=[[{"LOWER": "e.g."}], [{"ORTH": "*"}, {"LOWER": "star"}],
                                [{"LOWER": "a|b"}], [{"LOWER": "c++"}], [{"ORTH": "$"}],
                                [{"LOWER": "x\x02y"}], [{"ORTH": "?"}, {"ORTH": "?", "OP": "*"}]]),
    _code("phrases", phrases=["press release", "walk away", "end . then"],
          exclude_patterns=[[{"LOWER": "not"}, {"LOWER": "public"}]]),
)

TEXTS = [
    "The Qur'anic principle (as they said) was clear. We don't go there.",
    "They never go there. But he did not go home!",
    "In May they threatened to suspend the convoy; we threatened to stop, too.",
    "A donor condition applied. Later they threatened loudly to stop.",
    "A donor condition: they threatened to stop.",
    "We walk right away. Walk away! Over a coffee, and over two teas.",
    "They were very very angry. No no no way! No no. Ha ha ha ha.",
    "I do not agree, but she will agree. It was a real deal, not a good deal.",
    "They will agree. We do not agree.",
    "We met the UN agency in Geneva, e.g. twice.  Then 12 trucks left.",
    "the un agency in geneva? Really?? Yes?!",
    "Checkpoint checks at the check point; a  b and a b; internationally-minded "
    "representatives.",
    "c++ and $5 and a|b and *star* and x\x02y and a\x01b.",
    'He said "stop." Then we walked away!\n\nNew paragraph, a line\nwrapped mid-sentence',
    "It was not public, no press release. Another press release (end. Then) came.",
    "The end . then the press release.",
    "A heading with no stop\n\nthey threatened to stop the aid\nover a wrapped line\n \n"
    "a donor condition\n\n\nthey threatened to stop",
    "",
    "   ",
    "\n\n",
    "(one) (one two three four) () stop. leave!",
]


@pytest.fixture(scope="module")
def tricky() -> tuple[RuleMatcher, Reference]:
    return RuleMatcher(TRICKY, batch_size=4), Reference(TRICKY)


def test_tricky_patterns_match_like_plain_spacy(tricky: tuple[RuleMatcher, Reference]) -> None:
    matcher, reference = tricky
    texts = TEXTS + [t.upper() for t in TEXTS]
    _assert_same(matcher, reference, texts)
    # The cases are meant to fire: every code hits somewhere.
    assert {c for r in matcher.match(texts) for c in r.hits} == set(TRICKY.code_ids)


def test_docs_and_single_text_path_agree(tricky: tuple[RuleMatcher, Reference]) -> None:
    """Docs from the fused batch path carry the reference lemmas and sentence starts (word
    gaps left out), as do docs from ``nlp.pipe`` and ``nlp(text)`` (gaps kept); matching
    texts one by one gives what matching them in batches gives."""
    matcher, reference = tricky
    texts = [t for t in TEXTS if t]
    assert any("\n" in t and t.strip() for t in texts)  # the gaps are there to leave out
    strings, ref_strings = matcher.nlp.vocab.strings, reference.nlp.vocab.strings
    for way, gaps in ((list(matcher.docs(texts)), True),
                      (list(matcher.nlp.pipe(texts, batch_size=3)), False),
                      ([matcher.nlp(t) for t in texts], False)):
        for doc, text in zip(way, texts, strict=True):
            want = reference.process(text, word_gaps=gaps).to_array([LEMMA, SENT_START])
            arr = doc.to_array([LEMMA, SENT_START])
            assert [strings[h] for h in arr[:, 0].tolist()] == \
                [ref_strings[h] for h in want[:, 0].tolist()]
            assert arr[:, 1].tolist() == want[:, 1].tolist()
    single = [matcher.match([t])[0] for t in texts]
    assert [_outcome(r) for r in single] == [_outcome(r) for r in matcher.match(texts)]


@Language.component("qualcode_test_noop")
def _noop(doc: Doc) -> Doc:
    return doc


def test_custom_pipeline_takes_the_plain_path(tricky: tuple[RuleMatcher, Reference]) -> None:
    nlp = make_nlp()
    nlp.add_pipe("qualcode_test_noop")
    _assert_same(RuleMatcher(TRICKY, nlp=nlp, batch_size=5), tricky[1], TEXTS)


def test_default_codebook_on_the_dev_set(devset: Path, codebook_path: Path) -> None:
    book = load_codebook(codebook_path)
    texts = [s.text for s in flat_segments(read_corpus(devset / "corpus")) if s.codable]
    assert _assert_same(RuleMatcher(book), Reference(book), texts) > 0
