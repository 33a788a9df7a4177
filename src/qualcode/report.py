"""Reports from coded outputs: frequency, cross-tab, co-occurrence and quote tables, one HTML
page, and a short summary for Prefect artifacts.

Entry points:

- :func:`write_reports` reads ``segments.csv``, ``codings.csv`` and (if present)
  ``evaluation.csv``, ``reliability.csv`` and ``run_manifest.json`` in ``out`` and writes
  every report file there atomically;
- :func:`artifact_markdown` and :func:`frequency_table_rows` give the text and the rows the
  flow publishes as Prefect artifacts (ids, counts and code names only: never transcript
  text, because artifacts are stored in Prefect's database).

The tables themselves are pure functions of DataFrames in :mod:`qualcode.report_tables`;
the page is rendered by :mod:`qualcode.report_html`. Nothing here knows a particular
codebook: the category pairs and metadata fields to tabulate are settings, and settings
that do not fit the codebook or the data are skipped with a note in the report.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .codebook import Codebook
from .outputs import (
    CODINGS_CSV,
    CSV_ENCODING,
    EVALUATION_CSV,
    META_PREFIX,
    RELIABILITY_CSV,
    RUN_MANIFEST,
    SEGMENTS_CSV,
    atomic_write_text,
    write_csv,
)
from .report_html import (
    bar_chart,
    comparison_chart,
    format_cell,
    format_share,
    heatmap_chart,
    render_report,
)
from .report_tables import (
    DOCUMENTS,
    HUMAN,
    NONE_GROUP,
    SEGMENTS,
    TOTAL_ROW,
    Applied,
    DocumentGroups,
    applied_matrix,
    binary_document_matrix,
    category_pair_table,
    code_document_matrix,
    coder_decided,
    cooccurrence_table,
    corrected_prevalence,
    crosstab_table,
    difference_table,
    document_groups,
    evaluation_by_code,
    frequency_table,
    group_spellings,
    quote_table,
    quotes_markdown,
    records_by_code,
)

__all__ = [
    "ReportInputs",
    "ReportSettings",
    "artifact_markdown",
    "category_pair_table",
    "code_document_matrix",
    "cooccurrence_table",
    "corrected_prevalence",
    "crosstab_table",
    "difference_table",
    "frequency_table",
    "frequency_table_rows",
    "load_report_inputs",
    "quote_table",
    "write_reports",
]

FREQUENCIES_CSV = "frequencies.csv"
COOCCURRENCE_CSV = "cooccurrence.csv"
MATRIX_CSV = "code_document_matrix.csv"
MATRIX_BINARY_CSV = "code_document_matrix_binary.csv"
QUOTES_CSV = "quotes.csv"
QUOTES_MD = "quotes.md"
REPORT_HTML = "report.html"
# Per-setting files; files matching these but not written by this run are stale and removed.
VARIABLE_PATTERNS = ("frequencies_by_*.csv", "differences_by_*.csv", "cooccurrence_*_x_*.csv")


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What to tabulate. Names that the data or the codebook lack are skipped with a note.

    ``crosstab_fields``: columns of ``segments.csv`` to compare groups by.
    ``category_pairs``: (rows, columns) category ids for the co-occurrence cross-tabs;
    empty means the codebook's own ``report.category_pairs``, else its first two categories.
    """

    crosstab_fields: tuple[str, ...] = ("case", "source_type")
    category_pairs: tuple[tuple[str, str], ...] = ()
    quotes_per_code: int = 3
    context_chars: int = 240  # context (previous turn) in quotes
    html_quote_chars: int = 700  # quotes longer than this are shortened on the HTML page
    alpha: float = 0.05  # significance level for the q-values
    draws: int = 4000  # Monte Carlo draws for the corrected estimate's interval
    seed: int = 0  # fixed, so reruns give the same numbers and file hashes
    title: str = "Qualitative coding report"


@dataclass(slots=True)
class ReportInputs:
    """Everything the reports are computed from, as read from ``out``."""

    segments: pd.DataFrame
    codings: pd.DataFrame | None
    evaluation: pd.DataFrame | None = None
    reliability: pd.DataFrame | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _read_csv(path: Path) -> pd.DataFrame:
    # Everything as text: ids such as "NA" or "001" must survive; numbers are parsed where
    # they are used.
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=CSV_ENCODING)


def load_report_inputs(out: str | Path) -> ReportInputs:
    """Read the coded outputs in ``out``. ``segments.csv`` is required; the rest optional."""
    out = Path(out)
    path = out / SEGMENTS_CSV
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist — run `qualcode run` first to code the corpus")
    notes: list[str] = []
    segments = _read_csv(path)
    codings = None
    if (out / CODINGS_CSV).is_file():
        codings = _read_csv(out / CODINGS_CSV)
    else:
        notes.append(f"{CODINGS_CSV} was not found: no codes are counted.")
    evaluation = _read_csv(out / EVALUATION_CSV) if (out / EVALUATION_CSV).is_file() else None
    reliability = (_read_csv(out / RELIABILITY_CSV) if (out / RELIABILITY_CSV).is_file()
                   else None)
    manifest: dict[str, Any] = {}
    if (out / RUN_MANIFEST).is_file():
        try:
            manifest = json.loads((out / RUN_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            notes.append(f"{RUN_MANIFEST} could not be read ({err}); run metadata is missing.")
    return ReportInputs(segments, codings, evaluation, reliability, manifest, notes)


# --------------------------------------------------------------------------- settings


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "field"


def resolve_settings(settings: ReportSettings, codebook: Codebook, segments: pd.DataFrame
                     ) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The crosstab fields and category pairs that apply here, and notes on the others."""
    notes = []
    fields = []
    for name in settings.crosstab_fields:
        if name in segments.columns:
            fields.append(name)
        elif META_PREFIX + name in segments.columns:  # the field of a code id's name
            fields.append(META_PREFIX + name)
        else:
            notes.append(f"No cross-tab by '{name}': segments.csv has no such column.")
    known = {c.id for c in codebook.categories}
    pairs = []
    wanted = settings.category_pairs or tuple(tuple(p) for p in codebook.report.category_pairs)
    if not wanted and len(codebook.categories) >= 2:
        wanted = ((codebook.categories[0].id, codebook.categories[1].id),)
    for a, b in wanted:
        missing = [c for c in (a, b) if c not in known]
        if missing:
            notes.append(f"No co-occurrence table {a} × {b}: the codebook has no category "
                         + ", ".join(f"'{m}'" for m in missing) + ".")
        else:
            pairs.append((a, b))
    if not pairs and wanted and len(codebook.categories) >= 2:
        a, b = codebook.categories[0].id, codebook.categories[1].id
        pairs.append((a, b))
        notes.append(f"Using the codebook's first two categories ({a} × {b}) instead.")
    return fields, pairs, notes


# --------------------------------------------------------------------------- writing


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else repr(float(value))
    return value


def _column_cells(values: pd.Series) -> list[Any]:
    """:func:`_cell` of every value of a column, with shortcuts for the common dtypes."""
    if pd.api.types.is_integer_dtype(values.dtype) and not values.hasnans:
        return values.tolist()  # Python ints already: _cell would not change them
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "f":
        return ["" if math.isnan(v) else repr(v) for v in values.tolist()]
    if isinstance(values.dtype, pd.StringDtype) and not values.hasnans:
        return values.tolist()  # str: _cell would not change them
    return [_cell(v) for v in values.astype(object).tolist()]


def frame_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """Header and CSV-ready rows of a table (NaN → empty, floats without float noise)."""
    columns = [_column_cells(frame.iloc[:, j]) for j in range(frame.shape[1])]
    rows = ([list(row) for row in zip(*columns, strict=True)] if columns
            else [[] for _ in range(len(frame))])
    return [str(c) for c in frame.columns], rows


def _write_frame(path: Path, frame: pd.DataFrame) -> str:
    header, rows = frame_rows(frame)
    return write_csv(path, header, rows)


def write_reports(out: str | Path, codebook: Codebook,
                  settings: ReportSettings | None = None) -> dict[str, str]:
    """Write every report file into ``out``; return ``{file name: sha256}``.

    Reads ``segments.csv`` (required), ``codings.csv``, ``evaluation.csv``,
    ``reliability.csv`` and ``run_manifest.json`` from ``out``. Writes (each atomically;
    CSVs UTF-8 with BOM, no index column): ``frequencies.csv``,
    ``frequencies_by_<field>.csv`` and ``differences_by_<field>.csv`` per cross-tab field,
    ``cooccurrence.csv``, ``cooccurrence_<a>_x_<b>.csv`` per category pair,
    ``code_document_matrix.csv``, ``code_document_matrix_binary.csv``, ``quotes.csv``,
    ``quotes.md`` and ``report.html``. Per-field and per-pair files of earlier runs that this
    run does not write are removed, so ``out`` never mixes runs.
    """
    out = Path(out)
    settings = settings or ReportSettings()
    inputs = load_report_inputs(out)
    cod, ev = inputs.codings, inputs.evaluation
    # computed once: every table below reuses it and the prepared segments in it
    applied = applied_matrix(inputs.segments, cod, codebook.code_ids)
    seg = applied.segments
    fields, pairs, setting_notes = resolve_settings(settings, codebook, seg)
    notes = [*inputs.notes, *setting_notes, *_ignored_notes(applied.ignored)]

    written: dict[str, str] = {}

    def save(name: str, frame: pd.DataFrame) -> None:
        written[name] = _write_frame(out / name, frame)

    if not applied.segment_ids:
        notes.append("There are no codable segments (interviewer turns and preambles are "
                     "never coded): shares are left empty and no group is tested.")
    freq = frequency_table(seg, cod, codebook, ev, draws=settings.draws, seed=settings.seed,
                           applied=applied)
    save(FREQUENCIES_CSV, freq)
    crosstabs, differences, doc_groups = {}, {}, {}
    for name in fields:
        crosstabs[name] = crosstab_table(seg, cod, codebook, name, ev, applied=applied)
        differences[name] = difference_table(seg, cod, codebook, name, ev, alpha=settings.alpha,
                                             seed=settings.seed, applied=applied)
        doc_groups[name] = document_groups(applied, name)
        save(f"frequencies_by_{_slug(name)}.csv", crosstabs[name])
        save(f"differences_by_{_slug(name)}.csv", differences[name])
        notes += _field_notes(name, crosstabs[name], differences[name],
                              group_spellings(seg, name), doc_groups[name], settings.alpha)
    save(COOCCURRENCE_CSV, cooccurrence_table(seg, cod, codebook, applied=applied))
    pair_tables = {}
    for a, b in pairs:
        pair_tables[(a, b)] = category_pair_table(seg, cod, codebook, a, b, ev, applied=applied)
        save(f"cooccurrence_{a}_x_{b}.csv", pair_tables[(a, b)])
    matrix = code_document_matrix(seg, cod, codebook, applied=applied)
    save(MATRIX_CSV, matrix)
    save(MATRIX_BINARY_CSV, binary_document_matrix(matrix, codebook))
    quotes = quote_table(seg, cod, codebook, ev, per_code=settings.quotes_per_code,
                         context_chars=settings.context_chars, applied=applied)
    save(QUOTES_CSV, quotes)
    written[QUOTES_MD] = atomic_write_text(out / QUOTES_MD, quotes_markdown(quotes, codebook))

    # the files a reader finds next to the page: those written here and those read
    read = [name for name, found in ((EVALUATION_CSV, inputs.evaluation),
                                     (RELIABILITY_CSV, inputs.reliability)) if found is not None]
    context = _html_context(
        codebook=codebook, settings=settings, inputs=inputs, seg=seg, freq=freq,
        n_codable=len(applied.segment_ids), coded=int(applied.matrix.any(axis=1).sum()),
        n_codings=int(applied.matrix.sum()), n_decided=decided_segments(applied),
        n_documents=len(set(applied.doc_ids)), crosstabs=crosstabs, differences=differences,
        doc_groups=doc_groups, pair_tables=pair_tables, quotes=quotes, notes=notes,
        files=[*written, *read],
    )
    written[REPORT_HTML] = atomic_write_text(out / REPORT_HTML, render_report(context))
    _remove_stale(out, written)
    return written


def decided_segments(applied: Applied) -> int:
    """Codable segments whose codes a coder decided (those :func:`frequency_table` takes as
    known)."""
    return int(coder_decided(applied).sum())


def _field_notes(name: str, crosstab: pd.DataFrame, differences: pd.DataFrame,
                 spellings: dict[str, list[str]], docs: DocumentGroups,
                 alpha: float) -> list[str]:
    """What a reader of ``frequencies_by_<name>`` and ``differences_by_<name>`` must know:
    spellings counted as one group, segments without a value, a field not tested, too few
    documents for a small document-level p-value, a field whose tests count segments."""
    notes = []
    if spellings:
        notes.append(f"'{name}': values that differ only in case or spacing are one group: "
                     + "; ".join(f"{label} ({', '.join(repr(s) for s in found)})"
                                 for label, found in spellings.items()) + ".")
    missing = _group_n(crosstab, NONE_GROUP)
    if missing not in ("?", "0"):
        notes.append(f"'{name}': {missing} codable segment(s) have no value ({NONE_GROUP}); "
                     "they are counted in the frequencies but left out of the tests.")
    tested = [c[len("share_"):] for c in differences.columns if c.startswith("share_")]
    if crosstab["code_id"].eq(TOTAL_ROW).any() and len(tested) < 2:
        notes.append(f"No test by '{name}': its codable segments with a value fall into "
                     f"{len(tested)} group(s)" + (f" ({', '.join(tested)})" if tested else "")
                     + "; a test needs two or more.")
        return notes
    unit = differences["unit"].iloc[0] if len(differences) else ""
    if unit == DOCUMENTS and differences["test_documents"].eq("permutation_exact").any():
        floor = 1 / docs.arrangements
        split = ", ".join(f"{g} {m}" for g, m in zip(docs.groups, docs.sizes, strict=True))
        notes.append(
            f"'{name}': its {len(docs.doc_ids)} documents ({split}) can be split between the "
            f"groups in only {docs.arrangements} ways, all of which were counted: no "
            f"document-level p-value can be below {floor:.3g}"
            + (f", so no code can reach q < {alpha} by '{name}'." if floor >= alpha else "."))
    elif unit == SEGMENTS:
        notes.append(
            f"'{name}' differs between segments of the same document (in {docs.varying} of "
            f"{len(docs.doc_ids)} documents), so whole documents cannot be shuffled between "
            "its groups: its tests count segments as independent, which one interview's "
            "segments are not. Read its p-values as descriptive.")
    return notes


def _ignored_notes(ignored: dict[str, int]) -> list[str]:
    what = {
        "unknown_code": "name a code that is not in the codebook",
        "unknown_segment": "name a segment that is not in segments.csv",
        "not_codable": "are on segments that are not codable (interviewer turns, preambles)",
        "duplicate": "repeat a segment and code already counted",
    }
    return [f"{n} row(s) of {CODINGS_CSV} {what[key]} and were not counted."
            for key, n in ignored.items() if n]


def _remove_stale(out: Path, written: dict[str, str]) -> None:
    for pattern in VARIABLE_PATTERNS:
        for path in out.glob(pattern):
            if path.name not in written and path.is_file():
                path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- HTML context


def _table(header: Sequence[tuple[str, bool]], rows: Sequence[tuple[Sequence[Any], str]]
           ) -> dict[str, Any]:
    return {"header": [{"label": label, "num": num} for label, num in header],
            "rows": [{"cells": list(cells), "cls": cls} for cells, cls in rows]}


def _badge(status: str) -> Any:
    return {"badge": status} if status else ""


def _display(value: Any) -> str:
    """A cell read as text: numbers shortened for display, everything else as is."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text or "–"
    return text if text.lstrip("-").isdigit() else format_cell(number)


# The trust-status thresholds of qualcode.evaluate (not imported: it loads scikit-learn),
# stated on the page; tests/test_report_wording.py checks that they still agree.
STATUS_AUTO_ALPHA, STATUS_CHECK_ALPHA = 0.80, 0.667
STATUS_MIN_POSITIVES, STATUS_MIN_REVIEWED = 5, 30

# The segment tests of differences_by_<field>.csv (``test``), as a reader knows them.
TEST_NAMES = {"fisher": "Fisher exact", "chi2": "chi-square",
              "fisher_mc": "Fisher–Freeman–Halton, Monte Carlo"}

# evaluation.csv's columns shown on the page, and their headers (``tpr`` is ``recall``).
EVALUATION_LABELS = {"support": "Reviewed positives", "precision": "Precision",
                     "recall": "Recall", "f1": "F1", "kappa": "Cohen's κ",
                     "alpha": "Krippendorff's α", "fpr": "False-positive rate"}
EVALUATION_SUMMARIES = {"micro_avg": "All codes pooled (micro average)",
                        "macro_avg": "Mean over codes (macro average)"}

# reliability.csv's columns and their headers; other columns are shown as they are named.
RELIABILITY_LABELS = {"code_id": "Code", "comparison": "Comparison", "coders": "Compared",
                      "units": "Segments", "percent_agreement": "Agreement",
                      "kappa": "Cohen's κ", "alpha": "Krippendorff's α"}
POOLED_ROW = "ALL (MASI)"  # reliability.csv's row over all codes at once


def _test_name(test: Any) -> str:
    """``fisher_mc`` → ``Fisher–Freeman–Halton, Monte Carlo`` (``…: failed`` kept)."""
    text = str(test or "")
    name, failed = (text[: -len(": failed")], True) if text.endswith(": failed") else (
        text, False)
    label = TEST_NAMES.get(name, name) or "–"
    return f"{label}: failed" if failed else label


def _html_context(*, codebook: Codebook, settings: ReportSettings, inputs: ReportInputs,
                  seg: pd.DataFrame, freq: pd.DataFrame, n_codable: int, coded: int,
                  n_codings: int, n_decided: int, n_documents: int,
                  crosstabs: dict[str, pd.DataFrame],
                  differences: dict[str, pd.DataFrame],
                  doc_groups: dict[str, DocumentGroups],
                  pair_tables: dict[tuple[str, str], pd.DataFrame], quotes: pd.DataFrame,
                  notes: list[str], files: list[str]) -> dict[str, Any]:
    manifest = inputs.manifest
    has_eval = "status" in freq.columns
    status = dict(zip(freq["code_id"], freq["status"], strict=True)) if has_eval else {}
    flagged = [cid for cid, s in status.items() if s == HUMAN]
    if flagged:
        notes = [*notes, f"{len(flagged)} code(s) have status 'human' (the classifier is not "
                 "trusted for them; code by hand before citing): " + ", ".join(flagged) + "."]

    categories = []
    for cat in codebook.categories:
        rows = freq[freq["category"] == cat.id]
        header = [("Code", False), ("id", False), ("Segments coded", True),
                  (f"% of {n_codable} codable segments", True), ("Documents", True),
                  (f"% of {n_documents} documents", True)]
        if has_eval:
            header += [("Corrected segments", True), ("95% interval", True), ("Status", False)]
        body = []
        for _, r in rows.iterrows():
            cells: list[Any] = [r["name"], r["code_id"], format_cell(r["segments"]),
                                format_share(r["share_of_segments"]), format_cell(r["documents"]),
                                format_share(r["share_of_documents"])]
            if has_eval:
                point = ("–" if pd.isna(r["corrected_segments"])
                         else f"{r['corrected_segments']:.1f}")
                interval = ("–" if pd.isna(r["corrected_low"]) else
                            f"{r['corrected_low']:.1f}–{r['corrected_high']:.1f}")
                cells += [point, interval, _badge(r["status"])]
            body.append((cells, "human" if status.get(r["code_id"]) == HUMAN else ""))
        categories.append({"id": cat.id, "name": cat.name, "description": cat.description,
                           "chart": bar_chart(rows, n_codable), "table": _table(header, body)})

    comparisons = []
    for name, table in differences.items():
        groups = [c[len("share_"):] for c in table.columns if c.startswith("share_")]
        diff = [c for c in table.columns if c.startswith("difference_")]
        unit = str(table["unit"].iloc[0]) if len(table) else ""
        by_doc = unit == DOCUMENTS
        docs = doc_groups[name]
        sizes = dict(zip(docs.groups, docs.sizes, strict=True)) if by_doc else {}
        header = [("Code", False), *((f"{g} (n={_group_n(crosstabs[name], g)}"
                                      + (f"; {sizes[g]} doc{'s' * (sizes[g] != 1)})"
                                         if g in sizes else ")"), True) for g in groups)]
        if diff:
            header.append((f"Difference {groups[0]} − {groups[1]} (percentage points)", True))
        if by_doc:
            header += [("p documents", True), ("q documents", True), ("Segment test", False),
                       ("p segments", True), ("q segments", True), ("Cramér's V", True)]
        else:
            header += [("Test", False), ("p", True), ("q", True), ("Cramér's V", True)]
        if has_eval:
            header.append(("Status", False))
        body = []
        for _, r in table.iterrows():
            cells = [r["name"], *(format_share(r[f"share_{g}"]) for g in groups)]
            if diff:
                value = r[diff[0]]
                cells.append("–" if pd.isna(value) else
                             f"{value * 100:+.1f} pts".replace("-", "−"))
            if by_doc:
                failed = str(r["test_documents"]).endswith(": failed")
                cells += ["document test failed" if failed else format_cell(r["p_documents"]),
                          format_cell(r["q_documents"])]
            cells += [_test_name(r["test"]), format_cell(r["p_value"]),
                      format_cell(r["q_value"]), format_cell(r["cramers_v"])]
            if has_eval:
                cells.append(_badge(r["status"]))
            cls = " ".join(c for c in (
                "significant" if isinstance(r["significant"], bool | np.bool_)
                and r["significant"] else "",
                "human" if status.get(r["code_id"]) == HUMAN else "") if c)
            body.append((cells, cls))
        comparisons.append({"field": name, "chart": comparison_chart(crosstabs[name], groups),
                            "table": _table(header, body), "unit": unit,
                            "documents": len(docs.doc_ids),
                            "without_value": _group_n(crosstabs[name], NONE_GROUP)
                            not in ("?", "0")})

    pairs = [{"a_name": codebook.category(a).name, "b_name": codebook.category(b).name,
              "file": f"cooccurrence_{a}_x_{b}.csv",
              "chart": heatmap_chart(t, codebook, b, status)} for (a, b), t in pair_tables.items()]

    trust, reviewed = _trust_table(inputs.evaluation, codebook)
    reliability, rel_facts = _reliability_table(inputs.reliability, codebook)
    model = manifest.get("model") or {}
    trained_on = model.get("reviewed_segments") if isinstance(model, dict) else None

    skipped = list(manifest.get("skipped") or [])
    file_notes = list(manifest.get("notes") or [])

    quote_sections = []
    quotes_by_code = records_by_code(quotes)
    shortened = False
    for cat in codebook.categories:
        codes = []
        for code in codebook.codes_in(cat.id):
            found = quotes_by_code.get(code.id, [])
            shortened = shortened or any(
                len(str(q["text"])) > settings.html_quote_chars > 0 for q in found)
            codes.append({
                "id": code.id, "name": code.name, "status": status.get(code.id, ""),
                "quotes": [{
                    "segment_id": q["segment_id"], "speaker": q["speaker"],
                    "citation": q["citation"], "method": q["method"],
                    "score": "" if pd.isna(q["score"]) else f"{float(q['score']):.2f}",
                    "text": _shorten(str(q["text"]), settings.html_quote_chars),
                    "context": q["context"],
                } for q in found],
            })
        quote_sections.append({"name": cat.name, "codes": codes})

    counts = manifest.get("counts") or {}
    cards = [
        ("documents", seg["doc_id"].nunique()),
        ("segments", len(seg)),
        ("codable segments", n_codable),
        ("of them decided by coders", n_decided),
        ("codable segments with a code", coded),
        ("codings (segment × code)", n_codings),
        ("skipped files", counts.get("skipped", len(skipped))),
    ]
    versions = manifest.get("versions") or {}
    run_facts = [(k, v) for k, v in (
        ("Run id", manifest.get("run_id", "")),
        ("Started", manifest.get("started", "")),
        ("Finished", manifest.get("finished", "")),
        ("Duration", f"{manifest['seconds']} s" if "seconds" in manifest else ""),
        ("Codebook file", (manifest.get("codebook") or {}).get("path", codebook.path)),
        ("Model", model.get("model_id", "") if isinstance(model, dict) else str(model)),
        ("Software", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ) if v]
    return {
        "title": settings.title,
        "codebook": {"name": codebook.name, "version": codebook.version,
                     "sha256": codebook.sha256 or (manifest.get("codebook") or {}).get(
                         "sha256", "")},
        "run": {"run_id": manifest.get("run_id", ""), "finished": manifest.get("finished", "")},
        "run_facts": run_facts,
        "cards": cards,
        "notes": notes,
        "files": files,
        "has_evaluation": has_eval,
        "alpha": settings.alpha,
        "n_codable": n_codable,
        "n_documents": n_documents,
        "n_decided": n_decided,
        "n_classifier": n_codable - n_decided,
        "thresholds": {"auto": f"{STATUS_AUTO_ALPHA:.2f}", "check": f"{STATUS_CHECK_ALPHA:g}",
                       "positives": STATUS_MIN_POSITIVES, "reviewed": STATUS_MIN_REVIEWED},
        "categories": categories,
        "comparisons": comparisons,
        "pairs": pairs,
        "trust": trust,
        "evaluated": reviewed,
        "reliability": reliability,
        "reliability_facts": rel_facts,
        "trained_on": trained_on if isinstance(trained_on, int) else None,
        "skipped": skipped,
        "skipped_table": _where_table(skipped, "Reason"),
        "file_notes": file_notes,
        "file_notes_table": _where_table(file_notes, "Note"),
        "quotes": quote_sections,
        "quotes_per_code": settings.quotes_per_code,
        "quote_chars": settings.html_quote_chars if shortened else 0,
        "versions": versions,
    }


def _trust_table(ev: pd.DataFrame | None, codebook: Codebook
                 ) -> tuple[dict[str, Any] | None, str]:
    """The evaluation per code (codebook order), then its summary rows; and how many
    segments it was cross-validated on (``reviewed``, '' when unknown)."""
    if ev is None:
        return None, ""
    known = evaluation_by_code(ev, codebook.code_ids)
    wanted = [c for c in EVALUATION_LABELS if c in ev.columns]
    by_id = (ev.drop_duplicates("code_id").set_index("code_id") if "code_id" in ev.columns
             else pd.DataFrame())
    body = []
    for code in codebook.codes:
        if code.id not in by_id.index:
            continue
        r = by_id.loc[code.id]
        s = str(known.get(code.id, {}).get("status", ""))
        body.append(([code.name, code.id, *(_display(r[c]) for c in wanted), _badge(s)],
                     "human" if s == HUMAN else ""))
    for summary, label in EVALUATION_SUMMARIES.items():
        if summary in by_id.index:
            r = by_id.loc[summary]
            body.append(([label, "", *(_display(r[c]) for c in wanted), ""], "summary"))
    reviewed = ""
    if "reviewed" in by_id.columns and len(by_id):
        values = pd.to_numeric(by_id["reviewed"], errors="coerce").dropna()
        reviewed = str(int(values.max())) if len(values) else ""
    return _table([("Code", False), ("id", False),
                   *((EVALUATION_LABELS[c], True) for c in wanted), ("Status", False)],
                  body), reviewed


def _reliability_table(rel: pd.DataFrame | None, codebook: Codebook
                       ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``reliability.csv`` for reading: code names, readable headers, the alpha interval in
    one cell, and a classifier-vs-reference row left out where it repeats the one coder's
    row (one coder, no adjudicator: the reference is that coder's decisions)."""
    facts = {"coders": False, "pooled": False, "merged": False, "comparison": False}
    if rel is None or rel.empty:
        return None, facts
    rel = rel.reset_index(drop=True)
    if {"code_id", "comparison", "coders"} <= set(rel.columns):
        facts["comparison"] = True
        facts["coders"] = bool(rel["comparison"].isin(["coders", "coder-coder"]).any())
        metrics = [c for c in ("units", "percent_agreement", "kappa", "alpha")
                   if c in rel.columns]
        versus = rel[rel["comparison"] == "classifier-coder"]
        single = versus[~versus["code_id"].duplicated(keep=False)]
        ref = rel[rel["comparison"] == "classifier-reference"]
        same = ref.reset_index().merge(single[["code_id", *metrics]], on=["code_id", *metrics],
                                       how="inner")["index"]
        if len(same):
            facts["merged"] = True
            rel = rel.drop(index=same)
            repeated = rel["code_id"].isin(ref.loc[same, "code_id"]) & (
                rel["comparison"] == "classifier-coder")
            rel.loc[repeated, "coders"] = rel.loc[repeated, "coders"] + " (= reference)"
        rel = rel.drop(columns=["comparison"])
    names = {c.id: c.name for c in codebook.codes}
    columns = [*(["code_id"] if "code_id" in rel.columns else []),
               *(c for c in rel.columns if c not in ("code_id", "alpha_low", "alpha_high"))]
    interval = {"alpha_low", "alpha_high"} <= set(rel.columns)
    header = [(RELIABILITY_LABELS.get(c, c), c not in ("code_id", "coders")) for c in columns]
    if "code_id" in rel.columns:
        header.insert(1, ("id", False))
    if interval:
        header.append(("α 95% interval", True))
    body = []
    for row in rel.to_dict(orient="records"):
        cells: list[Any] = []
        for c in columns:
            value = row[c]
            if c == "code_id":
                code = str(value)
                facts["pooled"] = facts["pooled"] or code == POOLED_ROW
                cells += [("All codes at once (MASI)" if code == POOLED_ROW
                           else names.get(code, code)), code]
            elif c == "percent_agreement":
                cells.append(format_share(value))
            else:
                cells.append(_display(value))
        if interval:
            low, high = _display(row["alpha_low"]), _display(row["alpha_high"])
            cells.append("–" if "–" in (low, high) else f"{low}–{high}")
        body.append((cells, ""))
    return _table(header, body), facts


def _where_table(entries: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """A table of manifest entries (``skipped`` or ``notes``): file, line, reason."""
    return _table([("File", False), ("Line", True), (what, False)],
                  [([e.get("path", ""), str(e.get("line") or ""), e.get("reason", "")], "")
                   for e in entries])


def _group_n(crosstab: pd.DataFrame, group: str) -> str:
    total = crosstab[crosstab["code_id"] == TOTAL_ROW]
    column = f"segments_{group}"
    return str(int(total[column].iloc[0])) if len(total) and column in total else "?"


def _shorten(text: str, limit: int) -> str:
    if limit <= 0 or len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


# --------------------------------------------------------------------------- artifacts


def _frequencies(out: Path) -> pd.DataFrame | None:
    path = out / FREQUENCIES_CSV
    return _read_csv(path) if path.is_file() else None


def _typed(value: str) -> Any:
    if value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def frequency_table_rows(out: str | Path) -> list[dict[str, Any]]:
    """The rows of ``frequencies.csv`` with numbers as numbers (for a Prefect table artifact).

    Ids, names, categories, counts, shares (and corrected counts and status): no transcript
    text. Empty when :func:`write_reports` has not written the table yet.
    """
    freq = _frequencies(Path(out))
    if freq is None:
        return []
    return [{k: _typed(v) for k, v in row.items()} for row in freq.to_dict(orient="records")]


def artifact_markdown(out: str | Path, top: int = 10) -> str:
    """A short markdown summary of the run in ``out`` (for a Prefect markdown artifact).

    Counts, the ``top`` most frequent codes and the skipped files — only ids, counts, code
    names and file paths, never transcript text.
    """
    out = Path(out)
    manifest: dict[str, Any] = {}
    if (out / RUN_MANIFEST).is_file():
        try:
            manifest = json.loads((out / RUN_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
    book = manifest.get("codebook") or {}
    counts = manifest.get("counts") or {}
    lines = [f"# qualcode run {manifest.get('run_id', '')}".rstrip(), ""]
    if book:
        lines += [f"Codebook **{book.get('name', '')}** v{book.get('version', '')} "
                  f"(sha256 `{str(book.get('sha256', ''))[:12]}`)"
                  + (f" · finished {manifest['finished']}" if manifest.get("finished") else ""),
                  ""]
    if counts:
        keys = list(counts)
        lines += ["| " + " | ".join(k.replace("_", " ") for k in keys) + " |",
                  "|" + "---:|" * len(keys),
                  "| " + " | ".join(str(counts[k]) for k in keys) + " |", ""]
    freq = _frequencies(out)
    if freq is None:
        lines += ["_No frequency table yet._", ""]
    else:
        has_status = "status" in freq.columns
        freq = freq.assign(_n=pd.to_numeric(freq["segments"], errors="coerce").fillna(0))
        ranked = freq[freq["_n"] > 0].sort_values("_n", ascending=False, kind="stable")
        lines += [f"## Top codes (of {len(freq)})", ""]
        if ranked.empty:
            lines += ["_No codes applied._", ""]
        else:
            head = ("| code | id | category | segments coded | % of codable segments "
                    "| documents |")
            rule = "|---|---|---|---:|---:|---:|"
            if has_status:
                head += " corrected segments (95% interval) | status |"
                rule += "---:|---|"
            lines += [head, rule]
            for _, r in ranked.head(top).iterrows():
                share = format_share(r["share_of_segments"])
                row = (f"| {_md(r['name'])} | `{r['code_id']}` | {r['category']} | "
                       f"{r['segments']} | {share} | {r['documents']} |")
                if has_status:
                    interval = (f"{_one_decimal(r['corrected_segments'])} "
                                f"({_one_decimal(r['corrected_low'])}–"
                                f"{_one_decimal(r['corrected_high'])})"
                                if r["corrected_segments"] else "–")
                    flag = "⚠ human" if r["status"] == HUMAN else (r["status"] or "–")
                    row += f" {interval} | {flag} |"
                lines.append(row)
            lines.append("")
            lines += ["Segments coded: codable segments with the code (by rule, model or "
                      "coder); documents: documents with at least one."
                      + (" Corrected segments: the count corrected for the classifier's "
                         "cross-validated error rates (segments coders decided count as "
                         "decided), with its 95% interval; status `human`: the classifier is "
                         "not trusted for the code." if has_status else
                         " Not corrected for the classifier's errors: it has not been "
                         "evaluated on reviewed segments (no evaluation.csv)."), ""]
        if has_status:
            flagged = freq.loc[freq["status"] == HUMAN, "code_id"].tolist()
            if flagged:
                lines += ["**Status `human`** (classifier not trusted; code by hand): "
                          + ", ".join(f"`{c}`" for c in flagged), ""]
    skipped = list(manifest.get("skipped") or [])
    lines += [f"## Skipped files ({len(skipped)})", "", *_md_entries(skipped)]
    if not skipped:
        lines.append("None.")
    notes = list(manifest.get("notes") or [])
    if notes:
        lines += ["", f"## Notes on files that were read ({len(notes)})", "",
                  *_md_entries(notes)]
    return "\n".join(lines).rstrip() + "\n"


def _one_decimal(value: str) -> str:
    """A number from a CSV cell with one decimal (``70.85`` → ``70.8``); other text as is."""
    try:
        return f"{float(value):.1f}"
    except (TypeError, ValueError):
        return str(value)


# Words quoted from a file in a note ('the road was closed ...'): a quoted span of two or
# more words. Single quoted tokens (a doc_id, a path, a label) stay.
_QUOTED_WORDS = re.compile(r"(?<!\w)(['\"‘“])[^'\"‘’“”\n]*\s[^'\"‘’“”\n]*(['\"’”])(?!\w)")


def _md_entries(entries: list[dict[str, Any]]) -> list[str]:
    """Skipped files and notes for a Prefect artifact: where, and why, with words quoted
    from the file left out (Prefect's database must not hold transcript text)."""
    lines = []
    for e in entries:
        where = f"{e.get('path', '')}" + (f":{e['line']}" if e.get("line") else "")
        reason = _QUOTED_WORDS.sub(r"\1…\2", str(e.get("reason", "")))
        reason = reason if len(reason) <= 160 else reason[:159] + "…"
        lines.append(f"- `{where}`: {_md(reason)}")
    return lines


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
