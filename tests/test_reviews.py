"""Review sheets: export (strategies, trust gating, formula safety), import checks, history,
idempotence, the export → edit → import cycle, and adjudication of disagreements."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from qualcode.codebook import Category, Code, Codebook
from qualcode.documents import Segment
from qualcode.outputs import write_csv
from qualcode.review_sheets import (
    DUPLICATE,
    MISSING_CODER,
    SHEET_COLUMNS,
    TEXT_CHANGED,
    UNKNOWN_CODE,
    UNKNOWN_SEGMENT,
    NothingToExport,
    ReviewSheetError,
    export_disagreements,
    export_review_sheet,
    import_review_sheets,
    load_trust_status,
)
from qualcode.reviews import (
    ADJUDICATOR,
    REVIEW_FILE_COLUMNS,
    append_reviews,
    formula_safe,
    from_formula_safe,
    load_reviews,
    read_rows,
    resolve_codes,
    text_sha256,
)
from qualcode.training import training_set

CODES = ("apple", "banana", "cherry")
DANGEROUS = ["=HYPERLINK(\"http://x\",\"click\")", "+1+2", "-3 villages were cut off",
             "@SUM(A1)", "\tindented", "  =spaced", "'=already quoted"]
# segments.csv is written by the flow, whose CSV writer does not quote a lone CR; the
# review sheets' own writer does (see test_lone_carriage_returns_survive_the_csv_sheet).


def _book() -> Codebook:
    return Codebook(name="t", version="1", categories=[Category(id="fruit", name="Fruit")],
                    codes=[Code(id=c, name=c.title(), category="fruit",
                                definition=f"the passage is about {c}s") for c in CODES])


def _segments() -> list[list[str]]:
    rows = []
    texts = ["We negotiated for weeks.", *DANGEROUS, "Plain answer one.", "Plain answer two."]
    for doc in ("D1", "D2"):
        turn = 0
        for text in texts[:6] if doc == "D1" else texts[6:]:
            turn += 1
            rows.append([f"{doc}:{turn}", doc, "interview", "Interviewer", str(turn), "0", "1",
                         f"Question {turn}?", "False"])
            turn += 1
            rows.append([f"{doc}:{turn}", doc, "interview", "Respondent", str(turn), "0", "1",
                         text, "True"])
    return rows


SEGMENT_HEADER = ["segment_id", "doc_id", "source_type", "speaker", "turn", "char_start",
                  "char_end", "text", "codable", "case"]


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """A small outputs folder: segments, scores, codings and evaluation."""
    out = tmp_path / "outputs"
    segs = [[*r, "c1"] for r in _segments()]
    write_csv(out / "segments.csv", SEGMENT_HEADER, segs)
    codable = [r[0] for r in segs if r[8] == "True"]
    scores, codings = [], []
    for i, sid in enumerate(codable):
        for j, code in enumerate(CODES):
            score = ((i * 7 + j * 3) % 10) / 10 + 0.05
            decided = score >= 0.5
            scores.append([sid, code, f"{score:.4f}", "0.5000", int(decided)])
            if decided:
                codings.append([sid, sid.split(":")[0], code, "fruit", f"{score:.4f}", "model",
                                f"=evidence for {code}"])
    write_csv(out / "scores.csv", ["segment_id", "code_id", "score", "threshold", "decision"],
              scores)
    write_csv(out / "codings.csv", ["segment_id", "doc_id", "code_id", "category", "score",
                                    "method", "evidence"], codings)
    return out


@pytest.fixture
def reviews_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus" / "reviews"
    folder.mkdir(parents=True)
    return folder


def _codable(outputs: Path) -> list[str]:
    with (outputs / "segments.csv").open(encoding="utf-8-sig", newline="") as f:
        return [r["segment_id"] for r in csv.DictReader(f) if r["codable"] == "True"]


def _sheet_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    header = ["segment_id", "codes", "coder", "memo", "text_sha256"]
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, header, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _text(outputs: Path, sid: str) -> str:
    with (outputs / "segments.csv").open(encoding="utf-8-sig", newline="") as f:
        return next(r["text"] for r in csv.DictReader(f) if r["segment_id"] == sid)


# ------------------------------------------------------------------ formula safety


@pytest.mark.parametrize("value", [*DANGEROUS, "\rreturn", "", "plain", "'", "''=x", "a=b",
                                   "－1"])
def test_formula_safe_round_trips(value: str) -> None:
    safe = formula_safe(value)
    assert from_formula_safe(safe) == value
    assert not safe.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))


def test_exported_cells_are_never_formulas(outputs: Path) -> None:
    xlsx, csv_path, codes_csv = export_review_sheet(outputs, _book(), strategy="all",
                                                    name="sheet")
    assert (xlsx.name, csv_path.name, codes_csv.name) == ("sheet.xlsx", "sheet.csv",
                                                          "sheet_codes.csv")
    triggers = ("=", "+", "-", "@", "\t", "\r")
    book = load_workbook(xlsx)  # formulas would come back as '=...' with data_type 'f'
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate
                if cell.value is not None:
                    assert isinstance(cell.value, str)
                    assert not cell.value.lstrip(" ").startswith(triggers), cell.value
                    texts.append(cell.value)
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert all(not c.lstrip(" ").startswith(triggers) for c in cells)
    for text in DANGEROUS:
        assert formula_safe(text) in cells
        assert formula_safe(text) in texts


def test_lone_carriage_returns_survive_the_csv_sheet(tmp_path: Path, reviews_dir: Path) -> None:
    append_reviews(reviews_dir, [{"segment_id": "A:1", "codes": {"apple"}, "coder": "ana",
                                  "memo": "\rfirst\rsecond\nthird"}])
    (review,) = load_reviews(reviews_dir, CODES).reviews
    assert review.memo == "\rfirst\rsecond\nthird" and review.codes == {"apple"}


# ------------------------------------------------------------------ export


def test_sheet_layout_context_and_prefill(outputs: Path) -> None:
    xlsx, csv_path, _ = export_review_sheet(outputs, _book(), strategy="all", coder="ana",
                                            name="s")
    book = load_workbook(xlsx)
    assert book.sheetnames[:2] == ["review", "codes"]
    sheet = book["review"]
    header = [c.value for c in sheet[1]]
    assert header == list(SHEET_COLUMNS)
    letter = sheet.cell(row=1, column=header.index("text_sha256") + 1).column_letter
    assert sheet.column_dimensions[letter].hidden
    codes_sheet = [[c.value for c in r] for r in book["codes"].iter_rows()]
    assert codes_sheet[0][:4] == ["code_id", "name", "category", "definition"]
    assert [r[0] for r in codes_sheet[1:]] == list(CODES)
    assert codes_sheet[1][3] == "the passage is about apples"

    _, rows = read_rows(csv_path)
    by_id = {r["segment_id"]: r for _, r in rows}
    assert list(by_id) == _codable(outputs)  # interviewer turns are not in the sheet
    first = by_id["D1:2"]
    assert first["context"] == "Interviewer: Question 1?"
    assert first["text"] == "We negotiated for weeks."
    assert first["coder"] == "ana"
    assert first["text_sha256"] == text_sha256("We negotiated for weeks.")
    with (outputs / "codings.csv").open(encoding="utf-8-sig", newline="") as f:
        applied = [r["code_id"] for r in csv.DictReader(f) if r["segment_id"] == "D1:2"]
    assert first["codes"] == "; ".join(applied)
    for code in applied:
        assert f"{code} (" in first["suggested"] and f"{code}: =evidence" in first["evidence"]
    assert "<" in first["near_misses"] or len(applied) == len(CODES)


def test_uncertain_puts_untrusted_codes_closest_to_threshold_first(outputs: Path) -> None:
    write_csv(outputs / "evaluation.csv", ["code_id", "f1", "status"],
              [["apple", "0.9", "auto"], ["banana", "0.7", "check"], ["cherry", "0.5", "auto"]])
    assert load_trust_status(outputs / "evaluation.csv", CODES) == {
        "apple": "auto", "banana": "check", "cherry": "auto"}
    _, csv_path, _ = export_review_sheet(outputs, _book(), strategy="uncertain", n=4, name="u")
    chosen = [r["segment_id"] for _, r in read_rows(csv_path)[1]]
    with (outputs / "scores.csv").open(encoding="utf-8-sig", newline="") as f:
        banana = {r["segment_id"]: abs(float(r["score"]) - float(r["threshold"]))
                  for r in csv.DictReader(f) if r["code_id"] == "banana"}
    expected = sorted(banana, key=lambda s: (banana[s], _codable(outputs).index(s)))[:4]
    assert chosen == expected  # only the 'check' code decides, although apple is closer


def test_missing_evaluation_means_every_code_needs_humans(outputs: Path) -> None:
    assert set(load_trust_status(outputs / "evaluation.csv", CODES).values()) == {"human"}


def test_random_is_seeded_and_stratified_covers_every_code(outputs: Path) -> None:
    def pick(strategy: str, seed: int, n: int) -> list[str]:
        _, path, _ = export_review_sheet(outputs, _book(), strategy=strategy, n=n, seed=seed,
                                         name=f"{strategy}{seed}{n}")
        return [r["segment_id"] for _, r in read_rows(path)[1]]

    assert pick("random", 1, 5) == pick("random", 1, 5)
    assert len(set(pick("random", 1, 5))) == 5
    assert {tuple(pick("random", s, 5)) for s in range(6)} != {tuple(pick("random", 1, 5))}
    chosen = pick("stratified", 0, 4)
    with (outputs / "codings.csv").open(encoding="utf-8-sig", newline="") as f:
        applied: dict[str, set[str]] = {}
        for r in csv.DictReader(f):
            applied.setdefault(r["code_id"], set()).add(r["segment_id"])
    for code in CODES:  # every code has a segment where it applies
        assert applied[code] & set(chosen), code
    assert len(pick("all", 0, 1)) == len(_codable(outputs))


def test_reviewed_segments_are_left_out_unless_asked(outputs: Path, reviews_dir: Path) -> None:
    codable = _codable(outputs)
    append_reviews(reviews_dir, [{"segment_id": s, "codes": "", "coder": "ana"}
                                 for s in codable[:-2]])
    reviews = load_reviews(reviews_dir, CODES)
    _, path, _ = export_review_sheet(outputs, _book(), strategy="random", n=10,
                                     reviews=reviews, name="left")
    assert [r["segment_id"] for _, r in read_rows(path)[1]] == codable[-2:]
    _, path, _ = export_review_sheet(outputs, _book(), strategy="random", n=10,
                                     reviews=reviews, include_reviewed=True, name="all")
    assert len(read_rows(path)[1]) == 10
    append_reviews(reviews_dir, [{"segment_id": s, "codes": "", "coder": "ana"}
                                 for s in codable[-2:]])
    with pytest.raises(NothingToExport, match="include_reviewed"):
        export_review_sheet(outputs, _book(), reviews=load_reviews(reviews_dir, CODES))


def test_export_errors_say_what_to_do(tmp_path: Path, outputs: Path) -> None:
    with pytest.raises(ReviewSheetError, match="did you mean 'random'"):
        export_review_sheet(outputs, _book(), strategy="randon")
    with pytest.raises(ReviewSheetError, match="qualcode run"):
        export_review_sheet(tmp_path / "nowhere", _book())
    (outputs / "scores.csv").unlink()
    with pytest.raises(ReviewSheetError, match=r"scores\.csv"):
        export_review_sheet(outputs, _book(), strategy="uncertain")


# ------------------------------------------------------------------ the full cycle


def test_export_edit_import_cycle(outputs: Path, reviews_dir: Path) -> None:
    xlsx, _, _ = export_review_sheet(outputs, _book(), strategy="random", n=6, seed=3,
                                     name="cycle")
    # A coder works in the spreadsheet: accepts, corrects, clears, writes memos.
    book = load_workbook(xlsx)
    sheet = book["review"]
    col = {c.value: c.column for c in sheet[1]}
    edited: dict[str, frozenset[str]] = {}
    for r in range(2, sheet.max_row + 1):
        sid = sheet.cell(r, col["segment_id"]).value
        if r == 2:
            sheet.cell(r, col["codes"]).value = "Banana, cherry"  # Excel-style capital
        elif r == 3:
            sheet.cell(r, col["codes"]).value = None  # reviewed, no code
        elif r == 4:
            sheet.cell(r, col["codes"]).value = "apple\ncherry"  # Alt+Enter in a cell
        sheet.cell(r, col["coder"]).value = "Ana María"
        sheet.cell(r, col["memo"]).value = "=not a formula" if r == 2 else f"row {r}"
        edited[sid] = resolve_codes(sheet.cell(r, col["codes"]).value or "", CODES)[0]
    book.save(xlsx)

    report = import_review_sheets([xlsx], reviews_dir, outputs / "segments.csv", _book())
    assert report.ok, report.summary()
    assert report.appended == {"Ana María": 6} and report.imported == 6
    target = reviews_dir / "Ana_María.csv"
    assert report.files == [target]
    reviews = load_reviews(reviews_dir, CODES)
    assert {r.segment_id: r.codes for r in reviews.reviews} == edited
    assert reviews.decisions() == edited
    first = reviews.reviews[0]
    assert first.codes == frozenset({"banana", "cherry"})
    assert first.memo == "=not a formula" and first.sheet == "cycle.xlsx"
    header, _ = read_rows(target)
    assert [h.lower() for h in header] == list(REVIEW_FILE_COLUMNS)
    with target.open(encoding="utf-8-sig", newline="") as f:
        raw = list(csv.reader(f))
    assert raw[1][3] == "'=not a formula"  # the review file is formula-safe too

    # Importing the same sheet again changes nothing.
    before = target.read_bytes()
    again = import_review_sheets([xlsx], reviews_dir, outputs / "segments.csv", _book())
    assert again.ok and again.imported == 0 and again.unchanged == 6
    assert target.read_bytes() == before


def test_history_is_kept_and_the_latest_decision_wins(outputs: Path, reviews_dir: Path,
                                                      tmp_path: Path) -> None:
    sid = _codable(outputs)[0]
    sha = text_sha256(_text(outputs, sid))
    other = _codable(outputs)[1]
    sheet = _sheet_csv(tmp_path / "one.csv", [
        {"segment_id": sid, "codes": "apple", "coder": "bo", "text_sha256": sha},
        {"segment_id": other, "codes": "", "coder": "bo"},
    ])
    assert import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES).ok
    _sheet_csv(sheet, [
        {"segment_id": sid, "codes": "banana", "coder": "bo", "text_sha256": sha},
        {"segment_id": other, "codes": "", "coder": "bo"},
    ])
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert report.imported == 1 and report.unchanged == 1
    later = _sheet_csv(tmp_path / "two.csv", [{"segment_id": sid, "codes": "cherry",
                                               "coder": "bo"}])
    assert import_review_sheets([later], reviews_dir, outputs / "segments.csv", CODES).ok
    reviews = load_reviews(reviews_dir, CODES)
    assert [r.codes for r in reviews.reviews if r.segment_id == sid] == [
        {"apple"}, {"banana"}, {"cherry"}]  # every decision is kept, in order
    assert reviews.latest()[(sid, "bo")].codes == {"cherry"}
    assert reviews.decisions()[sid] == {"cherry"}
    # Re-importing the older sheet (e.g. a glob over all sheets) does not bring it back.
    report = import_review_sheets([sheet, later], reviews_dir, outputs / "segments.csv", CODES)
    assert report.ok and report.imported == 0
    assert load_reviews(reviews_dir, CODES).decisions()[sid] == {"cherry"}


def test_existing_review_files_are_extended_not_rewritten(outputs: Path, reviews_dir: Path,
                                                          tmp_path: Path) -> None:
    old = reviews_dir / "bo.csv"
    old.write_text("segment_id,doc_id,codes,coder,format\nD1:2,D1,apple,bo,txt\n",
                   encoding="utf-8")
    sheet = _sheet_csv(tmp_path / "s.csv", [{"segment_id": "D1:4", "codes": "banana",
                                             "coder": "bo"}])
    assert import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES).ok
    header, rows = read_rows(old)
    assert header[:5] == ["segment_id", "doc_id", "codes", "coder", "format"]
    assert [(r["segment_id"], r["codes"], r["format"]) for _, r in rows] == [
        ("D1:2", "apple", "txt"), ("D1:4", "banana", "")]
    assert rows[1][1]["sheet"] == "s.csv" and rows[1][1]["sheet_row"] == "2"


# ------------------------------------------------------------------ import errors


def test_each_import_problem_is_reported_with_its_row(outputs: Path, reviews_dir: Path,
                                                      tmp_path: Path) -> None:
    codable = _codable(outputs)
    sha = {s: text_sha256(_text(outputs, s)) for s in codable}
    sheet = _sheet_csv(tmp_path / "bad.csv", [
        {"segment_id": codable[0], "codes": "apple", "coder": "cy",
         "text_sha256": sha[codable[0]]},  # 2 ok
        {"segment_id": codable[1], "codes": "aple; banana", "coder": "cy"},  # 3 unknown code
        {"segment_id": "D1:99", "codes": "apple", "coder": "cy"},  # 4 unknown segment
        {"segment_id": codable[2], "codes": "cherry", "coder": ""},  # 5 missing coder
        {"segment_id": codable[3], "codes": "apple", "coder": "cy",
         "text_sha256": text_sha256("the old text")},  # 6 text changed
        {"segment_id": codable[4], "codes": "banana", "coder": "cy"},  # 7 ok
        {"segment_id": codable[4], "codes": "banana", "coder": "cy"},  # 8 same again
        {"segment_id": codable[5], "codes": "apple", "coder": "cy"},  # 9 conflicting pair
        {"segment_id": codable[5], "codes": "cherry", "coder": "cy"},  # 10
    ])
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", _book())
    found = {(p.kind, p.row) for p in report.problems}
    assert found == {(UNKNOWN_CODE, 3), (UNKNOWN_SEGMENT, 4), (MISSING_CODER, 5),
                     (TEXT_CHANGED, 6), (DUPLICATE, 8), (DUPLICATE, 10)}
    text = {p.row: str(p) for p in report.problems}
    assert text[3] == ("bad.csv:3: unknown code id 'aple' (did you mean 'apple'?) — correct it "
                       "(valid ids are on the 'codes' sheet) and import the sheet again")
    assert "unknown segment 'D1:99' (did you mean 'D1:" in text[4]
    assert "no coder" in text[5] and "--coder" in text[5]
    assert "changed since the sheet was exported" in text[6]
    assert "first at row 7" in text[8] and "imported once" in text[8]
    assert "first at row 9" in text[10] and "neither row was imported" in text[10]
    # Nothing valid is dropped: rows 2 and 7 are imported.
    reviews = load_reviews(reviews_dir, CODES)
    assert {(r.segment_id, r.row) for r in reviews.reviews} == {(codable[0], 2), (codable[4], 3)}
    assert "problems" in report.summary() and "bad.csv:3" in report.summary()


def test_coder_option_fills_missing_coders_and_sheet_without_coder_column(
        outputs: Path, reviews_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "nocoder.csv"
    path.write_text("segment_id,codes\nD1:2,apple\n", encoding="utf-8")
    report = import_review_sheets([path], reviews_dir, outputs / "segments.csv", CODES)
    assert [(p.kind, p.row) for p in report.problems] == [(MISSING_CODER, 1)]
    assert report.imported == 0
    report = import_review_sheets([path], reviews_dir, outputs / "segments.csv", CODES,
                                  coder="dee")
    assert report.ok and report.appended == {"dee": 1}


def test_semicolon_csv_from_european_excel(outputs: Path, reviews_dir: Path,
                                           tmp_path: Path) -> None:
    sheet = _sheet_csv(tmp_path / "eu.csv", [{"segment_id": "D1:2", "codes": "apple;cherry",
                                              "coder": "eva"}], delimiter=";")
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert report.ok, report.summary()
    assert load_reviews(reviews_dir, CODES).decisions() == {"D1:2": {"apple", "cherry"}}


def test_the_csv_and_xlsx_of_one_export_are_not_both_imported(outputs: Path, reviews_dir: Path
                                                             ) -> None:
    xlsx, csv_path, codes_csv = export_review_sheet(outputs, _book(), strategy="random", n=3,
                                                    coder="fay", name="twin")
    os.utime(csv_path, (1_000_000, 1_000_000))  # the coder edited and saved the workbook
    report = import_review_sheets([xlsx, csv_path, codes_csv], reviews_dir,
                                  outputs / "segments.csv", CODES)
    assert report.imported == 3
    assert report.skipped_files == ["twin_codes.csv"]
    assert [(p.path, p.kind) for p in report.problems] == [("twin.csv", DUPLICATE)]
    assert "twin.xlsx, which was saved later" in str(report.problems[0])
    later = import_review_sheets([csv_path], reviews_dir, outputs / "segments.csv", CODES)
    assert later.imported == 0
    assert "already imported from twin.xlsx" in str(later.problems[0])


def test_unreadable_sheets_are_reported(outputs: Path, reviews_dir: Path, tmp_path: Path
                                        ) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,label\n1,x\n", encoding="utf-8")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    report = import_review_sheets([wrong, broken, tmp_path / "missing.csv"], reviews_dir,
                                  outputs / "segments.csv", CODES)
    messages = [str(p) for p in report.problems]
    assert any("wrong.csv:1: has no 'segment_id' or 'codes' column" in m for m in messages)
    assert any("broken.xlsx" in m and "Excel" in m for m in messages)
    assert any("missing.csv" in m and "does not exist" in m for m in messages)
    assert not list(reviews_dir.iterdir())


# ------------------------------------------------------------------ adjudication


def test_disagreements_are_adjudicated(outputs: Path, reviews_dir: Path) -> None:
    codable = _codable(outputs)
    append_reviews(reviews_dir, [
        {"segment_id": codable[0], "codes": "apple", "coder": "ana", "memo": "clear case"},
        {"segment_id": codable[1], "codes": "banana", "coder": "ana"},
        {"segment_id": codable[2], "codes": "cherry", "coder": "ana"},
        {"segment_id": codable[0], "codes": "apple;banana", "coder": "bo"},
        {"segment_id": codable[1], "codes": "", "coder": "bo"},
        {"segment_id": codable[2], "codes": "cherry", "coder": "bo"},  # agreement
    ])
    reviews = load_reviews(reviews_dir, CODES)
    xlsx = export_disagreements(outputs, reviews, codebook=_book(), name="dis")
    assert xlsx == outputs / "review" / "dis.xlsx" and (outputs / "review" / "dis.csv").exists()
    book = load_workbook(xlsx)
    sheet = book["review"]
    col = {c.value: c.column for c in sheet[1]}
    assert {"codes by ana", "codes by bo", "disputed", "codes", "coder"} <= set(col)
    rows = {sheet.cell(r, col["segment_id"]).value: r for r in range(2, sheet.max_row + 1)}
    assert set(rows) == {codable[0], codable[1]}
    r0, r1 = rows[codable[0]], rows[codable[1]]
    assert sheet.cell(r0, col["codes by ana"]).value == "apple"
    assert sheet.cell(r0, col["codes by bo"]).value == "apple; banana"
    assert sheet.cell(r1, col["codes by bo"]).value == "(none)"
    assert sheet.cell(r0, col["disputed"]).value == "banana"
    assert "ana: clear case" in sheet.cell(r0, col["memos"]).value
    assert sheet.cell(r0, col["codes"]).value is None
    assert sheet.cell(r0, col["coder"]).value == ADJUDICATOR
    assert sheet.cell(r0, col["text"]).value == formula_safe(_text(outputs, codable[0]))
    sheet.cell(r0, col["codes"]).value = "apple"  # r1 is left undecided
    book.save(xlsx)

    report = import_review_sheets([xlsx], reviews_dir, outputs / "segments.csv", _book())
    assert report.ok and report.appended == {ADJUDICATOR: 1} and report.undecided == 1
    decisions = load_reviews(reviews_dir, CODES).decisions()
    assert decisions[codable[0]] == {"apple"}  # the adjudicator wins over the majority
    assert decisions[codable[1]] == {"banana"}  # still the majority rule (1 of 2)
    again = export_disagreements(outputs, load_reviews(reviews_dir, CODES), name="dis2")
    _, rows2 = read_rows(again.with_suffix(".csv"))
    assert [r["segment_id"] for _, r in rows2] == [codable[1]]

    # "(none)" decides "no code"; then nothing is left to adjudicate.
    book = load_workbook(again)
    sheet = book["review"]
    col = {c.value: c.column for c in sheet[1]}
    sheet.cell(2, col["codes"]).value = "(none)"
    book.save(again)
    assert import_review_sheets([again], reviews_dir, outputs / "segments.csv", CODES).ok
    assert load_reviews(reviews_dir, CODES).decisions()[codable[1]] == frozenset()
    with pytest.raises(NothingToExport):
        export_disagreements(outputs, load_reviews(reviews_dir, CODES))


def test_the_sample_flow_outputs_are_not_needed_for_segments_none(tmp_path: Path,
                                                                  reviews_dir: Path) -> None:
    sheet = _sheet_csv(tmp_path / "x.csv", [{"segment_id": "A:1", "codes": "apple",
                                             "coder": "gil"}])
    report = import_review_sheets([sheet], reviews_dir, None, CODES)
    assert report.ok and report.imported == 1
    shutil.rmtree(reviews_dir)
    report = import_review_sheets([sheet], reviews_dir, None, CODES)
    assert report.imported == 1 and (reviews_dir / "gil.csv").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_review_files_reading_rules(reviews_dir: Path) -> None:
    gold = _write(reviews_dir / "gold.csv", "segment_id,doc_id,codes,coder\n"
                  "A:1,A,apple;kiwi,gold\nA:2,A,,gold\nA:1,A,Cherry,gold\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.segment_id, r.codes, r.coder, r.source, r.row) for r in reviews.reviews] == [
        ("A:2", frozenset(), "gold", "reviews/gold.csv", 3),
        ("A:1", {"cherry"}, "gold", "reviews/gold.csv", 4)]
    assert [str(p) for p in reviews.problems] == [
        "reviews/gold.csv:2: unknown code id 'kiwi' — the row was left out (not read as "
        "'no code'); correct the id (valid ids are in the codebook) and run again"]
    assert reviews.decisions() == {"A:1": {"cherry"}, "A:2": frozenset()}
    named = load_reviews([gold], CODES)
    assert named.sha256 == reviews.sha256
    assert {r.source for r in named.reviews} == {str(gold)}  # a named file: its path


def test_a_row_with_an_unknown_code_is_left_out_not_read_as_no_code(reviews_dir: Path) -> None:
    _write(reviews_dir / "bad_codes.csv", "segment_id,codes,coder\n"
           "A:1,aple,ana\n"  # 2: only an unknown id (a typo)
           "A:2,,ana\n"  # 3: reviewed, no code
           "A:3,apple; kiwi; Banan,ana\n")  # 4: two unknown ids beside a known one
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.decisions() == {"A:2": frozenset()}
    assert [(r.segment_id, r.row) for r in reviews.reviews] == [("A:2", 3)]
    fix = ("the row was left out (not read as 'no code'); correct the id (valid ids are in "
           "the codebook) and run again")
    assert [str(p) for p in reviews.problems] == [
        f"reviews/bad_codes.csv:2: unknown code id 'aple' (did you mean 'apple'?) — {fix}",
        f"reviews/bad_codes.csv:4: unknown code id 'kiwi' — {fix}",
        f"reviews/bad_codes.csv:4: unknown code id 'Banan' (did you mean 'banana'?) — {fix}"]


def test_a_bad_latest_row_withdraws_the_coders_earlier_decision(reviews_dir: Path) -> None:
    _write(reviews_dir / "ana.csv", "segment_id,codes,coder\n"
           "A:1,apple,ana\nA:2,apple,ana\n"  # earlier decisions
           "A:1,aple,ana\nA:2,aple,ana\n"  # later, with a typo
           "A:2,banana,ana\n")  # corrected for A:2 only
    _write(reviews_dir / "bo.csv", "segment_id,codes,coder\nA:1,cherry,bo\nA:2,cherry,bo\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert [(r.source, r.row) for r in reviews.latest().values()] == [
        ("reviews/ana.csv", 6), ("reviews/bo.csv", 2), ("reviews/bo.csv", 3)]
    # A:1 is bo's alone (ana's stale 'apple' does not count); A:2: ana and bo disagree.
    assert reviews.decisions() == {"A:1": {"cherry"}, "A:2": {"banana", "cherry"}}
    assert [(p.path, p.line) for p in reviews.problems] == [
        ("reviews/ana.csv", 4), ("reviews/ana.csv", 5)]


def test_rows_without_segment_id_or_coder_are_reported(reviews_dir: Path) -> None:
    _write(reviews_dir / "holes.csv", "segment_id,codes,coder\n"
           ",apple,ana\n"  # 2: no segment_id
           "A:2,banana,\n"  # 3: no coder (no longer attributed to a coder 'holes')
           "A:3,cherry,ana\n")
    _write(reviews_dir / "nocoder.csv", "segment_id,codes\nA:4,apple\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.decisions() == {"A:3": {"cherry"}}
    assert reviews.coders == ["ana"]
    assert [str(p) for p in reviews.problems] == [
        "reviews/holes.csv:2: no segment_id — the row was left out (it cannot be matched to "
        "a segment); restore its segment_id",
        "reviews/holes.csv:3: no coder — the row was left out; write the coder's name in its "
        "'coder' cell, or delete the row if nobody reviewed it",
        "reviews/nocoder.csv:1: has no 'coder' column (its columns: 'segment_id', 'codes') — "
        "the file was left out; a review file needs segment_id, codes and coder columns: "
        "rename the column that holds each"]


def test_coder_names_in_other_case_or_spacing_are_one_coder(reviews_dir: Path) -> None:
    _write(reviews_dir / "bo.csv", "segment_id,codes,coder\nA:1,cherry,bo\nA:2,banana,bo\n")
    _write(reviews_dir / "ana_lee.csv", "segment_id,codes,coder\n"
           "A:1,apple,ana lee\n"
           "A:2,apple,Ana Lee\n"  # 3: another case, noted once
           "A:3,cherry, Ana Lee \n"
           "A:2,aple,ana  lee\n")  # 5: the latest on A:2 (a typo): withdraws row 3's
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.coders == ["ana lee", "bo"]
    assert {r.coder for r in reviews.reviews} == {"ana lee", "bo"}
    assert reviews.decisions() == {"A:1": {"apple", "cherry"}, "A:2": {"banana"},
                                   "A:3": {"cherry"}}
    assert [(str(p), p.note) for p in reviews.problems] == [
        ("reviews/ana_lee.csv:3: coder 'Ana Lee' is read as 'ana lee' (the same name in "
         "another case) — write it the same way everywhere", True),
        ("reviews/ana_lee.csv:5: coder 'ana  lee' is read as 'ana lee' (the same name with "
         "other spaces) — write it the same way everywhere", True),
        ("reviews/ana_lee.csv:5: unknown code id 'aple' (did you mean 'apple'?) — the row "
         "was left out (not read as 'no code'); correct the id (valid ids are in the "
         "codebook) and run again", False)]
    # a later decision of 'ANA LEE' goes on in ana_lee.csv, so it is the latest one
    assert append_reviews(reviews_dir, [{"segment_id": "A:3", "codes": "banana",
                                         "coder": "ANA LEE"}]) == [reviews_dir / "ana_lee.csv"]
    assert sorted(p.name for p in reviews_dir.iterdir()) == ["ana_lee.csv", "bo.csv"]
    assert load_reviews(reviews_dir, CODES).decisions()["A:3"] == {"banana"}


def test_decisions_on_segments_not_in_the_corpus_are_listed(reviews_dir: Path) -> None:
    _write(reviews_dir / "ana.csv", "segment_id,codes,coder\n"
           "D1:2,apple,ana\nD1:44,apple,ana\nD1:4,,ana\nD1:44,banana,ana\nZZ:1,,ana\n")
    _write(reviews_dir / "bo.csv", "segment_id,codes,coder\nD1:3,cherry,bo\n")
    reviews = load_reviews(reviews_dir, CODES)
    segments = [Segment(f"D1:{n}", "D1", "interview", "Respondent", n, 0, 1, "text",
                        codable=n != 3) for n in (2, 3, 4, 5)]
    data = training_set(segments, reviews.decisions())
    assert data.segment_ids == ["D1:2", "D1:4"] and data.unmatched == 3
    why = ("is not among the corpus's codable segments, so the decision was not used; correct "
           "the id, or update or delete the row if the document was renamed or removed")
    assert [str(p) for p in reviews.unmatched(data.segment_ids)] == [
        f"reviews/ana.csv:5: unknown segment 'D1:44' (did you mean 'D1:4'?) — it {why}",
        f"reviews/ana.csv:6: unknown segment 'ZZ:1' — it {why}",
        f"reviews/bo.csv:2: unknown segment 'D1:3' (did you mean 'D1:4'?) — it {why}"]
    # told which segments are interviewer turns, D1:3 is named as one
    uncoded = {s.segment_id: "Moderator" for s in segments if not s.codable}
    assert str(reviews.unmatched(data.segment_ids, uncoded)[2]) == (
        "reviews/bo.csv:2: segment 'D1:3' is a turn of 'Moderator', an interviewer label, and "
        "interviewer turns are not coded, so the decision was not used — correct the segment "
        "id, or delete the row; if this speaker is no interviewer, run with "
        "--interviewer-labels that leave the label out")


def test_a_review_sheet_saved_into_the_reviews_folder_is_reported_not_read(tmp_path: Path
                                                                          ) -> None:
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "anna.csv").write_text("segment_id,codes,coder\nD1:1,apple,anna\n",
                                     encoding="utf-8")
    (folder / "anna_sheet.xlsx").write_bytes(b"PK\x03\x04 not opened")
    (folder / "notes.txt").write_text("what we agreed", encoding="utf-8")
    reviews = load_reviews(folder, ["apple"])
    assert [r.segment_id for r in reviews.reviews] == ["D1:1"]
    assert [str(p) for p in reviews.problems] == [
        "reviews/anna_sheet.xlsx: is not a review file (.csv) and was not read — import a "
        "review sheet with `qualcode review import FILE`, which checks it and adds its "
        "decisions here"]


def test_decisions_on_text_that_has_changed_are_not_used(reviews_dir: Path) -> None:
    old, new = "We waited at the checkpoint.", "Sorry, one second, my phone."
    _write(reviews_dir / "zed.csv", "segment_id,codes,coder,text_sha256\n"
           f"A:2,apple,zed,{text_sha256(old)}\n"  # A:2's words moved to A:4
           f"A:3,cherry,zed,{text_sha256('Gone entirely.').upper()}\n"
           f"A:5,banana,zed,{text_sha256('Still the same.')}\n"
           "A:6,apple,zed,\n")  # written by hand: nothing to check
    reviews = load_reviews(reviews_dir, CODES)
    texts = {"A:2": new, "A:3": "New words.", "A:4": old, "A:5": "Still the same.",
             "A:6": "Anything."}
    checked = reviews.checked(texts)
    assert checked.decisions() == {"A:5": {"banana"}, "A:6": {"apple"}}
    assert reviews.decisions().keys() == {"A:2", "A:3", "A:5", "A:6"}  # unchanged
    problems = [str(p) for p in checked.problems]
    assert len(problems) == 2
    assert problems[0].startswith("reviews/zed.csv:2: segment 'A:2' has changed since zed "
                                  "coded it (the text zed coded is now segment 'A:4')")
    assert problems[1].startswith("reviews/zed.csv:3: segment 'A:3' has changed")
    assert "review the segment again" in problems[1]
    assert reviews.checked({"A:5": "Still the same."}) is reviews


# ------------------------------------------------------------------ hand-edited files


def test_codes_separated_by_spaces_or_bars_are_read_one_by_one(outputs: Path,
                                                              reviews_dir: Path,
                                                              tmp_path: Path) -> None:
    sheet = _sheet_csv(tmp_path / "typed.csv", [
        {"segment_id": "D1:2", "codes": "apple cherry", "coder": "ida"},
        {"segment_id": "D1:4", "codes": "Banana | apple", "coder": "ida"},
        {"segment_id": "D1:6", "codes": "apple kiwi", "coder": "ida"}])
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert [(p.row, p.kind) for p in report.problems] == [(4, UNKNOWN_CODE)]
    assert "unknown code id 'apple kiwi'" in str(report.problems[0])
    assert load_reviews(reviews_dir, CODES).decisions() == {
        "D1:2": {"apple", "cherry"}, "D1:4": {"apple", "banana"}}
    # the same by hand in the reviews folder
    _write(reviews_dir / "zoe.csv", "segment_id,codes,coder\nA:1,cherry/banana,zoe\n"
           "A:2,Big Apple,zoe\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.decisions()["A:1"] == {"banana", "cherry"}
    assert "A:2" not in reviews.decisions()
    assert [str(p)[:46] for p in reviews.problems] == [
        "reviews/zoe.csv:3: unknown code id 'Big Apple'"]


def test_a_column_named_twice_leaves_the_file_out(outputs: Path, reviews_dir: Path,
                                                  tmp_path: Path) -> None:
    text = "segment_id,codes,coder,Codes\nD1:2,apple,ida,\nD1:4,apple,ida,banana\n"
    sheet = _write(tmp_path / "twice.csv", text)
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert report.imported == 0
    assert [str(p) for p in report.problems] == [
        "twice.csv:1: has 2 'codes' columns (B and D) — nothing was imported from it (which "
        "one holds the decisions is unclear); delete or rename the others and import it again"]
    _write(reviews_dir / "ida.csv", text)
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.reviews == []
    assert [str(p) for p in reviews.problems] == [
        "reviews/ida.csv:1: has 2 'codes' columns (B and D) — the file was left out (which one "
        "holds the decisions is unclear); delete or rename the others"]


def test_column_names_with_spaces_and_capitals_are_read(outputs: Path, reviews_dir: Path,
                                                        tmp_path: Path) -> None:
    sheet = _write(tmp_path / "renamed.csv", "Coder;Codes;Segment ID\nida;apple;D1:2\n")
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert report.ok, report.summary()
    _write(reviews_dir / "zoe.csv", "Segment-ID,CODES,Coder\nA:1,cherry,zoe\n")
    assert load_reviews(reviews_dir, CODES).decisions() == {"D1:2": {"apple"},
                                                            "A:1": {"cherry"}}


def test_empty_review_files_are_reported_as_empty(outputs: Path, reviews_dir: Path,
                                                  tmp_path: Path) -> None:
    sheet = _write(tmp_path / "empty.csv", "")
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert [str(p) for p in report.problems] == [
        "empty.csv:1: is empty — nothing was imported; save the review sheet into it again"]
    _write(reviews_dir / "empty.csv", "")
    assert [str(p) for p in load_reviews(reviews_dir, CODES).problems] == [
        "reviews/empty.csv:1: is empty — the file was left out; delete it, or save the review "
        "sheet into it again"]


def test_a_review_file_saved_as_unicode_text_is_reported(reviews_dir: Path) -> None:
    # Excel's "Unicode Text" export: UTF-16 with a byte-order mark, tab-separated, .txt
    text = "segment_id\tcodes\tcoder\r\nA:1\tapple\tida\r\n"
    (reviews_dir / "ida.txt").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    _write(reviews_dir / "notes.txt", "segment A:3 is hard to code")
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.reviews == []
    assert [str(p) for p in reviews.problems] == [
        "reviews/ida.txt: is a review file saved as text (.txt) and was not read — save it as "
        "CSV (.csv) in this folder, or import it with `qualcode review import FILE`"]


def test_a_code_name_typed_for_its_id_is_reported_with_the_id(outputs: Path,
                                                              reviews_dir: Path,
                                                              tmp_path: Path) -> None:
    book = Codebook(name="t", version="1", categories=[Category(id="fruit", name="Fruit")],
                    codes=[Code(id=c, name=f"Fresh {c} fruit", category="fruit",
                                definition=f"the passage is about {c}s") for c in CODES])
    sheet = _sheet_csv(tmp_path / "names.csv", [
        {"segment_id": "D1:2", "codes": "fresh  Cherry fruit", "coder": "ida"},
        {"segment_id": "D1:4", "codes": "banana", "coder": "ida"}])
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", book)
    assert [str(p) for p in report.problems] == [
        "names.csv:2: unknown code id 'fresh  Cherry fruit' (the name of code 'cherry': write "
        "its id) — correct it (valid ids are on the 'codes' sheet) and import the sheet again"]
    assert load_reviews(reviews_dir, CODES).decisions() == {"D1:4": {"banana"}}
    # the same in a file saved straight into the reviews folder, read with the names
    _write(reviews_dir / "bo.csv", "segment_id,codes,coder\nD1:2,Fresh cherry FRUIT,bo\n")
    assert [str(p) for p in load_reviews(reviews_dir, CODES, book.ids_by_name).problems] == [
        "reviews/bo.csv:2: unknown code id 'Fresh cherry FRUIT' (the name of code 'cherry': "
        "write its id) — the row was left out (not read as 'no code'); correct the id (valid "
        "ids are in the codebook) and run again"]


def test_a_formula_or_a_no_code_mark_in_codes_is_named_as_such(outputs: Path,
                                                               reviews_dir: Path,
                                                               tmp_path: Path) -> None:
    book = Codebook(name="t", version="1", categories=[Category(id="fruit", name="Fruit")],
                    codes=[Code(id=c, name=c, category="fruit",
                                definition=f"the passage is about {c}s") for c in CODES])
    sheet = _sheet_csv(tmp_path / "marks.csv", [
        {"segment_id": "D1:2", "codes": "=B3", "coder": "ida"},
        {"segment_id": "D1:4", "codes": "N/A", "coder": "ida"},
        {"segment_id": "D1:5", "codes": "banana", "coder": "ida"}])
    report = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", book)
    assert [str(p) for p in report.problems] == [
        "marks.csv:2: unknown code id '=B3' (a formula, not code ids: type the ids "
        "themselves) — correct it (valid ids are on the 'codes' sheet) and import the sheet "
        "again",
        "marks.csv:3: unknown code id 'N/A' (for 'no code', leave the cell empty or write "
        "(none)) — correct it (valid ids are on the 'codes' sheet) and import the sheet again"]
    assert load_reviews(reviews_dir, CODES).decisions() == {"D1:5": {"banana"}}
    # a review file put into reviews/ by hand gets the same hints
    (reviews_dir / "hand.csv").write_text(
        "segment_id,codes,coder\nD1:2,-,ida\n", encoding="utf-8")
    problems = [str(p) for p in load_reviews(reviews_dir, CODES).problems]
    assert any("unknown code id '-' (for 'no code', leave the cell empty" in p
               for p in problems), problems


def test_appending_to_a_file_with_other_header_spellings_keeps_it_readable(
        reviews_dir: Path) -> None:
    _write(reviews_dir / "ana.csv", "Segment ID,Codes,Coder\nA:1,apple,ana\n")
    append_reviews(reviews_dir, [{"segment_id": "A:2", "codes": {"banana"}, "coder": "ana"}])
    rows = list(csv.reader((reviews_dir / "ana.csv").read_text(encoding="utf-8-sig")
                           .splitlines()))
    assert rows[0][:3] == ["Segment ID", "Codes", "Coder"]  # no second segment_id column
    assert rows[2][:3] == ["A:2", "banana", "ana"]
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.problems == []
    assert reviews.decisions() == {"A:1": {"apple"}, "A:2": {"banana"}}


def test_a_sheet_imported_again_under_another_spelling_of_the_coder_adds_nothing(
        outputs: Path, reviews_dir: Path, tmp_path: Path) -> None:
    _write(reviews_dir / "alice.csv", "segment_id,codes,coder\nD1:4,banana,alice\n")
    sheet = _sheet_csv(tmp_path / "sheet.csv", [
        {"segment_id": "D1:2", "codes": "apple", "coder": "Alice"},
        {"segment_id": "D1:4", "codes": "banana", "coder": " ALICE "}])
    first = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert (first.appended, first.unchanged) == ({"alice": 1}, 1)
    again = import_review_sheets([sheet], reviews_dir, outputs / "segments.csv", CODES)
    assert (again.appended, again.unchanged) == ({}, 2)
    assert sorted(p.name for p in reviews_dir.iterdir()) == ["alice.csv"]
    rows = (reviews_dir / "alice.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == 3  # the header, the decision on record and the new one
    assert load_reviews(reviews_dir, CODES).decisions() == {"D1:2": {"apple"},
                                                            "D1:4": {"banana"}}


@pytest.mark.parametrize("header", ["Segment ID,Code,Coder Name", "SegmentID,codes,Reviewer",
                                    "segment_id,Code IDs,annotator"])
def test_other_names_of_the_decision_columns_are_read(reviews_dir: Path, header: str) -> None:
    _write(reviews_dir / "fay.csv", f"{header}\nA:1,apple,fay\nA:2,,fay\n")
    reviews = load_reviews(reviews_dir, CODES)
    assert reviews.problems == []
    assert reviews.decisions() == {"A:1": {"apple"}, "A:2": set()}
    append_reviews(reviews_dir, [{"segment_id": "A:3", "codes": "banana", "coder": "fay"}])
    assert load_reviews(reviews_dir, CODES).decisions()["A:3"] == {"banana"}
    assert (reviews_dir / "fay.csv").read_text(encoding="utf-8-sig").startswith(header)


def test_a_code_name_with_a_comma_is_reported_whole_with_its_id(tmp_path: Path) -> None:
    from qualcode.reviews import code_hint

    names = {"access, denied": "access_denied", "apple": "apple"}
    ids = [*CODES, "access_denied"]
    codes, unknown = resolve_codes("Access, Denied; banana, cherry", ids, names)
    assert codes == {"banana", "cherry"} and unknown == ["Access, Denied"]
    assert code_hint(unknown[0], ids, names) == (
        " (the name of code 'access_denied': write its id)")
    # without the names (or for other words) commas still separate ids
    assert resolve_codes("Access, Denied", ids)[1] == ["Access", "Denied"]
    reviews = tmp_path / "reviews"
    reviews.mkdir()
    (reviews / "anna.csv").write_text(
        'segment_id,codes,coder\nD:1,"access, denied",anna\nD:2,"banana,cherry",anna\n',
        encoding="utf-8")
    loaded = load_reviews(reviews, ids, names)
    assert [(r.segment_id, set(r.codes)) for r in loaded.reviews] == [
        ("D:2", {"banana", "cherry"})]
    assert [p.reason.split(" — ")[0] for p in loaded.problems] == [
        "unknown code id 'access, denied' (the name of code 'access_denied': write its id)"]
