"""A whole corpus: bad input next to good files, the manifest, doc_id rules, batches, dev set."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from pathlib import Path

import docx
import openpyxl
import pytest

from flows.incremental import plan_batches  # as the flow plans them
from qualcode.corpus import combine_batches, flat_segments, process_batch, read_corpus
from qualcode.documents import Skipped
from qualcode.ingest import (
    discover_files,
    ingest_corpus,
    ingest_files,
    load_manifest,
    unmatched_doc_ids,
)
from qualcode.segment import segment_documents

SECRET = "OUTSIDE-SECRET-7f3a: this sentence lives outside the corpus folder"

TRANSCRIPT = """Interviewer: How did you negotiate access?

Respondent: Through the elders of the district.

Interviewer: And when that failed?

Respondent: We waited, and we went back.
"""


def _front(doc_id: str, **meta: str) -> str:
    lines = [f"doc_id: {doc_id}", *(f"{k}: {v}" for k, v in meta.items())]
    return "---\n" + "\n".join(lines) + "\n---\n" + TRANSCRIPT


def _docx_bytes() -> bytes:
    document = docx.Document()
    for speaker, words in [("Interviewer", "Where were you?"), ("Hamid", "In Hodeidah."),
                           ("Interviewer", "And then?"), ("Hamid", "Aden.")]:
        document.add_paragraph(f"{speaker}: {words}")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def bad_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "abs.txt").write_text(SECRET + "\n", encoding="utf-8")
    manifest = [
        ["file", "doc_id", "case", "source_type", "interviewee_role"],
        ["transcripts/good_front.txt", "", "manifest-case", "", ""],
        ["./transcripts/manifest_id.txt", "MAN-1", "", "Focus_Group", ""],
        ["literature/excerpts.csv", "TABLE-ID", "from-manifest", "", ""],
        ["", "LIT-2", "", "", "Scholar"],
        ["", "GF-1", "", "", "Field officer"],  # a doc_id row adds to the file row
        ["transcripts/missing.txt", "", "x", "", ""],
        ["../outside.txt", "", "x", "", ""],
        [str(tmp_path / "elsewhere" / "abs.txt"), "", "x", "", ""],
        ["transcripts/../../outside.txt", "", "x", "", ""],
        ["", "", "", "", ""],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(manifest)
    _write(corpus, {
        "manifest.csv": buffer.getvalue(),
        "README.md": "# Our corpus\n\nInterviewer: not a document.\n",
        "reviews/coder1.csv": "segment_id,codes,coder\nGF-1:2,x,ana\n",
        "reviews/2024/notes.txt": "not a document",
        ".hidden.txt": TRANSCRIPT,
        ".git/config": "[core]",
        "transcripts/.DS_Store": b"\x00\x01binary",
        "transcripts/~$lock.docx": b"\x00lock",
        "transcripts/Thumbs.db": b"\x00",
        "transcripts/good_front.txt~": "editor backup",
        # bad files
        "transcripts/empty.txt": "",
        "transcripts/blank.md": "  \n\n \t\n",
        "transcripts/binary.txt": bytes(range(256)) * 4,
        "transcripts/corrupt.docx": b"PK\x03\x04" + os.urandom(400),
        "transcripts/undecodable.txt": b"Respondent: the \x81\x8d bytes\n",
        "transcripts/notes.rtf": r"{\rtf1 Interviewer: hello}",
        "transcripts/NOEXT": "no extension",
        "transcripts/a_dup.txt": _front("DUP", case="first"),
        "transcripts/b_dup.txt": _front("DUP", case="second"),
        # good files
        "transcripts/good_front.txt": _front("GF-1", case="front-case", date="2023-04-18"),
        "transcripts/manifest_id.txt": _front("FRONT-ID"),
        "transcripts/stem_only.txt": TRANSCRIPT,
        "transcripts/hodeidah.docx": _docx_bytes(),
        "transcripts/sub/README.md": "A readme below the top is an ordinary prose document.\n",
        "literature/excerpts.csv": "id,text,author,year\nLIT-1,Access is relational.,Smith,2016"
                                   "\nLIT-2,Trust takes time.,Doe,2019\n",
        "literature/essay.md": "# Humanitarian access\n\nA paragraph.\n\nAnother one.\n",
    })
    return corpus


GOOD = {
    "transcripts/good_front.txt": "GF-1",
    "transcripts/manifest_id.txt": "MAN-1",
    "transcripts/stem_only.txt": "stem_only",
    "transcripts/hodeidah.docx": "hodeidah",
    "transcripts/a_dup.txt": "DUP",
    "transcripts/sub/README.md": "README",
    "literature/excerpts.csv": "LIT-1",
    "literature/essay.md": "essay",
}


def _by_path(skipped: list[Skipped]) -> dict[str, list[Skipped]]:
    out: dict[str, list[Skipped]] = {}
    for item in skipped:
        out.setdefault(item.path, []).append(item)
    return out


def test_good_files_next_to_bad_ones_all_produce_documents(bad_corpus: Path) -> None:
    result = ingest_corpus(bad_corpus)
    ids: dict[str, str] = {}
    for doc in result.documents:
        ids.setdefault(doc.path, doc.doc_id)
    assert {p: ids[p] for p in GOOD} == GOOD
    assert sorted(d.doc_id for d in result.documents) == sorted(
        ["GF-1", "MAN-1", "stem_only", "hodeidah", "DUP", "README", "LIT-1", "LIT-2", "essay"]
    )
    assert len(segment_documents(result.documents)) > 0


def test_every_bad_input_is_reported_with_its_reason_and_fix(bad_corpus: Path) -> None:
    result = ingest_corpus(bad_corpus)
    skipped = _by_path(result.skipped)
    expected = {
        "transcripts/empty.txt": ["is empty", "add the text or remove the file"],
        "transcripts/blank.md": ["is empty", "add the text or remove the file"],
        "transcripts/binary.txt": ["binary file", "export it as UTF-8 text"],
        "transcripts/corrupt.docx": ["is a damaged Word document (cut short or corrupted)",
                                     "save it again as .docx"],
        "transcripts/undecodable.txt": ["neither UTF-8 nor Windows-1252",
                                        "re-save it as UTF-8"],
        "transcripts/notes.rtf": ["unsupported file type '.rtf' (a Rich Text document)",
                                  "open it in Word or LibreOffice Writer and save it as "
                                  ".docx"],
        "transcripts/NOEXT": ["unsupported file type with no extension", "move it out"],
        "transcripts/b_dup.txt": ["duplicate doc_id 'DUP'", "transcripts/a_dup.txt",
                                  "give this document its own doc_id"],
    }
    for path, words in expected.items():
        assert len(skipped[path]) == 1, path
        for word in words:
            assert word in skipped[path][0].reason, (path, word)
    assert skipped["transcripts/undecodable.txt"][0].line == 1

    manifest_reasons = [(s.line, s.reason) for s in skipped.pop("manifest.csv")]
    # (a doc_id given to a table is checked once the table is read: after the others)
    assert manifest_reasons == [
        (7, "file 'transcripts/missing.txt' does not exist — fix the path (relative to the "
            "corpus folder) or delete the row"),
        (8, "file '../outside.txt' is outside the corpus folder and was not read — give a "
            "path relative to the corpus folder"),
        (9, f"file '{bad_corpus.parent / 'elsewhere' / 'abs.txt'}' is outside the corpus "
            "folder and was not read — give a path relative to the corpus folder"),
        (10, "file 'transcripts/../../outside.txt' is outside the corpus folder and was not "
             "read — give a path relative to the corpus folder"),
        (4, "gives a doc_id ('TABLE-ID') for literature/excerpts.csv, an excerpt table, whose "
            "rows take their ids from its id column — the doc_id was not used; remove it (the "
            "row's other metadata applies to every excerpt)"),
    ]
    # Nothing else is reported: hidden files, lock files, the manifest, the top README,
    # reviews/ and editor backups are passed over silently.
    assert set(skipped) == set(expected)
    for item in result.skipped:
        assert " — " in item.reason, str(item)  # every reason says how to fix it


def test_paths_outside_the_corpus_are_never_read(bad_corpus: Path) -> None:
    result = ingest_corpus(bad_corpus)
    for doc in result.documents:
        assert "OUTSIDE-SECRET" not in doc.text
        assert "OUTSIDE-SECRET" not in repr(doc.metadata)
    for seg in segment_documents(result.documents):
        assert "OUTSIDE-SECRET" not in seg.text
    assert all(not f.path.startswith(("..", "/")) for f in result.files)
    manifest = load_manifest(bad_corpus)
    assert all(".." not in p and not p.startswith("/") for p in manifest.by_file)


@pytest.mark.parametrize(
    "path",
    ["..\\outside.txt", "C:\\data\\outside.txt", "C:/data/outside.txt", "/etc/passwd",
     "transcripts/../../outside.txt"],
)
def test_manifest_paths_outside_are_reported(tmp_path: Path, path: str) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": f'file,case\n"{path}",x\n', "a.txt": "Prose.\n"})
    (tmp_path / "outside.txt").write_text(SECRET, encoding="utf-8")
    manifest = load_manifest(corpus)
    assert manifest.by_file == {}
    assert len(manifest.problems) == 1
    assert "is outside the corpus folder and was not read" in manifest.problems[0].reason
    assert manifest.problems[0].line == 2


def test_ignored_files_are_not_discovered(bad_corpus: Path) -> None:
    found, skipped = discover_files(bad_corpus)
    assert found == sorted(found)
    for path in found:
        name = path.rsplit("/", 1)[-1]
        assert not name.startswith((".", "~$"))
        assert not path.startswith("reviews/")
        assert path not in ("manifest.csv", "README.md")
    assert "transcripts/sub/README.md" in found
    assert [s.path for s in skipped] == ["transcripts/NOEXT", "transcripts/notes.rtf"]


def test_doc_id_precedence_and_metadata(bad_corpus: Path) -> None:
    docs = {d.path: d for d in ingest_corpus(bad_corpus).documents}
    # manifest doc_id > front matter doc_id
    manifest_id = docs["transcripts/manifest_id.txt"]
    assert manifest_id.doc_id == "MAN-1"
    assert manifest_id.source_type == "focus_group"  # manifest source_type, lower-cased
    # front matter doc_id > stem; manifest metadata overrides front matter, fills gaps,
    # and a doc_id row adds to the file row
    good = docs["transcripts/good_front.txt"]
    assert good.doc_id == "GF-1"
    assert good.metadata["case"] == "manifest-case"
    assert good.metadata["date"] == "2023-04-18"
    assert good.metadata["interviewee_role"] == "Field officer"
    assert "doc_id" not in good.metadata
    assert good.source_type == "interview"
    # stem when nothing else names the document
    assert docs["transcripts/stem_only.txt"].doc_id == "stem_only"
    assert docs["transcripts/hodeidah.docx"].doc_id == "hodeidah"
    # an excerpt table: the id column wins over a file row's doc_id (which would give
    # every row the same id); the file row's metadata applies to every row, a doc_id row
    # to its excerpt
    rows = [d for d in ingest_corpus(bad_corpus).documents if d.path == "literature/excerpts.csv"]
    assert [(d.doc_id, d.row) for d in rows] == [("LIT-1", 2), ("LIT-2", 3)]
    assert rows[0].metadata["case"] == "from-manifest"
    assert rows[1].metadata["interviewee_role"] == "Scholar"
    assert "interviewee_role" not in rows[0].metadata


def test_source_type_defaults(bad_corpus: Path) -> None:
    types = {d.doc_id: d.source_type for d in ingest_corpus(bad_corpus).documents}
    assert types["GF-1"] == "interview"
    assert types["stem_only"] == "interview"
    assert types["hodeidah"] == "interview"
    assert types["LIT-1"] == "literature"
    assert types["essay"] == "literature"
    assert types["README"] == "literature"


def test_manifest_doc_id_overrides_front_matter_and_stem(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "File,Doc_ID,case\nplain.txt,M-PLAIN,c1\nfront.md,M-FRONT,c2\n",
        "plain.txt": "Some prose.\n",
        "front.md": "---\ndoc_id: F-1\ncase: ignored\n---\nMore prose.\n",
        "other.md": "---\ndoc_id: F-2\n---\nText.\n",
    })
    result = ingest_corpus(corpus)
    assert result.skipped == []
    assert [(d.path, d.doc_id, d.metadata) for d in result.documents] == [
        ("front.md", "M-FRONT", {"case": "c2"}),
        ("other.md", "F-2", {}),
        ("plain.txt", "M-PLAIN", {"case": "c1"}),
    ]


def test_duplicate_doc_id_first_in_path_order_wins(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "z/first_by_name.txt": _front("SAME") + "Another interview.\n",
        "a/second.txt": _front("SAME"),
        "lit.csv": "id,text\nSAME,An excerpt with the same id.\n",
    })
    result = ingest_corpus(corpus)
    assert [d.path for d in result.documents] == ["a/second.txt"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == {"lit.csv", "z/first_by_name.txt"}
    assert "already used by a/second.txt" in reasons["lit.csv"]
    assert "already used by a/second.txt" in reasons["z/first_by_name.txt"]
    assert [s.line for s in result.skipped] == [2, None]


def test_duplicate_doc_id_an_id_given_on_purpose_wins_over_path_order(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    interview = "Interviewer: Where?\n\nRespondent: In Saada.\n"
    _write(corpus, {
        # an established interview, its id from the manifest, and a newer file that sorts
        # first and has the same id in its front matter
        "manifest.csv": "file,doc_id\ntranscripts/yem_06.txt,YEM-06\n",
        "transcripts/yem_06.txt": interview,
        "audit/draft.txt": _front("YEM-06") + "Interviewer: Draft?\n\nRespondent: Yes.\n",
        # an id from front matter against a file named like it
        "audit/oth_01.txt": "Interviewer: Other?\n\nRespondent: A copy of a name.\n",
        "transcripts/o1.txt": _front("oth_01") + interview,
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id, d.id_source) for d in result.documents] == [
        ("transcripts/o1.txt", "oth_01", "front matter"),
        ("transcripts/yem_06.txt", "YEM-06", "manifest"),
    ]
    assert [(s.path, s.reason.split(" — ")[0]) for s in result.skipped] == [
        ("audit/draft.txt", "duplicate doc_id 'YEM-06' (already used by "
         "transcripts/yem_06.txt, whose id comes from the manifest)"),
        ("audit/oth_01.txt", "duplicate doc_id 'oth_01' (already used by "
         "transcripts/o1.txt, whose id comes from the front matter)"),
    ]


def test_one_interview_in_two_formats_is_not_told_to_take_another_id(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "transcripts/int01.docx": _docx_bytes(),
        "transcripts/int01.txt": TRANSCRIPT,
        "other/int01.md": TRANSCRIPT + "A third, in another folder.\n",
    })
    result = ingest_corpus(corpus)
    assert [d.path for d in result.documents] == ["other/int01.md"]  # the first, as before
    assert [str(s) for s in result.skipped] == [
        "transcripts/int01.docx: duplicate doc_id 'int01' (already used by other/int01.md) — "
        "give this document its own doc_id (manifest, front matter or id column)",
        "transcripts/int01.txt: duplicate doc_id 'int01' (already used by other/int01.md) — "
        "give this document its own doc_id (manifest, front matter or id column)",
    ]
    (corpus / "other" / "int01.md").unlink()
    result = ingest_corpus(corpus)
    assert [d.path for d in result.documents] == ["transcripts/int01.docx"]
    assert [str(s) for s in result.skipped] == [
        "transcripts/int01.txt: looks like the same interview as transcripts/int01.docx "
        "(kept), saved as .docx and .txt — keep one of the two files (only if it is another "
        "interview, give it its own doc_id)"]


def test_a_second_table_numbering_its_rows_from_1_is_reported_once(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "literature/a.csv": "id,text\n1,First.\n2,Second.\n3,Third.\n",
        "literature/lit2020.csv": "id,text\n1,Uno.\n2,Dos.\n3,Tres.\nX9,Own id.\n",
        "literature/z.csv": "id,text\nX9,Same as one row.\nZ2,Fine.\nZ2,Same table.\n",
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id) for d in result.documents] == [
        ("literature/a.csv", "1"), ("literature/a.csv", "2"), ("literature/a.csv", "3"),
        ("literature/lit2020.csv", "X9"), ("literature/z.csv", "Z2")]
    assert [str(s) for s in result.skipped] == [
        # one within a table is reported with the table's other problems
        "literature/z.csv:4: duplicate doc_id 'Z2' (already used by row 3) — give each "
        "excerpt its own id in the id column",
        "literature/lit2020.csv:2: rows 2–4 (ids 1, 2, 3) have doc_ids already used by "
        "literature/a.csv — give this table's excerpts their own ids (e.g. prefix them: "
        "lit2020-1), so that they are read",
        # a single clash keeps its own report
        "literature/z.csv:2: duplicate doc_id 'X9' (already used by literature/lit2020.csv "
        "row 5) — rename one of the two ids in the id column (this row's, or the one in "
        "literature/lit2020.csv row 5), so that both excerpts are read",
    ]


def test_an_id_shared_by_an_excerpt_and_a_transcript_names_both_and_what_to_rename(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        # an excerpt's id (given on purpose) against a transcript named by its file
        "literature/a.csv": "id,text\nYEM-01,An excerpt.\nA-2,Another.\n",
        "transcripts/YEM-01.txt": TRANSCRIPT,
        # a transcript's front-matter id against a later table's row (path order)
        "literature/b.csv": "id,text\nB-1,Fine.\nSYR-02,Same id as the interview.\n",
        "interviews/syr.txt": _front("SYR-02"),
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id) for d in result.documents] == [
        ("interviews/syr.txt", "SYR-02"), ("literature/a.csv", "YEM-01"),
        ("literature/a.csv", "A-2"), ("literature/b.csv", "B-1")]
    assert [str(s) for s in result.skipped] == [
        "literature/b.csv:3: duplicate doc_id 'SYR-02' (already used by interviews/syr.txt) "
        "— rename this row's id in the table's id column (or give interviews/syr.txt another "
        "doc_id in the manifest), so that both are read",
        "transcripts/YEM-01.txt: duplicate doc_id 'YEM-01' (already used by literature/a.csv "
        "row 2, whose id comes from the id column) — give this document its own doc_id "
        "(manifest, front matter or id column), or rename the id in literature/a.csv row 2",
    ]


def _workbook(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# Two sheets whose rows would interleave by row number: Yemen's header sits below a title.
SHEETS = {
    "Yemen": [["Excerpts from Yemen"], ["id", "text"], ["Y1", "Access in Saada."],
              ["Y2", "A checkpoint."], ["Y3", "The convoy passed."]],
    "Mali": [["id", "text"], ["M1", "Access in Gao."], ["M2", "A ceasefire."]],
}


def test_a_workbooks_excerpts_come_sheet_by_sheet_then_row_by_row(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"literature/excerpts.xlsx": _workbook(SHEETS),
                    "literature/z.csv": "id,text\nZ1,After the workbook.\n"})
    result = ingest_corpus(corpus)
    assert result.skipped == [], [str(s) for s in result.skipped]
    assert [(d.doc_id, d.row) for d in result.documents] == [
        ("Y1", 3), ("Y2", 4), ("Y3", 5), ("M1", 2), ("M2", 3), ("Z1", 2)]
    assert [s.segment_id for s in segment_documents(result.documents)] == [
        "Y1:1", "Y2:1", "Y3:1", "M1:1", "M2:1", "Z1:1"]


def test_read_corpus_gives_a_workbooks_excerpts_sheet_by_sheet(tmp_path: Path) -> None:
    from qualcode.corpus import read_corpus

    corpus = tmp_path / "corpus"
    _write(corpus, {"literature/excerpts.xlsx": _workbook(SHEETS)})
    batch = read_corpus(corpus)
    assert [d.doc_id for d in batch.documents] == ["Y1", "Y2", "Y3", "M1", "M2"]
    assert [s.segment_id for s in flat_segments(batch)] == [
        "Y1:1", "Y2:1", "Y3:1", "M1:1", "M2:1"]


def test_line_breaks_in_a_doc_id_become_a_space(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"lit.csv": 'id,text\n"KHT\n03",An excerpt.\n"A\tB ",Another.\n'})
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["KHT 03", "A B"]
    segments = segment_documents(result.documents)
    assert [s.segment_id for s in segments] == ["KHT 03:1", "A B:1"]


def test_manifest_problems(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,doc_id,case\na.txt,,x\na.txt,,y\n,A,z\n,A,w\n,,orphan\n",
        "a.txt": "Prose.\n",
    })
    manifest = load_manifest(corpus)
    assert [(p.line, p.reason.split(" — ")[0]) for p in manifest.problems] == [
        (3, "file 'a.txt' is listed twice; this row was ignored"),
        (5, "doc_id 'A' is listed twice; this row was ignored"),
        (6, "row names neither a file nor a doc_id"),
    ]
    _write(corpus, {"manifest.csv": "path,case\na.txt,x\n"})
    problems = load_manifest(corpus).problems
    assert len(problems) == 1
    assert "neither a 'file' nor a 'doc_id' column (columns: path, case)" in problems[0].reason
    # the documents are still read without the manifest's metadata
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["a"]
    assert [s.path for s in result.skipped] == ["manifest.csv"]


def test_manifest_duplicate_blank_and_extra_columns_are_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,case,date,,case\n"
                        "a.txt,yemen,2023-03-09,junk,DUPCASE\n"
                        "b.txt,myanmar,,,,extra1,extra2\n"
                        "c.txt,other,,,,,\n",
        "a.txt": "Prose.\n", "b.txt": "More prose.\n", "c.txt": "Other prose.\n",
    })
    result = ingest_corpus(corpus)
    assert [str(s) for s in result.skipped] == [
        "manifest.csv:1: column D has values but no header; they were ignored — give the "
        "column a name in the header row, or delete it",
        "manifest.csv:1: column 'case' appears twice (columns B and E); column E was "
        "ignored — delete or rename one of them",
        "manifest.csv:3: row has values past the last column with a header (columns F, G); "
        "they were ignored — add a header for them in the header row, or delete them",
    ]
    # the first 'case' column is used, and every file is still read
    assert [(d.doc_id, d.metadata) for d in result.documents] == [
        ("a", {"case": "yemen", "date": "2023-03-09"}),
        ("b", {"case": "myanmar"}),
        ("c", {"case": "other"}),
    ]


def test_manifest_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": "file,case\n\nmissing.txt,x\n,,extra\n"})
    assert [str(p) for p in load_manifest(corpus).problems] == [
        "manifest.csv:3: file 'missing.txt' does not exist — fix the path (relative to the "
        "corpus folder) or delete the row",
        "manifest.csv:4: row has values past the last column with a header (column C); they "
        "were ignored — add a header for them in the header row, or delete them",
    ]


def test_manifest_in_windows_1252_with_bom_and_crlf(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,role\r\n.\\sub\\a.txt,Délégué — ICRC\r\n".encode("cp1252"),
        "sub/a.txt": "Prose.\n",
    })
    docs = ingest_corpus(corpus).documents
    assert docs[0].metadata == {"role": "Délégué — ICRC"}


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_manifest_with_semicolons_or_tabs_is_understood(tmp_path: Path, delimiter: str) -> None:
    corpus = tmp_path / "corpus"
    rows = [["file", "doc_id", "case", "role"], ["a.txt", "A-1", "yemen", "Director, NGO"],
            ["", "b", "myanmar", ""]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    _write(corpus, {"manifest.csv": "\ufeff" + buffer.getvalue(), "a.txt": "Prose.\n",
                    "b.txt": "More prose.\n"})
    result = ingest_corpus(corpus)
    assert result.skipped == []
    assert [(d.doc_id, d.metadata) for d in result.documents] == [
        ("A-1", {"case": "yemen", "role": "Director, NGO"}),
        ("b", {"case": "myanmar"}),
    ]


def test_semicolon_manifest_with_an_unquoted_semicolon_reports_the_row(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": "file;case;role\na.txt;yemen;Director, NGO\n"
                                    "b.txt;myanmar;Manager; field\n",
                    "a.txt": "Prose.\n", "b.txt": "More prose.\n"})
    result = ingest_corpus(corpus)
    assert [str(s) for s in result.skipped] == [
        "manifest.csv:3: row has values past the last column with a header (column D); they "
        "were ignored — add a header for them in the header row, or delete them",
    ]
    assert [d.metadata for d in result.documents] == [
        {"case": "yemen", "role": "Director, NGO"}, {"case": "myanmar", "role": "Manager"}]


def test_manifest_with_excels_sep_line_or_a_title_row(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": "sep=;\r\nfile;doc_id;case\r\na.txt;YEM-09;yemen, north\r\n"
                                    "missing.txt;M;x\r\n",
                    "a.txt": "Prose.\n"})
    result = ingest_corpus(corpus)
    assert [(d.doc_id, d.metadata) for d in result.documents] == [
        ("YEM-09", {"case": "yemen, north"})]
    # row numbers are the file's lines; the sep= line is no title
    assert [(s.line, s.note) for s in result.skipped] == [(4, False)]

    _write(corpus, {"manifest.csv": "Study metadata (v3),,\n\"Sheet 1, exported\",,\n"
                                    "file,doc_id,case,,\na.txt,T-1,yemen,,extra\n"})
    result = ingest_corpus(corpus)
    assert [(d.doc_id, d.metadata) for d in result.documents] == [("T-1", {"case": "yemen"})]
    assert [(str(s), s.note) for s in result.skipped] == [
        ("manifest.csv:1: lines 1–2 were read as a title above the header (line 3, the first "
         "row with a 'file' or 'doc_id' cell) and passed over — nothing to do, unless they "
         "hold a file's metadata: then move them below the header", True),
        ("manifest.csv:3: column E has values but no header; they were ignored — give the "
         "column a name in the header row, or delete it", False)]

    _write(corpus, {"manifest.csv": "sep=;\nOur interviews\nfile;doc_id\na.txt;T-2\n"})
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["T-2"]
    assert [(s.line, s.reason.split(" (")[0]) for s in result.skipped] == [
        (2, "line 2 was read as a title above the header")]


def test_manifest_paths_absolute_inside_or_near_misses(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,doc_id\n"
                        f"{corpus / 'transcripts' / 'a.txt'},A-1\n"  # absolute, inside
                        "transcripts/../transcripts/b.txt,B-1\n"
                        "corpus/transcripts/c.txt,C-1\n"  # the corpus folder's name first
                        "Transcripts/D.TXT,D-1\n"  # another case
                        "CORPUS/transcripts/d.txt,D-2\n"
                        "transcripts/e.txt,E-1\n",
        "transcripts/a.txt": "Prose.\n", "transcripts/b.txt": "Prose b.\n",
        "transcripts/c.txt": "Prose c.\n", "transcripts/d.txt": "Prose d.\n",
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id) for d in result.documents] == [
        ("transcripts/a.txt", "A-1"), ("transcripts/b.txt", "B-1"),
        ("transcripts/c.txt", "c"), ("transcripts/d.txt", "d")]
    fix = "ix the path (relative to the corpus folder) or delete the row"
    assert [str(s) for s in result.skipped] == [
        "manifest.csv:4: file 'corpus/transcripts/c.txt' does not exist — did you mean "
        f"'transcripts/c.txt'? F{fix}",
        f"manifest.csv:5: file 'Transcripts/D.TXT' does not exist — did you mean "
        f"'transcripts/d.txt'? F{fix}",
        "manifest.csv:6: file 'CORPUS/transcripts/d.txt' does not exist — did you mean "
        f"'transcripts/d.txt'? F{fix}",
        f"manifest.csv:7: file 'transcripts/e.txt' does not exist — f{fix}",
    ]


def test_a_manifest_doc_id_for_an_excerpt_table_is_noted(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": "file,doc_id,case\nlit/Lit.CSV,LIT-2020,yemen\n",
                    "lit/Lit.CSV": "id,text\nE1,First.\nE2,Second.\n"})
    result = ingest_corpus(corpus)
    assert [(d.doc_id, d.metadata) for d in result.documents] == [
        ("E1", {"case": "yemen"}), ("E2", {"case": "yemen"})]
    assert [(str(s), s.note) for s in result.skipped] == [(
        "manifest.csv:2: gives a doc_id ('LIT-2020') for lit/Lit.CSV, an excerpt table, whose "
        "rows take their ids from its id column — the doc_id was not used; remove it (the "
        "row's other metadata applies to every excerpt)", True)]


def _transcript_workbook() -> bytes:
    book = openpyxl.Workbook()
    for row in [("Speaker", "Text"), ("Interviewer", "Where were you?"),
                ("Hamid", "In Hodeidah."), ("Interviewer", "And then?"), ("Hamid", "Aden.")]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_manifest_row_applies_to_a_table_read_as_a_transcript(tmp_path: Path) -> None:
    # A table's manifest doc_id is noted only once the table is read as excerpts: a table
    # of turns is one transcript and takes the row's doc_id and metadata like a .txt file.
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,doc_id,case,source_type\n"
                        "interviews/p07.csv,P07,aden,Interview\n"
                        "interviews/p08.xlsx,P08,hodeidah,interview\n"
                        "lit/excerpts.csv,LIT-2020,yemen,report\n",
        "interviews/p07.csv": "Speaker,Start time,Text\nInterviewer,00:00,Where were you?\n"
                              "P7,00:04,In Aden.\nInterviewer,00:09,And then?\nP7,00:11,Sanaa.\n",
        "interviews/p08.xlsx": _transcript_workbook(),
        "lit/excerpts.csv": "id,text\nE1,First.\nE2,Second.\n",
    })
    note = ("manifest.csv:4: gives a doc_id ('LIT-2020') for lit/excerpts.csv, an excerpt "
            "table, whose rows take their ids from its id column — the doc_id was not used; "
            "remove it (the row's other metadata applies to every excerpt)")
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id, d.layout, d.id_source, d.metadata) for d in result.documents] == [
        ("interviews/p07.csv", "P07", "transcript", "manifest",
         {"case": "aden", "source_type": "interview"}),
        ("interviews/p08.xlsx", "P08", "transcript", "manifest",
         {"case": "hodeidah", "source_type": "interview"}),
        ("lit/excerpts.csv", "E1", "excerpt", "id column",
         {"case": "yemen", "source_type": "report"}),
        ("lit/excerpts.csv", "E2", "excerpt", "id column",
         {"case": "yemen", "source_type": "report"}),
    ]
    assert [(str(s), s.note) for s in result.skipped] == [(note, True)]
    # the same through the calls the flow makes (batches, then the manifest check)
    batch = read_corpus(corpus)
    assert [d.doc_id for d in batch.documents] == ["P07", "P08", "E1", "E2"]
    assert [str(s) for s in batch.skipped] == [note]


def test_doc_id_rows_that_match_no_document_are_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "doc_id,case\nYEM-INT-02,west\nNOPE,x\nyem-int-1,y\nlit-1,z\n"
                        "UPPER,north\n",
        "transcripts/yem_int_02.txt": TRANSCRIPT,
        "transcripts/upper.txt": _front("UPPER"),
        "transcripts/yem_int_01.txt": _front("YEM-INT-01"),
        "lit.csv": "id,text\nLIT-1,An excerpt.\n",
    })
    result = ingest_corpus(corpus)
    assert [str(s) for s in result.skipped] == [
        "manifest.csv:2: doc_id 'YEM-INT-02' matches no document — fix the doc_id (ids are "
        "case-sensitive; did you mean 'yem_int_02'?) or delete the row",
        "manifest.csv:3: doc_id 'NOPE' matches no document — fix the doc_id (ids are "
        "case-sensitive) or delete the row",
        "manifest.csv:4: doc_id 'yem-int-1' matches no document — fix the doc_id (ids are "
        "case-sensitive; did you mean 'YEM-INT-01'?) or delete the row",
        "manifest.csv:5: doc_id 'lit-1' matches no document — fix the doc_id (ids are "
        "case-sensitive; did you mean 'LIT-1'?) or delete the row",
    ]
    assert {d.doc_id: d.metadata for d in result.documents}["UPPER"] == {"case": "north"}
    # The flow reads in batches: the check takes every batch's documents at once.
    paths, _ = discover_files(corpus)
    combined = combine_batches([process_batch(corpus, [p]) for p in paths])
    assert unmatched_doc_ids(load_manifest(corpus), combined.documents) \
        == result.skipped


@pytest.mark.parametrize(("on_disk", "typed"), [("NFD", "NFC"), ("NFC", "NFD")])
def test_manifest_paths_match_file_names_in_either_unicode_form(
    tmp_path: Path, on_disk: str, typed: str
) -> None:
    corpus = tmp_path / "corpus"
    name = "entrevistas/josé/rené.txt"
    _write(corpus, {
        "manifest.csv": f"file,doc_id,case\n{unicodedata.normalize(typed, name)},RENE,x\n"
                        f"{unicodedata.normalize(on_disk, name)},AGAIN,y\n",
        unicodedata.normalize(on_disk, name): "Prose.\n",
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id, d.metadata) for d in result.documents] == [
        (unicodedata.normalize(on_disk, name), "RENE", {"case": "x"})]
    assert [str(s) for s in result.skipped] == [
        f"manifest.csv:3: file '{unicodedata.normalize(on_disk, name)}' is listed twice; "
        "this row was ignored — merge the two rows",
    ]


def test_a_reviews_folder_in_other_case_is_not_read_as_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"Reviews/coder_b.csv": "segment_id,codes,coder\nA:1,x,ana\n",
                    "a.txt": "Prose.\n", "Reviews.txt": "More prose.\n"})
    if (corpus / "reviews").is_dir():
        pytest.skip("a file system that ignores case reads Reviews/ as reviews/")
    result = ingest_corpus(corpus)
    assert [d.path for d in result.documents] == ["Reviews.txt", "a.txt"]
    assert [str(s) for s in result.skipped] == [
        "Reviews/: is not read, neither as documents nor as coders' decisions (their folder "
        "must be named 'reviews', in lower case) — rename it to 'reviews' or move its files "
        "into 'reviews/'",
    ]


@pytest.mark.parametrize("name", ["Manifest.csv", "MANIFEST.CSV"])
def test_a_manifest_in_other_case_is_reported_not_read_as_an_excerpt_table(
    tmp_path: Path, name: str
) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {name: "file,case\na.txt,yemen\n", "a.txt": TRANSCRIPT})
    if (corpus / "manifest.csv").is_file():
        pytest.skip("a file system that ignores case reads it as manifest.csv")
    result = ingest_corpus(corpus)
    assert [(d.path, d.metadata) for d in result.documents] == [("a.txt", {})]
    assert [str(s) for s in result.skipped] == [
        f"{name}: is not read, neither as the manifest (its name must be 'manifest.csv', in "
        "lower case) nor as an excerpt table, so the files were read without its metadata — "
        "rename it to 'manifest.csv'",
    ]
    # beside the real manifest, whose metadata applies
    _write(corpus, {"manifest.csv": "file,case\na.txt,syria\n"})
    result = ingest_corpus(corpus)
    assert [(d.path, d.metadata) for d in result.documents] == [("a.txt", {"case": "syria"})]
    assert [s.reason.split(" — ")[1] for s in result.skipped] == [
        "move its rows into 'manifest.csv' and delete it"]


@pytest.mark.parametrize("name", ["transcripts/manifest.csv", "literature/2024/Manifest.csv"])
def test_a_manifest_in_a_sub_folder_is_reported_not_read_as_an_excerpt_table(
    tmp_path: Path, name: str
) -> None:
    corpus = tmp_path / "corpus"
    folder = name.rsplit("/", 1)[0]
    _write(corpus, {
        # a text column and an id column: before, its row was read as an excerpt
        name: "file,doc_id,case,text\na.txt,A-1,yemen,not an excerpt\n",
        "manifest.csv": "file,date\ntranscripts/a.txt,2023-05-01\n",
        "transcripts/a.txt": TRANSCRIPT,
    })
    result = ingest_corpus(corpus)
    assert [(d.path, d.doc_id, d.metadata) for d in result.documents] == [
        ("transcripts/a.txt", "a", {"date": "2023-05-01"})]
    assert [str(s) for s in result.skipped] == [
        f"{name}: is not read, neither as the manifest (only the one at the top of the corpus "
        "folder is) nor as an excerpt table — move its rows into the corpus folder's "
        f"'manifest.csv', with paths relative to the corpus folder ('{folder}/<file>'), and "
        "delete it; if it holds excerpts, rename it",
    ]
    assert not result.skipped[0].note
    assert [f.path for f in result.files] == ["transcripts/a.txt"]


def test_metadata_names_differing_in_case_are_merged_within_a_document(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "manifest.csv": "file,Author,case,author\na.md,Manifest Author,x,second\n",
        "a.md": "---\nauthor: Front Author\nYear: 2020\nyear: 2021\n"
                "Source_Type: Focus_Group\n---\nProse.\n",
        "b.md": "---\nauthor: Other\n---\nProse.\n",
        "c.csv": "id,text,AUTHOR,year\nC-1,An excerpt.,Lee,\n",
    })
    result = ingest_corpus(corpus)
    assert [str(s) for s in result.skipped] == [
        "manifest.csv:1: column 'Author' appears twice (columns B and D, spelled 'Author' "
        "and 'author'); column D was ignored — delete or rename one of them",
    ]
    # the manifest's spelling wins (every batch knows it), else the document's first one
    assert [(d.doc_id, d.source_type, d.metadata) for d in result.documents] == [
        ("a", "focus_group", {"Author": "Manifest Author", "Year": "2021", "case": "x",
                              "source_type": "focus_group"}),
        ("b", "literature", {"Author": "Other"}),
        ("C-1", "literature", {"Author": "Lee", "year": "", "citation": "Lee"}),
    ]


def test_windows_1252_capitals_before_curly_quotes_are_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    body = "Interviewer: What did it say?\r\n\r\nRespondent: “CAFÉ” and «CAFÉ».\r\n"
    _write(corpus, {"t.txt": body.encode("cp1252")})
    result = ingest_corpus(corpus)
    assert result.skipped == []
    assert result.documents[0].text == body.replace("\r\n", "\n")


def test_missing_corpus_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_corpus(tmp_path / "nope")


def test_file_records_cover_every_read_file(bad_corpus: Path) -> None:
    result = ingest_corpus(bad_corpus)
    records = {f.path: f for f in result.files}
    assert set(records) >= set(GOOD) | {"transcripts/empty.txt", "transcripts/b_dup.txt"}
    assert "transcripts/notes.rtf" not in records
    assert records["literature/excerpts.csv"].documents == 2
    assert records["transcripts/empty.txt"].documents == 0
    assert records["transcripts/empty.txt"].bytes == 0
    for doc in result.documents:
        assert doc.sha256 == records[doc.path].sha256


# --- batches ------------------------------------------------------------------------------


def _segment_view(segments) -> list[tuple]:
    return [(s.segment_id, s.doc_id, s.source_type, s.speaker, s.turn, s.char_start,
             s.char_end, s.text, s.codable, s.metadata) for s in segments]


@pytest.mark.parametrize("size", [1, 3, 100])
def test_batches_give_the_same_segments_as_one_pass(bad_corpus: Path, size: int) -> None:
    whole = ingest_corpus(bad_corpus)
    expected = _segment_view(segment_documents(whole.documents))
    paths, _ = discover_files(bad_corpus)
    batches = [process_batch(bad_corpus, batch) for batch in plan_batches(paths, size)]
    for order in (batches, batches[::-1]):
        combined = combine_batches(order)
        assert _segment_view(flat_segments(combined)) == expected
        assert [d.doc_id for d in combined.documents] == [d.doc_id for d in whole.documents]
        file_level = {(s.path, s.reason, s.line) for s in whole.skipped
                      if s.path != "manifest.csv" and "unsupported" not in s.reason}
        read_as_prose = "has no speaker labels"  # a note on a document, not on its file
        assert {(s.path, s.reason, s.line) for s in combined.skipped
                if not s.reason.startswith(read_as_prose)} == file_level
        assert sorted(f.path for f in combined.files) == sorted(f.path for f in whole.files)


# --- the shared dev set -------------------------------------------------------------------


def test_devset_codable_segments_match_gold(devset: Path) -> None:
    result = ingest_corpus(devset / "corpus")
    assert result.skipped == [], [str(s) for s in result.skipped]
    segments = segment_documents(result.documents)
    codable = [s.segment_id for s in segments if s.codable]
    with (devset / "gold.csv").open(encoding="utf-8-sig", newline="") as handle:
        gold = [row["segment_id"] for row in csv.DictReader(handle)]
    assert len(gold) == 291
    assert len(codable) == len(set(codable))
    assert sorted(codable) == sorted(gold)
    ids = [s.segment_id for s in segments]
    assert len(ids) == len(set(ids))


def test_a_file_that_vanished_after_discovery_is_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"a.txt": "Prose.\n", "gone.txt": "Prose.\n"})
    paths, _ = discover_files(corpus)
    (corpus / "gone.txt").unlink()
    (corpus / "folder.txt").mkdir()
    result = ingest_files(corpus, [*paths, "folder.txt"], load_manifest(corpus))
    assert [d.doc_id for d in result.documents] == ["a"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == {"gone.txt", "folder.txt"}
    assert reasons["gone.txt"].startswith("cannot be read (No such file or directory) — ")
    assert "check that the file is not open elsewhere" in reasons["folder.txt"]


def test_symlink_to_a_file_outside_the_corpus_is_not_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("Interviewer: x?\n\nRespondent: SECRET-MARKER\n", encoding="utf-8")
    (corpus / "link.txt").symlink_to(secret)
    result = ingest_corpus(corpus)
    assert result.documents == []
    assert "outside the corpus folder" in result.skipped[0].reason


def test_broken_links_and_links_to_folders_are_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "a.txt": TRANSCRIPT,
        "sub/b.txt": "Prose.\n",
        "reviews/coder1.csv": "segment_id,codes,coder\n",
        ".drafts/c.txt": "Draft prose.\n",
    })
    _write(tmp_path / "elsewhere", {"c.txt": "Prose.\n"})
    (corpus / "dangling.txt").symlink_to("does_not_exist.txt")
    (corpus / "loop_a.txt").symlink_to("loop_b.txt")
    (corpus / "loop_b.txt").symlink_to("loop_a.txt")
    (corpus / "sub" / "up").symlink_to("..")
    (corpus / "linked").symlink_to(tmp_path / "elsewhere")
    (corpus / "same.txt").symlink_to("a.txt")  # a link to a file read anyway is not read
    (corpus / "draft.txt").symlink_to(".drafts/c.txt")  # a link to a corpus file is read
    # hidden files, lock files and reviews/ are still passed over silently
    (corpus / ".hidden.txt").symlink_to("gone.txt")
    (corpus / "~$lock.docx").symlink_to("gone.docx")
    (corpus / "reviews" / "old.csv").symlink_to("gone.csv")
    result = ingest_corpus(corpus)
    assert [str(s) for s in result.skipped] == [
        "dangling.txt: is a broken link — the file it points to ('does_not_exist.txt') does "
        "not exist; copy the file itself into the corpus, or delete the link",
        "linked: is a link to a folder and was not followed (linked folders are not read) — "
        "copy the folder itself into the corpus, or delete the link",
        "loop_a.txt: is a broken link — it leads back to itself (a loop of links); delete "
        "the link and copy the file itself into the corpus",
        "loop_b.txt: is a broken link — it leads back to itself (a loop of links); delete "
        "the link and copy the file itself into the corpus",
        "sub/up: is a link to a folder that contains it (a loop) and was not followed — "
        "delete the link",
        "same.txt: is a link to a.txt, which is read already, so it was not read again — "
        "delete the link",
    ]
    assert [d.path for d in result.documents] == ["a.txt", "draft.txt", "sub/b.txt"]


# --- copies of a file (audit 3) -----------------------------------------------------------


def test_byte_identical_copies_are_read_once_in_every_batch_order(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {
        "transcripts/yem_int_06.txt": TRANSCRIPT,
        "audit/yem_int_06 (1).txt": TRANSCRIPT,  # sorts first, but named like a copy
        "transcripts/yem_int_06_final.md": TRANSCRIPT,
        "lit/a.csv": "id,text\nA-1,An excerpt.\nA-2,\n",
        "lit/b copy.csv": "id,text\nA-1,An excerpt.\nA-2,\n",
        "other.txt": TRANSCRIPT + "\nOne more line.\n",
    })
    expected = [
        "audit/yem_int_06 (1).txt: has the same content as transcripts/yem_int_06.txt (kept) "
        "— delete one copy",
        "lit/a.csv:3: excerpt 'A-2' has an empty text — add the text",
        "lit/b copy.csv: has the same content as lit/a.csv (kept) — delete one copy",
        "transcripts/yem_int_06_final.md: has the same content as transcripts/yem_int_06.txt "
        "(kept) — delete one copy",
    ]
    whole = ingest_corpus(corpus)
    assert [d.path for d in whole.documents] == ["lit/a.csv", "other.txt",
                                                 "transcripts/yem_int_06.txt"]
    assert sorted(str(s) for s in whole.skipped) == expected
    paths, _ = discover_files(corpus)
    for size in (1, 2, 100):
        batches = [process_batch(corpus, batch) for batch in plan_batches(paths, size)]
        for order in (batches, batches[::-1]):
            combined = combine_batches(order)
            assert [d.path for d in combined.documents] == [d.path for d in whole.documents]
            assert sorted(str(s) for s in combined.skipped) == expected
            # every file is still listed (with its sha256), a copy with no document
            assert {f.path: f.documents for f in combined.files} == {
                "audit/yem_int_06 (1).txt": 0, "lit/a.csv": 1, "lit/b copy.csv": 0,
                "other.txt": 1, "transcripts/yem_int_06.txt": 1,
                "transcripts/yem_int_06_final.md": 0}


def test_of_copies_the_one_not_named_like_a_copy_is_kept(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    b, c = TRANSCRIPT + "\nB.\n", TRANSCRIPT + "\nC.\n"
    _write(corpus, {"10_a.txt": TRANSCRIPT, "10_a (1).txt": TRANSCRIPT, "Copy of b.txt": b,
                    "b - Copy (2).txt": b, "c_copy.txt": c, "c copy 2.txt": c})
    result = ingest_corpus(corpus)
    # no name but a copy's: the first in path order
    assert [d.path for d in result.documents] == ["10_a.txt", "Copy of b.txt", "c copy 2.txt"]
    assert [str(s) for s in result.skipped] == [
        "10_a (1).txt: has the same content as 10_a.txt (kept) — delete one copy",
        "b - Copy (2).txt: has the same content as Copy of b.txt (kept) — delete one copy",
        "c_copy.txt: has the same content as c copy 2.txt (kept) — delete one copy"]
    assert [d.path for d in read_corpus(corpus).documents] == [
        d.path for d in result.documents]
    # the file the manifest names is kept: its doc_id and metadata are not lost
    _write(corpus, {"manifest.csv": "file,doc_id,case\n10_a (1).txt,A-10,kenya\n"})
    result = ingest_corpus(corpus)
    assert (result.documents[0].path, result.documents[0].doc_id) == ("10_a (1).txt", "A-10")
    assert str(result.skipped[0]) == (
        "10_a.txt: has the same content as 10_a (1).txt (kept) — delete one copy")


def test_a_link_to_a_corpus_file_and_a_copy_with_the_same_doc_id(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"transcripts/yem_int_06.txt": TRANSCRIPT})
    (corpus / "audit").mkdir()
    (corpus / "audit" / "link_yem06.txt").symlink_to("../transcripts/yem_int_06.txt")
    _write(corpus, {"a.txt": _front("SAME"), "b.txt": _front("SAME")})
    assert [str(s) for s in ingest_corpus(corpus).skipped] == [
        "audit/link_yem06.txt: is a link to transcripts/yem_int_06.txt, which is read "
        "already, so it was not read again — delete the link",
        "b.txt: has the same content and a duplicate doc_id 'SAME' as a.txt (kept) — delete "
        "one copy"]
    paths, skipped = discover_files(corpus)
    assert paths == ["a.txt", "b.txt", "transcripts/yem_int_06.txt"]  # not the link
    # two documents, not copies, when the manifest says so
    _write(corpus, {"manifest.csv": "file,doc_id\na.txt,A\nb.txt,B\n"})
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["A", "B", "yem_int_06"]
    assert [s.path for s in result.skipped] == ["audit/link_yem06.txt"]
    assert [str(s) for s in skipped] == [
        "audit/link_yem06.txt: is a link to transcripts/yem_int_06.txt, which is read "
        "already, so it was not read again — delete the link"]


def test_a_transcript_with_labels_and_no_words_is_reported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"only_labels.txt": "Interviewer:\n\nRespondent:\n\nInterviewer:\n\n"
                                       "Respondent:\n",
                    "ok.txt": TRANSCRIPT})
    batch = process_batch(corpus, ["ok.txt", "only_labels.txt"])
    assert [d.path for d in batch.documents] == ["ok.txt"]
    assert len(batch.segments) == 1
    assert [str(s) for s in batch.skipped] == [
        "only_labels.txt: has speaker labels but no words after them, so there is nothing to "
        "code — add the words of each turn, or remove the file"]
    assert {f.path: f.documents for f in batch.files} == {"ok.txt": 1, "only_labels.txt": 0}


def test_editor_backups_and_autosaves_are_passed_over(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"interview.txt": TRANSCRIPT, "interview.txt~": TRANSCRIPT,
                    "#interview.txt#": TRANSCRIPT, ".#interview.txt": TRANSCRIPT,
                    "#1 interview.txt": TRANSCRIPT + "\nNumbered.\n"})
    assert discover_files(corpus) == (["#1 interview.txt", "interview.txt"], [])


@pytest.mark.parametrize("name", ["invisible.txt", "invisible.md", "invisible.srt"])
def test_text_of_only_invisible_characters_is_empty(tmp_path: Path, name: str) -> None:
    invisible = "\u200b\u2060\u200d \n\u200f\ufeff\n"
    content = ("1\n00:00:01,000 --> 00:00:02,000\n" + invisible if name.endswith(".srt")
               else invisible)
    corpus = tmp_path / "corpus"
    _write(corpus, {name: content, "lit.csv": "id,text\nA-1,\u200b\u2060\u200d\nA-2,Text.\n"})
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["A-2"]
    reasons = [(s.path, s.line, s.reason.split(" — ")[0]) for s in result.skipped]
    assert reasons == [
        (name, None, "the .srt file has no caption text" if name.endswith(".srt") else
         "the file has no text"),
        ("lit.csv", 2, "excerpt 'A-1' has an empty text"),
    ]


def test_a_stray_nul_in_the_manifest_no_longer_drops_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": b"file,case\na.txt,yem\x00en\n", "a.txt": TRANSCRIPT})
    result = ingest_corpus(corpus)
    assert [d.metadata for d in result.documents] == [{"case": "yemen"}]
    assert [(s.path, s.line, s.reason.split(";")[0]) for s in result.skipped] == [
        ("manifest.csv", 2, "held a stray invisible character (NUL byte) on this line")]


def test_transcript_without_an_interviewer_label_is_noted(tmp_path: Path) -> None:
    from qualcode.corpus import read_corpus

    corpus = tmp_path / "corpus"
    (corpus / "transcripts").mkdir(parents=True)
    indonesian = ("Pewawancara: Bagaimana akses dirundingkan?\n\n"
               "Narasumber: Dengan sabar, bersama komite setempat.\n\n"
               "Pewawancara: Lalu?\n\nNarasumber: Jalan dibuka.\n")
    (corpus / "transcripts" / "id.txt").write_text(indonesian, encoding="utf-8")
    (corpus / "transcripts" / "en.txt").write_text(
        "Interviewer: Who opened the road?\n\nRespondent: The local committee.\n",
        encoding="utf-8")
    (corpus / "transcripts" / "one.txt").write_text(  # one speaker: a testimony
        "Witness: We waited three days.\n\nWitness: Then the convoy came.\n", encoding="utf-8")
    batch = read_corpus(corpus)
    assert all(s.note for s in batch.skipped)  # a note: the file was read
    notes = [str(s) for s in batch.skipped]
    assert len(notes) == 1 and notes[0].startswith(
        "transcripts/id.txt: has the speakers Pewawancara, Narasumber, none of them an "
        "interviewer label, so every turn was coded")
    assert '--interviewer-labels "Pewawancara"' in notes[0]
    assert {d.doc_id for d in batch.documents} == {"id", "en", "one"}  # still read
    told = read_corpus(corpus, interviewer_labels=["Interviewer", "Pewawancara"])
    assert told.skipped == []
    questions = [s for s in flat_segments(told) if s.speaker == "Pewawancara"]
    assert len(questions) == 2 and not any(s.codable for s in questions)


def test_an_interview_without_speaker_labels_is_noted(tmp_path: Path) -> None:
    from qualcode.corpus import read_corpus

    corpus = tmp_path / "corpus"
    prose = "How did it go, I asked.\n\nWe met the commander twice.\n"
    _write(corpus, {
        "Transcripts/unlabelled.txt": prose,  # by its folder, in any case
        "other/by_manifest.txt": prose + "2\n",  # by its source_type
        "manifest.csv": "file,source_type\nother/by_manifest.txt,interview\n",
        "literature/essay.txt": prose + "3\n",  # prose where prose belongs: no note
        "transcripts/labelled.txt": TRANSCRIPT,
    })
    batch = read_corpus(corpus)
    assert [(s.path, s.note) for s in batch.skipped] == [
        ("Transcripts/unlabelled.txt", True), ("other/by_manifest.txt", True)]
    assert batch.skipped[0].reason.startswith(
        "has no speaker labels that qualcode recognises, so it was read as prose and every "
        "paragraph was coded, questions too — if it is an interview, start each turn")
    assert "if it is not, move it out of Transcripts/;" in batch.skipped[0].reason
    assert "if it is not, give it another source_type;" in batch.skipped[1].reason
    assert len(batch.documents) == 4  # all read


def test_unreadable_folders_and_pipes_are_reported(tmp_path: Path, monkeypatch) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"a.txt": TRANSCRIPT, "locked/inner.txt": "Prose.\n", "open/b.txt": "B.\n"})
    os.mkfifo(corpus / "pipe.txt")  # reading it would wait forever
    # The tests may run as root, who reads every folder: deny the one folder as a user's
    # permissions would (os.access is what discover_files asks).
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path).name != "locked"
                        and access(path, mode, **kw))
    found, skipped = discover_files(corpus)
    assert found == ["a.txt", "open/b.txt"]
    assert [(s.path, s.reason.split(" — ")[0]) for s in skipped] == [
        ("locked/", "is a folder that cannot be read (no permission), so the files in it "
                    "were not coded"),
        ("pipe.txt", "is not a regular file (a pipe, socket or device) and was not read"),
    ]


@pytest.mark.parametrize(("file_header", "id_header"), [
    ("File Name", "Doc ID"), ("filename", "DocID"), ("File path", "document_id"),
    ("file-name", "doc-id")])
def test_manifest_key_columns_named_in_other_words(tmp_path: Path, file_header: str,
                                                   id_header: str) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus, {"manifest.csv": f"{file_header},{id_header},Case\na.txt,A-1,yemen\n"
                                    ",b,myanmar\n",
                    "a.txt": "Prose.\n", "b.txt": "More prose.\n"})
    result = ingest_corpus(corpus)
    assert result.skipped == [], [str(s) for s in result.skipped]
    assert [(d.doc_id, d.id_source, d.metadata) for d in result.documents] == [
        ("A-1", "manifest", {"Case": "yemen"}), ("b", "file name", {"Case": "myanmar"})]

