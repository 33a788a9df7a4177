"""Segmentation: speaker labels, preambles, interviewer turns, splits, paragraphs and ids."""

from __future__ import annotations

import shutil
import unicodedata
from itertools import pairwise
from pathlib import Path

import pytest

from qualcode.corpus import flat_segments
from qualcode.documents import PROSE, TRANSCRIPT, Document, Segment
from qualcode.ingest import ingest_corpus
from qualcode.segment import segment_document, segment_documents
from qualcode.speakers import find_labels, is_interviewer


def _doc(tmp_path: Path, text: str, name: str = "doc.txt", **kwargs) -> Document:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / name).write_text(text, encoding="utf-8")
    result = ingest_corpus(corpus, **kwargs)
    assert result.skipped == [], [str(s) for s in result.skipped]
    return next(d for d in result.documents if d.path == name)


def _check_offsets(doc: Document, segments: list[Segment]) -> None:
    for seg in segments:
        assert doc.text[seg.char_start : seg.char_end] == seg.text
        assert seg.text == seg.text.strip() and seg.text
    starts = [s.char_start for s in segments]
    assert starts == sorted(starts)
    for before, after in pairwise(segments):
        assert before.char_end <= after.char_start


def _turns(segments: list[Segment]) -> list[tuple[str, str, int | None, bool, str]]:
    return [(s.segment_id, s.speaker, s.turn, s.codable, s.text) for s in segments]


# --- speaker labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interviewer", "respondent", "speaker_shown"),
    [
        ("Interviewer:", "Respondent:", "Respondent"),
        ("INTERVIEWER:", "RESPONDENT:", "Respondent"),
        ("interviewer:", "respondent:", "respondent"),
        ("[00:12:03] Interviewer:", "[00:12:09] Amira:", "Amira"),
        ("00:12:03 Interviewer:", "00:12:09 Amira:", "Amira"),
        ("[12:03] Interviewer:", "(12:09) Amira:", "Amira"),
        ("Interviewer (00:12:03):", "Amira (00:12:09):", "Amira"),
        ("Interviewer [00:12:03]:", "Amira [00:12:09]:", "Amira"),
        ("00:12:03 - Interviewer:", "00:12:09 – Amira:", "Amira"),
        ("Interviewer:", "Dr Amira Al-Haddad:", "Dr Amira Al-Haddad"),
        ("Interviewer:", "Dr Amira Al Haddad:", "Dr Amira Al Haddad"),
        ("Interviewer:", "Respondent 2:", "Respondent 2"),
        ("Interviewer:", "Ma Thida’s colleague:", "Ma Thida’s colleague"),
        ("Interviewer：", "Amira：", "Amira"),  # full-width colon
        ("**Interviewer:**", "**Amira:**", "Amira"),  # Markdown emphasis
        ("**Interviewer**:", "**Amira**:", "Amira"),
        ("*Interviewer:*", "_Amira_:", "Amira"),
        ("__INTERVIEWER:__", "__AMIRA__:", "Amira"),
        ("- Interviewer:", "- Amira:", "Amira"),  # list items, quotes
        ("* **Interviewer:**", "* **Amira:**", "Amira"),
        ("> Interviewer:", "> [00:12:09] Amira:", "Amira"),
        # French typography: a no-break space before the colon (Word in French, macOS)
        ("Interviewer\u00a0:", "Amira\u00a0:", "Amira"),
        ("Interviewer\u202f:", "Amira\u202f:", "Amira"),
        ("[00:12:03] Interviewer\u2007:", "**Amira\u00a0:**", "Amira"),
        # invisible characters: a direction mark opening the line, zero-width ones inside
        ("\u200fInterviewer:", "\u200f\u200eAmira:", "Amira"),
        ("Inter\u200bviewer:", "\u2060Am\u200dira\u2060:", "Amira"),
        ("\u202bInterviewer (00:12:03):", "\u202aDr Amira\u200c Al-Haddad:",
         "Dr Amira Al-Haddad"),
    ],
)
def test_speaker_label_variants(
    tmp_path: Path, interviewer: str, respondent: str, speaker_shown: str
) -> None:
    text = (
        f"{interviewer} How did you reach the camp?\n"
        f"{respondent} Through the checkpoint at dawn.\n"
        "We waited two hours.\n"
        f"{interviewer} And the second time?\n"
        f"{respondent} It was easier.\n"
    )
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert doc.layout == TRANSCRIPT
    shown = "interviewer" if interviewer.islower() else "Interviewer"  # as written, Title for CAPS
    assert _turns(segments) == [
        ("doc:1", shown, 1, False, "How did you reach the camp?"),
        ("doc:2", speaker_shown, 2, True, "Through the checkpoint at dawn.\nWe waited two hours."),
        ("doc:3", shown, 3, False, "And the second time?"),
        ("doc:4", speaker_shown, 4, True, "It was easier."),
    ]


def test_names_up_to_four_words_but_not_five(tmp_path: Path) -> None:
    text = (
        "Q: First?\n"
        "One Two Three Four: yes.\n"
        "One Two Three Four Five: this is not a label.\n"
        "Q: Second?\n"
        "One Two Three Four: no.\n"
        "One Two Three Four Five: still not a label.\n"
    )
    segments = segment_document(_doc(tmp_path, text))
    assert [(s.speaker, s.text) for s in segments] == [
        ("Q", "First?"),
        ("One Two Three Four", "yes.\nOne Two Three Four Five: this is not a label."),
        ("Q", "Second?"),
        ("One Two Three Four", "no.\nOne Two Three Four Five: still not a label."),
    ]


def test_mixed_case_labels_are_one_speaker_shown_in_its_written_form(tmp_path: Path) -> None:
    text = "Interviewer: a?\nAMIRA: b.\nInterviewer: c?\nAmira: d.\nINTERVIEWER: e?\namira: f.\n"
    segments = segment_document(_doc(tmp_path, text))
    assert [s.speaker for s in segments] == ["Interviewer", "Amira"] * 3
    assert [s.turn for s in segments] == [1, 2, 3, 4, 5, 6]


def test_lines_without_a_label_continue_the_turn(tmp_path: Path) -> None:
    text = (
        "Interviewer: Tell me about the negotiation.\n"
        "Respondent: It began in March.\n"
        "\n"
        "Then the commander changed.\n"
        "He told me: no more convoys.\n"
        "   (laughs)\n"
        "Interviewer: Why?\n"
        "Respondent: Politics.\n"
    )
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert segments[1].text == (
        "It began in March.\n\nThen the commander changed.\nHe told me: no more convoys.\n"
        "   (laughs)"
    )
    assert [s.segment_id for s in segments] == ["doc:1", "doc:2", "doc:3", "doc:4"]


def test_find_labels_offsets() -> None:
    text = "Title\n[00:00:05] Interviewer: Hi.\nAmira (00:00:07): Hello.\nAmira: Bye.\n"
    labels = find_labels(text)
    assert [(text[lab.start : lab.end], lab.name, lab.key) for lab in labels] == [
        ("[00:00:05] Interviewer: ", "Interviewer", "interviewer"),
        ("Amira (00:00:07): ", "Amira", "amira"),
        ("Amira: ", "Amira", "amira"),
    ]


# --- preamble -----------------------------------------------------------------------------

HEADER = """Interview 12 — humanitarian access in Taiz
Date: 2023-04-18
Note: recorded with consent; names changed.
Location: Aden

Interviewer: How did access change after 2018?

Respondent: It got harder.

Interviewer: Why?

Respondent: New checkpoints.
"""


def test_header_block_is_the_preamble(tmp_path: Path) -> None:
    doc = _doc(tmp_path, HEADER, name="yem_int_12.txt")
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    preamble = segments[0]
    assert (preamble.segment_id, preamble.turn, preamble.speaker, preamble.codable) == (
        "yem_int_12:0", 0, "", False,
    )
    assert preamble.char_start == 0
    assert preamble.text == (
        "Interview 12 — humanitarian access in Taiz\nDate: 2023-04-18\n"
        "Note: recorded with consent; names changed.\nLocation: Aden"
    )
    assert _turns(segments[1:]) == [
        ("yem_int_12:1", "Interviewer", 1, False, "How did access change after 2018?"),
        ("yem_int_12:2", "Respondent", 2, True, "It got harder."),
        ("yem_int_12:3", "Interviewer", 3, False, "Why?"),
        ("yem_int_12:4", "Respondent", 4, True, "New checkpoints."),
    ]


def test_no_preamble_when_the_text_starts_with_a_speaker(tmp_path: Path) -> None:
    segments = segment_document(_doc(tmp_path, "\n\nQ: a?\nA: b.\nQ: c?\nA: d.\n"))
    assert [s.segment_id for s in segments] == ["doc:1", "doc:2", "doc:3", "doc:4"]
    assert [s.codable for s in segments] == [False, True, False, True]


# --- interviewer turns --------------------------------------------------------------------


@pytest.mark.parametrize(
    "label", ["Interviewer", "Int", "INT", "I", "Q", "Moderator", "Interviewer 2", "Q2"]
)
def test_default_interviewer_labels_are_not_codable(tmp_path: Path, label: str) -> None:
    text = f"{label}: What happened?\nHamid: We left.\n{label}: When?\nHamid: In May.\n"
    segments = segment_document(_doc(tmp_path, text))
    assert [(s.speaker.casefold(), s.codable) for s in segments] == [
        (label.casefold(), False), ("hamid", True), (label.casefold(), False), ("hamid", True),
    ]
    assert all(s.source_type == "interview" for s in segments)


_INITIALS = (
    "SL: What does a field monitor do?\n\nNB: I check the distributions in the camps.\n\n"
    "SL: Did you have to negotiate at the gate?\n\nNB: Every time. They know my uncle.\n\n"
    "SL: And when the fighting came near?\n\nNB: We stopped for two months.\n\n"
    "SL: Who did the checking then?\n\nNB: The camp volunteers, with photos.\n"
)


def test_initials_that_are_abbreviations_label_turns_when_they_recur(tmp_path: Path) -> None:
    # "NB:" is a note once or twice; opening four answers it is someone's initials. Of two
    # speakers without an interviewer label, the one who asks is taken for the interviewer.
    segments = segment_document(_doc(tmp_path, _INITIALS))
    assert [(s.speaker, s.codable) for s in segments] == [("SL", False), ("NB", True)] * 4
    assert segments[1].text == "I check the distributions in the camps."
    twice = find_labels("Amal: We went.\n\nNB: the road was closed.\n\nAmal: Then back."
                        "\n\nNB: see the map.\n")
    assert [label.name for label in twice] == ["Amal", "Amal"]  # "NB:" twice: a note


def test_the_one_who_asks_is_only_guessed_when_it_is_clear(tmp_path: Path) -> None:
    from qualcode.corpus import process_batch

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "initials.txt").write_text(_INITIALS, encoding="utf-8")
    both_ask = _INITIALS.replace("camps.", "camps?").replace("uncle.", "uncle?")
    (corpus / "both.txt").write_text(both_ask, encoding="utf-8")
    batch = process_batch(corpus, ["both.txt", "initials.txt"])
    coded = {doc.path: [s.codable for s in segs]
             for doc, segs in zip(batch.documents, batch.segments, strict=True)}
    assert coded == {"both.txt": [True] * 8, "initials.txt": [False, True] * 4}
    notes = {n.path: n.reason for n in batch.skipped}
    assert "none of them an interviewer label" in notes["both.txt"]
    assert "SL asks the questions, so SL's turns were read as the interviewer's" \
        in notes["initials.txt"]
    # Labels the user chose are trusted: nothing is guessed.
    explicit = process_batch(corpus, ["initials.txt"], interviewer_labels=["Interviewer"])
    assert [s.codable for s in explicit.segments[0]] == [True] * 8


@pytest.mark.parametrize("name", ["Imam", "Intern", "Quentin", "Ishaq", "Mod", "Facilitation"])
def test_names_that_only_look_like_interviewer_labels(name: str) -> None:
    assert not is_interviewer(name)


def test_custom_interviewer_labels(tmp_path: Path) -> None:
    labels = ("Facilitator", "Researcher")
    text = (
        "Facilitator: Welcome.\nInterviewer: I am a participant here.\n"
        "Researcher: Thanks.\nInterviewer: Sure.\nFACILITATOR: Next?\n"
    )
    doc = _doc(tmp_path, text, interviewer_labels=labels)
    segments = segment_document(doc, interviewer_labels=labels)
    assert [(s.speaker, s.turn, s.codable) for s in segments] == [
        ("Facilitator", 1, False),
        ("Interviewer", 2, True),  # not in the custom list: a participant
        ("Researcher", 3, False),
        ("Interviewer", 4, True),
        ("Facilitator", 5, False),
    ]
    # with the defaults the same text codes differently
    default = segment_document(doc)
    assert [s.codable for s in default if s.speaker == "Interviewer"] == [False, False]


def test_a_label_with_no_words_still_counts_as_a_turn(tmp_path: Path) -> None:
    text = "Interviewer: Start.\nRespondent:\nInterviewer:   \nRespondent: Words.\n"
    segments = segment_document(_doc(tmp_path, text))
    assert [(s.segment_id, s.turn) for s in segments] == [("doc:1", 1), ("doc:4", 4)]


@pytest.mark.parametrize("closing", [
    "[END OF TRANSCRIPT]", "[End of interview]", "-- END --", "[Recording ends]", "[END]",
    "(Recording stopped at 00:41:10)", "--- End of the transcript ---"])
def test_a_closing_line_is_left_out_of_the_last_answer(tmp_path: Path, closing: str) -> None:
    text = ("Interviewer: Did the convoy pass?\nRespondent: It did [laughs], in the end.\n"
            f"It took [two] days.\n\n{closing}\n\n")
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:1", "Interviewer", 1, False, "Did the convoy pass?"),
        ("doc:2", "Respondent", 2, True, "It did [laughs], in the end.\nIt took [two] days.")]
    assert closing in doc.text  # the document keeps it


@pytest.mark.parametrize("last", ["[laughs]", "[Recording paused]", "END OF TRANSCRIPT",
                                  "-- end of the world --", "[END OF PART 1]"])
def test_other_bracketed_last_lines_stay_in_the_answer(tmp_path: Path, last: str) -> None:
    text = f"Interviewer: Did the convoy pass?\nRespondent: It did.\n{last}\n"
    segments = segment_document(_doc(tmp_path, text))
    assert segments[-1].text == f"It did.\n{last}"


# --- long turns ---------------------------------------------------------------------------


def test_long_turns_split_at_paragraph_breaks(tmp_path: Path) -> None:
    para = ["A" * 60, "B" * 60, "C" * 30, "D" * 150]
    text = (
        "Interviewer: Tell me everything.\n\n"
        f"Respondent: {para[0]}\n\n{para[1]}\n  \n{para[2]}\n\n\n{para[3]}\n\n"
        "Interviewer: Thanks.\n\nRespondent: Welcome.\n"
    )
    doc = _doc(tmp_path, text, name="long.txt")
    segments = segment_document(doc, max_turn_chars=100)
    _check_offsets(doc, segments)
    assert [(s.segment_id, s.turn, s.speaker, s.text) for s in segments] == [
        ("long:1", 1, "Interviewer", "Tell me everything."),
        ("long:2.1", 2, "Respondent", para[0]),
        ("long:2.2", 2, "Respondent", f"{para[1]}\n  \n{para[2]}"),  # 94 chars fit together
        # longer than the limit and without a space: cut at the limit
        ("long:2.3", 2, "Respondent", para[3][:100]),
        ("long:2.4", 2, "Respondent", para[3][100:]),
        ("long:3", 3, "Interviewer", "Thanks."),
        ("long:4", 4, "Respondent", "Welcome."),
    ]
    assert all(s.codable for s in segments[1:4])
    # With the default limit nothing is split.
    assert [s.segment_id for s in segment_document(doc)] == ["long:1", "long:2", "long:3", "long:4"]


def test_long_paragraph_is_cut_at_sentence_ends_then_spaces(tmp_path: Path) -> None:
    sentence = "Access was negotiated again. "  # 29 characters
    turn = sentence * 6 + "word " * 30  # one paragraph of 324 characters
    text = f"Q: a?\nHamid: {turn}\nQ: b?\nHamid: c.\n"
    doc = _doc(tmp_path, text)
    segments = segment_document(doc, max_turn_chars=100)
    _check_offsets(doc, segments)
    parts = [s for s in segments if s.turn == 2]
    assert [s.segment_id for s in parts] == ["doc:2.1", "doc:2.2", "doc:2.3", "doc:2.4"]
    assert all(len(s.text) <= 100 for s in parts)
    # a part ends after a sentence where one fits, else after a word
    assert parts[0].text == (sentence * 3).strip() and parts[1].text == (sentence * 3).strip()
    assert parts[2].text == ("word " * 20).strip() and parts[3].text == ("word " * 10).strip()
    assert " ".join(s.text for s in parts).split() == turn.split()  # nothing lost
    assert [s.segment_id for s in segments if s.turn != 2] == ["doc:1", "doc:3", "doc:4"]


def test_prose_paragraph_longer_than_the_limit_is_cut_in_parts(tmp_path: Path) -> None:
    long = "The convoy waited at the checkpoint. " * 200  # 7,400 characters, one line
    doc = _doc(tmp_path, f"Short first paragraph.\n\n{long}\n\nLast one.\n")
    assert doc.layout == PROSE
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    ids = [s.segment_id for s in segments]
    assert ids == ["doc:1", "doc:2.1", "doc:2.2", "doc:3"]
    assert all(len(s.text) <= 4000 for s in segments)
    assert segments[1].text.endswith("checkpoint.")


# --- prose and excerpts -------------------------------------------------------------------


def test_prose_becomes_paragraphs(tmp_path: Path) -> None:
    text = (
        "---\ndoc_id: NOTE-1\n---\n\n"
        "Access in Kachin State depends on trust.\n"
        "It is built slowly.\n\n\n"
        "  Second paragraph: the church networks.  \n"
        " \t \n"
        "Third paragraph.\n"
    )
    doc = _doc(tmp_path, text)
    assert doc.layout == PROSE
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert [(s.segment_id, s.speaker, s.turn, s.codable, s.text) for s in segments] == [
        ("NOTE-1:1", "", None, True,
         "Access in Kachin State depends on trust.\nIt is built slowly."),
        ("NOTE-1:2", "", None, True, "Second paragraph: the church networks."),
        ("NOTE-1:3", "", None, True, "Third paragraph."),
    ]
    assert {s.source_type for s in segments} == {"literature"}


@pytest.mark.parametrize("mark", [".", " -", " –", " —"])
def test_labels_without_a_colon_in_a_conversation(tmp_path: Path, mark: str) -> None:
    q, a = ("Q", "A") if mark == "." else ("INTERVIEWER", "RESPONDENT")
    text = (f"Oral history, tape 3\n\n{q}{mark} How did it go?\n\n"
            f"{a}{mark} We met the commander - twice - and agreed on access.\n\n"
            f"{q}{mark} Did they threaten you?\n\n{a}{mark} They closed the road.\n")
    doc = _doc(tmp_path, text)
    assert doc.layout == TRANSCRIPT
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    q, a = (q, a) if mark == "." else ("Interviewer", "Respondent")
    assert _turns(segments) == [
        ("doc:0", "", 0, False, "Oral history, tape 3"),
        ("doc:1", q, 1, False, "How did it go?"),
        ("doc:2", a, 2, True, "We met the commander - twice - and agreed on access."),
        ("doc:3", q, 3, False, "Did they threaten you?"),
        ("doc:4", a, 4, True, "They closed the road."),
    ]


def test_numbered_question_and_answer_labels() -> None:
    text = "Q1. How?\n\nA1. Slowly.\n\nQ2. And then?\n\nA2. The road opened.\n"
    assert [(label.name, text[label.end:label.end + 4]) for label in find_labels(text)] == [
        ("Q1", "How?"), ("A1", "Slow"), ("Q2", "And "), ("A2", "The ")]


@pytest.mark.parametrize("text", [
    # numbered headings and outlines, also repeated section after section
    "I. Context\n\nThe war began.\n\nII. Findings\n\nAccess improved.\n",
    "A. Access\n\nText.\n\nB. Protection\n\nText.\n\nA. Access again\n\nB. More\n",
    "i. first\n\nii. second\n\ni. again\n\nii. again\n",
    # no interviewer among the roles, or one role only
    "Mr. Smith went to the checkpoint.\n\nDr. Lee stayed.\n\nMr. Smith came back.\n\n"
    "Dr. Lee left.\n",
    "Q. Why?\n\nQ. And why not?\n",
    # dashes inside prose
    "Access - as the report says - was denied.\n\nProtection - the other aim - failed.\n",
])
def test_dots_and_dashes_that_are_not_labels(tmp_path: Path, text: str) -> None:
    assert find_labels(text) == []
    assert _doc(tmp_path, text).layout == PROSE


def test_excerpts_are_one_segment_each(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lit.csv").write_text(
        'excerpt_id,text,case\nLIT-1,"  First excerpt.\n\nWith two paragraphs.  ",yemen\n'
        "LIT-2,Interviewer: not a transcript.,myanmar\n",
        encoding="utf-8",
    )
    documents = ingest_corpus(corpus).documents
    segments = segment_documents(documents)
    assert [(s.segment_id, s.doc_id, s.turn, s.speaker, s.codable) for s in segments] == [
        ("LIT-1:1", "LIT-1", None, "", True),
        ("LIT-2:1", "LIT-2", None, "", True),
    ]
    assert segments[0].text == "First excerpt.\n\nWith two paragraphs."
    assert segments[0].metadata == {"case": "yemen"}
    assert segments[0].source_type == "literature"
    for doc, seg in zip(documents, segments, strict=True):
        assert doc.text[seg.char_start : seg.char_end] == seg.text


# --- offsets and stability ----------------------------------------------------------------


def test_offsets_slice_text_in_every_layout(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(HEADER, encoding="utf-8")
    (corpus / "b.txt").write_bytes(HEADER.replace("\n", "\r\n").encode("utf-16"))
    (corpus / "c.md").write_text("# Title\n\nPara one.\n\nPara two.\n", encoding="utf-8")
    result = ingest_corpus(corpus)
    assert result.skipped == []
    for doc in result.documents:
        _check_offsets(doc, segment_document(doc, max_turn_chars=10))
    a, b = (segment_document(d) for d in result.documents[:2])
    assert [(s.turn, s.text) for s in a] == [(s.turn, s.text) for s in b]


def test_ids_are_stable_across_runs_and_folders(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "transcripts").mkdir(parents=True)
    (corpus / "transcripts" / "yem_int_12.txt").write_text(HEADER, encoding="utf-8")
    (corpus / "notes.md").write_text("One.\n\nTwo.\n", encoding="utf-8")
    (corpus / "lit.csv").write_text("id,text\nE1,x\nE2,y\n", encoding="utf-8")

    def run(folder: Path) -> list[tuple]:
        segments = segment_documents(ingest_corpus(folder).documents, max_turn_chars=20)
        return [(s.segment_id, s.turn, s.char_start, s.char_end, s.text) for s in segments]

    first = run(corpus)
    assert first == run(corpus)
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(corpus, copy)
    assert run(copy) == first
    ids = [row[0] for row in first]
    assert len(ids) == len(set(ids))
    assert ids[:3] == ["E1:1", "E2:1", "notes:1"]


def test_labels_with_a_role_in_brackets() -> None:
    text = (
        "Interviewer (JS): What did you ask for?\n\n"
        "Field Officer (WFP): A second crossing.\n\n"
        "Interviewer (JS): And then?\n\n"
        "Field Officer (WFP): We waited.\n"
    )
    names = [label.name for label in find_labels(text)]
    assert names == ["Interviewer (JS)", "Field Officer (WFP)"] * 2
    assert is_interviewer("Interviewer (JS)")


def test_one_off_speaker_after_the_conversation_started(tmp_path: Path) -> None:
    text = (
        "Date: 3 May 2023\n\n"
        "Interviewer: Who else was there?\n\n"
        "Interpreter: He says the elders came too.\n\n"
        "Interviewer: Thank you.\n"
    )
    segments = segment_document(_doc(tmp_path, text))
    assert [(s.segment_id, s.speaker, s.codable) for s in segments] == [
        ("doc:0", "", False),
        ("doc:1", "Interviewer", False),
        ("doc:2", "Interpreter", True),
        ("doc:3", "Interviewer", False),
    ]
    assert segments[0].text == "Date: 3 May 2023"


# --- Markdown, Otter.ai and full-width colon labels ---------------------------------------

MARKDOWN = """# Interview with a field coordinator

## Part 1: access

**Interviewer:** How did the negotiation start?

**Respondent**: We told the commander we would suspend distributions.

*Interviewer:* And then?

- Respondent: The other agencies agreed to a joint position.
- Interviewer: Anything else?

> Respondent: Local elders spoke to the armed group.
> They released the convoy.
"""


def test_markdown_labels(tmp_path: Path) -> None:
    doc = _doc(tmp_path, MARKDOWN, name="md_int.md")
    assert (doc.layout, doc.source_type) == (TRANSCRIPT, "interview")
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("md_int:0", "", 0, False,
         "# Interview with a field coordinator\n\n## Part 1: access"),
        ("md_int:1", "Interviewer", 1, False, "How did the negotiation start?"),
        ("md_int:2", "Respondent", 2, True,
         "We told the commander we would suspend distributions."),
        ("md_int:3", "Interviewer", 3, False, "And then?"),
        ("md_int:4", "Respondent", 4, True, "The other agencies agreed to a joint position."),
        ("md_int:5", "Interviewer", 5, False, "Anything else?"),
        ("md_int:6", "Respondent", 6, True,
         "Local elders spoke to the armed group.\n> They released the convoy."),
    ]


def test_markdown_emphasis_that_is_not_a_label(tmp_path: Path) -> None:
    text = (
        "**Interviewer:** What did you ask for?\n\n"
        "**Respondent:** Three things:\n\n- Food: rice and oil.\n- Water: two trucks.\n"
        "*Note: the list was agreed later.\n\n"
        "**Important:** access first.\n\n"
        "**Interviewer:** And?\n\n**Respondent:** They agreed.\n"
    )
    doc = _doc(tmp_path, text, name="doc.md")
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:1", "Interviewer", 1, False, "What did you ask for?"),
        ("doc:2", "Respondent", 2, True,
         "Three things:\n\n- Food: rice and oil.\n- Water: two trucks.\n"
         "*Note: the list was agreed later.\n\n**Important:** access first."),
        ("doc:3", "Interviewer", 3, False, "And?"),
        ("doc:4", "Respondent", 4, True, "They agreed."),
    ]


def test_otter_labels_on_their_own_line(tmp_path: Path) -> None:
    text = (
        "Otter.ai export\n\n"
        "Interviewer  0:03\nHow did the negotiation start?\n\n"
        "Amira Haddad  0:15\nWe told the commander.\nAround 10:30\nhe agreed.\n\n"
        "Interviewer  1:02:03\nAnd then?\n\n"
        "Amira Haddad  1:02:09\nThe agencies agreed.\n"
    )
    doc = _doc(tmp_path, text)
    assert doc.layout == TRANSCRIPT
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:0", "", 0, False, "Otter.ai export"),
        ("doc:1", "Interviewer", 1, False, "How did the negotiation start?"),
        ("doc:2", "Amira Haddad", 2, True, "We told the commander.\nAround 10:30\nhe agreed."),
        ("doc:3", "Interviewer", 3, False, "And then?"),
        ("doc:4", "Amira Haddad", 4, True, "The agencies agreed."),
    ]


def test_full_width_colon_labels(tmp_path: Path) -> None:
    labels = ("采访者",)
    text = (
        "采访者：谈判是怎么开始的？\n\n受访者：我们告诉指挥官。\n他说：不行。\n\n"
        "采访者：然后呢？\n\n受访者： 其他机构同意了。\n"
    )
    doc = _doc(tmp_path, text, interviewer_labels=labels)
    assert doc.layout == TRANSCRIPT
    segments = segment_document(doc, interviewer_labels=labels)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:1", "采访者", 1, False, "谈判是怎么开始的？"),
        ("doc:2", "受访者", 2, True, "我们告诉指挥官。\n他说：不行。"),
        ("doc:3", "采访者", 3, False, "然后呢？"),
        ("doc:4", "受访者", 4, True, "其他机构同意了。"),
    ]


# --- one-off labels -----------------------------------------------------------------------


def test_one_off_words_inside_a_turn_are_not_speakers(tmp_path: Path) -> None:
    text = (
        "Interviewer: How did it start?\n\n"
        "Respondent: We told the commander.\n"
        "Example: the second time, they held the staff overnight.\n"
        "Then: we called the other agencies.\n"
        "Field Office: closed for a week.\n\n"
        "Note: this was in May.\n\n"
        "For Example: the convoy to Taiz.\n\n"
        "Interviewer: And then?\n\n"
        "Respondent: The agencies agreed.\n"
    )
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:1", "Interviewer", 1, False, "How did it start?"),
        ("doc:2", "Respondent", 2, True,
         "We told the commander.\nExample: the second time, they held the staff overnight.\n"
         "Then: we called the other agencies.\nField Office: closed for a week.\n\n"
         "Note: this was in May.\n\nFor Example: the convoy to Taiz."),
        ("doc:3", "Interviewer", 3, False, "And then?"),
        ("doc:4", "Respondent", 4, True, "The agencies agreed."),
    ]


def test_one_off_speakers_that_open_a_paragraph(tmp_path: Path) -> None:
    text = (
        "Interviewer: Who else was there?\n\n"
        "Respondent: The elders.\n\n"
        "Dr Aung Naing: I was there too.\n\n"
        "Interviewer: Thank you.\n\n"
        "Respondent: Welcome.\n\n"
        "Interpreter: He has to leave now.\n"  # no recurring turn follows
    )
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:1", "Interviewer", 1, False, "Who else was there?"),
        ("doc:2", "Respondent", 2, True, "The elders."),
        ("doc:3", "Dr Aung Naing", 3, True, "I was there too."),
        ("doc:4", "Interviewer", 4, False, "Thank you."),
        ("doc:5", "Respondent", 5, True, "Welcome.\n\nInterpreter: He has to leave now."),
    ]


def test_the_answer_to_the_last_question_is_a_turn(tmp_path: Path) -> None:
    # one question, one answer: before, 'Respondent' was a one-off after the last
    # recurring label, and the exchange was read as prose
    text = "Interviewer: Who opened the road?\n\nRespondent: The local committee.\n"
    doc = _doc(tmp_path, text)
    assert doc.layout == TRANSCRIPT
    assert _turns(segment_document(doc)) == [
        ("doc:1", "Interviewer", 1, False, "Who opened the road?"),
        ("doc:2", "Respondent", 2, True, "The local committee."),
    ]
    # only the first label after the last question: a later one-off is text of the answer
    text += "Note: the recorder stopped.\n\nWitness said no more.\n"
    assert [label.name for label in find_labels(text)] == ["Interviewer", "Respondent"]


def test_one_off_speaker_when_turns_are_not_separated_by_blank_lines(tmp_path: Path) -> None:
    text = (
        "Interviewer: Who else was there?\n"
        "Respondent: The elders.\n"
        "Then: the commander.\n"
        "Interpreter: He says the elders came too.\n"
        "Interviewer: Thank you.\n"
        "Respondent: Welcome.\n"
    )
    segments = segment_document(_doc(tmp_path, text))
    assert _turns(segments) == [
        ("doc:1", "Interviewer", 1, False, "Who else was there?"),
        ("doc:2", "Respondent", 2, True, "The elders.\nThen: the commander."),
        ("doc:3", "Interpreter", 3, True, "He says the elders came too."),
        ("doc:4", "Interviewer", 4, False, "Thank you."),
        ("doc:5", "Respondent", 5, True, "Welcome."),
    ]


@pytest.mark.parametrize(
    "brk",
    ["\x0c", "\x0b", "\u2028", "\u2029", "\x85", "\n\ufeff", "\r\n\x0c"],
    ids=["form-feed", "vertical-tab", "line-separator", "paragraph-separator", "next-line",
         "bom-mid-file", "crlf-form-feed"],
)
def test_page_breaks_and_unicode_line_breaks_end_a_turn(tmp_path: Path, brk: str) -> None:
    text = ("Interviewer: How did you reach the camp?\n\nRespondent: At dawn." + brk +
            "Interviewer: And then?\n\nRespondent: We waited" + brk + "two hours.\n")
    doc = _doc(tmp_path, text)
    assert doc.layout == TRANSCRIPT
    assert not any(c in doc.text for c in "\x0b\x0c\u2028\u2029\x85\ufeff\r")
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert [(s.speaker, s.codable, s.text) for s in segments] == [
        ("Interviewer", False, "How did you reach the camp?"),
        ("Respondent", True, "At dawn."),
        ("Interviewer", False, "And then?"),
        ("Respondent", True, "We waited\n\ntwo hours." if brk == "\r\n\x0c" else
         "We waited\ntwo hours."),
    ]


def test_invisible_characters_in_names_are_one_speaker(tmp_path: Path) -> None:
    text = ("\u200fRespondent: One.\n\nInterviewer: Two?\n\nRes\u200bpondent: Three.\n\n"
            "Interviewer: Four?\n\nRESPONDENT\u00a0: Five.\n")
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert {s.speaker for s in segments if s.codable} == {"Respondent"}
    assert [s.text for s in segments if s.codable] == ["One.", "Three.", "Five."]
    assert is_interviewer("\u200fInter\u200bviewer")


def test_a_no_break_space_inside_a_sentence_is_no_label(tmp_path: Path) -> None:
    text = ("Interviewer\u00a0: Qu'avez-vous fait ?\n\nRespondent\u00a0: Voici ce que nous "
            "avons décidé\u00a0: attendre.\nCeci est la règle\u00a0: attendre.\n\n"
            "Interviewer\u00a0: Et ensuite ?\n\nRespondent\u00a0: Rien.\n")
    doc = _doc(tmp_path, text)
    segments = segment_document(doc)
    assert [s.speaker for s in segments] == ["Interviewer", "Respondent"] * 2
    assert segments[1].text.endswith("Ceci est la règle\u00a0: attendre.")


# --- layouts found in real transcripts (audit 4) -------------------------------------------


def _speakers(text: str, **kwargs) -> list[tuple[str, bool, str]]:
    return [(s.speaker, s.codable, s.text)
            for s in segment_documents([_plain(text)], **kwargs) if s.turn]


def _plain(text: str) -> Document:
    from qualcode.ingest.readers import _layout

    return Document("t", "t.txt", "txt", _layout(text, ("Interviewer", "Q")), text, "0")


def test_a_label_typed_without_a_space_after_its_colon() -> None:
    text = ("Interviewer: Where?\nRespondent:In Saada.\nInterviewer:When?\n"
            "Respondent: In May.\nInterviewer: Why?\nRespondent:The road.\n")
    assert _speakers(text) == [
        ("Interviewer", False, "Where?"), ("Respondent", True, "In Saada."),
        ("Interviewer", False, "When?"), ("Respondent", True, "In May."),
        ("Interviewer", False, "Why?"), ("Respondent", True, "The road."),
    ]
    # a one-off word before a colon without a space is no label
    assert _speakers("Interviewer: Where?\nRespondent: See:Annex B.\nInterviewer: Ok.\n"
                     "Respondent: Yes.\n")[1] == ("Respondent", True, "See:Annex B.")


def test_a_typo_of_the_interviewers_label_is_the_interviewer() -> None:
    text = ("Interviewer: Where?\nRespondent: In Saada.\nInterviwer: When?\n"
            "Respondent: In May.\nInterviewer: Why?\nRespondent: The road.\n")
    assert [(s, c) for s, c, _ in _speakers(text)] == [
        ("Interviewer", False), ("Respondent", True)] * 3


def test_a_semicolon_typed_for_a_labels_colon() -> None:
    text = ("Interviewer: Where?\nRespondent: In Saada; we met.\nInterviewer; When?\n"
            "Respondent; In May.\nHowever; nothing changed.\n")
    assert _speakers(text) == [
        ("Interviewer", False, "Where?"), ("Respondent", True, "In Saada; we met."),
        ("Interviewer", False, "When?"),
        ("Respondent", True, "In May.\nHowever; nothing changed.")]


@pytest.mark.parametrize("name", ["Participant #3", "Al-Sayed, Omar",
                                  "မေးသူ", "उत्तरदाता", "ผู้ให้สัมภาษณ์", "المُشارِك",
                                  unicodedata.normalize("NFD", "Interrogé")])
def test_names_with_marks_numbers_and_commas(name: str) -> None:
    text = f"Interviewer: Where?\n{name}: In Saada.\nInterviewer: When?\n{name}: In May.\n"
    assert _speakers(text) == [("Interviewer", False, "Where?"), (name, True, "In Saada."),
                               ("Interviewer", False, "When?"), (name, True, "In May.")]


def test_common_words_used_twice_are_not_speakers() -> None:
    text = ("Interviewer: Where?\nNote: the recorder was paused.\nRespondent: In Saada.\n"
            "Interviewer: When?\nFollow-up: Who decided?\nRespondent: In May. He said: "
            "wait.\nHe said: no.\nInterviewer: Ok.\nFollow-up: Why?\nNote: laughter.\n")
    assert [(s, c) for s, c, _ in _speakers(text)] == [
        ("Interviewer", False), ("Respondent", True), ("Interviewer", False),
        ("Respondent", True), ("Interviewer", False)]
    # question and answer are roles, the question an interviewer's
    assert _speakers("Question: Where?\nAnswer: In Saada.\nQuestion: When?\n"
                     "Answer: In May.\n") == [
        ("Question", False, "Where?"), ("Answer", True, "In Saada."),
        ("Question", False, "When?"), ("Answer", True, "In May.")]


def test_numbered_one_off_participants_are_speakers() -> None:
    text = ("Facilitator: Who decides?\nParticipant 1: The elders.\nParticipant 2: The "
            "commander.\nFacilitator: And then?\nParticipant 3: Nobody.\n"
            "Facilitator: Thank you.\n")
    assert [(s, c) for s, c, _ in _speakers(text)] == [
        ("Facilitator", False), ("Participant 1", True), ("Participant 2", True),
        ("Facilitator", False), ("Participant 3", True), ("Facilitator", False)]


@pytest.mark.parametrize("text", [
    "Q: Where?\nIn Saada, with the elders.\n\nQ: When?\nIn May.\n",
    "Interviewer: Where?\n\nIn Saada, with the elders.\n\nInterviewer: When?\n\nIn May.\n",
])
def test_unlabelled_answers_after_interviewer_only_labels(text: str) -> None:
    answer = "Respondent (unlabelled)"
    assert [(c, t) for _, c, t in _speakers(text)] == [
        (False, "Where?"), (True, "In Saada, with the elders."), (False, "When?"),
        (True, "In May.")]
    assert [s for s, _, _ in _speakers(text)][1::2] == [answer, answer]


def test_notes_on_transcripts_with_only_interviewer_labels(tmp_path: Path) -> None:
    from qualcode.corpus import read_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "answers.txt").write_text("Q: Where?\nIn Saada.\n\nQ: When?\nIn May.\n")
    (corpus / "questions.txt").write_text("Interviewer: Where?\n\nInterviewer: When?\n")
    batch = read_corpus(corpus)
    assert [(s.path, s.note, s.reason.split(",")[0]) for s in batch.skipped] == [
        ("answers.txt", True, "has speaker labels only for the interviewer (Q)"),
        ("questions.txt", True, "has only interviewer turns (Interviewer)")]
    assert "nothing in it was coded" in batch.skipped[1].reason
    assert sum(s.codable for s in flat_segments(batch)) == 2


@pytest.mark.parametrize("label", [
    "[00:00:05] {name}\n", "00:00:05 {name}\n", "{name} [00:00:05]\n", "{name} (00:05)\n",
    "[00:00:05.08] - {name}\n", "{upper}\n", "[{name}] ", "{name}\t",
])
def test_transcription_service_layouts(label: str) -> None:
    def turn(name: str, words: str) -> str:
        return label.format(name=name, upper=name.upper()) + words + "\n\n"

    text = (turn("Interviewer", "Where did you go?") + turn("Respondent", "To Saada.")
            + turn("Interviewer", "When?") + turn("Respondent", "In May."))
    assert _speakers(text) == [
        ("Interviewer", False, "Where did you go?"), ("Respondent", True, "To Saada."),
        ("Interviewer", False, "When?"), ("Respondent", True, "In May.")]


def test_stamped_speaker_numbers_and_line_numbers() -> None:
    text = ("[00:00:05] Speaker 1\nWhere?\n\n[00:00:09] Speaker 2\nIn Saada.\n\n"
            "[00:00:15] Speaker 1\nWhen?\n\n[00:00:19] Speaker 2\nIn May.\n")
    assert [s for s, _, _ in _speakers(text)] == ["Speaker 1", "Speaker 2"] * 2
    numbered = "1\tInterviewer: Where?\n2\tRespondent: In Saada.\n3\tInterviewer: When?\n"
    assert [(s, t) for s, _, t in _speakers(numbered)] == [
        ("Interviewer", "Where?"), ("Respondent", "In Saada."), ("Interviewer", "When?")]
    # headings alone on their lines stay prose
    prose = "Context\n\nThe war began.\n\nFindings\n\nAccess improved.\n\nContext\n\nMore.\n"
    assert find_labels(prose) == []


def test_long_chinese_turns_are_cut_at_sentence_ends(tmp_path: Path) -> None:
    sentence = "我们通过长老与当地指挥官谈判。"
    text = f"Interviewer: 怎么样？\n\nRespondent: {sentence * 30}\n"
    doc = _doc(tmp_path, text)
    parts = [s.text for s in segment_document(doc, max_turn_chars=100) if s.codable]
    assert len(parts) > 1 and all(p.endswith("。") for p in parts)
    assert "".join(parts) == sentence * 30


NAMED_HEADER = """Interview 7
Interviewer: Jane Doe
Respondent: P07 (pseudonym)
Date: 12 May 2023
Location: Aden

Interviewer: Thanks for joining. How did it start?

Respondent: It started in March when the prices rose.

Interviewer: And then?

Respondent: Then we moved to the city.
"""


def test_a_header_block_naming_the_speakers_is_the_preamble(tmp_path: Path) -> None:
    doc = _doc(tmp_path, NAMED_HEADER)
    segments = segment_document(doc)
    _check_offsets(doc, segments)
    assert _turns(segments) == [
        ("doc:0", "", 0, False, "Interview 7\nInterviewer: Jane Doe\nRespondent: P07 "
         "(pseudonym)\nDate: 12 May 2023\nLocation: Aden"),
        ("doc:1", "Interviewer", 1, False, "Thanks for joining. How did it start?"),
        ("doc:2", "Respondent", 2, True, "It started in March when the prices rose."),
        ("doc:3", "Interviewer", 3, False, "And then?"),
        ("doc:4", "Respondent", 4, True, "Then we moved to the city."),
    ]


@pytest.mark.parametrize("text", [
    # the opening lines are turns: no key in them that labels no turn
    "Interviewer: Hello.\nRespondent: Hi.\n\nInterviewer: Ready?\n\nRespondent: Yes.\n",
    # turns not separated by blank lines: a one-off key is part of a turn
    "Interviewer: Hello.\nRespondent: Hi.\nNote: recorder on\n\nInterviewer: Ready?\n"
    "Respondent: Yes.\n",
    # a line of words in the block
    "Interviewer: Hello.\nRespondent: Hi, we met at the market last year and talked.\n"
    "Date: 12 May\n\nInterviewer: Ready?\n\nRespondent: Yes.\n",
])
def test_opening_turns_that_are_no_header_block_stay_turns(tmp_path: Path, text: str) -> None:
    segments = segment_document(_doc(tmp_path, text))
    assert segments[0].segment_id == "doc:1"
    assert (segments[0].speaker, segments[1].speaker) == ("Interviewer", "Respondent")
