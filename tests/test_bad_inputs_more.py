"""More bad input, as a research team writes it: each problem is named with its file, its
line and the fix, and every other file is still read and segmented."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl

from qualcode.corpus import flat_segments, read_corpus

from .conftest import write_corpus

TRANSCRIPT = """Interviewer: How did you negotiate access?

Respondent: Through the elders of the district.

Interviewer: And when that failed?

Respondent: We waited, and we went back.
"""


def _doc_ids(batch) -> set[str]:
    return {d.doc_id for d in batch.documents}


def _reported(batch) -> list[str]:
    return [str(s) for s in batch.skipped]


def test_subtitle_cues_out_of_time_order_are_noted_with_their_line(tmp_path: Path) -> None:
    # cue 1 was pasted below cue 2: read in file order, the two questions became one turn
    srt = ("2\n00:00:10,000 --> 00:00:12,000\nInterviewer: And then?\n\n"
           "1\n00:00:01,000 --> 00:00:05,000\nInterviewer: How did you negotiate?\n\n"
           "3\n00:00:06,000 --> 00:00:09,000\nRespondent: We met the commander.\n\n"
           "4\n00:00:13,000 --> 00:00:15,000\nRespondent: We went back.\n")
    vtt = ("WEBVTT\n\n00:00:01.000 --> 00:00:00.500\n<v Interviewer>How?\n\n"
           "00:00:02.000 --> 00:00:04.000\n<v Respondent>Slowly.\n")
    corpus = write_corpus(tmp_path, {"transcripts/pasted.srt": srt,
                                     "transcripts/swapped.vtt": vtt,
                                     "transcripts/good.txt": TRANSCRIPT})
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"pasted", "swapped", "good"}  # all read
    notes = [s for s in batch.skipped if s.note]
    assert [(s.path, s.line) for s in notes] == [("transcripts/pasted.srt", 6),
                                                 ("transcripts/swapped.vtt", 3)]
    assert notes[0].reason.startswith(
        "cue 1 starts at 00:00:01,000, before the cue above it (00:00:10,000): the cues were "
        "read in the order of the file")
    assert "put the cues in time order" in notes[0].reason
    assert notes[1].reason.startswith(
        "cue 1 ends before it starts ('00:00:01.000 --> 00:00:00.500') — swap the two times")
    assert not [s for s in batch.skipped if not s.note]


def test_subtitles_in_time_order_get_no_note(tmp_path: Path) -> None:
    srt = ("1\n00:00:01,000 --> 00:00:05,000\nInterviewer: How?\n\n"
           "2\n00:00:05,000 --> 00:00:09,000\nRespondent: Slowly.\n\n"  # touching: fine
           "3\n00:00:08,500 --> 00:00:10,000\nInterviewer: Overlapping speech is fine.\n")
    batch = read_corpus(write_corpus(tmp_path, {"transcripts/a.srt": srt}))
    assert _doc_ids(batch) == {"a"}
    assert batch.skipped == []


def test_misspelt_source_type_and_impossible_dates_are_noted_where_they_are_written(
    tmp_path: Path,
) -> None:
    front = ("---\ndoc_id: FM-1\ndate: 2023-02-30\nsource_type: Intervew\n---\n"
             + TRANSCRIPT)
    corpus = write_corpus(tmp_path, {
        "manifest.csv": ("file,doc_id,source_type,interview date\n"
                         "transcripts/b.txt,B-1,interveiw,31/02/2023\n"
                         "transcripts/c.txt,C-1,focus_group,12/31/2023\n"
                         "transcripts/d.txt,D-1,interview,yesterday\n"),
        "transcripts/a.txt": front,
        "transcripts/b.txt": TRANSCRIPT + "\nRespondent: b\n",
        "transcripts/c.txt": TRANSCRIPT + "\nRespondent: c\n",
        "transcripts/d.txt": TRANSCRIPT + "\nRespondent: d\n",
    })
    batch = read_corpus(corpus)
    # used as written: every file is read and coded
    assert _doc_ids(batch) == {"FM-1", "B-1", "C-1", "D-1"}
    assert {s.doc_id: s.source_type for s in flat_segments(batch)}["B-1"] == "interveiw"
    assert all(s.note for s in batch.skipped)
    assert _reported(batch) == [
        "manifest.csv:2: source_type 'interveiw' is neither 'interview' nor 'literature'; it "
        "was used as written, a group of its own in the tables by source_type — did you mean "
        "'interview'? Correct it (another type, such as 'focus_group', is fine when meant)",
        "manifest.csv:2: interview date '31/02/2023' is not a real date; it was kept as "
        "written — correct it (e.g. 2023-03-09, as YYYY-MM-DD), or leave it empty if the "
        "date is unknown",
        "manifest.csv:4: interview date 'yesterday' is not a real date; it was kept as "
        "written — correct it (e.g. 2023-03-09, as YYYY-MM-DD), or leave it empty if the "
        "date is unknown",
        "transcripts/a.txt:3: front matter date '2023-02-30' is not a real date; it was kept "
        "as written — correct it (e.g. 2023-03-09, as YYYY-MM-DD), or leave it empty if the "
        "date is unknown",
        "transcripts/a.txt:4: front matter source_type 'Intervew' is neither 'interview' nor "
        "'literature'; it was used as written, a group of its own in the tables by "
        "source_type — did you mean 'interview'? Correct it (another type, such as "
        "'focus_group', is fine when meant)",
    ]


def test_an_empty_doc_id_in_front_matter_is_noted(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, {
        "transcripts/yem_07.txt": "---\ndoc_id:\ncase: yemen\n---\n" + TRANSCRIPT,
        "transcripts/good.txt": TRANSCRIPT + "\nRespondent: more\n",
    })
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"yem_07", "good"}
    assert _reported(batch) == [
        "transcripts/yem_07.txt:2: front matter 'doc_id' is empty, so the file name is used "
        "as doc_id — write the id after 'doc_id:', or delete the line"]


def test_a_manifest_row_naming_a_folder_says_so(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, {
        "manifest.csv": "file,case\ntranscripts/,yemen\ntranscripts/a.txt,syria\n",
        "transcripts/a.txt": TRANSCRIPT,
    })
    batch = read_corpus(corpus)
    assert [d.metadata.get("case") for d in batch.documents] == ["syria"]
    assert _reported(batch) == [
        "manifest.csv:2: file 'transcripts/' is a folder, not a file; this row was not "
        "applied — give each of its files a row of its own (its path, such as "
        "'transcripts/interview_01.txt'), or delete the row"]


def test_an_empty_manifest_is_reported_as_empty(tmp_path: Path) -> None:
    for content in ("", "\r\n\r\n"):
        corpus = write_corpus(tmp_path, {"manifest.csv": content,
                                         "transcripts/a.txt": TRANSCRIPT})
        batch = read_corpus(corpus)
        assert _doc_ids(batch) == {"a"}
        assert _reported(batch) == [
            "manifest.csv: is empty; the files were read without metadata — write a header "
            "row ('file,doc_id,case,date,...') and a row per file, or delete the file"]


def test_a_doc_id_given_twice_on_purpose_says_where_to_change_it(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, {
        "manifest.csv": "file,doc_id\ntranscripts/a.txt,SAME\ntranscripts/b.txt,SAME\n",
        "transcripts/a.txt": TRANSCRIPT,
        "transcripts/b.txt": TRANSCRIPT + "\nRespondent: b\n",
        "interviews/c.txt": "---\ndoc_id: FM\n---\n" + TRANSCRIPT + "\nRespondent: c\n",
        "interviews/d.txt": "---\ndoc_id: FM\n---\n" + TRANSCRIPT + "\nRespondent: d\n",
    })
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"SAME", "FM"}
    assert _reported(batch) == [
        "interviews/d.txt: duplicate doc_id 'FM' (already used by interviews/c.txt) — give "
        "this document its own doc_id in its front matter (the 'doc_id:' line)",
        "transcripts/b.txt: duplicate doc_id 'SAME' (already used by transcripts/a.txt) — "
        "give this document its own doc_id in manifest.csv (its row there gives it this one)",
    ]


def test_a_cp1252_line_pasted_into_utf8_is_reported_at_that_line(tmp_path: Path) -> None:
    # the UTF-8 "”" (E2 80 9D) cannot be read as Windows-1252 either: the error used to
    # name its line (3), "neither UTF-8 nor Windows-1252", not the pasted line (8)
    data = (TRANSCRIPT.replace("district.", "district.”").encode()
            + "Respondent: “pasted from an old file” – café\n".encode("cp1252"))
    corpus = write_corpus(tmp_path, {"transcripts/mixed.txt": data,
                                     "transcripts/good.txt": TRANSCRIPT})
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"good"}
    assert _reported(batch) == [
        "transcripts/mixed.txt:8: mixes UTF-8 with another encoding (first invalid UTF-8 byte "
        "at line 8) — re-save the whole file as UTF-8"]


def test_a_manifest_saved_under_another_name_is_not_coded_and_says_how_to_rename_it(
    tmp_path: Path,
) -> None:
    rows = "file,doc_id,case\ntranscripts/a.txt,A-1,yemen\n"
    workbook = openpyxl.Workbook()
    workbook.active.append(["file", "doc_id", "case"])
    workbook.active.append(["transcripts/a.txt", "A-1", "yemen"])
    data = io.BytesIO()
    workbook.save(data)
    corpus = write_corpus(tmp_path, {
        "manifest.csv.txt": rows,  # Notepad's "manifest.csv", the .txt hidden by Windows
        "manifest.xlsx": data.getvalue(),
        "metadata.csv": rows,  # another name: read as an excerpt table, without 'text'
        "manifesto.txt": "We, the undersigned, call for access.\n",  # a document
        "transcripts/a.txt": TRANSCRIPT,
    })
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"a", "manifesto"}  # no manifest was coded as prose
    assert _reported(batch) == [
        "manifest.csv.txt: is not read, neither as the manifest (only 'manifest.csv' at the "
        "top of the corpus folder is) nor as a document, so its metadata was not applied — "
        "rename it to 'manifest.csv' (Windows may hide the '.txt' at the end of its name: "
        "show file name extensions to see it)",
        "manifest.xlsx: is not read, neither as the manifest (only 'manifest.csv' at the top "
        "of the corpus folder is) nor as a document, so its metadata was not applied — save "
        "it as CSV (File › Save As › CSV UTF-8) under the name 'manifest.csv' in the corpus "
        "folder",
        "metadata.csv:1: has no 'text' column but a file column (columns: file, doc_id, "
        "case): a manifest, not excerpts? Its metadata was not applied (the manifest is read "
        "only from 'manifest.csv' at the top of the corpus folder) — save it there under "
        "that name, as CSV, or move its rows into the one there",
    ]
    # beside the real manifest: move its rows there
    (corpus / "manifest.csv").write_text(rows, encoding="utf-8")
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"A-1", "manifesto"}
    assert _reported(batch)[0].endswith(
        "— move its rows into 'manifest.csv' and delete it (or move it out of the corpus "
        "folder)")


def test_a_table_row_without_speaker_after_an_interviewer_row_is_noted(tmp_path: Path) -> None:
    # the answer's speaker cell was left empty: it goes on with the question's turn
    csv_text = ("sep=,\nSpeaker,Time,Text\n"
                "Interviewer,00:00:01,How did you get access?\n"
                ",00:00:05,We called the commander every morning.\n"
                "Interviewer,00:00:20,And then?\n"
                "Respondent,00:00:25,The other agencies followed us.\n"
                ",00:00:40,\"It took a month, though.\"\n")  # a long answer over two rows: fine
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [("Interview YEM-09",), (), ("Speaker", "Text"), ("Q", "Who decided?"),
                ("", "The council."), ("", "And the elders."), ("Respondent", "Later, us.")]:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    corpus = write_corpus(tmp_path, {"transcripts/table.csv": csv_text,
                                     "transcripts/fine.txt": TRANSCRIPT})
    (corpus / "transcripts" / "sheet.xlsx").write_bytes(data.getvalue())
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"table", "sheet", "fine"}
    assert _reported(batch) == [
        "transcripts/sheet.xlsx:5: rows 5, 6 of this transcript table have words but no "
        "speaker, so they were read as part of the interviewer's turn above and not coded — "
        "if an answer, fill in the speaker (e.g. 'Respondent')",
        "transcripts/table.csv:4: row 4 of this transcript table has words but no speaker, "
        "so it was read as part of the interviewer's turn above and not coded — if an "
        "answer, fill in the speaker (e.g. 'Respondent')"]
    coded = {s.text for s in flat_segments(batch) if s.codable and s.doc_id == "table"}
    assert coded == {"The other agencies followed us.\n\nIt took a month, though."}


def test_a_word_table_row_without_speaker_after_an_interviewer_row_is_noted(
        tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Interview YEM-10")
    rows = [("Speaker", "Text"), ("Interviewer", "Who decided?"), ("", "The council did."),
            ("Respondent", "Then the elders."), ("", "And we waited.")]  # the last: fine
    table = document.add_table(rows=len(rows), cols=2)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            table.cell(i, j).text = value
    data = io.BytesIO()
    document.save(data)
    corpus = write_corpus(tmp_path, {"transcripts/fine.txt": TRANSCRIPT})
    (corpus / "transcripts" / "word.docx").write_bytes(data.getvalue())
    batch = read_corpus(corpus)
    assert _doc_ids(batch) == {"word", "fine"}
    assert _reported(batch) == [
        "transcripts/word.docx: has rows with words but no speaker below an interviewer's "
        "row (table 1, row 3): they were read as part of the interviewer's turn and not "
        "coded — the rest of the file was read; if they are answers, fill in the speaker "
        "(e.g. 'Respondent')"]
