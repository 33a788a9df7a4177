"""Bad input in review files and on the command line (audit findings): Mac line ends,
unreadable files and folders, rows with more cells than the header, unclosed quotes (in
review files and in imported sheets, whose other rows are imported), workbook cells that
openpyxl cannot read, Excel's ``sep=`` line, a --reviews path that does not exist, an --out
that is a file, and stdout closed early. Real files on disk; the CLI is called in-process
where it can be."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qualcode import cli
from qualcode.ingest.decode import DecodeError
from qualcode.review_sheets import import_review_sheets
from qualcode.reviews import append_reviews, load_reviews, read_rows

CODES = ("apple", "banana", "cherry")
HEADER = "segment_id,codes,coder\n"
CODEBOOK = """\
name: Test codebook
version: "0.1"
categories:
  - id: fruit
    name: Fruit
codes:
  - id: apple
    name: Apple
    category: fruit
    definition: The passage is about apples.
    rules:
      phrases: [an apple a day]
"""


@pytest.fixture
def reviews_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus" / "reviews"
    folder.mkdir(parents=True)
    return folder


def _decisions(reviews_dir: Path | list[Path]) -> list[tuple[str, frozenset[str], str, int]]:
    return [(r.segment_id, r.codes, r.coder, r.row)
            for r in load_reviews(reviews_dir, CODES).reviews]


# ------------------------------------------------------------ 1. old-Mac line ends (CR)


def test_a_review_file_with_mac_line_ends_is_read(reviews_dir: Path) -> None:
    (reviews_dir / "ana.csv").write_bytes(b"segment_id,codes,coder\rA:1,apple,ana\r"
                                          b"A:2,banana;cherry,ana\r")
    (reviews_dir / "bo.csv").write_bytes(b"segment_id,codes,coder\r\nA:1,cherry,bo\r"
                                         b"A:2,\"apple\rbanana\",bo\n")  # mixed line ends
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.segment_id, r.codes, r.coder, r.row) for r in reviews.reviews] == [
        ("A:1", {"apple"}, "ana", 2), ("A:2", {"banana", "cherry"}, "ana", 3),
        ("A:1", {"cherry"}, "bo", 2), ("A:2", {"apple", "banana"}, "bo", 3)]
    assert reviews.problems == []
    # a new decision is appended after the old rows, which are kept as they were
    append_reviews(reviews_dir, [{"segment_id": "A:3", "codes": "apple", "coder": "ana"}])
    assert [d[:3] for d in _decisions([reviews_dir / "ana.csv"])] == [
        ("A:1", {"apple"}, "ana"), ("A:2", {"banana", "cherry"}, "ana"),
        ("A:3", {"apple"}, "ana")]


def test_a_review_sheet_with_mac_line_ends_is_imported(tmp_path: Path,
                                                       reviews_dir: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"segment_id,codes,coder\rA:1,apple,zed\rA:2,,zed\r")
    report = import_review_sheets([sheet], reviews_dir, None, CODES)
    assert report.ok and report.appended == {"zed": 2}
    assert _decisions(reviews_dir) == [("A:1", {"apple"}, "zed", 2),
                                       ("A:2", frozenset(), "zed", 3)]


# ------------------------------------------------------------ 2. unreadable files, folders


def test_an_unreadable_review_file_is_reported_and_the_others_are_read(
        reviews_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (reviews_dir / "ana.csv").write_text(HEADER + "A:1,apple,ana\n", encoding="utf-8")
    locked = reviews_dir / "bo.csv"
    locked.write_text(HEADER + "A:1,cherry,bo\n", encoding="utf-8")
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.segment_id, r.coder) for r in reviews.reviews] == [("A:1", "ana")]
    (problem,) = reviews.problems
    assert problem.path == "reviews/bo.csv" and problem.line is None
    assert problem.reason.startswith("cannot be read (Permission denied) — its decisions "
                                     "were not used;")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_a_review_file_without_read_permission_is_reported(reviews_dir: Path) -> None:
    (reviews_dir / "ana.csv").write_text(HEADER + "A:1,apple,ana\n", encoding="utf-8")
    locked = reviews_dir / "bo.csv"
    locked.write_text(HEADER + "A:1,cherry,bo\n", encoding="utf-8")
    locked.chmod(0)
    try:
        reviews = load_reviews(reviews_dir, CODES)
    finally:
        locked.chmod(0o644)
    assert [(r.segment_id, r.coder) for r in reviews.reviews] == [("A:1", "ana")]
    assert [str(p).split(" — ")[0] for p in reviews.problems] == [
        "reviews/bo.csv: cannot be read (Permission denied)"]


def test_a_named_review_file_that_is_a_folder_is_reported(tmp_path: Path,
                                                          reviews_dir: Path) -> None:
    good = reviews_dir / "ana.csv"
    good.write_text(HEADER + "A:1,apple,ana\n", encoding="utf-8")
    folder = tmp_path / "x.csv"
    folder.mkdir()
    reviews = load_reviews([folder, good, tmp_path / "gone.csv"], CODES)
    assert [(r.segment_id, r.coder) for r in reviews.reviews] == [("A:1", "ana")]
    assert [(p.path, p.reason.split(" — ")[0]) for p in reviews.problems] == [
        (str(folder), "cannot be read (Is a directory)"),
        (str(tmp_path / "gone.csv"), "does not exist")]


def test_an_unreadable_reviews_folder_is_reported(reviews_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (reviews_dir / "ana.csv").write_text(HEADER + "A:1,apple,ana\n", encoding="utf-8")
    iterdir = Path.iterdir

    def denied(self: Path) -> Iterator[Path]:
        if self == reviews_dir:
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.reviews == []
    assert [(p.path, p.reason.split(" — ")[0]) for p in reviews.problems] == [
        (str(reviews_dir), "cannot be read (Permission denied)")]


# ------------------------------------------------------------ 3. more cells than the header


def test_rows_with_more_cells_than_the_header_are_reported_not_shifted(
        reviews_dir: Path) -> None:
    (reviews_dir / "anna.csv").write_text(
        HEADER
        + "A:1,apple,anna\n"  # 2: anna's first decision on A:1
        + "A:2,apple,banana,anna\n"  # 3: codes separated by commas
        + "A:3,cherry,anna,,\n"  # 4: empty trailing cells are fine
        + "A:1,apple,cherry,anna\n",  # 5: a later decision on A:1 that cannot be read
        encoding="utf-8")
    (reviews_dir / "semi.csv").write_text(
        "segment_id;codes;coder\nA:2;apple;banana;bo\nA:3;apple,banana;bo\n",
        encoding="utf-8")
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.segment_id, r.codes, r.coder, r.row) for r in reviews.reviews] == [
        ("A:1", {"apple"}, "anna", 2), ("A:3", {"cherry"}, "anna", 4),
        ("A:3", {"apple", "banana"}, "bo", 3)]
    assert reviews.coders == ["anna", "bo"]  # no phantom coder 'banana'
    # anna's latest row on A:1 cannot be read: her earlier decision does not count
    assert reviews.decisions() == {"A:3": {"apple", "banana", "cherry"}}
    assert [(p.path, p.line) for p in reviews.problems] == [
        ("reviews/anna.csv", 3), ("reviews/anna.csv", 5), ("reviews/semi.csv", 2)]
    assert reviews.problems[0].reason == (
        "has 4 cells but the header has 3, so its cells cannot be matched to the columns — "
        "the row was left out; separate codes with ';' inside one cell, e.g. \"a;b\" (and "
        "give any extra column a header)")
    assert "put several codes in quotes, e.g. \"a;b\", or separate them with ','" in \
        reviews.problems[2].reason


def _sheet_rows(path: Path) -> list[tuple[str, str, str, str]]:
    """(segment_id, codes, coder, sheet_row) of an imported reviews/<coder>.csv."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [(r["segment_id"], r["codes"], r["coder"], r["sheet_row"])
                for r in csv.DictReader(handle)]


def test_a_sheet_row_with_more_cells_than_the_header_is_reported_and_the_others_imported(
        tmp_path: Path, reviews_dir: Path) -> None:
    sheet = tmp_path / "shift.csv"
    sheet.write_text(HEADER + "A:1,apple,banana,zed\nA:2,cherry,zed\nA:3,,zed\n",
                     encoding="utf-8")
    report = import_review_sheets([sheet], reviews_dir, None, CODES)
    # the bad row is not read shifted (no coder 'banana'); every other row is imported
    assert report.appended == {"zed": 2} and report.rows == 3
    assert [p.name for p in reviews_dir.iterdir()] == ["zed.csv"]
    assert _sheet_rows(reviews_dir / "zed.csv") == [("A:2", "cherry", "zed", "3"),
                                                    ("A:3", "", "zed", "4")]
    (problem,) = report.problems
    assert (problem.path, problem.row, problem.kind) == ("shift.csv", 2, "unreadable")
    assert problem.message == (
        "has 4 cells but the header has 3, so its cells cannot be matched to the columns — "
        "the row was left out; separate codes with ';' inside one cell, e.g. \"a;b\" (and "
        "give any extra column a header)")
    with pytest.raises(DecodeError) as err:  # the reviews module's strict reader is unchanged
        read_rows(sheet)
    assert err.value.line == 2


def test_a_sheet_row_with_an_unclosed_quote_is_reported_and_the_others_imported(
        tmp_path: Path, reviews_dir: Path) -> None:
    sheet = tmp_path / "quote.csv"
    sheet.write_text(HEADER + "A:1,apple,zed\n" + 'A:2,"banana,zed\n' + "A:3,cherry,zed\n",
                     encoding="utf-8")
    report = import_review_sheets([sheet], reviews_dir, None, CODES)
    assert report.appended == {"zed": 2}
    assert [str(p) for p in report.problems] == [
        "quote.csv:3: unclosed quote (\") starting on line 3: its cell never ends — the row "
        "was left out (the lines below it were read on their own); add the closing quote or "
        "remove the opening one"]
    # once fixed, the same sheet imports the missing row and nothing twice
    sheet.write_text(HEADER + "A:1,apple,zed\n" + 'A:2,"banana",zed\n' + "A:3,cherry,zed\n",
                     encoding="utf-8")
    again = import_review_sheets([sheet], reviews_dir, None, CODES)
    assert again.ok and again.appended == {"zed": 1} and again.unchanged == 2
    assert _sheet_rows(reviews_dir / "zed.csv") == [
        ("A:1", "apple", "zed", "2"), ("A:3", "cherry", "zed", "4"),
        ("A:2", "banana", "zed", "3")]


# ------------------------------------------------------------ 4. an unclosed quote


def test_an_unclosed_quote_is_reported_and_the_rows_below_it_are_read(
        reviews_dir: Path) -> None:
    (reviews_dir / "ana.csv").write_text(
        HEADER + "A:1,apple,ana\n" + 'A:2,"banana,ana\n' + "A:3,cherry,ana\nA:4,,ana\n",
        encoding="utf-8")
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.segment_id, r.codes, r.row) for r in reviews.reviews] == [
        ("A:1", {"apple"}, 2), ("A:3", {"cherry"}, 4), ("A:4", frozenset(), 5)]
    assert [str(p) for p in reviews.problems] == [
        "reviews/ana.csv:3: unclosed quote (\") starting on line 3: its cell never ends — "
        "the row was left out (the lines below it were read on their own); add the closing "
        "quote or remove the opening one"]


def test_a_review_file_with_an_unclosed_quote_is_not_rewritten(reviews_dir: Path) -> None:
    broken = reviews_dir / "ana.csv"
    text = HEADER + 'A:1,"apple,ana\nA:2,cherry,ana\n'
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(DecodeError, match="unclosed quote"):
        append_reviews(reviews_dir, [{"segment_id": "A:3", "codes": "apple", "coder": "ana"}])
    assert broken.read_text(encoding="utf-8") == text


# ------------------------------------------------------------ 5. Excel's sep= first line


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_an_excel_sep_line_names_the_delimiter(reviews_dir: Path, bom: bytes) -> None:
    (reviews_dir / "anna.csv").write_bytes(
        bom + b"sep=;\r\nsegment_id;codes;coder\r\nA:1;apple,banana;anna\r\nA:2;;anna\r\n")
    (reviews_dir / "bo.csv").write_bytes(b"sep=\t\nsegment_id\tcodes\tcoder\nA:1\tcherry\tbo\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.problems == []
    # the sep= line is row 1, as in a text editor
    assert [(r.segment_id, r.codes, r.coder, r.row) for r in reviews.reviews] == [
        ("A:1", {"apple", "banana"}, "anna", 3), ("A:2", frozenset(), "anna", 4),
        ("A:1", {"cherry"}, "bo", 3)]


# ------------------------------------------------------------ 6, 7. the command line


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A codebook, a corpus folder with one review file and a saved model's folder."""
    (tmp_path / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    (tmp_path / "corpus" / "reviews").mkdir(parents=True)
    (tmp_path / "corpus" / "reviews" / "ana.csv").write_text(HEADER + "A:1,apple,ana\n",
                                                             encoding="utf-8")
    (tmp_path / "outputs" / "model").mkdir(parents=True)
    (tmp_path / "outputs" / "model" / "model.pkl").write_bytes(b"the saved model")
    return tmp_path


def _main(project: Path, *argv: str) -> int:
    return cli.main([*argv, "--codebook", str(project / "codebook.yaml"),
                     "--corpus", str(project / "corpus")])


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("missing", ["nonexistent.csv", "nonexistent_dir"])
def test_a_reviews_path_that_does_not_exist_is_an_error(
        project: Path, capsys: pytest.CaptureFixture[str], command: str, missing: str) -> None:
    reviews = project / missing
    status = _main(project, command, "--reviews", str(reviews), "--out",
                   str(project / "outputs"))
    printed = capsys.readouterr()
    assert status == 2
    assert printed.err.splitlines() == [
        f"error: --reviews '{reviews}' does not exist — give the folder of review files or "
        "one review .csv (default: CORPUS/reviews)"]
    assert printed.out == ""
    assert sorted(p.name for p in (project / "outputs").rglob("*")) == ["model", "model.pkl"]
    assert (project / "outputs" / "model" / "model.pkl").read_bytes() == b"the saved model"


@pytest.mark.parametrize("command", [["train"], ["evaluate"], ["agreement"],
                                     ["review", "export"], ["review", "disagreements"]])
def test_an_out_that_is_a_file_is_an_error(project: Path, capsys: pytest.CaptureFixture[str],
                                           command: list[str]) -> None:
    afile = project / "afile"
    afile.write_text("not a folder", encoding="utf-8")
    status = _main(project, *command, "--out", str(afile))
    printed = capsys.readouterr()
    assert status == 2
    assert printed.err.splitlines() == [
        f"error: --out '{afile}' is a file, not a folder — give a folder for the outputs"]
    assert "Traceback" not in printed.out + printed.err
    assert afile.read_text(encoding="utf-8") == "not a folder"


def _xlsx_with_cell(path: Path, rows: list[list[str]], cell: str, xml: str) -> Path:
    """A workbook of ``rows`` whose ``cell`` is written as ``xml``, as a tool other than
    Excel may write it (openpyxl cannot read such a cell)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "review"
    for row in rows:
        sheet.append(row)
    book.save(path)
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    name = "xl/worksheets/sheet1.xml"
    text, found = re.subn(rf'<c r="{cell}"[^>]*>.*?</c>', xml, parts[name].decode("utf-8"))
    assert found == 1
    parts[name] = text.encode("utf-8")
    with zipfile.ZipFile(path, "w") as archive:
        for part, data in parts.items():
            archive.writestr(part, data)
    return path


@pytest.mark.parametrize(("xml", "why"), [
    ('<c r="D3" t="n"><v>abc</v></c>', "invalid literal"),  # a number cell holding text
    ('<c r="D3" t="s"><v>99</v></c>', "list index out of range"),  # a lost shared string
])
def test_a_workbook_row_with_a_cell_that_cannot_be_read_is_reported_and_the_others_imported(
        project: Path, capsys: pytest.CaptureFixture[str], xml: str, why: str) -> None:
    sheet = _xlsx_with_cell(project / "sheet.xlsx", [
        ["segment_id", "codes", "coder", "memo"], ["A:1", "apple", "bo", "sure"],
        ["A:2", "", "bo", "a memo"], ["A:3", "apple", "bo", ""]], "D3", xml)
    status = _main(project, "review", "import", str(sheet), "--out", str(project / "outputs"))
    printed = capsys.readouterr()
    assert status == 1 and "Traceback" not in printed.out + printed.err
    lines = printed.out.splitlines()
    assert lines[0] == "read 3 rows; imported 2 decisions (bo: 2)"
    assert lines[-1].startswith(f"  sheet.xlsx:3: cell D3 cannot be read ({why}")
    assert lines[-1].endswith("— the row was left out; retype the cell's value in the "
                              "spreadsheet (or save the sheet again as .xlsx from Excel or "
                              "LibreOffice) and import it again")
    assert _sheet_rows(project / "corpus" / "reviews" / "bo.csv") == [
        ("A:1", "apple", "bo", "2"), ("A:3", "apple", "bo", "4")]


def test_a_workbook_whose_header_cannot_be_read_is_reported(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = _xlsx_with_cell(project / "sheet.xlsx", [
        ["segment_id", "codes", "coder"], ["A:1", "apple", "bo"]], "B1",
        '<c r="B1" t="b"><v>maybe</v></c>')
    status = _main(project, "review", "import", str(sheet), "--out", str(project / "outputs"))
    out = capsys.readouterr().out
    assert status == 1 and "sheet.xlsx:1: its header row: cell B1 cannot be read" in out
    assert not (project / "corpus" / "reviews" / "bo.csv").exists()


# ------------------------------------------------------------ 8. stdout closed early


def test_stdout_closed_early_ends_quietly(tmp_path: Path) -> None:
    codebook = tmp_path / "codebook.yaml"
    codebook.write_text(CODEBOOK, encoding="utf-8")
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines: every write fails
    try:
        done = subprocess.run([sys.executable, "-m", "qualcode.cli", "codebook", "check",
                               str(codebook)], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"


def test_a_broken_pipe_in_process_returns_141(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    codebook = tmp_path / "codebook.yaml"
    codebook.write_text(CODEBOOK, encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["codebook", "check", str(codebook)]) == 141


# ------------------------------------------------------------ 9. the command's exit


def test_the_command_exits_as_a_normal_exit_would(tmp_path: Path) -> None:
    """``qualcode`` skips the interpreter's teardown (cli.entry) but still joins threads,
    runs atexit handlers and flushes its output, with the command's status."""
    codebook = tmp_path / "codebook.yaml"
    codebook.write_text(CODEBOOK, encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("codes: [\n", encoding="utf-8")
    script = (
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        "from qualcode import cli\n"
        "out = Path(sys.argv[1])\n"
        "atexit.register(lambda: (out / 'atexit').write_text('ran'))\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    (out / 'thread').write_text('ran')\n"
        "threading.Thread(target=late).start()\n"
        "sys.stdout.write('unflushed ')\n"
        "sys.argv = ['qualcode', 'codebook', 'check', sys.argv[2]]\n"
        "cli.entry()\n"
        "raise AssertionError('entry() returned')\n"
    )
    for book, status in ((codebook, 0), (broken, 1)):
        for name in ("atexit", "thread"):
            (tmp_path / name).unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(book)],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == status, done.stderr
        assert done.stdout.startswith("unflushed ")
        assert "entry() returned" not in done.stderr
        assert (tmp_path / "atexit").read_text() == "ran"
        assert (tmp_path / "thread").read_text() == "ran"


def test_import_refuses_a_codebook_other_than_the_outputs_one(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = project / "outputs"
    (out / "segments.csv").write_text("segment_id,doc_id,text,codable\nA:1,A,Some words.,True\n",
                                      encoding="utf-8")
    (out / "coded_segments.csv").write_text("segment_id,codes,apple,zebra\nA:1,apple,1,0\n",
                                            encoding="utf-8")
    sheet = project / "sheet.csv"
    sheet.write_text("segment_id,codes,coder\nA:1,,bo\n", encoding="utf-8")
    status = _main(project, "review", "import", str(sheet), "--out", str(out))
    printed = capsys.readouterr()
    assert status == 1
    assert "were coded with other code ids" in printed.err and "(coded with zebra" in printed.err
    assert not (project / "corpus" / "reviews" / "bo.csv").exists()
    (out / "coded_segments.csv").unlink()  # no coded outputs to compare with: imported
    assert _main(project, "review", "import", str(sheet), "--out", str(out)) == 0
    assert (project / "corpus" / "reviews" / "bo.csv").is_file()
    assert capsys.readouterr().out.startswith("read 1 row; imported 1 decision (bo: 1)")
