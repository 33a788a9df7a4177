"""Transcripts as researchers have them: header blocks, Markdown tables and headings, time
stamps on their own lines, shouted labels, files of other types. Real files in tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest

from qualcode.documents import PROSE, TRANSCRIPT
from qualcode.ingest import ingest_corpus
from qualcode.segment import segment_document

from .conftest import write_corpus as _corpus


def _segments(tmp_path: Path, name: str, content: str | bytes):
    result = ingest_corpus(_corpus(tmp_path, {name: content}))
    assert result.skipped == [], [str(s) for s in result.skipped]
    (doc,) = result.documents
    segments = segment_document(doc)
    for seg in segments:
        assert doc.text[seg.char_start:seg.char_end] == seg.text
    return doc, [(s.segment_id, s.speaker, s.codable, s.text) for s in segments]


def _docx(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- a header block, one field per line or per paragraph ------------------------------------

HEADER = ["Interview ID: KIA-07", "Date: 3 March 2021", "Location: Myitkyina",
          "Interviewer: A.B.", "Respondent: field officer"]
DIALOGUE = ["Interviewer: How did the checkpoint talks begin?",
            "Respondent: We met the commander twice before the rains.",
            "Interviewer: And what did you offer?",
            "Respondent: Only what the agency allowed."]
TURNS = [
    ("kia07:1", "Interviewer", False, "How did the checkpoint talks begin?"),
    ("kia07:2", "Respondent", True, "We met the commander twice before the rains."),
    ("kia07:3", "Interviewer", False, "And what did you offer?"),
    ("kia07:4", "Respondent", True, "Only what the agency allowed."),
]


@pytest.mark.parametrize(("name", "content", "preamble"), [
    ("kia07.docx", _docx(HEADER + DIALOGUE), "\n\n".join(HEADER)),
    ("kia07.txt", "\n".join(HEADER + DIALOGUE) + "\n", "\n".join(HEADER)),
    ("kia07.txt", "\n\n".join(HEADER + DIALOGUE) + "\n", "\n\n".join(HEADER)),
    ("kia07.md", "\n".join(f"**{line.replace(':', ':**', 1)}" for line in HEADER + DIALOGUE),
     "\n".join(f"**{line.replace(':', ':**', 1)}" for line in HEADER)),
])
def test_a_header_block_one_field_per_line_is_the_preamble(
        tmp_path: Path, name: str, content: str | bytes, preamble: str) -> None:
    _, segments = _segments(tmp_path, name, content)
    assert segments == [("kia07:0", "", False, preamble), *TURNS]


def test_header_fields_after_the_speakers_are_no_speakers(tmp_path: Path) -> None:
    # "Venue" and "Languages" are no common words: once they were one-off speakers
    header = ["Transcript KIA-08", "Interviewer: A.B.", "Respondent: field officer, NGO",
              "Venue: Myitkyina office", "Languages: Jinghpaw, Burmese"]
    _, segments = _segments(tmp_path, "kia07.txt", "\n".join(header + DIALOGUE))
    assert segments == [("kia07:0", "", False, "\n".join(header)), *TURNS]


def test_short_unpunctuated_opening_turns_are_no_header(tmp_path: Path) -> None:
    text = "Note: recorder on\nInterviewer: Hello\nRespondent: Hi\nInterviewer: Ready?\n" \
           "Respondent: Yes\n"
    _, segments = _segments(tmp_path, "chat.txt", text)
    assert [s[1] for s in segments] == ["", "Interviewer", "Respondent", "Interviewer",
                                        "Respondent"]


@pytest.mark.parametrize(("first", "second"), [
    ("Good morning", "Morning"), ("Hello!", "Hi"), ("Salaam alaikum", "Yes, hello.")])
def test_greetings_below_a_header_block_are_turns(tmp_path: Path, first: str,
                                                  second: str) -> None:
    header = HEADER[:3]
    greetings = [f"Interviewer: {first}", f"Respondent: {second}"]
    _, segments = _segments(tmp_path, "kia07.txt", "\n".join(header + greetings + DIALOGUE))
    assert segments == [("kia07:0", "", False, "\n".join(header)),
                        ("kia07:1", "Interviewer", False, first),
                        ("kia07:2", "Respondent", True, second),
                        *[(f"kia07:{int(sid.split(':')[1]) + 2}", *rest)
                          for sid, *rest in TURNS]]


@pytest.mark.parametrize("name", ["kia12.txt", "kia12.docx"])
def test_a_file_with_only_a_header_block_is_reported(tmp_path: Path, name: str) -> None:
    content = _docx(HEADER) if name.endswith("docx") else "\n".join(HEADER) + "\n"
    result = ingest_corpus(_corpus(tmp_path, {name: content}))
    assert result.documents == []
    (skipped,) = result.skipped
    assert skipped.path == name and not skipped.note
    assert skipped.reason.startswith(
        "has only a header block (Interview ID, Date, Location, Interviewer, Respondent) "
        "and no interview text — add the transcript below the header")


# --- Markdown pipe tables -------------------------------------------------------------------

TABLE = """# Interview KIA-09

| Speaker | Text |
|---|---|
| Interviewer | How did the convoy get through? |
| **Respondent** | We waited two days.<br>Then the elders wrote a letter. |
| Interviewer | Did you pay anything? |
| Respondent | No \\| never. |
"""


@pytest.mark.parametrize("name", ["kia09.md", "kia09.txt"])
def test_a_markdown_table_of_turns_is_read_as_turns(tmp_path: Path, name: str) -> None:
    doc, segments = _segments(tmp_path, name, TABLE)
    assert doc.layout == TRANSCRIPT
    assert segments == [
        ("kia09:0", "", False, "# Interview KIA-09"),
        ("kia09:1", "Interviewer", False, "How did the convoy get through?"),
        ("kia09:2", "Respondent", True, "We waited two days.\nThen the elders wrote a letter."),
        ("kia09:3", "Interviewer", False, "Did you pay anything?"),
        ("kia09:4", "Respondent", True, "No | never."),
    ]


def test_a_markdown_table_without_a_header_row_of_names(tmp_path: Path) -> None:
    text = ("| Interviewer | What did you see? |\n| --- | --- |\n| Respondent | Smoke. |\n"
            "| Interviewer | When? |\n| Respondent | At dawn. |\n")
    _, segments = _segments(tmp_path, "t.md", text)
    assert [s[1:] for s in segments] == [
        ("Interviewer", False, "What did you see?"), ("Respondent", True, "Smoke."),
        ("Interviewer", False, "When?"), ("Respondent", True, "At dawn."),
    ]


def test_a_timed_markdown_table_notes_the_rows_it_left_out(tmp_path: Path) -> None:
    text = ("---\ncase: kachin\n---\n"
            "| Time | Speaker | Text |\n|:--|:--|:--|\n"
            "| 00:00:05 | Interviewer | Where were you in 2019? |\n"
            "| 00:00:09 | Respondent | In Lashio. |\n"
            "| 00:01:10 | | [tape change] |\n"
            "| 00:01:15 | Interviewer | Who ran the gate? |\n")
    result = ingest_corpus(_corpus(tmp_path, {"t.md": text}))
    (doc,) = result.documents
    assert doc.metadata == {"case": "kachin"}
    assert [(s.speaker, s.text) for s in segment_document(doc)] == [
        ("Interviewer", "Where were you in 2019?"), ("Respondent", "In Lashio."),
        ("Interviewer", "Who ran the gate?")]
    (note,) = result.skipped
    assert (note.path, note.line, note.note) == ("t.md", 8, True)
    assert note.reason.startswith("this table row is a note, not a turn ('[tape change]'); "
                                  "it was left out and not coded")


def test_a_markdown_table_notes_a_column_it_did_not_read(tmp_path: Path) -> None:
    text = ("Interview 3\n\n| # | Speaker | Transcript | Comment |\n|--|--|--|--|\n"
            "| 1 | Interviewer | Where were you? | |\n"
            "| 2 | Respondent | In Lashio. | unclear audio |\n"
            "| 3 | Interviewer | Who ran the gate? | |\n")
    result = ingest_corpus(_corpus(tmp_path, {"t.md": text}))
    (doc,) = result.documents
    assert [(s.speaker, s.text) for s in segment_document(doc)] == [
        ("", "Interview 3"), ("Interviewer", "Where were you?"), ("Respondent", "In Lashio."),
        ("Interviewer", "Who ran the gate?")]
    (note,) = result.skipped
    assert (note.line, note.note) == (3, True)
    assert note.reason.startswith(
        "the table's column 'Comment' was not read ('unclear audio'): only its speaker, "
        "text and time columns are")


def test_a_markdown_table_that_is_no_transcript_stays_as_written(tmp_path: Path) -> None:
    text = "Codes used\n\n| Code | Meaning |\n|---|---|\n| ACC | access |\n| NEG | talks |\n"
    doc, segments = _segments(tmp_path, "codes.md", text)
    assert doc.layout == PROSE and doc.text == text
    assert [s[3] for s in segments] == [
        "Codes used", "| Code | Meaning |\n|---|---|\n| ACC | access |\n| NEG | talks |"]


# --- labels -------------------------------------------------------------------------------


def test_a_shouted_label_with_a_note_is_shown_in_title_case(tmp_path: Path) -> None:
    text = ("INTERVIEWER: How old were you then?\nRESPONDENT 1 (male, 40s): Thirty.\n"
            "INTERVIEWER: And your brother?\nRESPONDENT 2 (UNHCR): Twenty-five.\n"
            "RESPONDENT 1 (male, 40s): He was younger.\nRESPONDENT 2 (UNHCR): Yes.\n")
    _, segments = _segments(tmp_path, "t.txt", text)
    assert [s[1] for s in segments] == [
        "Interviewer", "Respondent 1 (male, 40s)", "Interviewer", "Respondent 2 (UNHCR)",
        "Respondent 1 (male, 40s)", "Respondent 2 (UNHCR)"]


@pytest.mark.parametrize("label", ["### {}", "## {}", "**{}**", "__{}__"])
def test_a_label_as_a_markdown_heading_above_the_words(tmp_path: Path, label: str) -> None:
    turns = [("INTERVIEWER", "How did you get the permit?"), ("RESPONDENT", "Through the office."),
             ("INTERVIEWER", "How long did it take?"), ("RESPONDENT", "Three weeks.")]
    text = "\n\n".join(f"{label.format(name)}\n{words}" for name, words in turns) + "\n"
    _, segments = _segments(tmp_path, "t.md", text)
    assert [s[1:] for s in segments] == [
        ("Interviewer", False, "How did you get the permit?"),
        ("Respondent", True, "Through the office."),
        ("Interviewer", False, "How long did it take?"), ("Respondent", True, "Three weeks.")]


def test_markdown_section_headings_are_no_speakers(tmp_path: Path) -> None:
    text = "## Background\nThe road closed.\n\n## Findings\nIt opened.\n\n## Background\nMore.\n"
    doc, _ = _segments(tmp_path, "report.md", text)
    assert doc.layout == PROSE


# --- time stamps on their own lines -----------------------------------------------------------


def test_a_time_stamp_above_a_label_is_no_part_of_the_turn_before(tmp_path: Path) -> None:
    text = ("00:00:01\nInterviewer: What time did you leave?\n\n[00:00:09]\nRespondent: 12:30\n\n"
            "00:00:30\nInterviewer: Only one truck?\n00:00:33\nRespondent: Yes, one.\n00:01:00\n")
    _, segments = _segments(tmp_path, "t.txt", text)
    assert segments == [
        ("t:1", "Interviewer", False, "What time did you leave?"),
        ("t:2", "Respondent", True, "12:30"),
        ("t:3", "Interviewer", False, "Only one truck?"),
        ("t:4", "Respondent", True, "Yes, one."),
    ]


# --- files of other types -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "words"), [
    ("t.rtf", "unsupported file type '.rtf' (a Rich Text document) — open it in Word or "
              "LibreOffice Writer and save it as .docx (File › Save As), or move it out"),
    ("t.odt", "(an OpenDocument text) — open it in Word or LibreOffice Writer"),
    ("t.doc", "(an old-style Word document) — open it in Word"),
    ("t.pages", "(an Apple Pages document) — open it in Pages and export it as Word"),
    ("t.m4a", "(an audio or video recording) — transcribe it first"),
    ("t.xyz", "unsupported file type '.xyz' — convert it to one of .txt, .md"),
])
def test_a_file_of_another_type_says_how_to_convert_it(
        tmp_path: Path, name: str, words: str) -> None:
    result = ingest_corpus(_corpus(tmp_path, {name: b"{\\rtf1 x}"}))
    (skipped,) = result.skipped
    assert skipped.path == name and words in skipped.reason


# --- a transcript exported as a table -----------------------------------------------------------

CSV_TURNS = ("Speaker,Start Time,Text\nInterviewer,00:00:05,How did it start?\n"
             'Respondent,00:00:09,"With a letter, from the elders."\n'
             "Interviewer,00:00:20,And then?\nRespondent,00:00:25,We drove up.\n")
TABLE_TURNS = [
    ("turns:1", "Interviewer", False, "How did it start?"),
    ("turns:2", "Respondent", True, "With a letter, from the elders."),
    ("turns:3", "Interviewer", False, "And then?"),
    ("turns:4", "Respondent", True, "We drove up."),
]


def test_a_csv_transcript_with_speaker_and_text_columns_is_read_as_turns(
        tmp_path: Path) -> None:
    doc, segments = _segments(tmp_path, "transcripts/turns.csv", CSV_TURNS)
    assert (doc.layout, doc.source_type) == (TRANSCRIPT, "interview")
    assert segments == TABLE_TURNS


def test_a_one_sheet_workbook_transcript_is_read_as_turns(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    for row in [["Speaker", "Text"], ["Interviewer", "How did it start?"],
                ["Respondent", "With a letter, from the elders."],
                ["Interviewer", "And then?"], ["Respondent", "We drove up."]]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    _, segments = _segments(tmp_path, "turns.xlsx", out.getvalue())
    assert segments == TABLE_TURNS


def test_an_excerpt_table_without_an_id_column_is_still_reported(tmp_path: Path) -> None:
    text = "Name,Text\nAung,The road was closed.\nHla,It opened in May.\n"
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": text}))
    assert result.documents == []
    (skipped,) = result.skipped
    assert skipped.reason.startswith("has no id column (columns: Name, Text)")
