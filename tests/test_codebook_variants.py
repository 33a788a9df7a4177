"""Codebooks that are not the default one: names another table already uses, and YAML
mistakes whose line is far from where YAML notices them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qualcode.codebook import validate_codebook

CODEBOOK = """\
name: Someone else's study
version: "2"
categories:
  - id: acts
    name: Acts
  - id: results
    name: Results
codes:
  - id: dialogue
    name: Dialogue, "talks"
    category: acts
    definition: Staff meet the armed group to negotiate access.
    rules:
      phrases: [negotiated access, sat down with the commander]
  - id: pause
    name: Pausing aid
    category: acts
    definition: The organisation suspends aid.
    rules:
      phrases: [suspended the distribution]
  - id: deal
    name: A deal
    category: results
    definition: An agreement was reached.
    rules:
      phrases: [reached an agreement]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qualcode.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_base_codebook_is_valid(tmp_path: Path) -> None:
    book, problems = validate_codebook(_write(tmp_path, CODEBOOK))
    assert problems == [] and book is not None and book.code_ids == ["dialogue", "pause", "deal"]


# A code called like a column of cooccurrence.csv crashed writing the outputs (pandas:
# "cannot insert code_id, already exists") after the whole corpus was coded; one called
# like a column of the category pair tables or of the code-document matrix overwrote it
# silently; one called micro_avg was taken for evaluation.csv's average row.
@pytest.mark.parametrize(("code_id", "table"), [
    ("code_id", "cooccurrence.csv"),
    ("name", "cooccurrence_<a>_x_<b>.csv"),
    ("segments", "cooccurrence_<a>_x_<b>.csv"),
    ("Status", "cooccurrence_<a>_x_<b>.csv"),
    ("n_segments", "code_document_matrix.csv"),
    ("n_codable", "code_document_matrix.csv"),
    ("micro_avg", "evaluation.csv"),
    ("macro_avg", "evaluation.csv"),
])
def test_a_code_id_naming_another_tables_column_is_a_problem(tmp_path: Path, code_id: str,
                                                              table: str) -> None:
    path = _write(tmp_path, CODEBOOK.replace("  - id: pause", f"  - id: {code_id}"))
    book, problems = validate_codebook(path)
    assert book is None and len(problems) == 1
    p = problems[0]
    assert p.line == 15 and p.where == f"codes[1] '{code_id}' id"
    assert f"clashes with the {'row' if code_id.endswith('_avg') else 'column'} " \
           f"'{code_id.lower()}' of {table}" in p.message
    assert p.fix.startswith(f"rename the code, e.g. '{code_id}_code'")


def test_a_code_id_naming_another_codes_jaccard_column_is_a_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, CODEBOOK.replace("  - id: pause", "  - id: jaccard_deal"))
    p = validate_codebook(path)[1]
    assert len(p) == 1 and p[0].line == 15
    assert "clashes with the column 'jaccard_deal' (the Jaccard index of code 'deal')" \
        in p[0].message and "'deal_jaccard'" in p[0].fix
    # jaccard_<x> without a code x is an ordinary id
    ok = CODEBOOK.replace("  - id: pause", "  - id: jaccard_other")
    assert validate_codebook(_write(tmp_path, ok))[1] == []


def test_run_refuses_a_clashing_code_id_before_coding(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "transcripts").mkdir(parents=True)
    (corpus / "transcripts" / "a.txt").write_text(
        "Interviewer: What happened?\nRespondent: We negotiated access.\n", encoding="utf-8")
    path = _write(tmp_path, CODEBOOK.replace("  - id: dialogue", "  - id: code_id"))
    out = tmp_path / "outputs"
    result = _cli("run", "--corpus", str(corpus), "--codebook", str(path), "--out", str(out),
                  "--backend", "fast", cwd=tmp_path)
    assert result.returncode == 1
    assert f"{path}:9: codes[0] 'code_id' id: code id 'code_id' clashes with the column " \
           "'code_id' of cooccurrence.csv" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


def test_an_unclosed_bracket_is_reported_where_it_opens(tmp_path: Path) -> None:
    # YAML notices the missing ']' only at the next 'key:' (here 8 lines on; in a long
    # codebook often dozens), and the problem was reported there.
    text = CODEBOOK.replace("phrases: [suspended the distribution]",
                            "phrases: [suspended the distribution")
    p = validate_codebook(_write(tmp_path, text))[1]
    assert len(p) == 1 and p[0].line == 20
    assert p[0].message.startswith("YAML syntax error: while parsing a flow sequence")
    assert "(at line 21): the '[' here is not closed" in p[0].message
    assert p[0].fix == "close the '[' on this line with ']', or put the text in quotes."


def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    text = CODEBOOK.replace("    definition: An agreement was reached.",
                            '    definition: "An agreement was reached.')
    path = _write(tmp_path, text)
    result = _cli("codebook", "check", str(path), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:24: YAML syntax error: while scanning a quoted scalar")
    assert "the quote here is not closed" in first and "close the quote on this line" in first


def test_a_yaml_error_on_the_line_of_its_cause_is_unchanged(tmp_path: Path) -> None:
    text = CODEBOOK.replace("[reached an agreement]", "[reached, an: agreement: here]")
    p = validate_codebook(_write(tmp_path, text))[1]
    assert len(p) == 1 and p[0].line == 26 and "is not closed" not in p[0].message
    assert p[0].fix.startswith("check the indentation, quotes and brackets on this line")


def test_a_bad_escape_in_a_quote_over_two_lines_is_not_called_unclosed(tmp_path: Path) -> None:
    text = CODEBOOK.replace("    definition: An agreement was reached.",
                            '    definition: "An agreement\n      was reached \\q."')
    p = validate_codebook(_write(tmp_path, text))[1]
    assert len(p) == 1 and p[0].line == 25 and "escape" in p[0].message
    assert "not closed" not in p[0].message
