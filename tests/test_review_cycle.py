"""The README's review cycle through the real flow: run → export → edit → import → rerun."""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from qualcode.cli import main
from qualcode.codebook import load_codebook
from qualcode.review_sheets import export_review_sheet, import_review_sheets
from qualcode.reviews import load_reviews

pytestmark = pytest.mark.prefect


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_review_cycle_retrains_and_updates_reliability(prefect_harness, sample_corpus,
                                                        codebook_path, tmp_path) -> None:
    from flows.code_corpus import code_corpus

    (sample_corpus / "reviews" / "coder_a.csv").unlink()  # a smaller start: coder_b only
    out = tmp_path / "outputs"
    book = load_codebook(codebook_path)
    first = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                        backend="fast")
    assert first["model"]["reviewed_segments"] == 60
    evaluation, reliability = _sha(out / "evaluation.csv"), _sha(out / "reliability.csv")

    # a new coder reviews ten random segments in the spreadsheet, as in the README
    xlsx, _, _ = export_review_sheet(out, book, strategy="random", n=10, coder="coder_c",
                                     reviews=load_reviews(sample_corpus / "reviews",
                                                          book.code_ids))
    workbook = load_workbook(xlsx)
    sheet = workbook.worksheets[0]
    col = {cell.value: cell.column for cell in sheet[1]}
    for r in range(2, sheet.max_row + 1):
        if r % 2:  # the coder rejects every other suggestion
            sheet.cell(r, col["codes"]).value = None
    workbook.save(xlsx)
    report = import_review_sheets([xlsx], sample_corpus / "reviews", out / "segments.csv", book)
    assert report.ok and report.appended == {"coder_c": 10}

    second = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                         backend="fast")
    assert second["model"]["retrained"] == "the reviews changed"
    assert second["model"]["reviewed_segments"] == 70
    assert _sha(out / "evaluation.csv") != evaluation
    assert _sha(out / "reliability.csv") != reliability
    table = pd.read_csv(out / "reliability.csv")
    assert table["coders"].astype(str).str.contains("coder_c").any()
    # the classifier-vs-coder rows are said to be in-sample, next to the evaluation
    assert "these are in-sample figures" in (out / "report.html").read_text("utf-8")
    codings = pd.read_csv(out / "codings.csv", dtype=str, keep_default_na=False)
    reviewed = pd.read_csv(sample_corpus / "reviews" / "coder_c.csv", dtype=str,
                           keep_default_na=False)
    for row in reviewed.itertuples():
        applied = set(codings.loc[codings["segment_id"] == row.segment_id, "code_id"])
        assert applied == {c for c in row.codes.split(";") if c}

    # A transcript edited after review: the decision on the changed segment is reported and
    # no longer applied or trained on (the coder saw other words).
    segments = pd.read_csv(out / "segments.csv", dtype=str, keep_default_na=False)
    texts = dict(zip(segments["segment_id"], segments["text"], strict=True))
    sid, edited = next((s, p) for s in reviewed["segment_id"]
                       for p in sorted(sample_corpus.rglob("*.txt"))
                       if texts[s] and texts[s] in p.read_text(encoding="utf-8"))
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        texts[sid], "These words were changed after the review."), encoding="utf-8")
    third = code_corpus(corpus=str(sample_corpus), codebook=str(codebook_path), out=str(out),
                        backend="fast")
    changed = [p for p in third["review_problems"] if f"segment '{sid}' has changed" in
               p["reason"]]
    assert len(changed) == 1 and changed[0]["path"] == "reviews/coder_c.csv"
    assert third["model"]["reviewed_segments"] == 69
    codings = pd.read_csv(out / "codings.csv", dtype=str, keep_default_na=False)
    assert "human" not in set(codings.loc[codings["segment_id"] == sid, "method"])
    table_after_run = pd.read_csv(out / "reliability.csv")
    # `qualcode agreement` leaves that decision out too, and says why
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        assert main(["agreement", "--corpus", str(sample_corpus), "--out", str(out),
                     "--codebook", str(codebook_path)]) == 0
    assert f"segment '{sid}' has changed since coder_c coded it" in stderr.getvalue()
    assert pd.read_csv(out / "reliability.csv").equals(table_after_run)
