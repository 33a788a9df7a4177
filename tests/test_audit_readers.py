"""Bad input in the corpus readers (audit): subtitle markup and character references,
caption words with an arrow, voice tags that name a speaker in any form, Word documents in
Strict Open XML and other damaged Office files, spreadsheet cells reading "NA", a stray
value far outside a sheet's table, merged cells in Word tables and an excerpt id used in two
sheets of a workbook. Real files written in ``tmp_path``."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pytest

from qualcode.ingest import ingest_corpus
from qualcode.segment import segment_document

from .test_readers import _corpus, _one


def _turns(doc) -> list[tuple[str, str, int | None, bool, str]]:
    return [(s.segment_id, s.speaker, s.turn, s.codable, s.text)
            for s in segment_document(doc)]


# --- 1. text between '<' and '>' that is no cue tag ---------------------------------------

SRT_ANGLES = """1
00:00:01,000 --> 00:00:04,000
Interviewer: Was the cost <5% or >10% of the budget?

2
00:00:05,000 --> 00:00:09,000
Respondent: It was <5 percent, and <i>the commander</i> said the tax would go up if we
refused > we <b>refused</b>. <font color="#ffff00">Then</font> a <u>new</u> post -> <x>.

3
00:00:10,000 --> 00:00:12,000
Interviewer: And then?
"""

VTT_TAGS = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Interviewer>Did a <c.yellow>checkpoint</c> cost <5 dollars or >20?</v>

00:00:05.000 --> 00:00:09.000
<v.loud Respondent><lang ar>Ahlan</lang>, <00:00:06.000>it cost <ruby>a lot<rt>much</rt></ruby>,
a <2> and a <b.red>bribe</b>, <ruby>賄賂<rt>わいろ</ruby> in Japanese.</v>
"""


def test_subtitle_text_between_angle_brackets_is_kept(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"angle.srt": SRT_ANGLES}))
    assert _turns(doc) == [
        ("angle:1", "Interviewer", 1, False, "Was the cost <5% or >10% of the budget?"),
        ("angle:2", "Respondent", 2, True,
         "It was <5 percent, and the commander said the tax would go up if we refused > we "
         "refused. Then a new post -> <x>."),
        ("angle:3", "Interviewer", 3, False, "And then?"),
    ]


def test_vtt_cue_tags_are_removed_and_other_angle_brackets_kept(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"tags.vtt": VTT_TAGS}))
    assert _turns(doc) == [
        ("tags:1", "Interviewer", 1, False, "Did a checkpoint cost <5 dollars or >20?"),
        ("tags:2", "Respondent", 2, True,
         "Ahlan, it cost a lot, a <2> and a bribe, 賄賂 in Japanese."),
    ]


# --- 2. character references -------------------------------------------------------------

VTT_REFERENCES = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Interviewer>How did Tom &amp; the team negotiate? Was it &lt;hard&gt;?</v>

00:00:05.000 --> 00:00:09.000
<v Respondent>It was hard&nbsp;work &#8212; the commander said no &amp; we wrote
&lt;b&gt;stop&lt;/b&gt; on the sign.</v>

00:00:10.000 --> 00:00:12.000
<v Respondent>AT&T, R&D and &notes stay; &bogus; and &#0; too &#x2014; ok.</v>
"""


def test_vtt_character_references_are_decoded_after_tags(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"refs.vtt": VTT_REFERENCES}))
    assert _turns(doc) == [
        ("refs:1", "Interviewer", 1, False,
         "How did Tom & the team negotiate? Was it <hard>?"),
        ("refs:2", "Respondent", 2, True,
         "It was hard work — the commander said no & we wrote <b>stop</b> on the sign. "
         "AT&T, R&D and &notes stay; &bogus; and &#0; too — ok."),
    ]


def test_srt_character_references_are_decoded(tmp_path: Path) -> None:
    srt = ("1\n00:00:01,000 --> 00:00:04,000\nModerator: Q&amp;A &#8212; ready?\n\n"
           "2\n00:00:05,000 --> 00:00:09,000\nRespondent: Yes &lt;i&gt;really&lt;/i&gt;.\n\n"
           "3\n00:00:10,000 --> 00:00:12,000\nModerator: Thanks.\n")
    doc = _one(_corpus(tmp_path, {"refs.srt": srt}))
    assert doc.text == ("Moderator: Q&A — ready?\n\nRespondent: Yes <i>really</i>.\n\n"
                        "Moderator: Thanks.")


# --- 3. a caption line with an arrow -----------------------------------------------------

SRT_ARROW = """1
00:00:01,000 --> 00:00:04,000
Interviewer: What happened to prices?

2
00:00:05,000 --> 00:00:09,000
Respondent: Fuel went 500 --> 900 riyals after the commander's tax.

3
00:00:10,000 --> 00:00:12,000
Interviewer: And food?

4
00:00:13,000 --> 00:00:15,000
Respondent: Flour went
20 -> 35.
5
00:00:16,000 --> 00:00:18,000
Interviewer: Thanks.
"""


def test_srt_caption_line_with_an_arrow_is_text(tmp_path: Path) -> None:
    doc = _one(_corpus(tmp_path, {"arrow.srt": SRT_ARROW}))
    assert _turns(doc) == [
        ("arrow:1", "Interviewer", 1, False, "What happened to prices?"),
        ("arrow:2", "Respondent", 2, True,
         "Fuel went 500 --> 900 riyals after the commander's tax."),
        ("arrow:3", "Interviewer", 3, False, "And food?"),
        ("arrow:4", "Respondent", 4, True, "Flour went 20 -> 35."),
        ("arrow:5", "Interviewer", 5, False, "Thanks."),  # a blank line was missing above
    ]


def test_vtt_caption_line_with_an_arrow_is_text(tmp_path: Path) -> None:
    vtt = ("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Interviewer>Prices?\n\n"
           "00:00:05.000 --> 00:00:09.000\n<v Respondent>Fuel: 500 --> 900.\n"
           "Bread: 10 --> 15.\n\n"
           "00:00:10.000 --> 00:00:12.000\n<v Interviewer>Thanks.\n")
    doc = _one(_corpus(tmp_path, {"arrow.vtt": vtt}))
    assert [(s.speaker, s.text) for s in segment_document(doc)] == [
        ("Interviewer", "Prices?"),
        ("Respondent", "Fuel: 500 --> 900. Bread: 10 --> 15."),
        ("Interviewer", "Thanks."),
    ]


# --- 4. voice tags name their speaker, whatever the name looks like ------------------------

VTT_VOICES = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Interviewer>How did it go?

00:00:05.000 --> 00:00:09.000
<v Amina>The commander agreed to open the road.

00:00:10.000 --> 00:00:12.000
<v Interviewer>And then?

00:00:13.000 --> 00:00:15.000
<v Dr. Ahmed bin Salim Al-Harthy>We threatened to suspend the programme.

00:00:15.500 --> 00:00:17.000
<v Dr. Ahmed bin Salim Al-Harthy>The checkpoint opened.

00:00:18.000 --> 00:00:20.000
<v Interviewer: Anna>Who decided?

00:00:21.000 --> 00:00:23.000
<v ahmed@ngo.example>The board.

00:00:24.000 --> 00:00:26.000
<v 2nd interpreter (UN)>He means the regional board.

00:00:27.000 --> 00:00:29.000
<v Amina>Yes.
"""


def test_vtt_voice_tag_names_its_speaker_in_any_form(tmp_path: Path) -> None:
    result = ingest_corpus(_corpus(tmp_path, {"voices.vtt": VTT_VOICES}))
    [doc] = result.documents
    assert _turns(doc) == [
        ("voices:1", "Interviewer", 1, False, "How did it go?"),
        ("voices:2", "Amina", 2, True, "The commander agreed to open the road."),
        ("voices:3", "Interviewer", 3, False, "And then?"),
        ("voices:4", "Dr. Ahmed bin Salim (Al-Harthy)", 4, True,
         "We threatened to suspend the programme. The checkpoint opened."),
        ("voices:5", "Interviewer (Anna)", 5, False, "Who decided?"),
        ("voices:6", "ahmed (@ngo.example)", 6, True, "The board."),
        ("voices:7", "Speaker 2nd interpreter (UN)", 7, True, "He means the regional board."),
        ("voices:8", "Amina", 8, True, "Yes."),
    ]
    notes = [s for s in result.skipped if s.note]
    assert len(notes) == len(result.skipped) == 4
    assert notes[0].reason.startswith(
        "the voice tag '<v Dr. Ahmed bin Salim Al-Harthy>' was read as the speaker "
        "'Dr. Ahmed bin Salim (Al-Harthy)'")
    assert "nothing was left out" in notes[0].reason


def test_vtt_voice_tags_that_are_labels_are_kept_as_written(tmp_path: Path) -> None:
    vtt = ("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Q>Access?\n\n"
           "00:00:05.000 --> 00:00:09.000\n<v Tom &amp; Jerry>Through the elders.\n\n"
           "00:00:10.000 --> 00:00:12.000\n<v Participant #3>Agreed.\n")
    doc = _one(_corpus(tmp_path, {"v.vtt": vtt}))
    assert _turns(doc) == [
        ("v:1", "Q", 1, False, "Access?"),
        ("v:2", "Tom & Jerry", 2, True, "Through the elders."),
        ("v:3", "Participant #3", 3, True, "Agreed."),
    ]


# --- 5. Word documents in Strict Open XML, and other damaged Office files -----------------

_W = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_REL = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_STRICT = {
    _W: b"http://purl.oclc.org/ooxml/wordprocessingml/main",
    _REL: b"http://purl.oclc.org/ooxml/officeDocument/relationships",
    b"http://schemas.openxmlformats.org/spreadsheetml/2006/main":
        b"http://purl.oclc.org/ooxml/spreadsheetml/main",
    b"http://schemas.openxmlformats.org/drawingml/2006/": b"http://purl.oclc.org/ooxml/drawingml/",
}


def _rezip(data: bytes, edit: Callable[[str, bytes], bytes | None]) -> bytes:
    """``data`` (a zip) with each part as ``edit`` returns it (None: left out)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in source.namelist():
            content = edit(name, source.read(name))
            if content is not None:
                copy.writestr(name, content)
    return out.getvalue()


def _strict(only: str | None = None) -> Callable[[str, bytes], bytes]:
    def edit(name: str, content: bytes) -> bytes:
        if only is None or name == only:
            for old, new in (_STRICT.items() if only is None else [(_W, _STRICT[_W])]):
                content = content.replace(old, new)
        return content
    return edit


def _interview_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Interview YEM-9"
    for line in ("Interviewer: How did you reach the village?",
                 "Respondent: The elders vouched for us.",
                 "Interviewer: And the commander?", "Respondent: He let the trucks pass."):
        document.add_paragraph(line)
    table = document.add_table(rows=0, cols=2)
    for speaker, words in (("Interviewer", "Thanks."), ("Respondent", "You are welcome.")):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = speaker, words
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("only", ["word/document.xml", None], ids=["body-only", "all-parts"])
def test_docx_in_strict_open_xml_is_read(tmp_path: Path, only: str | None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = _rezip(_interview_docx(), _strict(only))
    doc = _one(_corpus(tmp_path, {"strict.docx": data}))
    assert doc.metadata["title"] == "Interview YEM-9"
    assert [(s.segment_id, s.speaker, s.codable, s.text) for s in segment_document(doc)] == [
        ("strict:1", "Interviewer", False, "How did you reach the village?"),
        ("strict:2", "Respondent", True, "The elders vouched for us."),
        ("strict:3", "Interviewer", False, "And the commander?"),
        ("strict:4", "Respondent", True, "He let the trucks pass."),
        ("strict:5", "Interviewer", False, "Thanks."),
        ("strict:6", "Respondent", True, "You are welcome."),
    ]
    assert "Traceback" not in capsys.readouterr().err


def test_xlsx_in_strict_open_xml_is_read(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["excerpt_id", "text", "year"])
    workbook.active.append(["S-1", "Access was negotiated.", 2019])
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = _rezip(buffer.getvalue(), _strict())
    result = ingest_corpus(_corpus(tmp_path, {"strict.xlsx": data}))
    assert result.skipped == []
    assert [(d.doc_id, d.text, d.metadata["year"]) for d in result.documents] == [
        ("S-1", "Access was negotiated.", "2019")]


_WORD_FIX = ("open it in Word or LibreOffice Writer and save it again as .docx; if it will "
             "not open, get a fresh copy from where it came from")
_MAIN = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda n, c: c.replace(_MAIN, b"application/vnd.ms-word.document.macroEnabled.main+xml")
         if n == "[Content_Types].xml" else c,
         "is a macro-enabled Word document (.docm) with a .docx name — open it in Word or "
         "LibreOffice Writer and save it as .docx (File › Save As), which leaves the macros "
         "out"),
        (lambda n, c: None if n == "word/styles.xml" else c,
         f"is a damaged Word document (its part word/styles.xml is missing) — {_WORD_FIX}"),
        (lambda n, c: None if n == "_rels/.rels" else c,
         f"is a damaged Word document (its part _rels/.rels is missing) — {_WORD_FIX}"),
        (lambda n, c: c[:-200] if n == "word/document.xml" else c,
         "is a damaged Word document (its part word/document.xml is cut short or "
         f"corrupted) — {_WORD_FIX}"),
    ],
    ids=["macro-enabled", "missing-styles", "missing-package-links", "cut-short-body"],
)
def test_damaged_docx_says_what_is_wrong(tmp_path: Path, edit, reason: str) -> None:
    data = _rezip(_interview_docx(), edit)
    result = ingest_corpus(_corpus(tmp_path, {"bad.docx": data, "ok.txt": "Some text."}))
    assert [d.path for d in result.documents] == ["ok.txt"]
    assert [(s.path, s.reason) for s in result.skipped] == [("bad.docx", reason)]


def test_damaged_xlsx_says_which_part_is_missing(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.active.append(["excerpt_id", "text"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = _rezip(buffer.getvalue(),
                  lambda n, c: None if n == "xl/worksheets/sheet1.xml" else c)
    result = ingest_corpus(_corpus(tmp_path, {"bad.xlsx": data}))
    assert [s.reason for s in result.skipped] == [
        "is a damaged Excel workbook (its part xl/worksheets/sheet1.xml is missing) — open "
        "it in Excel or LibreOffice Calc and save it again as .xlsx; if it will not open, "
        "get a fresh copy from where it came from"]


# --- 6. cells reading NA, None, #N/A ... are text ------------------------------------------

NA_WORDS = ["NA", "N/A", "#N/A", "NULL", "None", "nan", "n/a"]


def test_xlsx_cells_are_read_as_written(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["excerpt_id", "text", "response"])
    for i, word in enumerate(NA_WORDS, start=1):
        sheet.append([word, f"Excerpt {i} about access.", word])
    for row in sheet.iter_rows(min_row=2, max_col=3):
        for cell in row:
            cell.data_type = "s"  # "#N/A" as text (openpyxl takes it for the error value)
    sheet.append(["E-8", "Excerpt 8 with an empty cell.", None])
    path = tmp_path / "corpus" / "na.xlsx"
    path.parent.mkdir()
    workbook.save(path)
    result = ingest_corpus(tmp_path / "corpus")
    assert result.skipped == []
    assert [(d.doc_id, d.row, d.metadata["response"]) for d in result.documents] == [
        *((word, i + 1, word) for i, word in enumerate(NA_WORDS, start=1)), ("E-8", 9, "")]


# --- 7. a value far outside the table ------------------------------------------------------

# Run in a process with a memory limit: the reader once allocated 24 GB for this file.
_INGEST = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from qualcode.ingest import ingest_corpus
result = ingest_corpus(__import__("pathlib").Path(sys.argv[1]))
print(json.dumps({"documents": [[d.path, d.doc_id, d.text] for d in result.documents],
                  "skipped": [[s.path, s.reason] for s in result.skipped]}))
"""


def _ingest_limited(corpus: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _INGEST, str(corpus)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def _far_workbook(path: Path, far: dict[str, str], second_sheet: bool = False) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Excerpts"
    sheet.append(["excerpt_id", "text"])
    sheet.append(["F-1", "The road opened after talks."])
    for cell, value in far.items():
        sheet[cell] = value
    if second_sheet:
        other = workbook.create_sheet("More")
        other.append(["id", "text"])
        other.append(["M-1", "A second sheet is still read."])
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)


def test_xlsx_value_far_outside_the_table_is_reported_not_allocated(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _far_workbook(corpus / "far.xlsx", {"XFD1048576": "far"})
    _far_workbook(corpus / "two.xlsx", {"XFD2": "far"}, second_sheet=True)
    (corpus / "ok.txt").write_text("Some text.", encoding="utf-8")
    result = _ingest_limited(corpus)
    assert result["documents"] == [
        ["ok.txt", "ok", "Some text."],
        ["two.xlsx", "M-1", "A second sheet is still read."],
    ]
    assert result["skipped"] == [
        ["far.xlsx", "sheet 'Excerpts' has a value in cell XFD1048576, far outside the table "
         "(with it, the sheet spans 1,048,576 rows × 16,384 columns, too many to read), so "
         "the sheet was not read — delete it (or move it into the table) and save the "
         "workbook"],
        ["two.xlsx", "sheet 'Excerpts' has a value in cell XFD2, far outside the table (with "
         "it, the sheet spans 2 rows × 16,384 columns, too many to read), so the sheet was "
         "not read — delete it (or move it into the table) and save the workbook"],
    ]


def test_xlsx_value_beside_the_table_is_still_metadata(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _far_workbook(corpus / "near.xlsx", {"D2": "yemen"})
    result = ingest_corpus(corpus)
    assert [(str(s), s.note) for s in result.skipped] == [(
        "near.xlsx:1: column D has no name in the header row; its values were read as the "
        "metadata field 'column D' — give the column a name (or delete it)", True)]
    assert [(d.doc_id, d.metadata) for d in result.documents] == [
        ("F-1", {"column D": "yemen"})]


# --- 6. merged cells in Word tables --------------------------------------------------------


def _merged_docx(rows: list[tuple[str, ...]], merges: list[tuple[int, int, int, int]]) -> bytes:
    """A Word document with a title and a table of ``rows``; each of ``merges`` (top, left,
    bottom, right) is merged, as Word's Merge Cells does, and keeps its top left text."""
    document = docx.Document()
    document.add_paragraph("From the field")
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for merge in merges:
        top, left, bottom, right = merge
        table.cell(top, left).merge(table.cell(bottom, right))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value:
                table.cell(i, j).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_merged_cells_are_read_once(tmp_path: Path) -> None:
    excerpts = _merged_docx([
        ("id", "text", "source"),
        ("E1", "Access was negotiated.", "Smith 2019"),
        ("E2", "Taxes were paid at the checkpoint.", ""),  # "Smith 2019" runs down to here
        ("Part two", "", ""),  # one cell across the table
        ("E3", "Nobody came.", "Jones 2021"),
        ("E4", "Yes", "Yes"),  # the same text in two cells is two cells
    ], merges=[(1, 2, 2, 2), (3, 0, 3, 2)])
    doc = _one(_corpus(tmp_path, {"lit.docx": excerpts}))
    assert [s.text for s in segment_document(doc)] == [
        "From the field", "id: text source", "E1: Access was negotiated. Smith 2019",
        "E2: Taxes were paid at the checkpoint.", "Part two", "E3: Nobody came. Jones 2021",
        "E4: Yes Yes"]


def test_docx_speaker_cell_merged_down_two_rows_is_one_turn(tmp_path: Path) -> None:
    interview = _merged_docx([
        ("Interviewer", "How did you get there?"),
        ("Respondent", "By road."),
        ("", "Then by boat, the same day."),
        ("Interviewer", "Was it safe?"),
        ("Respondent", "Safe enough."),
    ], merges=[(1, 0, 2, 0)])
    doc = _one(_corpus(tmp_path, {"int.docx": interview}))
    assert _turns(doc) == [
        ("int:0", "", 0, False, "From the field"),
        ("int:1", "Interviewer", 1, False, "How did you get there?"),
        ("int:2", "Respondent", 2, True, "By road.\n\nThen by boat, the same day."),
        ("int:3", "Interviewer", 3, False, "Was it safe?"),
        ("int:4", "Respondent", 4, True, "Safe enough."),
    ]


def test_docx_timed_table_with_a_title_across_it_is_still_timed(tmp_path: Path) -> None:
    timed = _merged_docx([
        ("Interview of 12 May", "", ""),
        ("00:00:05", "Interviewer", "Why?"), ("00:00:09", "Respondent", "Because."),
        ("00:00:20", "Interviewer", "And?"), ("00:00:25", "Respondent", "Nothing."),
    ], merges=[(0, 0, 0, 2)])
    doc = _one(_corpus(tmp_path, {"timed.docx": timed}))
    assert doc.text == ("From the field\n\nInterview of 12 May\n\nInterviewer (00:00:05): Why?"
                        "\n\nRespondent (00:00:09): Because.\n\nInterviewer (00:00:20): And?"
                        "\n\nRespondent (00:00:25): Nothing.")


# --- 7. the same excerpt id in two sheets of a workbook --------------------------------------


def test_xlsx_same_id_in_two_sheets_names_the_sheet_and_row_of_both(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Smith 2019"
    for row in (["id", "text"], ["S1", "One."], ["S2", "Two."], ["S3", "Three."],
                ["E1", "Access was negotiated."]):
        first.append(row)
    second = workbook.create_sheet("Jones 2021")
    for row in (["Jones (2021), excerpts"], ["id", "text", None],
                ["E1", "The same id, another excerpt.", "p. 4"], ["J2", "Kept.", None]):
        second.append(row)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    workbook.save(corpus / "lit.xlsx")
    result = ingest_corpus(corpus)
    # the first in the workbook is kept, although its row number is higher
    assert sorted((d.doc_id, d.row, d.text) for d in result.documents) == [
        ("E1", 5, "Access was negotiated."), ("J2", 4, "Kept."), ("S1", 2, "One."),
        ("S2", 3, "Two."), ("S3", 4, "Three.")]
    assert [(str(s), s.note) for s in result.skipped] == [
        ("lit.xlsx:2: sheet 'Jones 2021': column C has no name in the header row; its values "
         "were read as the metadata field 'column C' — give the column a name (or delete it)",
         True),
        ("lit.xlsx:3: sheet 'Jones 2021': duplicate doc_id 'E1' (already used by sheet "
         "'Smith 2019' row 5) — give each excerpt its own id in the id column", False),
    ]


# --- 8. id columns named as people name them; a header row pasted twice ----------------------


@pytest.mark.parametrize("header", ["Excerpt ID", "excerpt-id", "ExcerptID", "Doc ID", " ID "])
def test_id_column_named_with_spaces_hyphens_or_capitals_is_found(tmp_path: Path,
                                                                  header: str) -> None:
    corpus = _corpus(tmp_path, {"lit.csv": f"{header},Text,Author\n001,Words of one.,Smith\n"})
    workbook = openpyxl.Workbook()
    workbook.active.append([header, "Text"])
    workbook.active.append(["X2", "Words of two."])
    workbook.save(corpus / "lit2.xlsx")
    result = ingest_corpus(corpus)
    assert result.skipped == [], [str(s) for s in result.skipped]
    assert [(d.doc_id, d.text, d.metadata) for d in result.documents] == [
        ("001", "Words of one.", {"Author": "Smith", "citation": "Smith"}),
        ("X2", "Words of two.", {})]


def test_excerpt_id_given_twice_in_two_spellings_is_unclear(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"lit.csv": "excerpt_id,Excerpt ID,text\nE1,E9,Words.\n"})
    result = ingest_corpus(corpus)
    assert result.documents == []
    assert "has the column 'excerpt_id' 2 times" in result.skipped[0].reason


def test_a_header_row_pasted_again_below_is_left_out_and_named(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"lit.csv": "id,text,author\nF1,First.,A\nF2,Second.,B\n"
                                           "ID,Text,Author\nF3,Third.,C\n"})
    result = ingest_corpus(corpus)
    assert [(d.doc_id, d.text) for d in result.documents] == [
        ("F1", "First."), ("F2", "Second."), ("F3", "Third.")]
    assert [str(s) for s in result.skipped] == [
        "lit.csv:4: repeats the header row ('ID', 'Text'), as where two tables were pasted "
        "one below the other; it was left out — delete the row"]


# --- 8. spreadsheet errors and merged cells ------------------------------------------------


def _cached_error(name: str, content: bytes) -> bytes:
    """Excel's form of a formula that failed: the formula with its cached error value."""
    if name != "xl/worksheets/sheet1.xml":
        return content
    return re.sub(rb'<c r="B3"[^>]*><f>(.*?)</f><v>[^<]*</v></c>',
                  rb'<c r="B3" t="e"><f>\1</f><v>#N/A</v></c>', content)


def _error_in_text(excerpt_id: str, error: str) -> str:
    return (f"excerpt '{excerpt_id}' was not read: its text cell holds a spreadsheet error "
            f"({error}), not text — fix the formula that gives it, or paste the text in as "
            "values (Paste Special › Values)")


def test_spreadsheet_errors_in_the_text_are_named_not_empty(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["excerpt_id", "text", "author"])
    sheet.append(["E1", "#REF!", "Lee"])  # openpyxl writes an error value
    sheet.append(["E2", '=VLOOKUP(A3,Sheet2!A:B,2,0)', "Lee"])  # cached #N/A: see below
    sheet.append(["E3", "Access was agreed.", "Lee"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    corpus = _corpus(tmp_path, {
        "lit.xlsx": _rezip(buffer.getvalue(), _cached_error),
        "export.csv": "id,text\nC1,#N/A\nC2,#DIV/0!\nC3,Trust took years.\nC4,\n"})
    result = ingest_corpus(corpus)
    assert [(d.doc_id, d.text) for d in result.documents] == [
        ("C3", "Trust took years."), ("E3", "Access was agreed.")]
    assert [str(s) for s in result.skipped] == [
        f"export.csv:2: {_error_in_text('C1', '#N/A')}",
        f"export.csv:3: {_error_in_text('C2', '#DIV/0!')}",
        "export.csv:5: excerpt 'C4' has an empty text — add the text",
        f"lit.xlsx:2: {_error_in_text('E1', '#REF!')}",
        f"lit.xlsx:3: {_error_in_text('E2', '#N/A')}"]


def test_xlsx_merged_metadata_fills_its_rows_and_merged_text_is_reported(
    tmp_path: Path
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Review"
    sheet["A1"] = "Excerpts from the 2021 review"  # the header is on row 2
    sheet.append(["excerpt_id", "text", "author", "year", "section"])
    sheet.append(["M1", "Access was agreed.", "Lee", 2020, 4])
    sheet.append(["M2", "The elders vouched for us.", None, None, 5])
    sheet.append(["M3", "Trust took years.", None, None, 9])
    sheet.append(["M4", "One text over two rows.", "Aung", 2021, 1])
    sheet.append(["M5", None, None, None, 2])
    sheet.append([None, None, None, None, 3])  # no id: nothing is lost
    sheet.merge_cells("C3:C5")
    sheet.merge_cells("D3:D5")
    sheet.merge_cells("B6:B8")
    sheet.merge_cells("C6:D6")  # across columns: the year stays empty
    result = ingest_corpus(_save_book(workbook, tmp_path))
    assert [(d.doc_id, d.text, d.metadata) for d in result.documents] == [
        ("M1", "Access was agreed.", {"author": "Lee", "year": "2020", "section": "4",
                                      "citation": "Lee (2020)"}),
        ("M2", "The elders vouched for us.", {"author": "Lee", "year": "2020", "section": "5",
                                              "citation": "Lee (2020)"}),
        ("M3", "Trust took years.", {"author": "Lee", "year": "2020", "section": "9",
                                     "citation": "Lee (2020)"}),
        ("M4", "One text over two rows.", {"author": "Aung", "year": "", "section": "1",
                                           "citation": "Aung"})]
    assert [str(s) for s in result.skipped] == [
        "lit.xlsx:7: excerpt 'M5' has no text of its own: its text cell is part of the "
        "merged cell B6:B8, whose text was read once, for excerpt 'M4' (row 6), so the row "
        "was left out — unmerge the cells (Home › Merge & Center › Unmerge Cells) and put "
        "each excerpt's text in its own row"]


def _save_book(workbook: openpyxl.Workbook, tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    workbook.save(corpus / "lit.xlsx")
    return corpus
