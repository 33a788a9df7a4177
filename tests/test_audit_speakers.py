"""Hard-wrapped turns: a line that starts with words and a colon (``school: the road``)
is no speaker label, however often it recurs; real labels still are."""

from __future__ import annotations

import textwrap

import pytest

from qualcode.documents import TRANSCRIPT, Document
from qualcode.segment import segment_document
from qualcode.speakers import find_labels

# /tmp/s9/scale/corpora/wrap/transcripts/wrapped.txt, as reported
WRAPPED = (
    "Interviewer: Tell me about the schools in the district.\n\n"
    "Respondent: The children could not go to the\n"
    "school: the road was closed by the armed group for months. Later they went back to the\n"
    "school: it was reopened after we negotiated with the commander.\n\n"
    "Interviewer: And the clinic?\n\n"
    "Respondent: The clinic stayed open the whole time.\n"
)


def _doc(text: str) -> Document:
    return Document("doc", "doc.txt", "txt", TRANSCRIPT, text, "0" * 64)


def _speakers(text: str) -> list[str]:
    return [label.name for label in find_labels(text)]


def test_wrapped_reproduction_keeps_its_turns_and_words() -> None:
    segments = segment_document(_doc(WRAPPED))
    assert [(s.segment_id, s.speaker) for s in segments] == [
        ("doc:1", "Interviewer"), ("doc:2", "Respondent"),
        ("doc:3", "Interviewer"), ("doc:4", "Respondent")]
    assert segments[1].text == (
        "The children could not go to the\n"
        "school: the road was closed by the armed group for months. Later they went back to the\n"
        "school: it was reopened after we negotiated with the commander.")


def test_long_wrapped_answers_give_no_fake_speakers() -> None:
    answer = (
        "It was a real threat, not a bluff, and it was targeted: the authorities would lose "
        "food. I keep a big tracking sheet: request sent, received, approved. The results "
        "were good: complaints down. My contract ends next summer, and I do not know. Each "
        "wants something: a fee, fuel, a lift. Some are not reasonable: they want more. "
        "But the message was clear enough: we can stop you. The school was closed, as the "
        "school: who is included and why. It was a good thing: nobody lost face.")
    turns = []
    for i, width in enumerate((38, 41, 44, 47, 50, 53, 56, 59)):
        turns += [f"Interviewer: Question {i}?", "Respondent: " + textwrap.fill(answer, width)]
    text = "\n\n".join(turns) + "\n"
    assert _speakers(text) == ["Interviewer", "Respondent"] * 8


@pytest.mark.parametrize("paragraph", [
    "It was targeted: the authorities would lose food.",
    "Each wants something: a fee, fuel, a lift.",
    "We said it plainly: our policy is public.",
    "Some are not reasonable: they want more.",
])
def test_clause_opening_a_paragraph_twice_is_no_speaker(paragraph: str) -> None:
    text = (f"Interviewer: How?\n\nRespondent: Slowly.\n\n{paragraph}\n\n"
            f"Interviewer: Again?\n\nRespondent: Yes.\n\n{paragraph}\n")
    assert _speakers(text) == ["Interviewer", "Respondent"] * 2


def test_lower_case_word_after_a_full_stop_is_no_speaker() -> None:
    text = ("Interviewer: How was it?\nRespondent: Hard.\nthing: we had no fuel.\n"
            "Interviewer: And later?\nRespondent: Better.\nthing: the road opened.\n")
    assert _speakers(text) == ["Interviewer", "Respondent"] * 2


@pytest.mark.parametrize(("a", "b"), [
    ("Interviewer", "Respondent"), ("Interviewer", "Hanan"), ("Q", "A"),
    ("INTERVIEWER", "AMIRA"), ("Moderator", "Dr Amina"), ("Interviewer", "KIO liaison officer"),
    ("Speaker 1", "Speaker 2"), ("Interviewer", "P1"), ("interviewer", "respondent"),
    ("i", "p1"), ("interviewer", "speaker 2"), ("Interviewer", "**amira**"),
])
def test_real_labels_still_found_in_wrapped_turns(a: str, b: str) -> None:
    # turns without a full stop at the end of a line, as in lower-case chat transcripts
    text = (f"{a}: so how did you reach\nthe camp\n{b}: we walked for two days and\n"
            f"nobody stopped us\n{a}: and then\n{b}: then we waited\n")
    labels = find_labels(text)
    assert [text[label.start:label.end].strip() for label in labels] == [
        f"{a}:", f"{b}:", f"{a}:", f"{b}:"]


def test_name_written_in_lower_case_once_stays_the_speaker() -> None:
    text = "Interviewer: a?\nAMIRA: b.\nInterviewer: c?\nAmira: d.\nINTERVIEWER: e?\namira: f.\n"
    assert _speakers(text) == ["Interviewer", "Amira"] * 3


def test_lower_case_name_continuing_a_sentence_is_text() -> None:
    text = ("Interviewer: Who helped?\n\nAmira: We asked my cousin\namira: she is a nurse.\n\n"
            "Interviewer: And then?\n\nAmira: Nothing.\n")
    segments = segment_document(_doc(text))
    assert [s.speaker for s in segments] == ["Interviewer", "Amira"] * 2
    assert segments[1].text == "We asked my cousin\namira: she is a nurse."


def test_wrapped_role_word_is_not_an_interviewer_turn() -> None:
    # ``question`` is an interviewer label: taken as one, the answer's words were uncoded
    text = ("Interviewer: Why?\n\nRespondent: I had one\nquestion: why did they close it?\n\n"
            "Interviewer: And?\n\nRespondent: We went through an\ninterpreter: a boy.\n")
    segments = segment_document(_doc(text))
    assert [(s.speaker, s.codable) for s in segments] == [
        ("Interviewer", False), ("Respondent", True)] * 2
    assert segments[1].text == "I had one\nquestion: why did they close it?"


def test_wrapped_role_word_among_named_speakers_is_text() -> None:
    text = ("Amira: I had one\nquestion: why did they close it.\n\nHanan: And?\n\n"
            "Amira: We went through an\ninterpreter: a boy.\n\nHanan: Thanks.\n")
    assert _speakers(text) == ["Amira", "Hanan"] * 2


def test_labels_are_found_once_per_text_while_remembered(monkeypatch) -> None:
    import qualcode.speakers as speakers

    calls = []
    real = speakers._find_labels
    monkeypatch.setattr(speakers, "_find_labels",
                        lambda *args: calls.append(args[0]) or real(*args))
    text = "Interviewer: How?\n\nRespondent: Slowly.\n"
    with speakers.labels_remembered():
        first = speakers.find_labels(text)
        first.clear()  # a caller's list is its own
        again = speakers.find_labels(text)
        other = speakers.find_labels(text, ["Respondent"])  # other labels: found anew
    assert [label.name for label in again] == ["Interviewer", "Respondent"]
    assert [label.name for label in other] == ["Respondent"]  # Interviewer: used once
    assert len(calls) == 2
    speakers.find_labels(text)  # outside, nothing is remembered
    assert len(calls) == 3
