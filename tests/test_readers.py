"""Each reader on real files written in ``tmp_path``: text, docx, pdf, subtitles, tables."""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path

import docx
import openpyxl
import pypdf
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls

from qualcode.documents import EXCERPT, PROSE, TRANSCRIPT
from qualcode.ingest import ingest_corpus
from qualcode.segment import segment_document

from .conftest import write_corpus as _corpus

LABELS = ("Interviewer", "Int", "I", "Q", "Moderator")


def _one(corpus: Path):
    result = ingest_corpus(corpus)
    assert result.skipped == [], [str(s) for s in result.skipped]
    assert len(result.documents) == 1
    return result.documents[0]


def _skip_of(corpus: Path):
    result = ingest_corpus(corpus)
    assert result.documents == []
    assert len(result.skipped) == 1, [str(s) for s in result.skipped]
    return result.skipped[0]


# --- .txt / .md ---------------------------------------------------------------------------

FRONT = """---
doc_id: YEM-INT-07
case: yemen
date: 2023-04-18
interviewee_role: "Field officer, national NGO"
languages: [ar, en]
---
Interview recorded in Aden.

Interviewer: How did you reach Taiz?

Respondent: Through the back roads, with the elders' help.

Interviewer: And the checkpoints?

Respondent: We paid nobody.
"""


@pytest.mark.parametrize("ext", ["txt", "md"])
def test_text_with_front_matter(tmp_path: Path, ext: str) -> None:
    doc = _one(_corpus(tmp_path, {f"transcripts/some_name.{ext}": FRONT}))
    assert doc.doc_id == "YEM-INT-07"  # from the front matter, not the stem
    assert doc.path == f"transcripts/some_name.{ext}"
    assert doc.format == ext
    assert doc.layout == TRANSCRIPT
    assert doc.source_type == "interview"
    assert doc.metadata == {
        "case": "yemen",
        "date": "2023-04-18",  # a YAML date becomes an ISO string
        "interviewee_role": "Field officer, national NGO",
        "languages": '["ar", "en"]',
    }
    assert "doc_id" not in doc.metadata
    assert doc.text.startswith("Interview recorded in Aden.")  # front matter removed
    assert "---" not in doc.text
    assert len(doc.sha256) == 64


def test_front_matter_datetime_and_numbers(tmp_path: Path) -> None:
    text = "---\ndate: 2023-04-18 10:30:00\nyear: 2016\nscore: 2.5\nempty:\n---\nSome prose.\n"
    doc = _one(_corpus(tmp_path, {"p.txt": text}))
    assert doc.metadata == {"date": "2023-04-18T10:30:00", "year": "2016", "score": "2.5",
                            "empty": ""}
    assert doc.doc_id == "p"
    assert doc.layout == PROSE
    assert doc.source_type == "literature"


def test_front_matter_values_stay_as_written(tmp_path: Path) -> None:
    # YAML 1.1 would turn these into 34, 630, False and 1000.
    text = "---\ndoc_id: 0042\ntime: 10:30\nconsent: no\ncount: 1_000\n---\nProse.\n"
    doc = _one(_corpus(tmp_path, {"p.txt": text}))
    assert doc.doc_id == "0042"
    assert doc.metadata == {"time": "10:30", "consent": "no", "count": "1_000"}


def test_front_matter_in_a_utf8_bom_crlf_file(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + FRONT.replace("\n", "\r\n").encode("utf-8")
    doc = _one(_corpus(tmp_path, {"bom.txt": data}))
    assert doc.doc_id == "YEM-INT-07"
    assert doc.metadata["date"] == "2023-04-18"
    assert doc.text.startswith("Interview recorded in Aden.\n\nInterviewer:")


def test_text_without_front_matter_uses_stem(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"a/b/yem_int_02.txt": "Just one paragraph of prose.\n"}))
    assert doc.doc_id == "yem_int_02"
    assert doc.metadata == {}
    assert doc.text == "Just one paragraph of prose.\n"


@pytest.mark.parametrize(
    ("text", "line", "words", "fix"),
    [
        ("---\ndoc_id: X\ncase: a: b\n---\nbody\n", 3, "not valid YAML", "in quotes"),
        ("---\ndoc_id: X\ndate: 2023-01-01\n  bad: indent\n---\nbody\n", 4, "not valid YAML",
         "'---'"),
        ("---\n- a\n- b\n---\nbody\n", 2, "must be 'key: value' lines", "'---'"),
        ("---\ndoc_id X\n---\nbody\n", 2, "must be 'key: value' lines", "'---'"),
        ("---\ndoc_id: X\nbody without a closing line\n", 1, "never closed", "'---'"),
    ],
    ids=["mapping-in-value", "indent", "list", "no-colon", "unclosed"],
)
def test_broken_front_matter_is_reported_with_line(
    tmp_path: Path, text: str, line: int, words: str, fix: str
) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"broken.md": text}))
    assert skipped.path == "broken.md"
    assert words in skipped.reason
    assert fix in skipped.reason  # says how to fix it
    assert skipped.line == line
    assert str(skipped).startswith(f"broken.md:{line}: ")


@pytest.mark.parametrize("between", [
    "\n# Interview notes\n\nSome prose about access.\n\n",
    "The notes were typed up later.\nSee: the appendix.\n",  # not valid YAML
])
def test_a_markdown_file_opening_with_a_horizontal_rule(tmp_path: Path, between: str) -> None:
    text = f"---\n{between}---\n\nInterviewer: How?\n\nRespondent: Slowly.\n"
    result = ingest_corpus(_corpus(tmp_path, {"notes.md": text}))
    (doc,) = result.documents
    assert doc.text == text and doc.metadata == {} and doc.doc_id == "notes"
    assert [(s.line, s.note, s.reason.split(",")[0]) for s in result.skipped] == [
        (1, True, "opens with a '---' line followed by text")]


def test_front_matter_only_file_is_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"meta.txt": "---\ndoc_id: X\n---\n\n  \n"}))
    assert "has no text" in skipped.reason
    assert "add the text or remove the file" in skipped.reason


def test_binary_file_without_nul_bytes_is_called_binary(tmp_path: Path) -> None:
    # Valid UTF-8 next to other bytes: this once read "mixes UTF-8 with another encoding".
    data = "café ".encode() + bytes(range(1, 32)) * 4 + b"\xe9\xfe"
    mixed = "Respondent: café\n".encode() + "Interviewer: déjà vu\n".encode("cp1252")
    result = ingest_corpus(_corpus(tmp_path, {"blob.txt": data, "mixed.txt": mixed,
                                              "ok.txt": "Some prose.\n"}))
    assert [d.path for d in result.documents] == ["ok.txt"]
    assert [str(s) for s in result.skipped] == [
        "blob.txt: looks like a binary file, not text (104 control characters) — export it "
        "as UTF-8 text or give it its real extension",
        "mixed.txt:2: mixes UTF-8 with another encoding (first invalid UTF-8 byte at line 2) "
        "— re-save the whole file as UTF-8",
    ]


# --- .docx --------------------------------------------------------------------------------


def _docx_bytes(build) -> bytes:
    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _bold_turn(document, speaker: str, words: str) -> None:
    paragraph = document.add_paragraph()
    paragraph.add_run(f"{speaker}:").bold = True
    paragraph.add_run(f" {words}")


def test_docx_bold_labels_heading_and_table(tmp_path: Path) -> None:
    def build(document) -> None:
        document.core_properties.title = "Interview MMR-07"
        document.add_heading("Interview with a field officer, Myitkyina", level=1)
        _bold_turn(document, "Interviewer", "How did you negotiate access?")
        _bold_turn(document, "Respondent", "Slowly, through the church elders.")
        document.add_paragraph("")  # empty paragraphs are dropped
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "Interviewer"
        table.cell(0, 1).text = "And after the coup?"
        table.cell(1, 0).text = "Respondent:"
        table.cell(1, 1).text = "We waited for weeks."

    doc = _one(_corpus(tmp_path, {"transcripts/mmr_int_07.docx": _docx_bytes(build)}))
    assert doc.doc_id == "mmr_int_07"
    assert doc.format == "docx"
    assert doc.layout == TRANSCRIPT
    assert doc.metadata == {"title": "Interview MMR-07"}
    assert doc.text == (
        "Interview with a field officer, Myitkyina\n\n"
        "Interviewer: How did you negotiate access?\n\n"
        "Respondent: Slowly, through the church elders.\n\n"
        "Interviewer: And after the coup?\n\n"
        "Respondent: We waited for weeks."
    )
    segments = segment_document(doc)
    assert [(s.segment_id, s.speaker, s.turn, s.codable) for s in segments] == [
        ("mmr_int_07:0", "", 0, False),
        ("mmr_int_07:1", "Interviewer", 1, False),
        ("mmr_int_07:2", "Respondent", 2, True),
        ("mmr_int_07:3", "Interviewer", 3, False),
        ("mmr_int_07:4", "Respondent", 4, True),
    ]
    assert segments[0].text == "Interview with a field officer, Myitkyina"
    assert segments[4].text == "We waited for weeks."


def test_docx_prose_keeps_paragraphs(tmp_path: Path) -> None:
    def build(document) -> None:
        document.add_paragraph("First paragraph about access.")
        document.add_paragraph("Second paragraph: about trust.")

    doc = _one(_corpus(tmp_path, {"notes.docx": _docx_bytes(build)}))
    assert doc.layout == PROSE
    assert doc.text == "First paragraph about access.\n\nSecond paragraph: about trust."
    assert [s.segment_id for s in segment_document(doc)] == ["notes:1", "notes:2"]


WORD_FIX = "open it in Word or LibreOffice Writer and save it again as .docx"
NOT_WORD = "is not a Word document, although its name ends in .docx"
DAMAGED_WORD = (f"is a damaged Word document (cut short or corrupted) — {WORD_FIX}; if it "
                "will not open, get a fresh copy from where it came from")


def _zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def _xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x9f" * 1024, f"{NOT_WORD} — {WORD_FIX}, or give the file its real extension"),
        (b"Interviewer: Hello?\n", f"{NOT_WORD} (it holds plain text) — {WORD_FIX}, or give "
         "the file its real extension"),
        (b"PK\x03\x04" + os.urandom(500), DAMAGED_WORD),  # a zip signature and garbage
        (b"", DAMAGED_WORD),  # placeholder: replaced by a truncated real .docx below
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
         "is an old-style .doc file with a .docx name — open it in Word or LibreOffice "
         "Writer and save it as .docx"),
    ],
    ids=["random", "text", "zip-garbage", "truncated", "old-doc"],
)
def test_corrupt_docx_is_skipped(tmp_path: Path, data: bytes, reason: str) -> None:
    if not data:
        good = _docx_bytes(lambda d: d.add_paragraph("Some text that will be cut off."))
        data = good[: len(good) // 2]
    skipped = _skip_of(_corpus(tmp_path, {"broken.docx": data}))
    assert (skipped.path, skipped.reason, skipped.line) == ("broken.docx", reason, None)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (_zip_bytes({"[Content_Types].xml": "<Types/>", "docProps/app.xml": "<x/>"}),
         "it is a zip archive without word/document.xml"),
        (_xlsx_bytes([["id", "text"]]), "it is an Excel workbook"),
    ],
    ids=["no-document-part", "workbook"],
)
def test_docx_zip_without_document_part_is_skipped(tmp_path: Path, data: bytes,
                                                   what: str) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"fake.docx": data}))
    assert skipped.reason == (f"{NOT_WORD} ({what}) — {WORD_FIX}, or give the file its real "
                              "extension")


def test_empty_docx_is_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"empty.docx": _docx_bytes(lambda d: None)}))
    assert "the .docx has no text" in skipped.reason


def _xml(fragment: str):
    """A WordprocessingML element from raw XML written with the ``w:`` prefix."""
    return parse_xml(f'<w:body {nsdecls("w")}>{fragment}</w:body>')[0]


def _run(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def test_docx_reads_tracked_insertions_and_content_controls(tmp_path: Path) -> None:
    def build(document) -> None:
        section = document.sections[0]
        section.header.paragraphs[0].text = "CONFIDENTIAL HEADER"
        section.footer.paragraphs[0].text = "FOOTER page 1"
        document.add_paragraph("Interviewer: How did it start?")
        turn = document.add_paragraph("Respondent: We told the commander ")
        turn._p.append(_xml(f'<w:ins w:id="1" w:author="Ed">{_run("that we would stop ")}</w:ins>'))
        turn._p.append(_xml('<w:del w:id="2" w:author="Ed"><w:r><w:delText>OLD WORDS '
                            "</w:delText></w:r></w:del>"))
        turn._p.append(_xml(f'<w:moveFrom w:id="3" w:author="Ed">{_run("MOVED AWAY ")}'
                            "</w:moveFrom>"))
        tail = turn.add_run("distributions.")
        document.add_comment(tail, text="COMMENT check this", author="Ed")
        question = document.add_paragraph("Interviewer: And then?")
        question._p.append(_xml(f"<w:sdt><w:sdtContent>{_run(' Why?')}</w:sdtContent></w:sdt>"))
        # A content control around a whole paragraph (block level), e.g. from a template.
        document.element.body.insert(
            len(document.element.body) - 1,
            _xml(f"<w:sdt><w:sdtPr><w:alias w:val='Answer'/></w:sdtPr><w:sdtContent><w:p>"
                 f"{_run('Respondent: The elders helped')}<w:r><w:tab/></w:r>{_run('a lot.')}"
                 "</w:p></w:sdtContent></w:sdt>"),
        )

    doc = _one(_corpus(tmp_path, {"tracked.docx": _docx_bytes(build)}))
    assert doc.text == (
        "Interviewer: How did it start?\n\n"
        "Respondent: We told the commander that we would stop distributions.\n\n"
        "Interviewer: And then? Why?\n\n"
        "Respondent: The elders helped\ta lot."
    )
    assert [(s.speaker, s.text) for s in segment_document(doc) if s.codable] == [
        ("Respondent", "We told the commander that we would stop distributions."),
        ("Respondent", "The elders helped\ta lot."),
    ]


def test_docx_table_cells_read_insertions_and_controls(tmp_path: Path) -> None:
    def build(document) -> None:
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "Interviewer"
        table.cell(0, 1).text = "Where did you go?"
        table.cell(1, 0).text = "Respondent"
        words = table.cell(1, 1).paragraphs[0]
        words.add_run("To Bhamo ")
        words._p.append(_xml(f'<w:ins w:id="1" w:author="Ed">{_run("by road, ")}</w:ins>'))
        words._p.append(_xml('<w:del w:id="2" w:author="Ed"><w:r><w:delText>by air '
                             "</w:delText></w:r></w:del>"))
        words._p.append(_xml(f"<w:sdt><w:sdtContent>{_run('in May.')}</w:sdtContent></w:sdt>"))
        table.cell(1, 1)._tc.append(
            _xml(f"<w:sdt><w:sdtContent><w:p>{_run('Then home.')}</w:p></w:sdtContent></w:sdt>")
        )

    doc = _one(_corpus(tmp_path, {"table.docx": _docx_bytes(build)}))
    assert doc.text == (
        "Interviewer: Where did you go?\n\nRespondent: To Bhamo by road, in May.\nThen home."
    )


def _table_docx(rows: list[tuple[str, ...]], title: str = "Transcript by TranscribeCo") -> bytes:
    def build(document) -> None:
        document.add_paragraph(title)
        table = document.add_table(rows=0, cols=len(rows[0]))
        for row in rows:
            for cell, value in zip(table.add_row().cells, row, strict=True):
                cell.text = value

    return _docx_bytes(build)


def test_docx_time_speaker_text_table_is_a_transcript(tmp_path: Path) -> None:
    data = _table_docx([
        ("Time", "Speaker", "Text"),
        ("00:00:05", "Interviewer", "How did the negotiation start?"),
        ("00:00:12", "Respondent", "We told the commander we would stop."),
        ("", "", "He listened."),  # a row without time or speaker continues the turn
        ("00:01:30", "Interviewer:", "And then?"),
        ("00:01:45.250", "Respondent", "The agencies agreed a joint position."),
    ])
    doc = _one(_corpus(tmp_path, {"timed.docx": data}))
    assert doc.layout == TRANSCRIPT
    assert doc.text == (
        "Transcript by TranscribeCo\n\n"
        "Interviewer (00:00:05): How did the negotiation start?\n\n"
        "Respondent (00:00:12): We told the commander we would stop.\n\n"
        "He listened.\n\n"
        "Interviewer (00:01:30): And then?\n\n"
        "Respondent (00:01:45.250): The agencies agreed a joint position."
    )
    assert [(s.speaker, s.codable, s.text) for s in segment_document(doc)] == [
        ("", False, "Transcript by TranscribeCo"),
        ("Interviewer", False, "How did the negotiation start?"),
        ("Respondent", True, "We told the commander we would stop.\n\nHe listened."),
        ("Interviewer", False, "And then?"),
        ("Respondent", True, "The agencies agreed a joint position."),
    ]


@pytest.mark.parametrize(
    ("header", "time", "label", "head"),
    [
        ([], "[00:00:05]", "00:00:05", ""),  # no header row: the timestamps tell
        ([("Zeit", "Sprecher", "Text")], "0:05 - 0:09", "0:05", "Zeit: Sprecher Text\n\n"),
    ],
    ids=["no-header", "other-header"],
)
def test_docx_timed_table_without_time_header(
    tmp_path: Path, header: list[tuple[str, ...]], time: str, label: str, head: str
) -> None:
    rows = [*header, (time, "Interviewer", "Why?"), ("00:00:09", "Respondent", "Because."),
            ("00:00:20", "Interviewer", "And?"), ("00:00:25", "Respondent", "Nothing.")]
    doc = _one(_corpus(tmp_path, {"t.docx": _table_docx(rows, title="Notes")}))
    assert doc.text == (f"Notes\n\n{head}Interviewer ({label}): Why?\n\n"
                        "Respondent (00:00:09): Because.\n\nInterviewer (00:00:20): And?\n\n"
                        "Respondent (00:00:25): Nothing.")
    assert [s.speaker for s in segment_document(doc) if s.speaker] == [
        "Interviewer", "Respondent", "Interviewer", "Respondent"
    ]


@pytest.mark.parametrize(
    ("header", "turn"),
    [
        (("Time", "Speaker", "Text", "Comment"), lambda t, s, w, n: (t, s, w, n)),
        (("#", "Speaker", "Time", "Transcript"), lambda t, s, w, n: (n, s, t, w)),
        (("Speaker", "Words", "Notes"), lambda t, s, w, n: (s, w, n)),
    ],
    ids=["time-speaker-text-comment", "number-speaker-time-transcript", "no-time"],
)
def test_docx_table_read_by_its_named_speaker_and_text_columns(
    tmp_path: Path, header: tuple[str, ...], turn
) -> None:
    numbered = header[0] == "#"
    rows = [header] + [turn(time, speaker, words, str(i) if numbered else note)
                       for i, (time, speaker, words, note) in enumerate([
                           ("00:00:05", "Interviewer", "How did the talks start?", ""),
                           ("00:00:12", "Respondent", "We met the commander.", "laughs"),
                           ("00:00:20", "", "Twice, in May.", ""),
                           ("00:00:31", "Interviewer", "And then?", "check name")], 1)]
    timed = "Time" in header
    result = ingest_corpus(_corpus(tmp_path, {"t.docx": _table_docx(rows, title="Notes")}))
    doc = result.documents[0]
    assert doc.layout == TRANSCRIPT
    assert [(s.speaker, s.codable, s.text) for s in segment_document(doc)] == [
        ("", False, "Notes"),
        ("Interviewer", False, "How did the talks start?"),
        ("Respondent", True, "We met the commander.\n\nTwice, in May."),
        ("Interviewer", False, "And then?"),
    ]
    assert ("Interviewer (00:00:05): How did" in doc.text) is timed
    # a "#" column of numbers is no text; a comment column's text is named, once
    notes = [] if numbered else [
        "t.docx: has a column with text in its transcript table that was not read (table 1, "
        f"column '{header[-1]}': 2 cells, e.g. 'laughs'): only the speaker, text and time "
        "columns are read, so this text was left out and not coded — the rest of the file "
        "was read; if such a cell holds words someone said, move them into the text column"]
    assert [str(s) for s in result.skipped] == notes


def _timed_docx_with(note_row: tuple[str, str, str], header: bool, merged: bool) -> bytes:
    """A timed transcript table (a header row if ``header``) with ``note_row`` between the
    second and third turn, its cells merged across the table if ``merged``."""
    turns = [("00:00:05", "Interviewer", "How did you negotiate access?"),
             ("00:00:12", "Respondent", "We met the commander twice."),
             ("00:01:30", "Interviewer", "What changed after that?"),
             ("00:01:40", "Respondent", "They let the convoy pass.")]
    rows = [("Time", "Speaker", "Text")] * header + turns[:2] + [note_row] + turns[2:]

    def build(document) -> None:
        document.add_paragraph("Interview YEM-03")
        table = document.add_table(rows=len(rows), cols=3)
        for i, row in enumerate(rows):
            if merged and row == note_row:
                table.cell(i, 0).merge(table.cell(i, 2)).text = row[0]
                continue
            for j, value in enumerate(row):
                table.cell(i, j).text = value

    return _docx_bytes(build)


@pytest.mark.parametrize(
    ("note_row", "header", "merged", "row"),
    [
        (("[recording paused]", "", ""), True, True, 4),  # a row merged across the table
        (("Note: the line dropped here", "", ""), False, False, 3),  # was: all read as prose
        (("", "Note: the respondent asked to stop the recording.", ""), True, False, 4),
        (("00:01:00", "", "[recording paused]"), True, False, 4),  # was: the answer's words
    ],
    ids=["merged", "time-cell-no-header", "speaker-cell", "words-cell"],
)
def test_docx_timed_table_row_that_is_a_note_is_left_out_and_noted(
    tmp_path: Path, note_row: tuple[str, str, str], header: bool, merged: bool, row: int
) -> None:
    data = _timed_docx_with(note_row, header, merged)
    result = ingest_corpus(_corpus(tmp_path, {"transcripts/yem03.docx": data}))
    [doc] = result.documents
    assert doc.layout == TRANSCRIPT
    assert doc.text == (
        "Interview YEM-03\n\n"
        "Interviewer (00:00:05): How did you negotiate access?\n\n"
        "Respondent (00:00:12): We met the commander twice.\n\n"
        "Interviewer (00:01:30): What changed after that?\n\n"
        "Respondent (00:01:40): They let the convoy pass.")
    assert [(s.speaker, s.codable, s.text) for s in segment_document(doc) if s.speaker] == [
        ("Interviewer", False, "How did you negotiate access?"),
        ("Respondent", True, "We met the commander twice."),
        ("Interviewer", False, "What changed after that?"),
        ("Respondent", True, "They let the convoy pass."),
    ]
    note = next(cell for cell in note_row if cell and not cell.startswith("00:"))
    assert [(str(s), s.note) for s in result.skipped] == [(
        f"transcripts/yem03.docx: has a row that is a note, not a turn, in its time | "
        f"speaker | words table (table 1, row {row}: '{note}'), left out and not coded — the "
        "rest of the file was read; if such a row holds words someone said, put the "
        "speaker's name in its speaker cell", True)]


def test_docx_timed_table_notes_are_listed_in_one_note(tmp_path: Path) -> None:
    long = "Note: " + "the connection dropped and came back " * 3
    data = _table_docx([
        ("Time", "Speaker", "Text"),
        ("[recording starts]", "", ""),
        ("00:00:05", "Interviewer", "Who was there?"),
        ("00:00:09", "", "(laughs)"),
        ("00:00:12", "Respondent", "The commander."),
        ("", long, ""),
        ("[recording paused]", "", ""),
        ("00:00:30", "Interviewer", "And then?"),
        ("00:00:40", "Respondent", "We left."),
    ])
    result = ingest_corpus(_corpus(tmp_path, {"timed.docx": data}))
    assert [s.speaker for s in segment_document(result.documents[0]) if s.speaker] == [
        "Interviewer", "Respondent", "Interviewer", "Respondent"]
    assert [str(s) for s in result.skipped] == [
        "timed.docx: has 4 rows that are notes, not turns, in its time | speaker | words "
        "table (table 1, row 2: '[recording starts]'; table 1, row 4: '(laughs)'; table 1, "
        f"row 6: '{long[:57]}...'; and 1 more), left out and not coded — the rest of the file "
        "was read; if such a row holds words someone said, put the speaker's name in its "
        "speaker cell"]


def test_docx_timed_table_rows_of_names_and_words_are_no_notes(tmp_path: Path) -> None:
    # a name alone in the speaker cell and prose alone in the words cell stay turns
    data = _table_docx([
        ("Time", "Speaker", "Text"),
        ("00:00:05", "Interviewer", "Who was there?"),
        ("", "Dr Aung Naing", ""),
        ("", "", "The commander and two elders."),
        ("00:00:30", "Interviewer", "And then?"),
        ("00:00:40", "Dr Aung Naing", "We left."),
    ])
    doc = _one(_corpus(tmp_path, {"timed.docx": data}))
    assert [(s.speaker, s.text) for s in segment_document(doc) if s.speaker] == [
        ("Interviewer", "Who was there?"), ("Dr Aung Naing", "The commander and two elders."),
        ("Interviewer", "And then?"), ("Dr Aung Naing", "We left.")]


def test_docx_three_column_table_without_times_is_read_as_before(tmp_path: Path) -> None:
    data = _table_docx([("Name", "Role", "Organisation"), ("Aung", "Driver", "WFP")])
    doc = _one(_corpus(tmp_path, {"staff.docx": data}))
    assert doc.text == "Transcript by TranscribeCo\n\nName: Role Organisation\n\nAung: Driver WFP"


# --- .pdf ---------------------------------------------------------------------------------


def make_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF: Helvetica text drawn line by line, exact xref offsets."""
    return make_pages_pdf([lines])


def make_pages_pdf(pages: list[list[str]]) -> bytes:
    """A minimal PDF with one page per list of lines (see :func:`make_pdf`)."""
    font = 3 + 2 * len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
    ]
    for number, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for i, line in enumerate(lines):
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj" if i == 0 else f"T* ({escaped}) Tj")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1") if lines else b""
        objects += [
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font "
            f"<< /F1 {font} 0 R >> >> /Contents {4 + 2 * number} 0 R >>".encode(),
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
            + b"\nendstream",
        ]
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


PDF_LINES = [
    "Interview with a teacher, Sittwe",
    "Interviewer: How did access work?",
    "Respondent: Through the school board (mostly).",
    "Interviewer: And later?",
    "Respondent: It stopped.",
]


def test_handmade_pdf_is_valid_and_pypdf_extracts_it() -> None:
    reader = pypdf.PdfReader(io.BytesIO(make_pdf(PDF_LINES)), strict=True)
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text().splitlines() == PDF_LINES


def test_pdf_with_text_layer(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"transcripts/mmr_int_20.pdf": make_pdf(PDF_LINES)}))
    assert doc.format == "pdf"
    assert doc.doc_id == "mmr_int_20"
    assert doc.layout == TRANSCRIPT
    assert doc.source_type == "interview"
    segments = segment_document(doc)
    assert [(s.segment_id, s.speaker, s.text) for s in segments] == [
        ("mmr_int_20:0", "", "Interview with a teacher, Sittwe"),
        ("mmr_int_20:1", "Interviewer", "How did access work?"),
        ("mmr_int_20:2", "Respondent", "Through the school board (mostly)."),
        ("mmr_int_20:3", "Interviewer", "And later?"),
        ("mmr_int_20:4", "Respondent", "It stopped."),
    ]


def test_pdf_without_text_layer_is_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"scan.pdf": make_pdf([])}))
    assert "has no text layer" in skipped.reason
    assert "run OCR" in skipped.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4\n" + os.urandom(300),
         "is a damaged PDF (cut short: its end is missing) — open it in a PDF reader and "
         "save it again, or export it again as PDF from the program that made it"),
        (make_pdf(PDF_LINES)[:300],
         "is a damaged PDF (cut short: its end is missing) — open it in a PDF reader and "
         "save it again, or export it again as PDF from the program that made it"),

        (b"Interviewer: this is plain text with a pdf extension.\n",
         "is not a PDF, although its name ends in .pdf (it holds plain text) — export the "
         "document again as PDF, or give the file its real extension"),
    ],
    ids=["garbage", "truncated", "text"],
)
def test_corrupt_pdf_is_skipped(tmp_path: Path, data: bytes, reason: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    seen: list[logging.LogRecord] = []
    console = logging.Handler()
    console.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(console)
    try:
        skipped = _skip_of(_corpus(tmp_path, {"bad.pdf": data}))
    finally:
        logging.getLogger().removeHandler(console)
    assert (skipped.path, skipped.reason, skipped.line) == ("bad.pdf", reason, None)
    # pypdf's own warning ("EOF marker not found", no file named) is in the reason only
    assert not [r for r in seen if r.name.startswith("pypdf")]
    assert capsys.readouterr().err == ""


# --- .vtt / .srt --------------------------------------------------------------------------

VTT_VOICES = """WEBVTT

1
00:00:01.000 --> 00:00:04.000
<v Interviewer>How did you get the trucks through?</v>

2
00:00:04.500 --> 00:00:08.000
<v Amira Saleh>We talked to the checkpoint commander.</v>

3
00:00:08.000 --> 00:00:12.000
<v Amira Saleh>It took three weeks,
and a lot of <i>tea</i>.</v>

4
00:00:12.500 --> 00:00:14.000
<v.loud Interviewer>Three weeks?
"""


def test_vtt_voice_tags_merge_consecutive_cues(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"yem_int_30.vtt": VTT_VOICES}))
    assert doc.format == "vtt"
    assert doc.layout == TRANSCRIPT
    assert doc.text == (
        "Interviewer: How did you get the trucks through?\n\n"
        "Amira Saleh: We talked to the checkpoint commander. It took three weeks, "
        "and a lot of tea.\n\n"
        "Interviewer: Three weeks?"
    )
    segments = segment_document(doc)
    assert [(s.segment_id, s.speaker, s.codable) for s in segments] == [
        ("yem_int_30:1", "Interviewer", False),
        ("yem_int_30:2", "Amira Saleh", True),
        ("yem_int_30:3", "Interviewer", False),
    ]


VTT_LABELS = """WEBVTT

00:00:01.000 --> 00:00:04.000
Interviewer: How did you get the trucks through?

00:00:04.500 --> 00:00:08.000
Amira: We talked to the commander.

00:00:08.000 --> 00:00:12.000
Amira: It took three weeks.

00:00:12.000 --> 00:00:13.000
Note that the road was mined.

00:00:13.500 --> 00:00:15.000
Interviewer: Three weeks?

00:00:15.500 --> 00:00:17.000
Amira: Yes.
"""


def test_vtt_name_labels(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"t.vtt": VTT_LABELS}))
    assert doc.text == (
        "Interviewer: How did you get the trucks through?\n\n"
        "Amira: We talked to the commander. It took three weeks. Note that the road was "
        "mined.\n\n"
        "Interviewer: Three weeks?\n\n"
        "Amira: Yes."
    )
    assert [s.turn for s in segment_document(doc)] == [1, 2, 3, 4]


SRT = """1
00:00:01,000 --> 00:00:04,000
Moderator: What changed in 2021?

2
00:00:04,500 --> 00:00:08,000
Respondent: The ceasefire collapsed.

3
00:00:08,000 --> 00:00:12,000
Then the roads closed.

4
00:00:12,000 --> 00:00:13,000
All of them.

5
00:00:12,500 --> 00:00:14,000
Moderator: And the convoys?

6
00:00:14,500 --> 00:00:16,000
Respondent: They stopped.
"""


def test_srt_label_only_on_first_cue_of_a_turn(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"mmr_int_31.srt": SRT.replace("\n", "\r\n")}))
    assert doc.format == "srt"
    assert doc.text == (
        "Moderator: What changed in 2021?\n\n"
        "Respondent: The ceasefire collapsed. Then the roads closed. All of them.\n\n"
        "Moderator: And the convoys?\n\n"
        "Respondent: They stopped."
    )
    segments = segment_document(doc)
    assert [(s.segment_id, s.codable) for s in segments] == [
        ("mmr_int_31:1", False), ("mmr_int_31:2", True),
        ("mmr_int_31:3", False), ("mmr_int_31:4", True),
    ]


def test_subtitles_without_speakers_are_prose(tmp_path: Path) -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,000\nHello there.\n\n2\n00:00:02,000 --> " \
          "00:00:03,000\nAnd welcome.\n"
    doc = _one(_corpus(tmp_path, {"talk.srt": srt}))
    assert doc.layout == PROSE
    assert doc.text == "Hello there. And welcome."


def test_vtt_without_webvtt_header_is_skipped(tmp_path: Path) -> None:
    vtt = "00:00:01.000 --> 00:00:04.000\n<v Interviewer>Hello there.\n"
    skipped = _skip_of(_corpus(tmp_path, {"bad.vtt": vtt}))
    assert (skipped.path, skipped.line) == ("bad.vtt", 1)
    assert skipped.reason == (
        "has no 'WEBVTT' first line, which every .vtt file must start with — add a line "
        "'WEBVTT' and an empty line at the top, or export the captions again as .vtt"
    )


def test_srt_named_vtt_is_skipped_with_the_hint(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"talk.vtt": SRT}))
    assert str(skipped) == (
        "talk.vtt:1: has no 'WEBVTT' first line and looks like an .srt file — rename it to "
        ".srt, or add a line 'WEBVTT' at the top and export it again as .vtt"
    )


SRT_FIX = "write it as start --> end, such as '00:00:05,000 --> 00:00:09,000'"

# The audit's files: a broken timing line was read as the previous cue's words, and cues
# after a broken one were dropped without a word.
SRT_BROKEN_TIMING = """1
00:00:01,000 --> 00:00:04,000
Interviewer: Hello there.

2
00:00:0x,000 -> 00:00:09
Respondent: We negotiated access with the commander.

3
00:00:10,000 --> 00:00:12,000
Respondent: And then they taxed the convoy.

4
00:00:13,000 --> 00:00:15,000
Interviewer: Thanks.
"""

SRT_NO_TIMINGS = """1
00:00:01,000 --> 00:00:04,000
Interviewer: Hello there.

2
99:99:99,999 --> aa:bb:cc,ddd
Respondent: We negotiated access with the commander.

3
not a timestamp at all
Respondent: And then they taxed the convoy.
"""


def _read(corpus: Path) -> tuple[list, list[str]]:
    result = ingest_corpus(corpus)
    return result.documents, [str(s) for s in result.skipped]


def test_srt_cue_with_a_broken_timing_line_is_left_out_and_reported(tmp_path: Path) -> None:
    docs, skipped = _read(_corpus(tmp_path, {"t.srt": SRT_BROKEN_TIMING, "ok.srt": SRT}))
    assert skipped == [
        f"t.srt:6: cue 2 has a broken timing line '00:00:0x,000 -> 00:00:09', so it was "
        f"left out — {SRT_FIX}"
    ]
    texts = {d.path: d.text for d in docs}
    assert texts["t.srt"] == (
        "Interviewer: Hello there.\n\n"
        "Respondent: And then they taxed the convoy.\n\n"
        "Interviewer: Thanks."
    )
    assert texts["ok.srt"].startswith("Moderator: What changed in 2021?")


def test_srt_every_malformed_cue_is_reported(tmp_path: Path) -> None:
    docs, skipped = _read(_corpus(tmp_path, {"t.srt": SRT_NO_TIMINGS}))
    assert skipped == [
        f"t.srt:6: cue 2 has a broken timing line '99:99:99,999 --> aa:bb:cc,ddd', so it "
        f"was left out — {SRT_FIX}",
        "t.srt:9: cue 3 has no timing line, so it was left out — add a timing line such "
        "as '00:00:05,000 --> 00:00:09,000' above its text",
    ]
    assert [d.text for d in docs] == ["Interviewer: Hello there."]


def test_srt_text_blocks_and_missing_blank_lines(tmp_path: Path) -> None:
    srt = ("Interview of 3 May\n\n"
           "1\n00:00:01,000 --> 00:00:02,000\nModerator: Where?\n\n"
           "2\n00:00:02,000 --> 00:00:03,000\nRespondent: In Sittwe,\n\nnear the port.\n"
           "3\n00:00:03,000 --> 00:00:04,000\nModerator: When?\n"
           "00:00:04,000 --> 00:00:05,000\nRespondent: In 2021.\n")
    docs, skipped = _read(_corpus(tmp_path, {"t.srt": srt}))
    assert skipped == [
        "t.srt:1: text outside any cue, so it was left out — put a cue number and a timing "
        "line such as '00:00:05,000 --> 00:00:09,000' above it, or delete it"
    ]
    assert [d.text for d in docs] == [
        "Moderator: Where?\n\nRespondent: In Sittwe, near the port.\n\n"
        "Moderator: When?\n\nRespondent: In 2021."
    ]


def test_vtt_malformed_cues_are_reported(tmp_path: Path) -> None:
    vtt = ("WEBVTT\nKind: captions\n\nNOTE exported by Zoom\n\n"
           "1\n00:00:01.000 --> 00:00:04.000\n<v Interviewer>How did you get access?\n\n"
           "2\n00:00:05.000 -> 00:00:08.000\n<v Respondent>Through the elders.\n\n"
           "<v Respondent>A cue without timings.\n\n"
           "4\n00:00:09,000 --> 00:00:10,000\n<v Respondent>Then we waited.\n")  # a comma: ok
    docs, skipped = _read(_corpus(tmp_path, {"t.vtt": vtt}))
    assert skipped == [
        "t.vtt:11: cue 2 has a broken timing line '00:00:05.000 -> 00:00:08.000', so it "
        "was left out — write it as start --> end, such as '00:00:05.000 --> 00:00:09.000'",
        "t.vtt:14: cue 3 has no timing line, so it was left out — add a timing line such "
        "as '00:00:05.000 --> 00:00:09.000' above its text",
    ]
    assert [d.text for d in docs] == [
        "Interviewer: How did you get access?\n\nRespondent: Then we waited."
    ]


def test_subtitles_without_one_readable_cue_are_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"bad.srt": "this is not\na subtitle file\n"}))
    assert str(skipped) == (
        "bad.srt:1: is not a valid .srt file: no cue could be read (text outside any cue) — "
        "put a cue number and a timing line such as '00:00:05,000 --> 00:00:09,000' above "
        "it, or delete it, or export the captions again as .srt"
    )


# --- excerpt tables -----------------------------------------------------------------------


def test_csv_comma_excerpts(tmp_path: Path) -> None:
    table = (
        "excerpt_id,text,author,year,title,page,case\n"
        'LIT-001,"Access was negotiated, slowly, with elders.",Smith,2016,Access,12,yemen\n'
        "LIT-002,Trust took years.,Doe,2019,,,myanmar\n"
    )
    result = ingest_corpus(_corpus(tmp_path, {"literature/excerpts.csv": table}))
    assert result.skipped == []
    docs = result.documents
    assert [(d.doc_id, d.row, d.layout, d.source_type) for d in docs] == [
        ("LIT-001", 2, EXCERPT, "literature"),
        ("LIT-002", 3, EXCERPT, "literature"),
    ]
    assert docs[0].text == "Access was negotiated, slowly, with elders."
    assert docs[0].metadata == {
        "author": "Smith", "year": "2016", "title": "Access", "page": "12", "case": "yemen",
        "citation": "Smith (2016) Access, p. 12",
    }
    assert docs[1].metadata["title"] == ""
    assert docs[0].sha256 == docs[1].sha256
    segments = segment_document(docs[0])
    assert [(s.segment_id, s.turn, s.text) for s in segments] == [
        ("LIT-001:1", None, "Access was negotiated, slowly, with elders.")
    ]


def test_csv_semicolon_excerpts_in_windows_1252(tmp_path: Path) -> None:
    table = (
        "id;Text;author;year\n"
        "E1;Access was negotiated, slowly, with the council, the elders, and the militia;"
        "Smith, J.;2016\n"
        "E2;They said “no” — café talk, in short;Doe, A.;2019\n"
    )
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table.encode("cp1252")}))
    assert result.skipped == []
    assert [(d.doc_id, d.text, d.metadata["author"]) for d in result.documents] == [
        ("E1", "Access was negotiated, slowly, with the council, the elders, and the militia",
         "Smith, J."),
        ("E2", "They said “no” — café talk, in short", "Doe, A."),
    ]


def test_xlsx_excerpts(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["excerpt_id", "text", "author", "year", "published", "case"])
    sheet.append(["X-1", "Negotiation with the de facto authorities.", "Lee", 2018,
                  dt.datetime(2018, 5, 1), "yemen"])
    sheet.append(["X-2", "Humanitarian diplomacy in Kachin.", "Aung", 2020.0, None, None])
    path = tmp_path / "corpus" / "literature" / "sheet.xlsx"
    path.parent.mkdir(parents=True)
    workbook.save(path)
    result = ingest_corpus(tmp_path / "corpus")
    assert result.skipped == []
    docs = result.documents
    assert [(d.doc_id, d.row, d.format) for d in docs] == [("X-1", 2, "xlsx"), ("X-2", 3, "xlsx")]
    assert docs[0].metadata == {
        "author": "Lee", "year": "2018", "published": "2018-05-01", "case": "yemen",
        "citation": "Lee (2018)",
    }
    assert docs[1].metadata["year"] == "2020"
    assert docs[1].metadata["published"] == ""
    assert docs[1].metadata["case"] == ""


def test_table_without_text_column_is_skipped_naming_the_columns(tmp_path: Path) -> None:
    table = "excerpt_id,quote,author\nE1,Something,Smith\n"
    skipped = _skip_of(_corpus(tmp_path, {"lit.csv": table}))
    assert skipped.path == "lit.csv"
    assert "no 'text' column" in skipped.reason
    assert "excerpt_id, quote, author" in skipped.reason
    assert skipped.line == 1


def test_table_without_id_column_is_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"lit.csv": "ref,text\nE1,Something\n"}))
    assert "no id column" in skipped.reason
    assert "ref, text" in skipped.reason
    assert "add an 'excerpt_id' (or 'id') column" in skipped.reason


def test_xlsx_without_text_column_names_the_columns(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "passage"])
    workbook.active.append(["E1", "words"])
    (tmp_path / "corpus").mkdir()
    workbook.save(tmp_path / "corpus" / "lit.xlsx")
    skipped = _skip_of(tmp_path / "corpus")
    assert "no 'text' column (columns: id, passage)" in skipped.reason


def test_table_rows_with_empty_text_or_id_are_reported_by_row(tmp_path: Path) -> None:
    table = (
        "excerpt_id,text,year\n"
        "E1,Good excerpt.,2001\n"
        "E2,,2002\n"
        ",Orphan text without an id.,2003\n"
        ",,\n"  # a blank row: ignored silently
        "E5,   ,2005\n"
        "E6,Another good one.,2006\n"
    )
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [d.doc_id for d in result.documents] == ["E1", "E6"]
    assert [d.row for d in result.documents] == [2, 7]
    problems = [(s.path, s.line, s.reason) for s in result.skipped]
    assert problems == [
        ("lit.csv", 3, "excerpt 'E2' has an empty text — add the text"),
        ("lit.csv", 4, "no excerpt_id — give the excerpt a unique id"),
        ("lit.csv", 6, "excerpt 'E5' has an empty text — add the text"),
    ]


def test_csv_row_numbers_count_blank_lines_like_a_spreadsheet(tmp_path: Path) -> None:
    table = 'id,text\nE1,"A cell\n\nover three lines."\n\nE2,Second.\n,no id\n\n'
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [(d.doc_id, d.row, d.text) for d in result.documents] == [
        ("E1", 2, "A cell\n\nover three lines."), ("E2", 4, "Second.")
    ]
    assert [(s.line, s.reason) for s in result.skipped] == [
        (5, "no id — give the excerpt a unique id")
    ]


def test_xlsx_empty_cells_and_blank_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["id", "text", "year"])
    sheet.append(["E1", "First.", 2001])
    sheet.append(["E2", None, 2002])  # empty text cell
    sheet.append([None, None, None])  # a blank row in the middle
    sheet.append([None, "Orphan.", 2004])
    sheet.append(["E5", "Fifth.", None])
    (tmp_path / "corpus").mkdir()
    workbook.save(tmp_path / "corpus" / "lit.xlsx")
    result = ingest_corpus(tmp_path / "corpus")
    assert [(d.doc_id, d.row, d.text) for d in result.documents] == [
        ("E1", 2, "First."), ("E5", 6, "Fifth.")
    ]
    assert all("nan" not in d.text for d in result.documents)
    assert [(s.line, s.reason) for s in result.skipped] == [
        (3, "excerpt 'E2' has an empty text — add the text"),
        (5, "no id — give the excerpt a unique id"),
    ]


def test_duplicate_excerpt_ids(tmp_path: Path) -> None:
    table = 'id,text\nE1,First.\nE2,Second.\nE1,"Third, same id."\n'
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [(d.doc_id, d.text) for d in result.documents] == [("E1", "First."),
                                                             ("E2", "Second.")]
    assert len(result.skipped) == 1
    skipped = result.skipped[0]
    assert (skipped.path, skipped.line) == ("lit.csv", 4)
    assert skipped.reason == ("duplicate doc_id 'E1' (already used by row 2) — give each "
                              "excerpt its own id in the id column")


def test_table_with_header_only_is_skipped(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"lit.csv": "id,text\n"}))
    assert "the table has no rows" in skipped.reason


EXCEL_FIX = "open it in Excel or LibreOffice Calc and save it again as .xlsx"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01\x9f" * 500, f"is not an Excel workbook, although its name ends in .xlsx — "
         f"{EXCEL_FIX}, or give the file its real extension"),
        (b"id,text\nE1,Words.\n", "is not an Excel workbook, although its name ends in "
         f".xlsx (it holds plain text) — {EXCEL_FIX}, or give the file its real extension"),
        (b"PK\x03\x04" + bytes(300), "is a damaged Excel workbook (cut short or corrupted) "
         f"— {EXCEL_FIX}; if it will not open, get a fresh copy from where it came from"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "is an old-style .xls file "
         "with a .xlsx name — open it in Excel or LibreOffice Calc and save it as .xlsx"),
    ],
    ids=["random", "csv", "damaged-zip", "old-xls"],
)
def test_corrupt_xlsx_is_skipped(tmp_path: Path, data: bytes, reason: str) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"lit.xlsx": data}))
    assert (skipped.path, skipped.reason, skipped.line) == ("lit.xlsx", reason, None)


def test_table_text_column_becomes_no_metadata_and_other_id_column_is_kept(
    tmp_path: Path,
) -> None:
    table = "excerpt_id,id,text\nE1,old-7,Words.\n"
    doc = _one(_corpus(tmp_path, {"lit.csv": table}))
    assert doc.doc_id == "E1"  # excerpt_id wins over id
    assert doc.metadata == {"id": "old-7"}


LONG_ROW = ('has more cells than the header — quote the text cell ("...") or remove the '
            "extra comma")


def test_csv_unquoted_comma_in_the_first_row_is_reported_not_shifted(tmp_path: Path) -> None:
    table = ("excerpt_id,text,author\n"
             "UQ-1,We met the elders, then the commander.,Smith\n"
             "UQ-2,We waited.,Jones\n")
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [(d.doc_id, d.row, d.text, d.metadata["author"]) for d in result.documents] == [
        ("UQ-2", 3, "We waited.", "Jones")
    ]
    assert [str(s) for s in result.skipped] == [f"lit.csv:2: {LONG_ROW}"]


def test_csv_rows_with_more_cells_are_left_out_and_the_others_kept(tmp_path: Path) -> None:
    table = ('id,text,year\n'
             'E1,"A cell\nover two lines, quoted.",2001\n'
             'E2,Second, unquoted.,2002\n'
             '\n'
             'E4,Fourth.,2004\n'
             'E5,"Fifth, quoted.",2005,extra\n'
             ',no id,2006\n'
             'E7,Last, unquoted.,2007')
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [(d.doc_id, d.row, d.text) for d in result.documents] == [
        ("E1", 2, "A cell\nover two lines, quoted."), ("E4", 5, "Fourth.")
    ]
    assert [(s.path, s.line, s.reason) for s in result.skipped] == [
        ("lit.csv", 3, LONG_ROW),
        ("lit.csv", 6, LONG_ROW),
        ("lit.csv", 7, "no id — give the excerpt a unique id"),
        ("lit.csv", 8, LONG_ROW),
    ]


def test_semicolon_csv_row_with_more_cells_names_the_semicolon(tmp_path: Path) -> None:
    table = "id;text;author\nE1;One;Lee\nE2;Two;Aung\nE3;Three; and more;Smith\nE4;Four;Lee\n"
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [d.doc_id for d in result.documents] == ["E1", "E2", "E4"]
    assert [str(s) for s in result.skipped] == [
        'lit.csv:4: has more cells than the header — quote the text cell ("...") or remove '
        "the extra semicolon"
    ]


def test_csv_unclosed_quote_leaves_out_its_row_with_the_line_and_reads_the_rest(
    tmp_path: Path,
) -> None:
    table = ('sep=,\nid,text,author\nE1,"Over\ntwo lines.",Lee\nE2,"Never closed.,Aung\n'
             "E3,Read on its own.,Smith\n")
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": table}))
    assert [(d.doc_id, d.row, d.text) for d in result.documents] == [
        ("E1", 3, "Over\ntwo lines."), ("E3", 5, "Read on its own.")]
    assert [str(s) for s in result.skipped] == [
        'lit.csv:4: unclosed quote (") starting on line 5: its cell never ends — the row was '
        "left out (the lines below it were read on their own); add the closing quote or "
        "remove the opening one"]


def test_csv_header_with_an_unclosed_quote_is_skipped_with_its_line(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"lit.csv": 'sep=,\nid,"text\nE1,a\n'}))
    assert (skipped.line, skipped.reason) == (2, (
        'its header row has an unclosed quote (") starting on line 2 — add the closing quote '
        "or remove the opening one"))


def _save(workbook: openpyxl.Workbook, tmp_path: Path, name: str = "lit.xlsx") -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    workbook.save(corpus / name)
    return corpus


def test_xlsx_every_sheet_with_text_and_id_is_read(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "README"
    workbook.active.append(["This workbook lists excerpts by year."])
    first = workbook.create_sheet("2019")
    first.append(["excerpt_id", "text", "author"])
    first.append(["A-1", "Access was slow.", "Lee"])
    first.append(["A-2", None, "Lee"])
    second = workbook.create_sheet("2020")
    second["A1"] = "Excerpts coded in 2020"  # a title above the header, then a blank row
    second.append([])
    second.append(["id", "Text", "year"])
    second.append(["B-1", "Trust took years.", 2020])
    second.append([None, "No id here.", 2020])
    notes = workbook.create_sheet("notes")
    notes.append(["text", "comment"])
    notes.append(["a note", "no id column"])
    workbook.create_sheet("empty")  # an empty sheet is passed over in silence
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [(d.doc_id, d.row, d.text, d.metadata) for d in result.documents] == [
        ("A-1", 2, "Access was slow.", {"author": "Lee", "citation": "Lee"}),
        ("B-1", 4, "Trust took years.", {"year": "2020"}),
    ]
    assert [str(s) for s in result.skipped] == [
        "lit.xlsx: sheet 'README' has no 'text' column and was not read — if it holds "
        "excerpts, put a header row with a 'text' column in its first 10 rows",
        "lit.xlsx:3: sheet '2019': excerpt 'A-2' has an empty text — add the text",
        "lit.xlsx:5: sheet '2020': no id — give the excerpt a unique id",
        "lit.xlsx:1: sheet 'notes' has no id column (columns: text, comment) and was not "
        "read — add an 'excerpt_id' (or 'id') column with a unique id per row",
    ]


def test_xlsx_numeric_ids_are_read_as_the_sheet_shows_them(tmp_path: Path) -> None:
    # Ids typed as numbers and shown zero-padded (format 000, or "LIT-"000) are the ids
    # people read and write elsewhere: 001, not 1. Other number formats keep the number.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["B2"], sheet["C2"] = "excerpt_id", "text"  # column A and row 1 empty
    rows = [(1, "000"), (2, '"LIT-"000'), (3, "General"), (1234, "#,##0"), ("X-5", "@"),
            (6.0, "0000")]
    for r, (value, number_format) in enumerate(rows, start=3):
        sheet.cell(r, 2, value).number_format = number_format
        sheet.cell(r, 3, f"Excerpt {r}.")
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [(d.doc_id, d.row) for d in result.documents] == [
        ("001", 3), ("LIT-002", 4), ("3", 5), ("1234", 6), ("X-5", 7), ("0006", 8)]
    assert result.skipped == []


def test_xlsx_header_below_a_title_keeps_spreadsheet_row_numbers(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "Literature excerpts, access negotiations"
    sheet["B3"], sheet["C3"], sheet["D3"] = "excerpt_id", "text", "author"
    sheet["B4"], sheet["C4"], sheet["D4"] = "X-1", "First.", "Lee"
    sheet["B6"], sheet["C6"] = "X-2", None
    sheet["B7"], sheet["C7"], sheet["D7"] = "X-3", "Third.", "Aung"
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [(d.doc_id, d.row, d.text, d.metadata["author"]) for d in result.documents] == [
        ("X-1", 4, "First.", "Lee"), ("X-3", 7, "Third.", "Aung")
    ]
    assert [str(s) for s in result.skipped] == [
        "lit.xlsx:6: excerpt 'X-2' has an empty text — add the text"
    ]


def test_xlsx_header_below_row_10_is_not_searched(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active["A11"], workbook.active["B11"] = "id", "text"
    workbook.active["A12"], workbook.active["B12"] = "E1", "Too far down."
    skipped = _skip_of(_save(workbook, tmp_path))
    assert (skipped.line, skipped.reason) == (
        1, "has no 'text' column (columns: column A, column B) — name the column that "
        "holds the excerpt 'text'"
    )


def test_xlsx_without_a_text_column_in_any_sheet_is_skipped(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "codes"
    workbook.active.append(["code", "label"])
    workbook.create_sheet("how_to").append(["Fill in the codes."])
    skipped = _skip_of(_save(workbook, tmp_path))
    assert (skipped.line, skipped.reason) == (
        None, "has no sheet with a 'text' column (sheets: 'codes', 'how_to') — name the "
        "column that holds the excerpt 'text'"
    )


VTT_ONE_OFF = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Interviewer>What did the governor say?

00:00:04.500 --> 00:00:08.000
<v Hamid>He said the convoy could pass.

00:00:08.000 --> 00:00:10.000
<v Interpreter>He means the deputy governor.

00:00:10.500 --> 00:00:12.000
<v Interviewer>Thank you.

00:00:12.500 --> 00:00:14.000
<v Hamid>Yes, the deputy.
"""


def test_vtt_speaker_who_talks_once_is_a_turn(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"t.vtt": VTT_ONE_OFF}))
    segments = segment_document(doc)
    assert [(s.segment_id, s.speaker, s.codable, s.text) for s in segments] == [
        ("t:1", "Interviewer", False, "What did the governor say?"),
        ("t:2", "Hamid", True, "He said the convoy could pass."),
        ("t:3", "Interpreter", True, "He means the deputy governor."),
        ("t:4", "Interviewer", False, "Thank you."),
        ("t:5", "Hamid", True, "Yes, the deputy."),
    ]


def test_vtt_with_a_single_speaker_is_one_codable_turn(tmp_path: Path) -> None:
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Hamid>We waited.\n\n" \
          "00:00:04.000 --> 00:00:06.000\n<v Hamid>Then we left.\n"
    doc = _one(_corpus(tmp_path, {"mono.vtt": vtt}))
    assert doc.layout == TRANSCRIPT
    segments = segment_document(doc)
    assert [(s.segment_id, s.speaker, s.turn, s.codable, s.text) for s in segments] == [
        ("mono:1", "Hamid", 1, True, "We waited. Then we left.")
    ]


@pytest.mark.parametrize(
    "vtt",
    ["WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Amira></v>\n", "WEBVTT\n\nNOTE only a note\n"],
    ids=["empty-cue", "note-only"],
)
def test_vtt_without_caption_text_is_skipped(tmp_path: Path, vtt: str) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"silent.vtt": vtt}))
    assert "has no caption text" in skipped.reason
    assert "export the captions again or remove the file" in skipped.reason


# --- hostile and unusual input (audit 3) --------------------------------------------------


@pytest.mark.parametrize(
    ("line", "timing_like"),
    [("00:00:13.000 -> 00:00:14.000", True), ("00:00:05--> 1", True), ("1.5s->2s", True),
     (" 3 ->", True), ("text --> more", True), ("12 apples", False),
     ("12:00 - meeting", False), ("1", False), ("", False), ("- 12 ->", False)],
)
def test_timing_like_lines(line: str, timing_like: bool) -> None:
    from qualcode.ingest.subtitles import _timing_like

    assert _timing_like(line) is timing_like


def test_a_long_line_of_digits_in_subtitles_is_read_quickly(tmp_path: Path) -> None:
    import time

    from qualcode.ingest.subtitles import _timing_like

    start = time.perf_counter()
    assert not _timing_like("7" * 1_000_000)
    assert not _timing_like("7" + " " * 200_000 + "x")
    srt = SRT + "\n" + "3" * 200_000 + "\n"
    docs, _ = _read(_corpus(tmp_path, {"digits.srt": srt}))
    assert len(docs) == 1
    assert time.perf_counter() - start < 2  # was quadratic: 27 s for 40,000 digits


BODY = "Interviewer: How did it go?\n\nRespondent: We met the commander twice.\n"


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure-python"])
def test_deeply_nested_front_matter_is_one_skipped_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libyaml: bool
) -> None:
    from qualcode.ingest import front_matter

    if not libyaml:
        monkeypatch.setattr(front_matter, "_FastFrontMatterLoader",
                            front_matter._FrontMatterLoader)
    deep = "---\ndoc_id: DEEP\nx: " + "[" * 3000 + "]" * 3000 + "\n---\n" + BODY
    result = ingest_corpus(_corpus(tmp_path, {"deep.md": deep, "ok.txt": BODY}))
    assert [d.path for d in result.documents] == ["ok.txt"]
    [skipped] = result.skipped
    assert skipped.path == "deep.md"
    assert skipped.reason.startswith("front matter is nested too deeply — write it as "
                                     "'key: value' lines")
    assert skipped.line == (3 if libyaml else 2)


def test_front_matter_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    levels = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    text = "---\ndoc_id: BOMB\nsmall: &s one\nagain: *s\n" + "\n".join(levels) + "\n---\n" + BODY
    start = time.perf_counter()
    result = ingest_corpus(_corpus(tmp_path, {"bomb.md": text}))
    assert time.perf_counter() - start < 2  # 9 ** 9 strings if the aliases were expanded
    [doc] = result.documents
    assert doc.doc_id == "BOMB"
    assert doc.metadata == {"small": "one", "a": '["lol", "lol", "lol", "lol", "lol", "lol", '
                            '"lol", "lol", "lol"]'}
    alias = ("uses a YAML alias (*name), which qualcode does not accept, so it was left out "
             "— write the value out in full")
    assert [str(s) for s in result.skipped] == [
        f"bomb.md:4: front matter 'again' {alias}",
        *(f"bomb.md:{line}: front matter '{name}' {alias}"
          for line, name in enumerate("bcdefghi", start=6)),
    ]


def test_front_matter_values_must_be_single_values_or_flat_lists(tmp_path: Path) -> None:
    text = ("---\ndoc_id: [a, b]\ncase: yemen\nlanguages: [ar, en]\nnested: [[1, 2], 3]\n"
            "place: {city: Aden}\ncase: myanmar\n1: one\nnull: nothing\n2023-01-01: new year\n"
            "date: 2023-02-30\nnotes: " + "x" * 10_500 + "\n---\n" + BODY)
    result = ingest_corpus(_corpus(tmp_path, {"fm.md": text}))
    [doc] = result.documents
    assert doc.doc_id == "fm"  # the list was not taken for an id
    assert doc.metadata == {"case": "myanmar", "languages": '["ar", "en"]', "1": "one",
                            "date": "2023-02-30", "notes": "x" * 10_000}
    nested = ("holds a nested list or mapping, which metadata cannot hold, so it was left "
              "out — write a single value or a flat list such as [a, b]")
    not_a_name = ("not a name, so the entry was left out — write it as 'name: value' with a "
                  "name in letters")
    assert [str(s) for s in result.skipped] == [
        "fm.md:2: front matter 'doc_id' must be a single value, not a list — write it as "
        "'doc_id: YOUR-ID'; the file name is used as doc_id until then",
        f"fm.md:5: front matter 'nested' {nested}",
        f"fm.md:6: front matter 'place' {nested}",
        "fm.md:7: front matter 'case' is given twice (lines 3 and 7); the value on line 7 "
        "was used — delete the other one",
        f"fm.md:9: front matter name 'null' is read as empty (null), {not_a_name}",
        f"fm.md:10: front matter name '2023-01-01' is read as a date, {not_a_name}",
        # kept as written, with a note: no calendar has 30 February
        "fm.md:11: front matter date '2023-02-30' is not a real date; it was kept as written "
        "— correct it (e.g. 2023-03-09, as YYYY-MM-DD), or leave it empty if the date is "
        "unknown",
        "fm.md:12: front matter 'notes' is 10,500 characters long; only its first 10,000 "
        "were kept (metadata is repeated on every segment's row) — shorten it, or put long "
        "text in the body",
    ]
    assert len(segment_document(doc)) == 2  # the file itself is read


def test_ass_override_tags_in_srt_are_stripped_before_labels(tmp_path: Path) -> None:
    srt = ("1\n00:00:01,000 --> 00:00:04,000\n{\\an8}Interviewer: How did it go?\n\n"
           "2\n00:00:05,000 --> 00:00:09,000\n{\\i1}Respondent: We met{\\i0} the\\Ncommander "
           "twice.\n\n"
           "3\n00:00:10,000 --> 00:00:12,000\n<font color=\"#ffff00\">Respondent: The elders "
           "{laughs} helped.</font>\n\n"
           "4\n00:00:13,000 --> 00:00:14,000\n{\\pos(10,20)\\b1}Interviewer:{\\b0} Thanks.\n")
    doc = _one(_corpus(tmp_path, {"ass.srt": srt}))
    assert doc.layout == TRANSCRIPT
    assert doc.text == ("Interviewer: How did it go?\n\n"
                        "Respondent: We met the commander twice. The elders {laughs} helped."
                        "\n\nInterviewer: Thanks.")
    assert [(s.speaker, s.codable) for s in segment_document(doc)] == [
        ("Interviewer", False), ("Respondent", True), ("Interviewer", False)]


def _encrypted_pdf(user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(PDF_LINES))))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    # Printing/copying restrictions, no password to open it (many publishers' PDFs).
    doc = _one(_corpus(tmp_path, {"restricted.pdf": _encrypted_pdf("")}))
    assert doc.text.splitlines() == PDF_LINES


def test_pdf_with_a_password_to_open_it_is_skipped_with_the_fix(tmp_path: Path) -> None:
    skipped = _skip_of(_corpus(tmp_path, {"secret.pdf": _encrypted_pdf("open-sesame")}))
    assert skipped.reason == ("is password-protected — open it with its password in a PDF "
                              "reader and print or export it to a PDF without a password")


@pytest.mark.parametrize(("name", "program", "where"), [
    ("secret.docx", "Word or LibreOffice Writer", "Protect Document"),
    ("secret.xlsx", "Excel or LibreOffice Calc", "Protect Workbook"),
])
def test_password_protected_office_files_are_not_called_old_style(
    tmp_path: Path, name: str, program: str, where: str
) -> None:
    # An encrypted .docx/.xlsx is an OLE container with an "EncryptedPackage" stream.
    ole = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1016)
           + "EncryptedInfo".encode("utf-16-le") + bytes(50)
           + "EncryptedPackage".encode("utf-16-le") + bytes(2000))
    skipped = _skip_of(_corpus(tmp_path, {name: ole}))
    assert skipped.reason == (
        f"is password-protected — qualcode cannot read encrypted files: open it in {program} "
        f"with its password, remove the password (File › Info › {where} › Encrypt with "
        "Password, empty the box) and save it")
    old_style = _skip_of(_corpus(tmp_path / "old", {name: ole[:1024]}))
    assert "is an old-style" in old_style.reason


def test_repeated_column_names_in_tables_are_reported(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {
        "literature/authors.csv": "excerpt_id,text,author,Author\nE1,Access was agreed.,Lee,"
                                  "Aung\n",
        "literature/texts.csv": "excerpt_id,text,Text\nT1,One version.,Another version.\n",
    })
    workbook = openpyxl.Workbook()
    good, bad = workbook.active, workbook.create_sheet("twice")
    good.title = "excerpts"
    good.append(["excerpt_id", "text"])
    good.append(["W1", "The convoy passed."])
    bad.append(["id", "text", "text"])
    bad.append(["W2", "One.", "Two."])
    workbook.save(corpus / "literature" / "book.xlsx")
    result = ingest_corpus(corpus)
    reasons = {(s.path, s.line): s.reason for s in result.skipped}
    assert reasons[("literature/authors.csv", 1)].startswith(
        "column 'author' appears 2 times; they were read as 'author', 'Author' — give each "
        "column its own name")
    assert reasons[("literature/texts.csv", 1)].startswith(
        "has the column 'text' 2 times (read as 'text', 'Text'), so which one to use is "
        "unclear")
    assert reasons[("literature/book.xlsx", 1)].startswith(
        "sheet 'twice' has the column 'text' 2 times (read as 'text', 'text.1')")
    assert reasons[("literature/book.xlsx", 1)].endswith("the sheet was not read")
    assert sorted(d.doc_id for d in result.documents) == ["E1", "W1"]


def test_csv_with_a_title_or_excels_sep_line_above_the_header(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {
        "literature/titled.csv": "Literature review excerpts\nexcerpt_id,text,author\n"
                                 "E1,Access was agreed.,Lee\nE2,\"Two, with a comma\",Aung\n",
        "literature/excel.csv": "sep=;\nTitle line\n\nexcerpt_id;text\nS1;One, with a comma.\n"
                                "S2;Two;extra\n",
    })
    result = ingest_corpus(corpus)
    rows = {(d.doc_id, d.row, d.text) for d in result.documents}
    assert rows == {("E1", 3, "Access was agreed."), ("E2", 4, "Two, with a comma"),
                    ("S1", 5, "One, with a comma.")}
    assert [(s.path, s.line) for s in result.skipped] == [("literature/excel.csv", 6)]
    assert result.skipped[0].reason.startswith("has more cells than the header")


# --- .docx text boxes, footnotes and endnotes (audit 3, P13) --------------------------------

_BOX_NS = (f'{nsdecls("w", "wp", "a")} '
           'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
           'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
           'xmlns:v="urn:schemas-microsoft-com:vml"')


def _text_box(*paragraphs: str, choice: bool = True) -> object:
    """A run holding a text box as Word writes it: DrawingML (mc:Choice) and a VML copy of
    the same text for older readers (mc:Fallback); without ``choice``, only the VML copy
    (as older writers and converters leave it)."""
    content = "<w:txbxContent>" + "".join(f"<w:p>{_run(p)}</w:p>" for p in paragraphs) + \
        "</w:txbxContent>"
    if not choice:
        return parse_xml(
            f"<w:r {_BOX_NS}><mc:AlternateContent><mc:Fallback><w:pict><v:shape id='T'>"
            f"<v:textbox>{content}</v:textbox></v:shape></w:pict></mc:Fallback>"
            "</mc:AlternateContent></w:r>")
    return parse_xml(
        f"<w:r {_BOX_NS}><mc:AlternateContent><mc:Choice Requires='wps'><w:drawing>"
        "<wp:anchor distT='0' distB='0' distL='0' distR='0' simplePos='0' relativeHeight='1' "
        "behindDoc='0' locked='0' layoutInCell='1' allowOverlap='1'><wp:simplePos x='0' y='0'/>"
        "<wp:positionH relativeFrom='column'><wp:posOffset>0</wp:posOffset></wp:positionH>"
        "<wp:positionV relativeFrom='paragraph'><wp:posOffset>0</wp:posOffset></wp:positionV>"
        "<wp:extent cx='5000000' cy='900000'/><wp:wrapSquare wrapText='bothSides'/>"
        "<wp:docPr id='1' name='Text Box 1'/><a:graphic><a:graphicData "
        "uri='http://schemas.microsoft.com/office/word/2010/wordprocessingShape'><wps:wsp>"
        f"<wps:cNvSpPr txBox='1'/><wps:spPr/><wps:txbx>{content}</wps:txbx><wps:bodyPr/>"
        "</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>"
        "<mc:Fallback><w:pict><v:shape id='Text Box 1' type='#_x0000_t202'>"
        f"<v:textbox>{content}</v:textbox></v:shape></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r>"
    )


def test_docx_text_boxes_are_read_once_where_they_are_anchored(tmp_path: Path) -> None:
    def build(document) -> None:
        document.add_paragraph("Interview KHT-03, Khartoum")
        asked = document.add_paragraph("Interviewer: Who decided about the convoy?")
        asked._p.append(_text_box("Respondent: The council met first.",
                                  "Interviewer: And the commander?"))
        document.add_paragraph()._p.append(_text_box("Respondent: He agreed after two days.",
                                                     choice=False))
        table = document.add_table(rows=1, cols=2)
        table.cell(0, 0).text = "Interviewer"
        table.cell(0, 1).paragraphs[0]._p.append(_text_box("Why two days?"))
        document.add_paragraph("Respondent: He asked Port Sudan first.")

    doc = _one(_corpus(tmp_path, {"kht_03.docx": _docx_bytes(build)}))
    assert doc.text == (
        "Interview KHT-03, Khartoum\n\n"
        "Interviewer: Who decided about the convoy?\n\n"
        "Respondent: The council met first.\n\n"
        "Interviewer: And the commander?\n\n"
        "Respondent: He agreed after two days.\n\n"
        "Interviewer: Why two days?\n\n"
        "Respondent: He asked Port Sudan first."
    )
    assert doc.layout == TRANSCRIPT
    assert [(s.speaker, s.text) for s in segment_document(doc) if s.codable] == [
        ("Respondent", "The council met first."),
        ("Respondent", "He agreed after two days."),
        ("Respondent", "He asked Port Sudan first."),
    ]


def _with_notes(data: bytes, footnotes: list[str], endnotes: list[str]) -> bytes:
    """A .docx with footnotes and endnotes parts added (python-docx cannot write them),
    each with Word's separator notes, and a reference to each note in the body."""
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'

    def part(kind: str, notes: list[str]) -> str:
        separators = (f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r>'
                      f'</w:p></w:{kind}><w:{kind} w:type="continuationSeparator" w:id="0">'
                      f"<w:p><w:r><w:continuationSeparator/></w:r></w:p></w:{kind}>")
        return (f"<w:{kind}s {w}>{separators}" + "".join(
            f'<w:{kind} w:id="{i}"><w:p>{_run(text)}</w:p></w:{kind}>'
            for i, text in enumerate(notes, start=1)) + f"</w:{kind}s>")

    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    content = "application/vnd.openxmlformats-officedocument.wordprocessingml."
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        files = {name: source.read(name) for name in source.namelist()}
    xml = {name: files[name].decode() for name in
           ("word/_rels/document.xml.rels", "[Content_Types].xml", "word/document.xml")}
    xml["word/footnotes.xml"] = part("footnote", footnotes)
    xml["word/endnotes.xml"] = part("endnote", endnotes)
    xml["word/_rels/document.xml.rels"] = xml["word/_rels/document.xml.rels"].replace(
        "</Relationships>",
        f'<Relationship Id="rIdF1" Type="{rel}footnotes" Target="footnotes.xml"/>'
        f'<Relationship Id="rIdE1" Type="{rel}endnotes" Target="endnotes.xml"/>'
        "</Relationships>")
    xml["[Content_Types].xml"] = xml["[Content_Types].xml"].replace(
        "</Types>",
        f'<Override PartName="/word/footnotes.xml" ContentType="{content}footnotes+xml"/>'
        f'<Override PartName="/word/endnotes.xml" ContentType="{content}endnotes+xml"/>'
        "</Types>")
    refs = "".join(f'<w:r><w:footnoteReference w:id="{i}"/></w:r>'
                   for i in range(1, len(footnotes) + 1))
    xml["word/document.xml"] = xml["word/document.xml"].replace("</w:p>", refs + "</w:p>", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for name, content in {**files, **xml}.items():
            target.writestr(name, content)
    return buffer.getvalue()


def test_docx_footnotes_and_endnotes_are_not_read_but_reported(tmp_path: Path) -> None:
    from qualcode.ingest.docx_reader import read_docx

    def build(document) -> None:
        document.add_paragraph("Interviewer: Who let the convoy pass?")
        document.add_paragraph("Respondent: The commander did.")

    plain = _docx_bytes(build)
    noted = _with_notes(plain, ["Said with a laugh.", "The 2019 agreement."],
                        ["Transcribed by AM."])
    docs, notes = read_docx(noted, LABELS)
    assert [d.text for d in docs] == [
        "Interviewer: Who let the convoy pass?\n\nRespondent: The commander did."]
    assert [(n.row, n.note, n.reason) for n in notes] == [(None, True, (
        "has 2 footnotes and 1 endnote, which were not read (only the body and text boxes "
        "are) — the rest of the file was read; if a note holds part of the transcript, move "
        "its text into the body"))]
    # Word's separators, and notes without text, are no notes.
    assert read_docx(_with_notes(plain, [" "], []), LABELS)[1] == []
    assert read_docx(plain, LABELS)[1] == []
    result = ingest_corpus(_corpus(tmp_path, {"noted.docx": noted}))  # read, with a note
    assert [d.text for d in result.documents] == [docs[0].text]
    assert [(s.path, s.note, s.reason) for s in result.skipped] == [
        ("noted.docx", True, notes[0].reason)]


# --- .xlsx formulas without a stored result (audit 3, P15) ---------------------------------

UNCALCULATED = ("holds a formula whose result was never calculated (the workbook was saved by "
                "a program that does not calculate formulas), so the row was not read — open "
                "the workbook in Excel or LibreOffice and save it, which stores the results")


def test_xlsx_formulas_never_calculated_are_reported_by_cell(tmp_path: Path) -> None:
    # openpyxl writes formulas without computing them, as scripts that make workbooks do.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet["A1"] = "Excerpts from the 2021 review"
    sheet.append(["author", "excerpt_id", "text"])
    sheet.append(["Lee", "X-0", "Access was agreed."])
    sheet.append(["Lee", '=CONCAT("X","-1")', "The elders vouched for us."])
    sheet.append([])
    sheet.append(["Aung", "X-2", '="The commander "&"agreed"'])
    sheet.append(["Aung", '="X-"&3', '="Both are formulas"'])
    sheet.append(["Aung", "X-4", None])
    sheet.append(["Aung", "X-5", "Trust took years."])
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [(d.doc_id, d.row, d.text) for d in result.documents] == [
        ("X-0", 3, "Access was agreed."), ("X-5", 9, "Trust took years.")]
    assert [str(s) for s in result.skipped] == [
        f"lit.xlsx:4: cell B4 {UNCALCULATED}",
        f"lit.xlsx:6: cell C6 {UNCALCULATED}",
        "lit.xlsx:7: cells B7 and C7 hold formulas whose results were never calculated (the "
        "workbook was saved by a program that does not calculate formulas), so the row was "
        "not read — open the workbook in Excel or LibreOffice and save it, which stores the "
        "results",
        "lit.xlsx:8: excerpt 'X-4' has an empty text — add the text",
    ]


def test_xlsx_formulas_never_calculated_name_their_sheet(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "2019"
    workbook.active.append(["id", "text"])
    workbook.active.append(["A-1", "Access was slow."])
    later = workbook.create_sheet("2020")
    later.append(["id", "text"])
    later.append(["B-1", '=UPPER("trust took years")'])
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [d.doc_id for d in result.documents] == ["A-1"]
    assert [str(s) for s in result.skipped] == [f"lit.xlsx:2: sheet '2020': cell B2 {UNCALCULATED}"]


def test_xlsx_formulas_are_read_only_for_an_empty_text_or_id_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[bool] = []
    load_workbook = openpyxl.load_workbook

    def counting(*args, **kwargs):
        opened.append(kwargs.get("data_only", False))
        return load_workbook(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", counting)
    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "text", "year"])
    workbook.active.append(["E1", "First.", None])  # an empty metadata cell: no matter
    workbook.active.append(["E2", "Second.", "=2000+21"])
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [d.doc_id for d in result.documents] == ["E1", "E2"]
    assert opened and all(opened)  # only the values were read, not the formulas
    opened.clear()
    workbook.active.append(["E3", None, None])
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [str(s) for s in result.skipped] == [
        "lit.xlsx:4: excerpt 'E3' has an empty text — add the text"]
    assert False in opened


# --- audit 4: hidden sheets, empty unnamed columns, PDF page furniture, subtitle speakers,
# --- Word metadata tables --------------------------------------------------------------------


def test_xlsx_hidden_sheets_are_not_read_and_noted(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.title = "lit"
    workbook.active.append(["excerpt_id", "text"])
    workbook.active.append(["E1", "Access was slow."])
    for name, state in (("old", "hidden"), ("macro", "veryHidden")):
        sheet = workbook.create_sheet(name)
        sheet.append(["excerpt_id", "text"])
        sheet.append([f"X-{name}", "DRAFT - do not use"])
        sheet.sheet_state = state
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [(d.doc_id, d.text) for d in result.documents] == [("E1", "Access was slow.")]
    assert [(s.path, s.line, s.note, s.reason) for s in result.skipped] == [
        ("lit.xlsx", None, True, "sheet 'old' is hidden and was not read — unhide it "
         "(right-click a sheet tab › Unhide) to include it"),
        ("lit.xlsx", None, True, "sheet 'macro' is hidden and was not read — make it visible "
         "in Excel's VBA editor (Alt+F11, the sheet's Visible property) or in LibreOffice "
         "(Sheet › Show Sheet) to include it"),
    ]


def test_xlsx_hidden_sheet_next_to_several_visible_ones(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    for title in ("2019", "2020", "drafts"):
        sheet = workbook.create_sheet(title)
        sheet.append(["id", "text"])
        sheet.append([f"{title}-1", f"Excerpt of {title}."])
    workbook.remove(workbook["Sheet"])
    workbook["drafts"].sheet_state = "hidden"
    result = ingest_corpus(_save(workbook, tmp_path))
    assert [d.doc_id for d in result.documents] == ["2019-1", "2020-1"]
    assert [(s.note, s.reason[:35]) for s in result.skipped] == [
        (True, "sheet 'drafts' is hidden and was no")]


def test_empty_columns_without_a_header_are_dropped(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["excerpt_id", "text", "author"])
    workbook.active.append(["E1", "Access was slow.", "Lee"])
    workbook.active["F2"] = " "  # a space typed far right: columns D to F exist, empty
    csv_text = ("excerpt_id,text,author,,,\nC1,Trust took years.,Kim,,,\n"
                "C2,The road closed.,Kim,, ,\n")
    corpus = _save(workbook, tmp_path)
    (corpus / "lit.csv").write_text(csv_text, encoding="utf-8")
    result = ingest_corpus(corpus)
    assert result.skipped == []
    assert {d.doc_id: d.metadata for d in result.documents} == {
        "C1": {"author": "Kim", "citation": "Kim"},
        "C2": {"author": "Kim", "citation": "Kim"},
        "E1": {"author": "Lee", "citation": "Lee"},
    }


def test_a_column_without_a_header_but_with_values_is_kept(tmp_path: Path) -> None:
    csv_text = "excerpt_id,text,,\nC1,Trust took years.,p. 4,\nC2,The road closed.,,\n"
    result = ingest_corpus(_corpus(tmp_path, {"lit.csv": csv_text}))
    assert [d.metadata for d in result.documents] == [{"column C": "p. 4"},
                                                      {"column C": ""}]
    assert [(str(s), s.note) for s in result.skipped] == [(
        "lit.csv:1: column C has no name in the header row; its values were read as the "
        "metadata field 'column C' — give the column a name (or delete it)", True)]


HF_PAGES = [
    ["YEM-INT-07 - Confidential transcript",
     "Interviewer: How did you first get access?",
     "Respondent: We negotiated with the commander through the",
     "elders. The nego-",
     "tiation took three weeks and the UN-",
     "led team demanded a share of the",
     "Page 1 of 3"],
    ["YEM-INT-07 - Confidential transcript",
     "food distribution, which we refused.",
     "Interviewer: And what did they ask for in return?",
     "Respondent: Guards from their village.",
     "Page 2 of 3"],
    ["YEM-INT-07 - Confidential transcript",
     "Interviewer: Thank you.",
     "3"],
]


def test_pdf_running_headers_footers_and_page_numbers_are_removed(tmp_path: Path) -> None:
    result = ingest_corpus(_corpus(tmp_path, {"transcripts/hf.pdf": make_pages_pdf(HF_PAGES)}))
    (doc,) = result.documents
    assert doc.text == (
        "Interviewer: How did you first get access?\n"
        "Respondent: We negotiated with the commander through the\n"
        "elders. The negotiation took three weeks and the UN-\n"  # "nego-" joined, "UN-" not
        "led team demanded a share of the\n"
        "food distribution, which we refused.\n"  # the sentence runs over the page break
        "Interviewer: And what did they ask for in return?\n"
        "Respondent: Guards from their village.\n\n"  # it ended the page: a paragraph ends
        "Interviewer: Thank you."
    )
    assert [(s.path, s.line, s.note, s.reason) for s in result.skipped] == [
        ("transcripts/hf.pdf", None, True,
         "6 lines at the top or bottom of its pages (running headers, footers and page "
         "numbers, such as 'YEM-INT-07 - Confidential transcript') were removed, so as not "
         "to end up inside a speaker's turn; the rest was read — if words of the transcript "
         "were removed, save the document as .docx or .txt instead of PDF")]
    answer = next(s for s in segment_document(doc) if s.speaker == "Respondent")
    assert answer.text == (
        "We negotiated with the commander through the\nelders. The negotiation took three "
        "weeks and the UN-\nled team demanded a share of the\nfood distribution, which we "
        "refused.")


def test_pdf_labels_atop_each_page_are_not_taken_for_headers(tmp_path: Path) -> None:
    pages = [["Interviewer:", "How did it start?", "Respondent:", "Slowly."],
             ["Interviewer:", "And then?", "Respondent:", "It stopped."]]
    doc = _one(_corpus(tmp_path, {"t.pdf": make_pages_pdf(pages)}))
    assert doc.text == ("Interviewer:\nHow did it start?\nRespondent:\nSlowly.\n\n"
                        "Interviewer:\nAnd then?\nRespondent:\nIt stopped.")


def test_one_page_pdf_keeps_its_title_and_drops_a_lone_page_number(tmp_path: Path) -> None:
    result = ingest_corpus(_corpus(tmp_path, {"t.pdf": make_pdf([*PDF_LINES[:3], "- 1 -"])}))
    assert [d.text for d in result.documents] == ["\n".join(PDF_LINES[:3])]
    assert [(s.note, s.reason[:60]) for s in result.skipped] == [
        (True, "1 line at the top or bottom of its pages (running headers, f")]


SRT_DASHES = """1
00:00:05,000 --> 00:00:09,000
- Interviewer: How did you first get access to the district?
– Respondent: Through the elders, who vouched for us.

2
00:00:10,000 --> 00:00:14,000
- Interviewer: And what did they ask for in return?
- Respondent: Guards from their village.
"""
SRT_CHEVRONS = """1
00:00:05,000 --> 00:00:09,000
>> INTERVIEWER: How did you first get access to the district?

2
00:00:10,000 --> 00:00:14,000
>>RESPONDENT: Through the elders, who vouched for us.
It took weeks.

3
00:00:15,000 --> 00:00:19,000
>> INTERVIEWER: And what did they ask for in return?
>> RESPONDENT: Guards from their village
— a dash that goes on with the sentence stays.
"""


@pytest.mark.parametrize("srt", [SRT_DASHES, SRT_CHEVRONS], ids=["dashes", "chevrons"])
def test_srt_dialogue_dashes_and_chevrons_start_turns(tmp_path: Path, srt: str) -> None:
    doc = _one(_corpus(tmp_path, {"transcripts/d.srt": srt}))
    assert doc.layout == TRANSCRIPT
    assert [(s.speaker, s.codable, s.text) for s in segment_document(doc)] == [
        ("Interviewer", False, "How did you first get access to the district?"),
        ("Respondent", True, "Through the elders, who vouched for us."
         + (" It took weeks." if srt is SRT_CHEVRONS else "")),
        ("Interviewer", False, "And what did they ask for in return?"),
        ("Respondent", True, "Guards from their village."
         if srt is SRT_DASHES else
         "Guards from their village — a dash that goes on with the sentence stays."),
    ]


def test_srt_bracketed_speaker_names(tmp_path: Path) -> None:
    srt = ("1\n00:00:05,000 --> 00:00:09,000\n[Interviewer] How did you get access?\n\n"
           "2\n00:00:10,000 --> 00:00:14,000\n[Respondent] Through the elders.\n\n"
           "3\n00:00:15,000 --> 00:00:19,000\n[Respondent] [laughs] They vouched for us.\n\n"
           "4\n00:00:20,000 --> 00:00:24,000\n[Interviewer] And in return?\n\n"
           "5\n00:00:25,000 --> 00:00:29,000\n[Respondent] Guards.\n[Music] [Applause] ok\n")
    doc = _one(_corpus(tmp_path, {"transcripts/b.srt": srt}))
    assert doc.text == (
        "Interviewer: How did you get access?\n\n"
        "Respondent: Through the elders. [laughs] They vouched for us.\n\n"
        "Interviewer: And in return?\n\n"
        "Respondent: Guards. [Music] [Applause] ok"  # sounds are no speakers
    )


def test_vtt_two_voices_on_one_line_are_two_turns(tmp_path: Path) -> None:
    vtt = ("WEBVTT\n\n00:00:05.000 --> 00:00:09.000\n<v Interviewer>How did you get access?"
           "</v> <v Respondent>Through the elders.</v>\n\n"
           "00:00:10.000 --> 00:00:14.000\n<v Respondent>They vouched for us.</v>\n\n"
           "00:00:15.000 --> 00:00:19.000\n<v Interviewer>Thanks.</v><v.loud Respondent>"
           "<i>Welcome</i>.</v>\n")
    doc = _one(_corpus(tmp_path, {"transcripts/v.vtt": vtt}))
    assert [(s.speaker, s.codable, s.text) for s in segment_document(doc)] == [
        ("Interviewer", False, "How did you get access?"),
        ("Respondent", True, "Through the elders. They vouched for us."),
        ("Interviewer", False, "Thanks."),
        ("Respondent", True, "Welcome."),
    ]


def _meta_table_docx(rows: list[tuple[str, str]], turns: list[tuple[str, str]],
                     title: str | None = "Interview YEM-INT-07") -> bytes:
    def build(document) -> None:
        if title:
            document.add_heading(title, level=1)
        table = document.add_table(rows=0, cols=2)
        for row in rows:
            for cell, value in zip(table.add_row().cells, row, strict=True):
                cell.text = value
        for speaker, words in turns:
            _bold_turn(document, speaker, words)

    return _docx_bytes(build)


TURNS = [("Interviewer", "How did you first get access?"),
         ("Respondent", "Through the elders."),
         ("Interviewer", "And in return?"),
         ("Respondent", "Guards from their village.")]


@pytest.mark.parametrize("title", ["Interview YEM-INT-07", None], ids=["title", "no-title"])
def test_docx_metadata_table_at_the_top_is_metadata(tmp_path: Path, title: str | None) -> None:
    rows = [("Date", "12 May 2023"), ("Location:", "Aden"), ("Interviewer", "J. Doe"),
            ("Interviewee", "Field officer, national NGO"), ("Duration", "48 min"),
            ("", "")]
    doc = _one(_corpus(tmp_path, {"transcripts/mt.docx": _meta_table_docx(rows, TURNS, title)}))
    assert doc.metadata == {"Date": "12 May 2023", "Location": "Aden", "Interviewer": "J. Doe",
                            "Interviewee": "Field officer, national NGO",
                            "Duration": "48 min"}
    assert doc.text == (f"{title}\n\n" if title else "") + "\n\n".join(
        f"{speaker}: {words}" for speaker, words in TURNS)
    assert [(s.speaker, s.text) for s in segment_document(doc) if s.speaker] == TURNS


@pytest.mark.parametrize(
    ("rows", "turns"),
    [
        # a "speaker | words" table: keys repeat
        ([("Interviewer", "How did you get access?"), ("Respondent", "Through the elders."),
          ("Interviewer", "And in return?")], [("Respondent", "Guards.")]),
        # one short exchange per table: its keys are the speakers
        ([("Interviewer", "How did you get access?"), ("Respondent", "Through the elders.")],
         TURNS),
        # a key | value table with nothing after it
        ([("Date", "12 May"), ("Location", "Aden")], []),
    ],
    ids=["transcript-table", "exchange-table", "nothing-after"],
)
def test_docx_tables_that_are_no_header_stay_text(
    tmp_path: Path, rows: list[tuple[str, str]], turns: list[tuple[str, str]]
) -> None:
    doc = _one(_corpus(tmp_path, {"t.docx": _meta_table_docx(rows, turns)}))
    assert doc.metadata == {}
    assert doc.text == "\n\n".join(["Interview YEM-INT-07", *(f"{k}: {v}" for k, v in rows),
                                    *(f"{k}: {v}" for k, v in turns)])


def test_docx_key_value_table_after_the_first_turn_stays_text(tmp_path: Path) -> None:
    def build(document) -> None:
        _bold_turn(document, "Interviewer", "Where were you?")
        table = document.add_table(rows=2, cols=2)
        for i, (key, value) in enumerate([("Date", "12 May"), ("Location", "Aden")]):
            table.cell(i, 0).text, table.cell(i, 1).text = key, value
        _bold_turn(document, "Respondent", "In Aden.")
        _bold_turn(document, "Interviewer", "Thanks.")

    doc = _one(_corpus(tmp_path, {"t.docx": _docx_bytes(build)}))
    assert doc.metadata == {}
    assert "Date: 12 May\n\nLocation: Aden" in doc.text
