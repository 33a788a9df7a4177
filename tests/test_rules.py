"""Rule layer: phrases on lower-case text and lemmas, token patterns, exclusions, evidence."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import spacy

from qualcode.codebook import Category, Code, Codebook, Rules
from qualcode.rules import RuleError, RuleMatcher, make_nlp

SRC = Path(__file__).resolve().parents[1] / "src" / "qualcode"


def _book(*codes: Code) -> Codebook:
    return Codebook(name="t", version="1", categories=[Category(id="cat", name="Cat")],
                    codes=list(codes))


def _code(code_id: str, **rules) -> Code:
    return Code(id=code_id, name=code_id, category="cat", definition="d", rules=Rules(**rules))


@pytest.fixture(scope="module")
def matcher() -> RuleMatcher:
    return RuleMatcher(_book(
        _code("halt", phrases=["suspend distribution", "walk away"],
              patterns=[[{"LEMMA": "threaten"}, {"LOWER": "to"},
                         {"LEMMA": {"IN": ["stop", "suspend"]}}]],
              exclude_phrases=["donor condition"]),
        _code("press", phrases=["press release"],
              exclude_patterns=[[{"LOWER": "not"}, {"LOWER": "public"}]]),
        _code("empty"),
    ))


def test_phrases_match_lemmas_and_case(matcher: RuleMatcher) -> None:
    [res] = matcher.match(["Suspended distributions twice. Then a PRESS RELEASE went out."])
    assert set(res.hits) == {"halt", "press"}
    assert res.hits["halt"].evidence == ("Suspended distributions",)
    assert res.hits["press"].evidence == ("PRESS RELEASE",)


def test_token_pattern_and_evidence_offsets(matcher: RuleMatcher) -> None:
    text = "In May they threatened to suspend the convoy; we threatened to stop, too."
    [res] = matcher.match([text])
    hit = res.hits["halt"]
    assert hit.evidence == ("threatened to suspend", "threatened to stop")
    assert [text[a:b] for a, b in hit.spans] == list(hit.evidence)
    assert hit.text == "threatened to suspend; threatened to stop"


def test_rules_match_across_line_breaks_tabs_and_runs_of_spaces(matcher: RuleMatcher) -> None:
    # Hard-wrapped transcripts break lines inside sentences: a line break (or a tab, or
    # several spaces) between two words separates them as one space does. A blank line
    # still ends the sentence, so nothing matches across it.
    text = ("We said we would\n  suspend\tdistributions, and they  threatened to\nstop "
            "us.\n\nA press\n\nrelease.")
    [res] = matcher.match([text])
    hit = res.hits["halt"]
    assert hit.evidence == ("suspend distributions", "threatened to stop")
    assert [text[a:b] for a, b in hit.spans] == ["suspend\tdistributions",
                                                 "threatened to\nstop"]
    assert "press" not in res.hits
    assert [text[a:b] for a, b in res.sentences] == [
        "We said we would\n  suspend\tdistributions, and they  threatened to\nstop us.",
        "A press", "release."]


def test_exclusion_suppresses_hits_in_its_sentence_only(matcher: RuleMatcher) -> None:
    same, other = matcher.match([
        "A donor condition forced us to suspend distribution.",
        "A donor condition applied. Later we had to suspend distribution.",
    ])
    assert "halt" not in same.hits
    assert other.hits["halt"].evidence == ("suspend distribution",)
    [res] = matcher.match(["It was not public, no press release."])
    assert res.hits == {}


def test_no_hits_and_empty_text(matcher: RuleMatcher) -> None:
    a, b = matcher.match(["Nothing to see here.", ""])
    assert a.hits == {} and b.hits == {} and b.sentences == []
    assert a.sentences == [(0, 20)]


def test_sentences_and_hit_matrix(matcher: RuleMatcher) -> None:
    text = ('He said "stop." Then we walked away!\n\nNew paragraph, a line\nwrapped '
            "mid-sentence")
    results = matcher.match([text, "press release"])
    sents = [text[a:b] for a, b in results[0].sentences]
    assert sents == ['He said "stop."', "Then we walked away!",
                     "New paragraph, a line\nwrapped mid-sentence"]
    m = matcher.hit_matrix(results)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0]]
    assert matcher.code_ids == ["halt", "press", "empty"]


def test_lemmas_equal_spacy_lookup_lemmatizer() -> None:
    text = ("The agencies suspended distributions; commanders were threatening staff, and "
            "negotiators went back with better data on checkpoints.")
    reference = spacy.blank("en")
    reference.add_pipe("lemmatizer", config={"mode": "lookup"})
    reference.initialize()
    ours = make_nlp()
    assert [t.lemma_ for t in ours(text)] == [t.lemma_ for t in reference(text.lower())]
    assert ours("Suspended")[0].lemma_ == "suspend"


def test_invalid_pattern_names_the_code() -> None:
    with pytest.raises(RuleError, match=r"R002: code 'bad'.*rules.patterns\[0\]"):
        RuleMatcher(_book(_code("bad", patterns=[[{"LEMMA": {"NOPE": 1}}]])))


def test_batches_are_consistent(matcher: RuleMatcher) -> None:
    texts = [f"Case {i}: we threatened to stop aid." if i % 3 else f"Case {i}." for i in range(600)]
    hits = matcher.hit_matrix(matcher.match(texts))
    assert np.array_equal(hits[:, 0], [1.0 if i % 3 else 0.0 for i in range(600)])


def test_no_codebook_content_in_python(codebook_path: Path) -> None:
    if not codebook_path.exists():
        pytest.skip("no default codebook.yaml yet")
    from qualcode.codebook import load_codebook

    book = load_codebook(codebook_path)
    words = set(book.code_ids) | {c.id for c in book.categories}
    for module in ("rules.py", "model.py", "embed.py"):
        source = (SRC / module).read_text(encoding="utf-8")
        found = [w for w in words if re.search(rf"\b{re.escape(w)}\b", source)]
        assert not found, f"{module} names codebook ids {found}"
