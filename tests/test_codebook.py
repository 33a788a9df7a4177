"""The codebook schema, its validator and the default codebook.yaml (real files, no mocks)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import spacy
from spacy.matcher import Matcher, PhraseMatcher

from qualcode.codebook import (
    Codebook,
    CodebookError,
    CodebookProblem,
    check_codebook,
    codebook_warnings,
    load_codebook,
    summary_table,
    validate_codebook,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "codebook.yaml"

SPEC_CODES = {
    "lever_tactic": [
        "relationship_building", "normative_persuasion", "humanitarian_coordination",
        "third_party_influence", "conditionality", "public_advocacy", "alternative_modalities",
        "value_demonstration", "institutional_constraints", "incremental_approach",
        "evidence_and_expertise", "community_leverage",
    ],
    "power_mechanism": ["alternatives", "commitment", "interdependence"],
    "counterpart_pressure": ["armed_group_pressure"],
    "outcome": ["principled_agreement", "compromised_agreement"],
}

# A small valid codebook; tests break it on purpose. Line numbers matter: see the comments.
BASE = """\
name: Test codebook
version: "0.1"
categories:
  - id: tactic
    name: Tactics
  - id: outcome
    name: Outcomes
codes:
  - id: pause
    name: Pausing aid
    category: tactic
    definition: The agency pauses aid to press the group.
    examples:
      positive: [We paused the distribution.]
    rules:
      phrases: [paused the distribution]
      patterns:
        - [{LEMMA: pause}, {LOWER: aid}]
  - id: deal
    name: A deal
    category: outcome
    definition: An agreement was reached.
    related: [pause]
"""
# line 9: "- id: pause", 18: its pattern, 19: "- id: deal", 21: its category,
# 22: its definition, 23: its related


@pytest.fixture(scope="module")
def nlp() -> spacy.language.Language:
    return spacy.blank("en")


@pytest.fixture(scope="module")
def default_book() -> Codebook:
    return load_codebook(DEFAULT)


def write(tmp_path: Path, text: str, name: str = "codebook.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def broken(tmp_path: Path, old: str, new: str) -> list[CodebookProblem]:
    """Problems of BASE with one edit (which must apply exactly once)."""
    assert BASE.count(old) == 1, old
    book, problems = validate_codebook(write(tmp_path, BASE.replace(old, new)))
    assert book is None
    return problems


def single(problems: list[CodebookProblem]) -> CodebookProblem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --------------------------------------------------------------------------- default codebook


def test_default_codebook_has_the_18_fixed_codes_in_4_categories(default_book):
    assert [c.id for c in default_book.categories] == list(SPEC_CODES)
    for category, ids in SPEC_CODES.items():
        assert [c.id for c in default_book.codes_in(category)] == ids
    assert sorted(default_book.code_ids) == sorted(i for ids in SPEC_CODES.values() for i in ids)
    assert len(default_book.code_ids) == 18
    assert default_book.sha256 == hashlib.sha256(DEFAULT.read_bytes()).hexdigest()
    assert default_book.path == str(DEFAULT)


def test_every_default_code_is_complete_and_its_rules_compile(default_book, nlp):
    ids = set(default_book.code_ids)
    for code in default_book.codes:
        assert len(code.definition.split()) >= 30, code.id
        assert code.include and code.name.strip(), code.id
        assert len(code.examples.positive) >= 3, code.id
        assert len(code.examples.negative) >= 2, code.id
        assert len(code.rules.phrases) + len(code.rules.patterns) >= 10, code.id
        assert set(code.related) <= ids - {code.id}, code.id
        matcher = Matcher(nlp.vocab, validate=True)
        for i, pattern in enumerate(code.rules.patterns + code.rules.exclude_patterns):
            matcher.add(f"{code.id}-{i}", [pattern])
        phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
        for phrase in code.rules.phrases + code.rules.exclude_phrases:
            assert phrase.strip() and phrase == phrase.lower(), (code.id, phrase)
            phrases.add(code.id, [nlp.make_doc(phrase)])


def test_default_rules_fire_on_positive_examples_and_not_on_near_misses(default_book):
    """Precision guard with the real rule layer: no code's rules hit its own negatives."""
    from qualcode.rules import RuleMatcher

    matcher = RuleMatcher(default_book)
    for code in default_book.codes:
        positives = matcher.match(code.examples.positive)
        negatives = matcher.match(code.examples.negative)
        assert any(code.id in r.hits for r in positives), code.id
        hits = [t for t, r in zip(code.examples.negative, negatives, strict=True)
                if code.id in r.hits]
        assert not hits, (code.id, hits)


def test_no_default_code_id_appears_in_the_library_code(default_book):
    """The codebook is data: swapping codebook.yaml for another study's must just work.

    Looks for the ids as string literals (ids such as 'commitment' are also English words
    that may fairly appear in prose).
    """
    sources = [*(ROOT / "src" / "qualcode").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
    words = set(default_book.code_ids) | {c.id for c in default_book.categories}
    for source in sources:
        text = source.read_text(encoding="utf-8")
        found = sorted(w for w in words if re.search(rf"""["']{re.escape(w)}["']""", text))
        assert not found, f"{source.relative_to(ROOT)} names {found}"


def test_default_codebook_checks_clean():
    status, report = check_codebook(DEFAULT)
    assert status == 0, report
    assert "OK" in report.splitlines()[0]
    assert "warning" not in report, report


def test_default_codebook_has_labelled_segments_for_every_code(default_book):
    texts, codes, groups = default_book.training_segments()
    assert len(texts) >= 300 and len(set(groups)) >= 100
    for code in default_book.codes:  # enough to learn from, for every code
        assert sum(code.id in c for c in codes) >= 15, code.id
    assert sum(not c for c in codes) >= 30  # and segments that carry no code


# --------------------------------------------------------------------------- codebook API


def test_labelled_segments_are_training_data(tmp_path):
    text = BASE.replace(
        "    rules:\n      phrases: [paused the distribution]",
        "    segments: [\"D-1:2\"]\n    rules:\n      phrases: [paused the distribution]",
    ) + """\
    segments: ["D-1:2", "D-2:1", "nowhere:1"]
labelled_segments:
  - id: "D-1:2"
    text: We stopped the trucks until the fee was dropped, and then they signed.
  - id: "D-1:4"
    text: Nothing happened that week.
  - id: "D-2:1"
    text: The talks ended in an agreement.
  - id: "D-1:4"
    text: A second segment with the same id.
  - id: "D-3:1"
    text: "  "
"""
    path = write(tmp_path, text)
    book = load_codebook(path)
    texts, codes, groups = book.training_segments()
    assert texts == ["We stopped the trucks until the fee was dropped, and then they signed.",
                     "Nothing happened that week.", "The talks ended in an agreement."]
    assert codes == [frozenset({"pause", "deal"}), frozenset(), frozenset({"deal"})]
    assert groups == ["D-1", "D-1", "D-2"]
    warnings = codebook_warnings(book)
    assert any("'D-1:4' is used twice" in w for w in warnings)
    assert any("'D-3:1' has no text" in w for w in warnings)
    assert any("code 'deal' lists segments that are not among labelled_segments "
               "('nowhere:1')" in w for w in warnings)
    status, report = check_codebook(path)
    assert status == 0 and "5 labelled segments" in report
    assert re.search(r"  deal +A deal +0 +0 +3 +0", report)
    # what the classifier learns from is in the codebook's hash
    path.write_text(text.replace("Nothing happened", "Nothing at all happened"),
                    encoding="utf-8")
    assert load_codebook(path).sha256 != book.sha256


def test_lookup_helpers(tmp_path):
    book = load_codebook(write(tmp_path, BASE))
    assert book.code_ids == ["pause", "deal"]
    assert book.code("deal").category == "outcome"
    assert book.category("tactic").name == "Tactics"
    assert [c.id for c in book.codes_in("outcome")] == ["deal"]
    assert book.code("pause").rules.patterns == [[{"LEMMA": "pause"}, {"LOWER": "aid"}]]
    assert book.code("deal").examples.positive == []  # optional parts default to empty
    with pytest.raises(KeyError, match="pause, deal"):
        book.code("nope")
    with pytest.raises(KeyError, match="tactic, outcome"):
        book.category("nope")


def test_problem_str_names_file_line_where_and_fix():
    p = CodebookProblem("codebook.yaml", 42, "codes[3] 'x' rules.patterns[0]", "bad.", "do y.")
    assert str(p) == "codebook.yaml:42: codes[3] 'x' rules.patterns[0]: bad. Fix: do y."
    assert str(CodebookProblem("cb.yaml", None, "", "file not found.", "check.")) == \
        "cb.yaml: file not found. Fix: check."


# --------------------------------------------------------------------------- error kinds


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    book, problems = validate_codebook(path)
    p = single(problems)
    assert book is None and p.line is None and p.file == str(path)
    assert p.message == "file not found." and "check the path" in p.fix


def test_folder_instead_of_file(tmp_path):
    p = single(validate_codebook(tmp_path)[1])
    assert "folder" in p.message and ".yaml file" in p.fix


def test_not_utf8(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_bytes(b"name: x\nversion: '1'\ndescription: caf\xe9\n")
    p = single(validate_codebook(path)[1])
    assert p.line == 3 and "not UTF-8" in p.message and "UTF-8" in p.fix


def test_yaml_syntax_error_has_yamls_line(tmp_path):
    p = single(broken(tmp_path, "    name: A deal\n", "    name: A deal: with a colon\n"))
    assert p.line == 20
    assert p.message.startswith("YAML syntax error: mapping values are not allowed here")
    assert "quotes" in p.fix


def test_yaml_nested_too_deeply(tmp_path):
    deep = BASE.replace("    definition: An agreement was reached.\n",
                        "    definition: An agreement was reached.\n    include: "
                        + "[" * 3000 + "]" * 3000 + "\n")
    problem = single(validate_codebook(write(tmp_path, deep))[1])
    assert "nested too deeply" in problem.message and "'['" in problem.fix


def test_tab_indentation(tmp_path):
    p = single(broken(tmp_path, "    name: A deal\n", "\tname: A deal\n"))
    assert p.line == 20 and p.fix == "indent with spaces, not tabs."


@pytest.mark.parametrize(("text", "got"), [("", "the file is empty"),
                                           ("- a\n- b\n", "the file holds a list")])
def test_top_level_not_a_mapping(tmp_path, text, got):
    p = single(validate_codebook(write(tmp_path, text))[1])
    assert "top level must be a mapping" in p.message and got in p.message
    assert "name: ..." in p.fix


def test_missing_required_field_points_at_the_entry(tmp_path):
    p = single(broken(tmp_path, "    definition: An agreement was reached.\n", ""))
    assert p.line == 19 and p.where == "codes[1] 'deal'"
    assert p.message == "missing required field 'definition'."
    assert p.fix == "add a line 'definition: ...' to this entry."


def test_unknown_field_suggests_the_closest(tmp_path):
    p = single(broken(tmp_path, "    definition: An agreement", "    defintion: An agreement"))
    assert p.line == 22 and p.where == "codes[1] 'deal' defintion"
    assert "unknown field 'defintion'" in p.message
    assert p.fix == "did you mean 'definition'? Rename the field."


def test_unknown_field_without_a_close_match_lists_the_valid_ones(tmp_path):
    p = single(broken(tmp_path, "    related: [pause]\n",
                      "    related: [pause]\n    colour: red\n"))
    assert p.line == 24 and p.message == "unknown field 'colour'."
    assert "definition" in p.fix and "examples" in p.fix


def test_wrong_type_number_for_text(tmp_path):
    p = single(broken(tmp_path, 'version: "0.1"', "version: 0.1"))
    assert p.line == 2 and p.where == "version"
    assert p.message == "expected text, found a number (0.1)."
    assert 'version: "0.1"' in p.fix


def test_wrong_type_text_for_list(tmp_path):
    p = single(broken(tmp_path, "    related: [pause]", "    include: just one line"))
    assert p.line == 23 and p.where == "codes[1] 'deal' include"
    assert p.message == "expected a list, found text."
    assert "'- '" in p.fix


def test_wrong_type_unquoted_colon_in_a_list_item(tmp_path):
    p = single(broken(tmp_path, "    related: [pause]", "    include:\n      - Note: a remark"))
    assert p.line == 24 and p.where == "codes[1] 'deal' include[0]"
    assert p.message.startswith("expected text, found a mapping")
    assert "quotes" in p.fix


def test_duplicate_code_id_names_the_first(tmp_path):
    text = BASE.replace("related: [pause]", "related: []")
    path = write(tmp_path, text.replace("  - id: deal", "  - id: pause"))
    p = single(validate_codebook(path)[1])
    assert p.line == 19 and p.where == "codes[1] 'pause' id"
    assert p.message == "duplicate code id 'pause' (first defined at line 9)."
    assert "unique" in p.fix


def test_duplicate_category_id(tmp_path):
    problems = broken(tmp_path, "  - id: outcome\n", "  - id: tactic\n")
    dup = next(p for p in problems if "duplicate" in p.message)
    assert dup.line == 6 and dup.message == "duplicate category id 'tactic' (first defined at " \
        "line 4)."
    # and the code that pointed at the renamed category is reported too
    assert any("unknown category 'outcome'" in p.message and p.line == 21 for p in problems)


def test_unknown_category_suggests_the_closest(tmp_path):
    problems = broken(tmp_path, "category: outcome", "category: outcomes")
    p = next(p for p in problems if "unknown category" in p.message)
    assert p.line == 21 and p.message == "unknown category 'outcomes'."
    assert p.fix.startswith("did you mean 'outcome'?")


def test_unknown_related_code_is_a_warning(tmp_path):
    # A hint naming no code (a typo, or a renamed codebook that missed one) does not stop
    # a run: the codebook loads, and check says which hint is ignored and the likely fix.
    path = write(tmp_path, BASE.replace("related: [pause]", "related: [paus]"))
    book, problems = validate_codebook(path)
    assert problems == [] and book is not None
    assert book.codes[1].related == ["paus"]
    status, report = check_codebook(path)
    assert status == 0
    assert ("warning: code 'deal' lists related code 'paus', which the codebook does not "
            "define, so that hint is ignored — did you mean 'pause'?") in report.splitlines()


@pytest.mark.parametrize("bad", ["2deal", "a deal", "déal!"])
def test_invalid_id(tmp_path, bad):
    problems = broken(tmp_path, "  - id: deal", f"  - id: '{bad}'")
    p = next(p for p in problems if "not a valid id" in p.message)
    assert p.line == 19 and "letter first" in p.fix


@pytest.mark.parametrize(("bad", "suggested"), [
    ("négociation", "negociation"), ("mécanisme d'accès", "mecanisme_d_acces"),
    ("Lever.Tactic", "Lever_Tactic"), ("1st_code", "c_1st_code"),
])
def test_invalid_id_states_the_rule_and_transliterates_the_suggestion(tmp_path, bad,
                                                                      suggested):
    problems = broken(tmp_path, "  - id: deal", f'  - id: "{bad}"')
    p = next(p for p in problems if "not a valid id" in p.message)
    assert p.line == 19
    assert "a letter" in p.message and "no spaces, dots or accents" in p.message
    assert "at most 64 characters" in p.message
    assert p.fix.endswith(f"e.g. '{suggested}'.")


def test_ids_longer_than_64_characters_are_reported_all_at_once(tmp_path):
    long_cat, long_code = "t" * 130, "d" * 65
    text = (BASE.replace("  - id: tactic", f"  - id: {long_cat}")
            .replace("category: tactic", f"category: {long_cat}")
            .replace("  - id: deal", f"  - id: {long_code}"))
    book, problems = validate_codebook(write(tmp_path, text))
    assert book is None
    assert [(p.line, p.where) for p in problems] == [
        (4, f"categories[0] '{long_cat}' id"), (19, f"codes[1] '{long_code}' id")]
    cat, code = problems
    assert cat.message.startswith(f"category id '{'t' * 24}…' is 130 characters long; ids "
                                  "may have at most 64")
    assert "cooccurrence_<a>_x_<b>.csv" in cat.message
    assert cat.fix.startswith(f"shorten it to 64 characters or fewer, e.g. '{'t' * 64}'")
    assert code.message.startswith("code id 'dddddddddddddddddddddddd…' is 65 characters")
    # 64 characters is fine
    ok = BASE.replace("  - id: deal", f"  - id: {'d' * 64}")
    assert validate_codebook(write(tmp_path, ok))[1] == []


@pytest.mark.parametrize("column", ["text", "Codes", "segment_id"])
def test_id_clashing_with_an_output_column(tmp_path, column):
    problems = broken(tmp_path, "  - id: deal", f"  - id: {column}")
    p = single([q for q in problems if "clashes" in q.message])
    assert p.line == 19 and "output column" in p.message and "rename" in p.fix


@pytest.mark.parametrize("field", ["definition", "name"])
def test_blank_text(tmp_path, field):
    old = {"definition": "definition: An agreement was reached.", "name": "name: A deal"}[field]
    p = single(broken(tmp_path, old, f'{field}: "   "'))
    assert p.where == f"codes[1] 'deal' {field}" and p.message == f"{field} is empty."
    assert p.line == (22 if field == "definition" else 20)


def test_malformed_spacy_pattern_reports_spacys_message(tmp_path):
    p = single(broken(tmp_path, "{LEMMA: pause}", "{LEMA: pause}"))
    assert p.line == 18 and p.where == "codes[0] 'pause' rules.patterns[0][0]"
    assert "unknown attribute 'LEMA'" in p.message
    assert p.fix == "did you mean 'LEMMA'?"


def test_malformed_spacy_operator(tmp_path):
    p = single(broken(tmp_path, "{LEMMA: pause}", '{LEMMA: pause, OP: "*+"}'))
    assert p.line == 18 and "OP" in p.message and "spacy.io" in p.fix


def test_yaml_booleans_in_a_pattern(tmp_path):
    p = single(broken(tmp_path, "{LOWER: aid}", "{LOWER: {IN: [at, on]}}"))
    assert p.line == 18 and p.where == "codes[0] 'pause' rules.patterns[0][1]"
    assert "booleans" in p.message and '"on"' in p.fix


def test_attribute_the_rule_layer_never_sets(tmp_path):
    p = single(broken(tmp_path, "{LEMMA: pause}", "{POS: VERB}"))
    assert p.line == 18 and "POS" in p.message and "never match" in p.message
    assert "LEMMA" in p.fix


def test_empty_phrase(tmp_path):
    p = single(broken(tmp_path, "phrases: [paused the distribution]",
                      'phrases: [paused the distribution, "  "]'))
    assert p.line == 16 and p.where == "codes[0] 'pause' rules.phrases[1]"
    assert p.message == "empty phrase."


@pytest.mark.parametrize(("phrase", "why"), [
    ("'!'", "has no letter or digit"), ("'...'", "has no letter or digit"),
    ("'—'", "has no letter or digit"), ("the", "is a single very common word"),
    ("Of", "is a single very common word"), ("was", "is a single very common word"),
])
def test_phrase_that_matches_almost_every_sentence(tmp_path, phrase, why):
    p = single(broken(tmp_path, "phrases: [paused the distribution]",
                      f"phrases: [paused the distribution, {phrase}]"))
    assert p.line == 16 and p.where == "codes[0] 'pause' rules.phrases[1]"
    assert why in p.message and "matches almost every sentence" in p.message
    assert p.fix.endswith("or remove the line.")


@pytest.mark.parametrize("pattern", [
    '[{OP: "*"}]', '[{LOWER: aid, OP: "?"}, {OP: "*"}]', "[{IS_PUNCT: true}]",
    "[{IS_ALPHA: true}, {IS_ALPHA: true}]", "[{ORTH: '.'}]", "[{LOWER: {IN: ['!', '?']}}]",
    "[{}]", "[{LOWER: the}]", '[{LOWER: the}, {OP: "?"}, {IS_ALPHA: true}]',
    "[{LOWER: {NOT_IN: [aid]}}]", '[{LEMMA: pause, OP: "!"}]',
])
def test_pattern_that_matches_almost_every_sentence(tmp_path, pattern):
    p = single(broken(tmp_path, "- [{LEMMA: pause}, {LOWER: aid}]", f"- {pattern}"))
    assert p.line == 18 and p.where == "codes[0] 'pause' rules.patterns[0]"
    assert "matches almost every sentence" in p.message
    assert "required token" in p.fix and p.fix.endswith("or remove the pattern.")


@pytest.mark.parametrize(("field", "rule"), [
    ("exclude_phrases", "'!'"), ("exclude_patterns", '[{OP: "*"}]'),
    ("exclude_patterns", "[{IS_PUNCT: true}]"),
])
def test_exclusion_that_matches_almost_every_sentence(tmp_path, field, rule):
    p = single(broken(tmp_path, "      phrases: [paused the distribution]\n",
                      f"      phrases: [paused the distribution]\n      {field}: [{rule}]\n"))
    assert p.line == 17 and p.where == f"codes[0] 'pause' rules.{field}[0]"
    assert "matches almost every sentence" in p.message and "dropped" in p.message


COMMONEST_WORDS = "is made only of the commonest English words"


@pytest.mark.parametrize("phrase", ["of the", "'In  The'", "it is", "'for a'"])
def test_cue_phrase_of_only_the_commonest_words(tmp_path, phrase):
    # "of the" would code nearly every segment (before, only a single stop word counted).
    p = single(broken(tmp_path, "phrases: [paused the distribution]",
                      f"phrases: [paused the distribution, {phrase}]"))
    assert p.line == 16 and p.where == "codes[0] 'pause' rules.phrases[1]"
    assert p.message.startswith(f"phrase {phrase.strip(chr(39))!r} {COMMONEST_WORDS}")
    assert "matches almost every sentence" in p.message and "nearly every segment" in p.message
    assert p.fix.startswith("use a longer phrase") and p.fix.endswith("or remove the line.")


@pytest.mark.parametrize("phrase", ["on the", "With The", "with them", "it was", "by an",
                                    "from their", "there are", "as we did"])
def test_cue_phrase_of_only_common_function_words(tmp_path, phrase):
    # Prepositions, pronouns and auxiliaries are as broad as "of the" (missed before).
    p = single(broken(tmp_path, "phrases: [paused the distribution]",
                      f"phrases: [paused the distribution, {phrase}]"))
    assert p.where == "codes[0] 'pause' rules.phrases[1]"
    assert p.message.startswith(f"phrase {phrase!r} {COMMONEST_WORDS}")


@pytest.mark.parametrize("phrase", ["and", "the", "of the", "'you'", "on the", "at their"])
def test_exclusion_phrase_of_only_the_commonest_words(tmp_path, phrase):
    # Such an exclusion would drop the code's cues in nearly every sentence.
    p = single(broken(tmp_path, "      phrases: [paused the distribution]\n",
                      "      phrases: [paused the distribution]\n"
                      f"      exclude_phrases: [not, {phrase}]\n"))
    assert p.line == 17 and p.where == "codes[0] 'pause' rules.exclude_phrases[1]"
    assert p.message.startswith(f"phrase {phrase.strip(chr(39))!r} {COMMONEST_WORDS}")
    assert "cues would be dropped almost everywhere" in p.message
    assert p.fix.startswith("name the words that make a sentence an exception")
    assert p.fix.endswith("or remove the line.")


@pytest.mark.parametrize(("field", "pattern"), [
    ("patterns", "[{LOWER: of}, {LOWER: the}]"),
    ("patterns", '[{LOWER: {IN: [of, in]}}, {OP: "?"}, {ORTH: The, IS_TITLE: true}]'),
    ("exclude_patterns", "[{LOWER: and}]"),
    ("exclude_patterns", "[{LEMMA: it}, {IS_ALPHA: true}, {LOWER: {IN: [is, a]}}]"),
    ("patterns", '[{LOWER: {IN: [with, "on", at]}}, {LOWER: {IN: [the, their, them]}}]'),
    ("exclude_patterns", "[{LOWER: they}, {LEMMA: {IN: [be, have]}}]"),
])
def test_pattern_of_only_the_commonest_words(tmp_path, field, pattern):
    rule = "        - [{LEMMA: pause}, {LOWER: aid}]\n"
    p = single(broken(tmp_path, rule, f"        - {pattern}\n" if field == "patterns" else
                      f"{rule}      {field}:\n        - {pattern}\n"))
    assert p.line == (18 if field == "patterns" else 20)
    assert p.where == f"codes[0] 'pause' rules.{field}[0]"
    assert "required words are all among the commonest English words" in p.message
    assert "matches almost every sentence" in p.message
    assert p.fix.endswith("or remove the pattern.")


def test_specific_rules_of_common_words_are_fine(tmp_path):
    # Multi-word cues of stop words are real cues; a stop word is a fine exclusion; less
    # common stop words with the commonest ones ("until the", "is not") are specific enough.
    rules = ("      phrases: [back down, not up to me, go elsewhere, of the aid, on the road,"
             " had to leave, with them at the checkpoint]\n"
             "      exclude_phrases: [not, never, until the, only if, is not, would have, if we,"
             " but they, no one, up to them]\n"
             "      patterns:\n"
             "        - [{LOWER: {IN: [to, not, never]}}, {LOWER: back}, {LOWER: down}]\n"
             "        - [{LOWER: of}, {LOWER: the}, {LEMMA: convoy}]\n"
             '        - [{LOWER: the, OP: "?"}, {LOWER: aid}]\n'
             '        - [{IS_PUNCT: true}, {LEMMA: pause}, {OP: "*"}]\n'
             "      exclude_patterns:\n"
             "        - [{LOWER: not}]\n")
    text = BASE.replace("      phrases: [paused the distribution]\n"
                        "      patterns:\n"
                        "        - [{LEMMA: pause}, {LOWER: aid}]\n", rules)
    assert text != BASE
    book, problems = validate_codebook(write(tmp_path, text))
    assert problems == [] and book is not None


def test_category_without_codes(tmp_path):
    text = BASE.replace("related: [pause]", "related: []")
    path = write(tmp_path, text.replace("category: outcome", "category: tactic"))
    p = single(validate_codebook(path)[1])
    assert p.line == 6 and p.message == "category 'outcome' has no codes."
    assert p.fix == "add codes with 'category: outcome', or remove the category."


def test_no_codes_at_all(tmp_path):
    p = single(validate_codebook(write(tmp_path, BASE.split("codes:")[0] + "codes: []\n"))[1])
    assert p.line == 8 and p.message == "the codebook has no codes."


def test_duplicate_yaml_key(tmp_path):
    p = single(broken(tmp_path, "    related: [pause]\n",
                      "    related: [pause]\n    name: Another name\n"))
    assert p.line == 24 and "key 'name' appears twice" in p.message
    assert "first at line 20" in p.message


MERGED = BASE.replace("  - id: pause\n", "  - &tactic\n    id: pause\n").replace(
    "  - id: deal\n",
    "  - <<: *tactic\n"  # line 20: category, definition, examples and rules from 'pause'
    "    id: delay\n"
    "    name: Delaying aid\n"
    "    rules: {phrases: [delayed the convoy]}\n"
    "  - id: deal\n")


def test_yaml_merge_key_is_not_a_duplicate_key(tmp_path):
    book, problems = validate_codebook(write(tmp_path, MERGED))
    assert problems == [] and book is not None
    delay, pause = book.code("delay"), book.code("pause")
    assert (delay.name, delay.category, delay.definition) == (
        "Delaying aid", "tactic", "The agency pauses aid to press the group.")
    assert delay.examples == pause.examples
    assert delay.rules.phrases == ["delayed the convoy"] and delay.rules.patterns == []
    assert pause.rules.phrases == ["paused the distribution"] and pause.name == "Pausing aid"


def test_yaml_merge_key_keeps_real_duplicates_and_merged_lines(tmp_path):
    text = MERGED.replace("    id: delay\n", "    id: delay\n    name: Twice\n")
    text = text.replace("    category: tactic\n", "    category: tactics\n")
    problems = validate_codebook(write(tmp_path, text))[1]
    # A merged key's problem is at the line it was written at (the anchored entry's).
    assert [(p.line, p.where) for p in problems] == [
        (4, "categories[0] 'tactic'"), (12, "codes[0] 'pause' category"),
        (12, "codes[1] 'delay' category"), (23, "codes[1] 'delay'")]
    assert problems[3].message == ("key 'name' appears twice in this entry (first at line "
                                   "22); YAML keeps only the last one.")


def test_yaml_merge_key_without_a_mapping(tmp_path):
    p = single(validate_codebook(write(tmp_path, MERGED.replace("*tactic", "tactic")))[1])
    assert p.line == 20 and "for merging" in p.message and "'<<: *name'" in p.fix


def test_loader_fields_are_not_written_in_the_file(tmp_path):
    p = single(validate_codebook(write(tmp_path, BASE + "sha256: abc\n"))[1])
    assert p.line == 24 and p.message == "unknown field 'sha256'."
    assert "set by the loader" in p.fix


# --------------------------------------------------------------------------- all at once


def test_every_problem_is_reported_at_once_in_line_order(tmp_path):
    text = (BASE.replace('version: "0.1"', "version: 0.1")
            .replace("{LEMMA: pause}", "{LEMA: pause}")
            .replace("    definition: An agreement", "    defintion: An agreement"))
    book, problems = validate_codebook(write(tmp_path, text))
    assert book is None
    assert [p.line for p in problems] == [2, 18, 22]
    with pytest.raises(CodebookError) as info:
        load_codebook(tmp_path / "codebook.yaml")
    assert info.value.problems == problems
    assert str(info.value).splitlines() == [str(p) for p in problems]


# --------------------------------------------------------------------------- the check command


def test_check_valid_codebook_prints_the_summary(tmp_path):
    path = write(tmp_path, BASE)
    status, report = check_codebook(path)
    book = load_codebook(path)
    assert status == 0
    assert report.startswith(f"{path}: OK")
    assert f"Test codebook (version 0.1, sha256 {book.sha256[:12]})" in report
    assert "2 codes in 2 categories; examples 1 positive / 0 negative; 2 rules" in report
    assert re.search(r"tactic - Tactics \(1 code\)\n.*\n  pause +Pausing aid +1 +0 +0 +2", report)
    assert summary_table(book) in report


WARNING = ("warning: codes without rules ({}) are applied only by the model, which needs "
           "reviewed segments to learn them: without reviews it applies them from their "
           "similarity to the definition and examples, far less precisely than rules (the "
           "fast backend hardly at all) — add phrases or patterns, or review segments")


def test_check_warns_about_codes_without_rules_but_passes(tmp_path):
    text = BASE.replace("    related: [pause]\n",
                        "    related: [pause]\n  - id: third\n    name: Third\n"
                        "    category: outcome\n    definition: Another outcome.\n"
                        "    rules:\n      exclude_phrases: [not]\n")
    status, report = check_codebook(write(tmp_path, text))
    lines = report.splitlines()
    assert status == 0 and lines[0].endswith(": OK")
    assert lines[1].startswith(WARNING.format("deal, third"))  # one line, every such code
    assert sum("warning" in line for line in lines) == 1
    # a code with rules: no warning
    with_rules = BASE.replace("    related: [pause]\n",
                              "    related: [pause]\n    rules:\n      phrases: [deal struck]\n")
    status, report = check_codebook(write(tmp_path, with_rules))
    assert status == 0 and "warning" not in report


def test_check_warns_about_lemma_values_that_never_match(tmp_path):
    # The lemma of "talks" is "talk", so LEMMA talks matches nothing; "left" is a lemma of
    # its own and an unknown word is its own lemma: no warning for those.
    text = BASE.replace("        - [{LEMMA: pause}, {LOWER: aid}]\n",
                        "        - [{LEMMA: pause}, {LOWER: aid}]\n"
                        "        - [{LEMMA: {IN: [talk, talks, left, qatchew]}}]\n"
                        "      exclude_patterns:\n        - [{lemma: Agencies}]\n")
    status, report = check_codebook(write(tmp_path, text))
    assert status == 0
    assert [line for line in report.splitlines() if "never matches" in line] == [
        "warning: code 'pause' rules.patterns[1]: LEMMA 'talks' never matches (the lemma of "
        "'talks' is 'talk') — write LEMMA 'talk' for all its forms, or LOWER 'talks' for "
        "this form only.",
        "warning: code 'pause' rules.exclude_patterns[0]: LEMMA 'Agencies' never matches "
        "(the lemma of 'Agencies' is 'agency') — write LEMMA 'agency' for all its forms, or "
        "LOWER 'Agencies' for this form only."]


def test_check_invalid_codebook_lists_every_problem_and_exits_1(tmp_path):
    text = BASE.replace('version: "0.1"', "version: 0.1").replace("{LEMMA: pause}",
                                                                   "{LEMA: pause}")
    path = write(tmp_path, text)
    status, report = check_codebook(path)
    lines = report.splitlines()
    assert status == 1
    assert lines[0].startswith(f"{path}:2: version: ") and "Fix: " in lines[0]
    assert lines[1].startswith(f"{path}:18: codes[0] 'pause' rules.patterns[0][0]: ")
    assert lines[-1] == f"2 problems in {path}: the codebook was not loaded."


def test_check_missing_file_exits_1(tmp_path):
    status, report = check_codebook(tmp_path / "codebook.yaml")
    assert status == 1 and "file not found" in report and report.endswith("not loaded.")


def test_summary_of_the_default_codebook(default_book):
    table = summary_table(default_book)
    assert table.splitlines()[0] == (f"{default_book.name} (version {default_book.version}, "
                                     f"sha256 {default_book.sha256[:12]})")
    assert "18 codes in 4 categories" in table
    for code in default_book.codes:
        assert re.search(rf"^  {code.id} ", table, flags=re.M), code.id


def test_report_pairs_must_name_known_categories(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(
        'name: x\nversion: "1"\ncategories:\n  - id: tactic\n    name: T\ncodes:\n'
        "  - id: c1\n    name: C\n    category: tactic\n    definition: d\n"
        "report:\n  category_pairs:\n    - [tactic, tactc]\n", encoding="utf-8")
    book, problems = validate_codebook(path)
    assert book is None
    assert [(p.line, p.message) for p in problems] == [(13, "unknown category 'tactc'.")]
    assert "did you mean 'tactic'" in str(problems[0])


def test_a_codebook_is_validated_once_per_content_and_each_load_is_its_own(
        tmp_path: Path, codebook_path: Path) -> None:
    from qualcode import codebook as module

    path = tmp_path / "codebook.yaml"
    path.write_text(codebook_path.read_text(encoding="utf-8"), encoding="utf-8")
    first = load_codebook(path)
    key = next(k for k in module._VALIDATED if k[0] == str(path))
    module._VALIDATED[key][0].codes[0].name = "from the cache"  # (to see it is reused)
    second = load_codebook(path)
    assert second.codes[0].name == "from the cache" and second is not first
    second.codes[0].name = "changed by a caller"
    assert load_codebook(path).codes[0].name == "from the cache"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # new content
    assert load_codebook(path).codes[0].name == first.codes[0].name


def test_category_ids_differing_only_in_case_are_refused(tmp_path):
    text = BASE.replace("  - id: outcome\n", "  - id: Tactic\n")
    problems = validate_codebook(write(tmp_path, text.replace("category: outcome",
                                                              "category: Tactic")))[1]
    clash = single(problems)
    assert clash.line == 6 and clash.message == (
        "category id 'Tactic' differs from 'tactic' (line 4) only in case: on Windows and "
        "macOS their output files would overwrite each other.")
