"""What report.html and the Prefect summary say about their numbers: what each number counts,
which codes can be trusted, what the corrected estimates are, nothing cut off or repeated,
and no transcript text in the artifacts.

The hand-built case of test_report.py: 8 codable segments in 3 documents; coders decided
D1:4.2 and D2:2 (human codings); evaluation.csv gives t1 auto, t2 human, m1 check, r1 human.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from qualcode import charts
from qualcode.codebook import Codebook, load_codebook
from qualcode.outputs import write_csv
from qualcode.report import (
    STATUS_AUTO_ALPHA,
    STATUS_CHECK_ALPHA,
    STATUS_MIN_POSITIVES,
    STATUS_MIN_REVIEWED,
    ReportSettings,
    artifact_markdown,
    write_reports,
)
from qualcode.report_html import bar_chart, heatmap_chart

from . import test_report as base
from .test_report import codebook, reported  # noqa: F401  (fixtures)

CODINGS, COD_HEADER, SEGMENTS, SEG_HEADER = (base.CODINGS, base.COD_HEADER, base.SEGMENTS,
                                             base.SEG_HEADER)
EVALUATION, EVAL_HEADER, SETTINGS = base.EVALUATION, base.EVAL_HEADER, base.SETTINGS
_coded_outputs, _manifest = base._coded_outputs, base._manifest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = {"p", "td", "th", "tr", "li", "h1", "h2", "h3", "h4", "div", "dt", "dd", "br",
          "blockquote", "table", "section", "figure"}
NS = "{http://www.w3.org/2000/svg}"

# reliability.csv as reliability.py writes it, for one coder ("gold") and no adjudicator:
# the reference decision is the coder's, so those rows repeat the coder's (the bootstrap
# interval apart, drawn from other resamples)
REL_HEADER = ["code_id", "comparison", "coders", "units", "percent_agreement", "kappa",
              "alpha", "alpha_low", "alpha_high"]
REL_ONE_CODER = [
    ["ALL (MASI)", "classifier-coder", "classifier vs gold", 8, "0.8750", "", "0.9000",
     "0.8000", "1.0000"],
    ["ALL (MASI)", "classifier-reference", "classifier vs reference", 8, "0.8750", "",
     "0.9000", "0.7900", "1.0000"],
    ["t1", "classifier-coder", "classifier vs gold", 8, "1.0000", "1.0000", "1.0000",
     "1.0000", "1.0000"],
    ["t1", "classifier-reference", "classifier vs reference", 8, "1.0000", "1.0000",
     "1.0000", "1.0000", "1.0000"],
]
REL_TWO_CODERS = [
    ["t1", "coders", "ana, ben", 6, "0.8333", "0.6000", "0.6100", "0.2000", "1.0000"],
    ["t1", "classifier-coder", "classifier vs ana", 8, "1.0000", "1.0000", "1.0000",
     "1.0000", "1.0000"],
    ["t1", "classifier-coder", "classifier vs ben", 6, "0.8333", "0.6000", "0.6100",
     "0.2000", "1.0000"],
    ["t1", "classifier-reference", "classifier vs reference", 8, "1.0000", "1.0000",
     "1.0000", "1.0000", "1.0000"],
]


class _Page(HTMLParser):
    """The page's text (blocks and cells apart, inline tags joined) and its tables."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "title"):
            self._skip += 1
        if tag in BLOCKS:
            self.parts.append(" ")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1
        if tag in BLOCKS:
            self.parts.append(" ")
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.parts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


def page(out: Path) -> _Page:
    parser = _Page()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    parser.close()
    return parser


def table_with(parsed: _Page, header: str) -> list[list[str]]:
    """The first table whose header row has a cell ``header``."""
    return next(t for t in parsed.tables if t and header in t[0])


def rows_by_first_cell(table: list[list[str]]) -> dict[str, dict[str, str]]:
    head = table[0]
    return {row[0]: dict(zip(head, row, strict=True)) for row in table[1:]}


def _svg_texts(uri: str) -> list[tuple[float, float, str]]:
    root = ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))
    return [(float(t.get("x")), float(t.get("y")), t.text or "") for t in root.iter(f"{NS}text")]


# --------------------------------------------------------------------------- run section


def test_run_counts_say_what_they_count(
        reported: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    out, _ = reported
    text = page(out).text
    # the cards: coder-decided segments are counted, codings are not "codes applied"
    assert "2 of them decided by coders" in text
    assert "6 codable segments with a code" in text
    assert "10 codings (segment × code)" in text
    assert "codes applied" not in text
    assert ("Coders decided 2 of the 8, and their decisions replace the classifier's; the "
            "classifier (rules and model) coded the other 6.") in text
    # recomputable: not "every number" (the corrected ones need evaluation.csv)
    assert "Every number here is recomputable" not in text
    assert "the corrected estimates also use evaluation.csv" in text
    listed = re.search(r"same folder as this page \(([^)]*)\)", text).group(1).split(", ")
    assert "report.html" not in listed  # the page does not point to itself
    assert {"frequencies.csv", "evaluation.csv", "reliability.csv"} <= set(listed)


def test_run_without_reviews_says_so(tmp_path: Path, codebook: Codebook) -> None:  # noqa: F811
    out = _coded_outputs(tmp_path / "outputs")
    write_csv(out / "codings.csv", COD_HEADER, [r for r in CODINGS if r[5] != "human"])
    write_reports(out, codebook, SETTINGS)
    text = page(out).text
    assert "No coder has decided any of the 8: the classifier (rules and model) coded them all"\
        in text
    assert "0 of them decided by coders" in text


# --------------------------------------------------------------------------- frequencies


def test_frequency_table_names_its_denominators_and_the_corrected_count(
        reported: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    out, _ = reported
    parsed = page(out)
    table = table_with(parsed, "Corrected segments")
    head = table[0]
    assert head == ["Code", "id", "Segments coded", "% of 8 codable segments", "Documents",
                    "% of 3 documents", "Corrected segments", "95% interval", "Status"]
    freq = pd.read_csv(out / "frequencies.csv", encoding="utf-8-sig").set_index("code_id")
    row = rows_by_first_cell(table)["Tactic one"]
    t1 = freq.loc["t1"]
    # the count and its interval both to one decimal (was 4.43 next to "3.1–6.9")
    assert row["Corrected segments"] == f"{t1['corrected_segments']:.1f}" == "4.4"
    assert row["95% interval"] == (f"{t1['corrected_low']:.1f}–{t1['corrected_high']:.1f}")
    text = parsed.text
    assert ("Corrected segments: an estimate of how many codable segments truly carry the "
            "code, with its 95% interval (black dot and whisker in the charts, as a share).") \
        in text
    assert ("The 2 segments coders decided count as they decided; the classifier's "
            "decisions on the other 6 are corrected for its error rates measured by "
            "cross-validation") in text
    assert "Black markers: share corrected" not in text  # the table shows a count, not a share


def test_all_segments_decided_by_coders_explains_the_zero_width_interval(
        tmp_path: Path, codebook: Codebook) -> None:  # noqa: F811
    folder = tmp_path / "outputs"
    rows = [[*row[:9], True, *row[9:]] for row in SEGMENTS]
    write_csv(folder / "segments.csv", [*SEG_HEADER[:9], "reviewed", *SEG_HEADER[9:]], rows)
    write_csv(folder / "codings.csv", COD_HEADER, CODINGS)
    write_csv(folder / "evaluation.csv", EVAL_HEADER, EVALUATION)
    _manifest(folder)
    write_reports(folder, codebook, SETTINGS)
    text = page(folder).text
    assert ("Coders decided all 8 codable segments, so the counts are known: the corrected "
            "count equals the coded count and its interval has no width.") in text
    assert "8 of them decided by coders" in text
    assert "Coders decided all 8: every count is theirs, not the classifier's." in text


def test_frequencies_without_an_evaluation_say_they_are_uncorrected(
        tmp_path: Path, codebook: Codebook) -> None:  # noqa: F811
    out = _coded_outputs(tmp_path / "outputs")
    write_reports(out, codebook, SETTINGS)
    parsed = page(out)
    assert ("These counts are not corrected for the classifier's errors, and no code has a "
            "trust status") in parsed.text
    assert "qualcode review export" in parsed.text
    assert table_with(parsed, "Segments coded")[0] == [
        "Code", "id", "Segments coded", "% of 8 codable segments", "Documents",
        "% of 3 documents"]
    assert "not corrected for the classifier's errors (it has not been evaluated" in parsed.text


def test_status_thresholds_on_the_page_are_evaluates() -> None:
    from qualcode import evaluate

    assert (STATUS_AUTO_ALPHA, STATUS_CHECK_ALPHA) == (evaluate.AUTO_ALPHA, evaluate.CHECK_ALPHA)
    assert (STATUS_MIN_POSITIVES, STATUS_MIN_REVIEWED) == (evaluate.MIN_POSITIVES,
                                                           evaluate.MIN_REVIEWED)


# --------------------------------------------------------------------------- comparisons


def test_comparison_tables_name_their_tests_and_caveats(
        reported: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    out, _ = reported
    parsed = page(out)
    by_case = table_with(parsed, "Segment test")
    tests = {row[by_case[0].index("Segment test")] for row in by_case[1:]}
    assert tests <= {"Fisher exact", "chi-square", "Fisher–Freeman–Halton, Monte Carlo", "–"}
    assert tests & {"Fisher exact", "chi-square", "Fisher–Freeman–Halton, Monte Carlo"}
    text = parsed.text
    assert ("The shares count the segments as coded, not corrected for the classifier's "
            "errors: for a code with status check or human a difference between groups may "
            "be the classifier's.") in text
    # every segment has a case and a source_type: no sentence about "(none)" (it was
    # printed, doubly bracketed, for every field)
    assert "((none))" not in text and "Segments without a case" not in text
    # two groups: the difference is in percentage points, with a real minus sign
    by_source = table_with(parsed, "Difference interview − literature (percentage points)")
    column = by_source[0].index("Difference interview − literature (percentage points)")
    values = [row[column] for row in by_source[1:]]
    assert all(re.fullmatch(r"[+−]\d+\.\d pts|–", v) for v in values), values
    assert any(v.startswith("−") for v in values)


def test_segments_without_a_value_are_mentioned_only_when_there_are_some(
        tmp_path: Path, codebook: Codebook) -> None:  # noqa: F811
    out = tmp_path / "outputs"
    rows = [[*row[:9], "" if row[0] == "D3:3" else row[9], *row[10:]] for row in SEGMENTS]
    write_csv(out / "segments.csv", SEG_HEADER, rows)
    write_csv(out / "codings.csv", COD_HEADER, CODINGS)
    write_reports(out, codebook, ReportSettings(crosstab_fields=("case", "source_type")))
    text = page(out).text
    assert ("Segments without a case (“(none)”) are counted in frequencies_by_case.csv but "
            "left out of the tests. The shares count") in text
    assert "Segments without a source_type" not in text


def test_a_failed_segment_test_keeps_a_readable_name() -> None:
    from qualcode.report import _test_name

    assert _test_name("fisher_mc: failed") == "Fisher–Freeman–Halton, Monte Carlo: failed"
    assert _test_name("chi2") == "chi-square" and _test_name("") == "–"
    assert _test_name("new_test") == "new_test"  # unknown names are shown as they are


# --------------------------------------------------------------------------- trust


def test_trust_table_has_readable_headers_and_the_averages(
        reported: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    out, _ = reported
    parsed = page(out)
    table = table_with(parsed, "Reviewed positives")
    assert table[0] == ["Code", "id", "Reviewed positives", "Precision", "Recall", "F1",
                        "Cohen's κ", "Krippendorff's α", "False-positive rate", "Status"]
    rows = rows_by_first_cell(table)
    assert rows["All codes pooled (micro average)"]["Reviewed positives"] == "84"
    assert rows["Tactic two"]["Status"] == "human"
    text = parsed.text
    assert "on 100 reviewed segments, cross-validated (evaluation.csv)" in text
    assert (f"α ≥ {STATUS_AUTO_ALPHA:.2f}" in text and "fewer than 5 reviewed positives or 30 "
            "reviewed segments: code by hand" in text)


def _with_reliability(folder: Path, rows: list[list[object]], trained_on: int | None) -> Path:
    _coded_outputs(folder)
    write_csv(folder / "evaluation.csv", EVAL_HEADER, EVALUATION)
    write_csv(folder / "reliability.csv", REL_HEADER, rows)
    manifest = json.loads((folder / "run_manifest.json").read_text(encoding="utf-8"))
    if trained_on is not None:
        manifest["model"] = {"model_id": "m", "reviewed_segments": trained_on}
    (folder / "run_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_reliability_with_one_coder_is_not_called_inter_coder_nor_repeated(
        tmp_path: Path, codebook: Codebook) -> None:  # noqa: F811
    out = _with_reliability(tmp_path / "outputs", REL_ONE_CODER, trained_on=8)
    write_reports(out, codebook, SETTINGS)
    parsed = page(out)
    table = table_with(parsed, "Compared")
    assert table[0] == ["Code", "id", "Compared", "Segments", "Agreement", "Cohen's κ",
                        "Krippendorff's α", "α 95% interval"]
    assert table[1:] == [
        ["All codes at once (MASI)", "ALL (MASI)", "classifier vs gold (= reference)", "8",
         "87.5%", "–", "0.9", "0.8–1"],
        ["Tactic one", "t1", "classifier vs gold (= reference)", "8", "100.0%", "1", "1",
         "1–1"],
    ]
    text = parsed.text
    assert "Inter-coder reliability" not in text
    assert ("Only one coder's decisions: there is no agreement between coders to report, only "
            "the classifier's agreement with that coder.") in text
    assert "The model was trained on these 8 reviewed segments, so these are in-sample" in text
    # the phrase test_review_cycle.py looks for in the file itself
    assert "these are in-sample figures" in (out / "report.html").read_text(encoding="utf-8")


def test_reliability_with_two_coders_keeps_every_row(tmp_path: Path,
                                                     codebook: Codebook) -> None:  # noqa: F811
    out = _with_reliability(tmp_path / "outputs", REL_TWO_CODERS, trained_on=0)
    write_reports(out, codebook, SETTINGS)
    parsed = page(out)
    compared = [row[2] for row in table_with(parsed, "Compared")[1:]]
    assert compared == ["ana, ben", "classifier vs ana", "classifier vs ben",
                        "classifier vs reference"]
    text = parsed.text
    assert "Rows that name coders only: agreement between human coders" in text
    assert "The model was not trained on these reviews" in text
    assert "in-sample" not in text.split("Reliability", 1)[1].split("Top quotes")[0]


# --------------------------------------------------------------------------- quotes


def test_quotes_are_introduced_and_shortening_is_said(tmp_path: Path,
                                                      codebook: Codebook) -> None:  # noqa: F811
    out = _coded_outputs(tmp_path / "outputs")
    write_csv(out / "evaluation.csv", EVAL_HEADER, EVALUATION)
    write_reports(out, codebook, SETTINGS)
    text = page(out).text
    assert "Up to 3 segments per code: those a coder decided first" in text
    assert "shortened here" not in text  # no quote is longer than 700 characters
    # t2 has status human: its quotes carry the warning quotes.md gives
    section = text.split("Tactic two t2 human", 1)[1].split("Mechanism one")[0]
    assert "The classifier is not trusted for this code: check these quotes by hand." in section
    write_reports(out, codebook, ReportSettings(
        crosstab_fields=SETTINGS.crosstab_fields, category_pairs=SETTINGS.category_pairs,
        html_quote_chars=20))
    assert ("Quotes longer than 20 characters are shortened here (…); quotes.csv and "
            "quotes.md have them in full.") in page(out).text


# --------------------------------------------------------------------------- charts

LONG = 'Invoking institutional constraints ("hands tied")'  # 49 characters: was cut at 48
LONG_COLUMN = "Balanced, principled outcome"  # 28 characters: was cut at 22


@pytest.fixture(scope="module")
def long_names(tmp_path_factory: pytest.TempPathFactory) -> Codebook:
    path = tmp_path_factory.mktemp("long") / "codebook.yaml"
    path.write_text(f"""\
name: Long names
version: "1"
categories:
  - id: tactic
    name: Tactics
  - id: outcome
    name: Outcomes
codes:
  - id: hands
    name: '{LONG}'
    category: tactic
    definition: A tactic.
  - id: fair
    name: {LONG_COLUMN}
    category: outcome
    definition: An outcome.
""", encoding="utf-8")
    return load_codebook(path)


def test_chart_labels_are_not_cut_off(long_names: Codebook) -> None:
    rows = pd.DataFrame({"code_id": ["hands"], "name": [LONG], "share_of_segments": [0.2],
                         "status": ["human"], "corrected_segments": [2.0],
                         "corrected_low": [1.0], "corrected_high": [3.0]})
    texts = [t for _, _, t in _svg_texts(bar_chart(rows, 10))]
    assert f"{LONG} [human]" in texts
    # the hatching is explained in the legend, next to the marker
    assert "status human: code by hand" in texts
    assert "corrected estimate (95% interval)" in texts
    pair = pd.DataFrame({"code_id": ["hands"], "name": [LONG], "segments": [3], "fair": [2],
                         "jaccard_fair": [0.5]})
    texts = [t for _, _, t in _svg_texts(heatmap_chart(pair, long_names, "outcome"))]
    assert LONG in texts and LONG_COLUMN in texts


def test_legends_sit_below_the_plot() -> None:
    # a long legend entry used to run into the axis label; a group legend sat over the
    # top bars, hiding the largest ones when the first code is the most frequent
    uri = charts.bars(["a", "b"], [40.0, 5.0], axis_label="% of codable segments",
                      hatched=[True, False], intervals=[(40.0, 30.0, 50.0), (5.0, 4.0, 6.0)],
                      interval_label="corrected estimate (95% interval)",
                      hatched_label="status human: code by hand")
    texts = {t: (x, y) for x, y, t in _svg_texts(uri)}
    axis_y = texts["% of codable segments"][1]
    assert texts["corrected estimate (95% interval)"][1] > axis_y + 5
    assert texts["status human: code by hand"][1] > texts["corrected estimate (95% interval)"][1]
    root = ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))
    assert float(root.get("height")) > texts["status human: code by hand"][1] + 4
    uri = charts.grouped_bars(["most frequent", "rare"], ["A", "B"], [[90.0, 1.0], [80.0, 2.0]],
                              axis_label="% of the group's codable segments")
    texts = {t: (x, y) for x, y, t in _svg_texts(uri)}
    root = ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))
    bottom = max(float(r.get("y")) + float(r.get("height")) for r in root.iter(f"{NS}rect")
                 if r.get("fill") == charts.PALETTE[0] and r.get("width") != "12")
    assert texts["A"][1] > texts["% of the group's codable segments"][1] > bottom
    assert float(root.get("height")) > texts["B"][1] + 4


# --------------------------------------------------------------------------- artifacts


def test_artifact_summary_labels_its_counts(tmp_path: Path,
                                            codebook: Codebook) -> None:  # noqa: F811
    out = _coded_outputs(tmp_path / "outputs")
    write_csv(out / "evaluation.csv", EVAL_HEADER, EVALUATION)
    write_reports(out, codebook)
    md = artifact_markdown(out)
    assert "| segments coded | % of codable segments | documents |" in md
    assert "corrected segments (95% interval)" in md
    freq = pd.read_csv(out / "frequencies.csv", encoding="utf-8-sig").set_index("code_id")
    t1 = freq.loc["t1"]
    # one decimal, as on the page (was "4.43 (3.14–6.86)" next to "4.4" there)
    assert (f"{t1['corrected_segments']:.1f} ({t1['corrected_low']:.1f}–"
            f"{t1['corrected_high']:.1f})") in md
    assert ("Segments coded: codable segments with the code (by rule, model or coder); "
            "documents: documents with at least one. Corrected segments: the count corrected "
            "for the classifier's cross-validated error rates") in md
    (out / "evaluation.csv").unlink()
    write_reports(out, codebook)
    assert "Not corrected for the classifier's errors" in artifact_markdown(out)


def test_published_table_artifact_says_what_it_counts(
        reported: tuple[Path, dict[str, str]],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.reports as reports

    out, _ = reported
    made: dict[str, dict[str, object]] = {}
    monkeypatch.setattr(reports, "create_table_artifact",
                        lambda rows, **kw: made.setdefault("table", {"rows": rows, **kw}))
    monkeypatch.setattr(reports, "create_markdown_artifact",
                        lambda md, **kw: made.setdefault("markdown", {"md": md, **kw}))
    reports.publish_artifacts.fn(str(out))
    assert made["table"]["description"] == (
        "Segments and documents coded per code in the latest qualcode run (frequencies.csv: "
        "ids, names and counts)")
    dumped = json.dumps(made["table"]["rows"]) + str(made["markdown"]["md"])
    for row in SEGMENTS:
        assert row[7] not in dumped


# --------------------------------------------------------------------------- README


def test_readme_names_the_frequency_columns_the_csv_has(
        reported: tuple[Path, dict[str, str]]) -> None:  # noqa: F811
    out, _ = reported
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if ln.startswith("| `frequencies.csv` |"))
    columns = pd.read_csv(out / "frequencies.csv", encoding="utf-8-sig").columns
    for name in columns:
        assert f"`{name}`" in line, name
    assert "a count of segments, not a share" in line
