"""Review sheets: export segments for coders, import their decisions, export disagreements.

**Export** (:func:`export_review_sheet`) writes ``<out>/review/<name>.xlsx`` and ``.csv``
(plus ``<name>_codes.csv`` beside the CSV; the workbook holds the code list as a second
sheet). One row per segment, columns :data:`SHEET_COLUMNS`:

- ``segment_id, doc_id, speaker``; ``context`` = the previous segment of the same document
  (e.g. the interviewer's question) as ``speaker: text``; ``text``;
- ``suggested`` = the classifier's codes with score and method (``code (0.82, rule)``),
  ``evidence`` = why (one ``code: words`` line per code), ``near_misses`` = up to three codes
  just below their threshold (``code (0.41 < 0.50)``);
- ``codes`` (editable) prefilled with the suggested ids, ``coder`` (editable, prefilled with
  the ``coder`` argument), ``memo`` (editable);
- ``text_sha256`` (hidden in the workbook): so that import can tell whether the segment's
  text changed since export.

Strategies: ``uncertain`` walks (segment, code) pairs by ``|score - threshold|``, smallest
first (active learning); ``random`` is a seeded simple random sample of the codable
segments (unbiased, for reliability — trust gating would bias it, so it does not apply);
``stratified`` takes segments per code (the code applied, in random order, then the highest
scores below threshold) round-robin, plus a stratum of segments with no code, so that every
code is covered; ``all`` takes every segment. Already reviewed segments (by anyone) are
left out unless ``include_reviewed``.

**Trust gating**: codes whose status in ``evaluation.csv`` is ``check`` or ``human`` (or
that are missing there, or when the file is absent) come first. For ``uncertain`` their
pairs are walked before any pair of an ``auto`` code; for ``stratified`` every code gets one
segment first, then only ``check``/``human`` codes (and the no-code stratum) until they are
exhausted, then the ``auto`` codes.

**Formula safety**: every cell that starts with ``= + - @``, a tab or CR (after optional
spaces, full-width forms included) is written with a leading ``'``, in the CSV and in the
workbook, and workbook cells are always strings; import strips that ``'`` again.

**Import** (:func:`import_review_sheets`) reads .xlsx or .csv sheets (comma, semicolon or tab
separated) and reports, with the sheet's row numbers: rows that cannot be read (more cells
than the header, an unclosed quote, a workbook cell that openpyxl cannot read), unknown
code ids (with the closest valid id), unknown segments, duplicate rows, missing coder, and
segments whose text changed since export. A row with any problem is not imported; every
valid row is. Decisions are
appended to ``<corpus>/reviews/<coder>.csv`` (see :mod:`qualcode.reviews`); a row identical
to that coder's latest decision for the segment, or to what the same sheet said last time,
is not appended again, so importing a sheet twice changes nothing.

**Disagreements** (:func:`export_disagreements`): the segments whose coders' latest
decisions differ, one ``codes by <coder>`` column per coder, and an empty ``codes`` column
with ``coder`` = ``adjudicator``. On import of such a sheet an empty ``codes`` cell means
"not adjudicated yet" (skipped); write ``(none)`` to decide "no code".
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .codebook import Codebook
from .ingest.decode import DecodeError
from .outputs import (
    CODINGS_CSV,
    CSV_ENCODING,
    EVALUATION_CSV,
    SCORES_CSV,
    SEGMENTS_CSV,
    atomic_write_bytes,
    atomic_write_text,
    csv_text,
    is_true,
    read_csv_rows,
)
from .reviews import (
    ADJUDICATOR,
    NONE_TOKEN,
    Review,
    ReviewSet,
    ReviewTable,
    RowProblem,
    append_reviews,
    closest,
    closest_segment,
    code_hint,
    coder_file,
    coder_key,
    column_key,
    formula_safe,
    from_formula_safe,
    is_adjudicator,
    load_reviews,
    read_table,
    repeated_column,
    resolve_codes,
    text_sha256,
)

__all__ = [
    "CODE_SHEET_COLUMNS",
    "SHEET_COLUMNS",
    "STRATEGIES",
    "ImportReport",
    "NothingToExport",
    "ReviewSheetError",
    "SheetProblem",
    "export_disagreements",
    "export_review_sheet",
    "import_review_sheets",
    "load_trust_status",
]

STRATEGIES = ("uncertain", "random", "stratified", "all")
SHEET_COLUMNS = (
    "segment_id", "doc_id", "speaker", "context", "text", "suggested", "codes", "coder", "memo",
    "evidence", "near_misses", "text_sha256",
)
EDITABLE = ("codes", "coder", "memo")
CODE_SHEET_COLUMNS = ("code_id", "name", "category", "definition", "apply_when", "do_not_apply")
CODER_COLUMN_PREFIX = "codes by "
TRUST_STATUSES = ("auto", "check", "human")
GATED = frozenset({"check", "human"})

REVIEW_DIR = "review"

# Problem kinds of an import report.
UNKNOWN_CODE = "unknown code"
UNKNOWN_SEGMENT = "unknown segment"
DUPLICATE = "duplicate"
MISSING_CODER = "missing coder"
TEXT_CHANGED = "text changed"
UNREADABLE = "unreadable"

_CONTEXT_CHARS = 800
_EVIDENCE_CHARS = 300
_XLSX_CELL_LIMIT = 32_000  # Excel's own limit is 32,767 characters


class ReviewSheetError(ValueError):
    """A review sheet cannot be exported or imported; the message says what to do."""


class NothingToExport(ReviewSheetError):
    """No segment qualifies for the sheet (e.g. everything is reviewed, or coders agree)."""


# ---------------------------------------------------------------------------- inputs


@dataclass(slots=True)
class _Segment:
    segment_id: str
    doc_id: str
    speaker: str
    text: str
    codable: bool
    context: str
    order: int


def segment_texts(out: str | Path) -> dict[str, str]:
    """Each segment's text in ``out``'s segments.csv (empty when there is none)."""
    path = Path(out) / SEGMENTS_CSV
    if not path.is_file():
        return {}
    return {sid: row.get("text", "") for row in read_csv_rows(path)
            if (sid := row.get("segment_id", "").strip())}


def _load_segments(path: Path) -> dict[str, _Segment]:
    """segments.csv in file order, each with its previous segment as context."""
    if not path.is_file():
        raise ReviewSheetError(f"{path} does not exist — run `qualcode run` first so that the "
                               "segments are known")
    segments: dict[str, _Segment] = {}
    previous: dict[str, str] = {}
    for i, row in enumerate(read_csv_rows(path)):
        sid, doc = row.get("segment_id", "").strip(), row.get("doc_id", "")
        if not sid:
            continue
        speaker, text = row.get("speaker", ""), row.get("text", "")
        codable = is_true(row["codable"]) if "codable" in row else True
        segments[sid] = _Segment(sid, doc, speaker, text, codable, previous.get(doc, ""), i)
        context = f"{speaker}: {text}" if speaker else text
        if len(context) > _CONTEXT_CHARS:
            context = "…" + context[-_CONTEXT_CHARS:]
        previous[doc] = context
    return segments


@dataclass(slots=True)
class _Suggestions:
    scores: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    applied: dict[str, dict[str, tuple[float, str, str]]] = field(default_factory=dict)

    def codes(self, sid: str) -> list[str]:
        return list(self.applied.get(sid, {}))


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def _load_suggestions(out: Path, code_ids: Sequence[str]) -> _Suggestions:
    """Scores (scores.csv) and applied codes with method and evidence (codings.csv)."""
    found = _Suggestions()
    known = set(code_ids)
    order = {c: j for j, c in enumerate(code_ids)}
    decided: dict[str, dict[str, tuple[float, str, str]]] = {}
    if (out / SCORES_CSV).is_file():
        for row in read_csv_rows(out / SCORES_CSV):
            code = row.get("code_id", "")
            if code not in known:
                continue
            sid = row.get("segment_id", "")
            score, threshold = _float(row.get("score", "")), _float(row.get("threshold", ""))
            found.scores.setdefault(sid, {})[code] = (score, threshold)
            if is_true(row.get("decision", "")):
                decided.setdefault(sid, {})[code] = (score, "", "")
    if (out / CODINGS_CSV).is_file():
        for row in read_csv_rows(out / CODINGS_CSV):
            code = row.get("code_id", "")
            if code in known:
                found.applied.setdefault(row.get("segment_id", ""), {})[code] = (
                    _float(row.get("score", "")), row.get("method", ""), row.get("evidence", ""))
    else:
        found.applied = decided
    for sid, codes in found.applied.items():
        found.applied[sid] = dict(sorted(codes.items(), key=lambda kv: order[kv[0]]))
    return found


def load_trust_status(path: str | Path, code_ids: Sequence[str]) -> dict[str, str]:
    """Trust status per code from ``evaluation.csv`` (``code_id`` and ``status`` columns).

    A code missing from the file, or a missing file, is ``human``. When the file has more
    than one row for a code (e.g. the full classifier, then rules alone), the first counts.
    """
    status = dict.fromkeys(code_ids, "human")
    path = Path(path)
    if not path.is_file():
        return status
    seen: set[str] = set()
    for row in read_csv_rows(path):
        code, value = row.get("code_id", ""), row.get("status", "").strip().lower()
        if code in status and code not in seen and value in TRUST_STATUSES:
            status[code] = value
            seen.add(code)
    return status


def _code_ids(codebook: Codebook | Sequence[str]) -> list[str]:
    return list(codebook.code_ids) if isinstance(codebook, Codebook) else list(codebook)


# ---------------------------------------------------------------------------- sampling


def _margin(pair: tuple[float, float]) -> float:
    score, threshold = pair
    margin = abs(score - threshold)
    return margin if margin == margin else float("inf")  # NaN last


def _rank(status: str) -> int:
    return 0 if status in GATED else 1


def _pick_uncertain(pool: list[_Segment], sugg: _Suggestions, status: Mapping[str, str],
                    n: int) -> list[_Segment]:
    if not sugg.scores:
        raise ReviewSheetError(
            "the 'uncertain' strategy needs scores.csv in the outputs folder — run "
            "`qualcode run` first (or pass --out with the folder of a run), or "
            "use --strategy random")
    pairs = sorted(
        (_rank(status.get(code, "human")), _margin(pair), seg.order, seg.segment_id)
        for seg in pool for code, pair in sugg.scores.get(seg.segment_id, {}).items()
    )
    by_id = {s.segment_id: s for s in pool}
    chosen: dict[str, _Segment] = {}
    for *_, sid in pairs:
        if len(chosen) >= n:
            break
        chosen.setdefault(sid, by_id[sid])
    return list(chosen.values())


def _pick_stratified(pool: list[_Segment], sugg: _Suggestions, status: Mapping[str, str],
                     code_ids: Sequence[str], n: int, rng: random.Random) -> list[_Segment]:
    strata: list[tuple[bool, list[_Segment]]] = []  # (gated, candidates in order)
    for gated in (True, False):
        for code in code_ids:
            if (status.get(code, "human") in GATED) != gated:
                continue
            applied = [s for s in pool if code in sugg.applied.get(s.segment_id, {})]
            rng.shuffle(applied)
            rest = [s for s in pool if code not in sugg.applied.get(s.segment_id, {})
                    and code in sugg.scores.get(s.segment_id, {})]
            rest.sort(key=lambda s: (-sugg.scores[s.segment_id][code][0], s.order))
            strata.append((gated, applied + rest))
        if gated:
            none = [s for s in pool if not sugg.applied.get(s.segment_id)]
            rng.shuffle(none)
            strata.append((True, none))
    chosen: dict[str, _Segment] = {}
    cursor = [0] * len(strata)

    def take(index: int) -> bool:
        candidates = strata[index][1]
        while cursor[index] < len(candidates):
            seg = candidates[cursor[index]]
            cursor[index] += 1
            if seg.segment_id not in chosen:
                chosen[seg.segment_id] = seg
                return True
        return False

    for i in range(len(strata)):  # every code once
        if len(chosen) < n:
            take(i)
    for wanted in (True, False):  # then check/human codes, then the rest
        active = [i for i, (gated, _) in enumerate(strata) if gated == wanted]
        while active and len(chosen) < n:
            active = [i for i in active if len(chosen) < n and take(i)]
    return list(chosen.values())


def _select(pool: list[_Segment], strategy: str, n: int, seed: int, sugg: _Suggestions,
            status: Mapping[str, str], code_ids: Sequence[str]) -> list[_Segment]:
    rng = random.Random(seed)
    if strategy == "all":
        return pool
    if strategy == "random":
        return sorted(rng.sample(pool, min(n, len(pool))), key=lambda s: s.order)
    if strategy == "uncertain":
        return _pick_uncertain(pool, sugg, status, n)
    return _pick_stratified(pool, sugg, status, code_ids, n, rng)


# ---------------------------------------------------------------------------- writing


@dataclass(slots=True)
class _Sheet:
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Any]]
    widths: Mapping[str, float] = field(default_factory=dict)
    hidden: Iterable[str] = ()
    editable: Iterable[str] = ()


def _xlsx_bytes(sheets: Sequence[_Sheet]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    fill = PatternFill("solid", start_color="FFF2CC", end_color="FFF2CC")
    for spec in sheets:
        sheet = book.create_sheet(spec.title)
        editable = set(spec.editable)
        for r, values in enumerate([spec.header, *spec.rows], start=1):
            for c, value in enumerate(values, start=1):
                text = ILLEGAL_CHARACTERS_RE.sub("", formula_safe(value))
                if len(text) > _XLSX_CELL_LIMIT:
                    text = text[:_XLSX_CELL_LIMIT] + " …"
                cell = sheet.cell(row=r, column=c, value=text)
                cell.data_type = "s"  # a string, never a formula
                if r == 1:
                    cell.font = bold
                else:
                    cell.alignment = wrap
                    if spec.header[c - 1] in editable:
                        cell.fill = fill
        for c, name in enumerate(spec.header, start=1):
            dim = sheet.column_dimensions[get_column_letter(c)]
            dim.width = spec.widths.get(name, 16)
            dim.hidden = name in set(spec.hidden)
        sheet.freeze_panes = "B2"
        if spec.rows:
            sheet.auto_filter.ref = sheet.dimensions
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _write_csv_safe(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text = csv_text([formula_safe(h) for h in header],
                     ([formula_safe(v) for v in row] for row in rows))
    atomic_write_text(path, text, CSV_ENCODING)


def _code_rows(codebook: Codebook | Sequence[str]) -> list[list[str]]:
    if not isinstance(codebook, Codebook):
        return [[c, "", "", "", "", ""] for c in codebook]
    return [[c.id, c.name, c.category, c.definition.strip(), "; ".join(c.include),
             "; ".join(c.exclude)] for c in codebook.codes]


_HOW_TO = [
    ["How to fill in this sheet"],
    ["1. Read the context and the text of each row (sheet 'review')."],
    ["2. Edit the 'codes' cell: the code ids that apply, separated by ';'. It is prefilled "
     "with the classifier's suggestions; delete the ones that do not apply, add missing ones "
     "(ids are listed on sheet 'codes')."],
    ["3. An empty 'codes' cell means: reviewed, no code applies. In a disagreements sheet, "
     f"write {NONE_TOKEN} for that instead (an empty cell there means: not decided yet)."],
    ["4. Put your name in 'coder' on every row you reviewed; delete rows you did not review."],
    ["5. 'memo' is for your notes. Do not edit segment_id, text or the hidden text_sha256."],
    ["6. Save as .xlsx (or CSV) and import it: qualcode review import FILE"],
]

_WIDTHS = {"segment_id": 18, "doc_id": 14, "speaker": 14, "context": 40, "text": 70,
           "suggested": 28, "codes": 30, "coder": 12, "memo": 30, "evidence": 40,
           "near_misses": 24, "disputed": 24, "memos": 30}


def _write_sheet(folder: Path, name: str, header: Sequence[str], rows: list[list[str]],
                 codebook: Codebook | Sequence[str], widths: Mapping[str, float]) -> list[Path]:
    xlsx, csv_path = folder / f"{name}.xlsx", folder / f"{name}.csv"
    codes_csv = folder / f"{name}_codes.csv"
    code_rows = _code_rows(codebook)
    atomic_write_bytes(xlsx, _xlsx_bytes([
        _Sheet("review", header, rows, widths, hidden=("text_sha256",), editable=EDITABLE),
        _Sheet("codes", CODE_SHEET_COLUMNS, code_rows,
               {"code_id": 26, "name": 30, "category": 20, "definition": 70,
                "apply_when": 40, "do_not_apply": 40}),
        _Sheet("how_to", ["instructions"], _HOW_TO[1:], {"instructions": 120}),
    ]))
    _write_csv_safe(csv_path, header, rows)
    _write_csv_safe(codes_csv, CODE_SHEET_COLUMNS, code_rows)
    return [xlsx, csv_path, codes_csv]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _score_text(value: float) -> str:
    return "?" if value != value else f"{value:.2f}"


def _suggestion_cells(sid: str, sugg: _Suggestions) -> tuple[str, str, str]:
    applied = sugg.applied.get(sid, {})
    scores = sugg.scores.get(sid, {})
    by_score = sorted(applied.items(), key=lambda kv: -kv[1][0] if kv[1][0] == kv[1][0] else 0)
    suggested = "; ".join(f"{code} ({_score_text(score)}{', ' + method if method else ''})"
                          for code, (score, method, _) in by_score)
    evidence = "\n".join(f"{code}: {ev[:_EVIDENCE_CHARS]}"
                         for code, (_, _, ev) in applied.items() if ev)
    below = sorted(((s - t, code, s, t) for code, (s, t) in scores.items()
                    if code not in applied and s == s and t == t), reverse=True)[:3]
    near = "; ".join(f"{code} ({_score_text(s)} < {_score_text(t)})" for _, code, s, t in below)
    return suggested, evidence, near


def export_review_sheet(
    out_dir: str | Path,
    codebook: Codebook | Sequence[str],
    strategy: str = "uncertain",
    n: int = 50,
    coder: str = "",
    seed: int = 0,
    include_reviewed: bool = False,
    reviews: ReviewSet | None = None,
    *,
    name: str | None = None,
    prefill: bool = True,
) -> list[Path]:
    """Write a review sheet for coders; return ``[<name>.xlsx, <name>.csv, <name>_codes.csv]``.

    ``out_dir`` is the outputs folder (``segments.csv`` is required; ``scores.csv``,
    ``codings.csv`` and ``evaluation.csv`` are used when present); the sheet goes to
    ``<out_dir>/review/``. ``reviews`` are the decisions so far: their segments are left out
    unless ``include_reviewed``. ``prefill=False`` leaves ``codes`` empty (an independent
    second coding for reliability, without anchoring on the suggestions). ``name`` defaults
    to ``review-<strategy>[-<coder>]-<UTC time>``. Raises :class:`ReviewSheetError` for an
    unknown strategy or missing inputs, :class:`NothingToExport` when no segment is left.
    """
    if strategy not in STRATEGIES:
        raise ReviewSheetError(f"unknown strategy {strategy!r}{closest(strategy, STRATEGIES)}"
                               f" — use one of {', '.join(STRATEGIES)}")
    if n < 1 and strategy != "all":
        raise ReviewSheetError(f"n must be at least 1 (got {n})")
    out = Path(out_dir)
    code_ids = _code_ids(codebook)
    segments = _load_segments(out / SEGMENTS_CSV)
    sugg = _load_suggestions(out, code_ids)
    status = load_trust_status(out / EVALUATION_CSV, code_ids)
    reviewed = {sid for sid, _ in reviews.latest()} if reviews is not None else set()
    pool = [s for s in segments.values()
            if s.codable and (include_reviewed or s.segment_id not in reviewed)]
    if not pool:
        raise NothingToExport("no codable segment is left to review — every one has been "
                              "reviewed; export with include_reviewed (--include-reviewed)")
    chosen = _select(pool, strategy, n, seed, sugg, status, code_ids)
    rows = []
    for seg in chosen:
        suggested, evidence, near = _suggestion_cells(seg.segment_id, sugg)
        prefilled = "; ".join(sugg.codes(seg.segment_id)) if prefill else ""
        rows.append([seg.segment_id, seg.doc_id, seg.speaker, seg.context, seg.text, suggested,
                     prefilled, coder, "", evidence, near, text_sha256(seg.text)])
    safe_coder = coder_file(".", coder).stem if coder else ""
    name = name or f"review-{strategy}{'-' + safe_coder if safe_coder else ''}-{_stamp()}"
    return _write_sheet(out / REVIEW_DIR, name, SHEET_COLUMNS, rows, codebook, _WIDTHS)


def _codes_cell(codes: Iterable[str], order: Mapping[str, int]) -> str:
    ordered = sorted(codes, key=lambda c: (order.get(c, len(order)), c))
    return "; ".join(ordered) if ordered else NONE_TOKEN


def export_disagreements(
    out_dir: str | Path,
    reviews: ReviewSet,
    segments: str | Path | None = None,
    *,
    codebook: Codebook | Sequence[str] | None = None,
    name: str | None = None,
    include_adjudicated: bool = False,
) -> Path:
    """Write the segments on which coders disagree, side by side; return the .xlsx path.

    Coders' latest decisions are compared (the adjudicator is not a coder here); a segment
    qualifies when two or more coders reviewed it and their code sets differ, and — unless
    ``include_adjudicated`` — the adjudicator has not decided it yet. ``segments`` is
    ``segments.csv`` (default ``<out_dir>/segments.csv`` when it exists) for document,
    speaker, context and text. Writes ``<out_dir>/review/<name>.xlsx`` and ``.csv`` (and
    ``<name>_codes.csv``); ``name`` defaults to ``disagreements-<UTC time>``. Raises
    :class:`NothingToExport` when coders agree everywhere.
    """
    out = Path(out_dir)
    seg_path = Path(segments) if segments is not None else out / SEGMENTS_CSV
    known = _load_segments(seg_path) if segments is not None or seg_path.is_file() else {}
    latest = reviews.latest()
    by_segment: dict[str, dict[str, Review]] = {}
    adjudicated: set[str] = set()
    for (sid, coder), review in latest.items():
        if is_adjudicator(coder):
            adjudicated.add(sid)
        else:
            by_segment.setdefault(sid, {})[coder] = review
    disputed = {sid: found for sid, found in by_segment.items()
                if len(found) >= 2 and len({r.codes for r in found.values()}) > 1
                and (include_adjudicated or sid not in adjudicated)}
    if not disputed:
        raise NothingToExport("no disagreements: coders who reviewed the same segment agree "
                              "(or the adjudicator has decided every disagreement)")
    coders = sorted({c for found in disputed.values() for c in found}, key=str.casefold)
    code_list = _code_ids(codebook) if codebook is not None else sorted(
        {c for found in disputed.values() for r in found.values() for c in r.codes})
    order = {c: j for j, c in enumerate(code_list)}
    header = ["segment_id", "doc_id", "speaker", "context", "text",
              *(f"{CODER_COLUMN_PREFIX}{c}" for c in coders), "disputed", "memos",
              "codes", "coder", "memo", "text_sha256"]
    unknown = len(known) + len(disputed)
    ordered = sorted(disputed, key=lambda s: (known[s].order if s in known else unknown, s))
    rows = []
    for sid in ordered:
        found = disputed[sid]
        seg = known.get(sid)
        sets = [r.codes for r in found.values()]
        split = set().union(*sets) - set.intersection(*map(set, sets))
        memos = "\n".join(f"{c}: {r.memo}" for c, r in sorted(found.items()) if r.memo)
        rows.append([
            sid, seg.doc_id if seg else "", seg.speaker if seg else "",
            seg.context if seg else "", seg.text if seg else "",
            *(_codes_cell(found[c].codes, order) if c in found else "" for c in coders),
            "; ".join(sorted(split, key=lambda c: (order.get(c, len(order)), c))), memos,
            "", ADJUDICATOR, "", text_sha256(seg.text) if seg else "",
        ])
    widths = {**_WIDTHS, **{f"{CODER_COLUMN_PREFIX}{c}": 26 for c in coders}}
    name = name or f"disagreements-{_stamp()}"
    return _write_sheet(out / REVIEW_DIR, name, header, rows,
                        codebook if codebook is not None else code_list, widths)[0]


# ---------------------------------------------------------------------------- import


@dataclass(slots=True, frozen=True)
class SheetProblem:
    """A row (or file) of a review sheet that was not imported, and why."""

    path: str
    row: int | None
    kind: str  # UNKNOWN_CODE, UNKNOWN_SEGMENT, DUPLICATE, MISSING_CODER, TEXT_CHANGED ...
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.row}" if self.row else self.path
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ImportReport:
    """What an import did: decisions appended per coder, rows skipped, problems."""

    appended: dict[str, int] = field(default_factory=dict)  # coder -> new decisions
    files: list[Path] = field(default_factory=list)  # review files written
    rows: int = 0  # data rows read
    unchanged: int = 0  # rows equal to the decision already on record
    undecided: int = 0  # rows of a disagreements sheet left empty
    skipped_files: list[str] = field(default_factory=list)  # e.g. companion *_codes.csv
    problems: list[SheetProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def imported(self) -> int:
        return sum(self.appended.values())

    def summary(self) -> str:
        per_coder = ", ".join(f"{c}: {k}" for c, k in self.appended.items())
        lines = [f"read {_many(self.rows, 'row')}; imported "
                 f"{_many(self.imported, 'decision')}" + (f" ({per_coder})" if per_coder else "")]
        if self.files:
            lines.append("written: " + ", ".join(str(p) for p in self.files))
        if self.unchanged:
            lines.append(f"{_many(self.unchanged, 'row')} unchanged (already on record)")
        if self.undecided:
            lines.append(f"{_many(self.undecided, 'disagreement')} left undecided (empty codes)")
        if self.skipped_files:
            lines.append("not review sheets, skipped: " + ", ".join(self.skipped_files))
        if self.problems:
            lines.append(f"{_many(len(self.problems), 'problem')} (those rows were not "
                         "imported):")
            lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


def _many(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(slots=True)
class _Row:
    sheet: str  # file name
    row: int
    segment_id: str
    coder: str
    codes: frozenset[str]
    memo: str
    sha: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.coder, self.segment_id)


def _sheet_files(paths: Sequence[Path], history: Mapping[str, set[str]],
                 report: ImportReport) -> list[Path]:
    """The sheets to read: one file per export (.xlsx and .csv of one export share a stem)."""
    by_stem: dict[str, list[Path]] = {}
    for path in paths:
        if path.name.endswith("_codes.csv") or path.name.startswith("~$"):
            report.skipped_files.append(path.name)
            continue
        by_stem.setdefault(path.stem, []).append(path)
    chosen: list[Path] = []
    for stem, group in by_stem.items():
        existing = [p for p in group if p.is_file()]
        for path in group:
            if not path.is_file():
                report.problems.append(SheetProblem(str(path), None, UNREADABLE,
                                                    "does not exist — check the path"))
        if not existing:
            continue
        keep = max(existing, key=lambda p: p.stat().st_mtime)
        for other in existing:
            if other != keep:
                report.problems.append(SheetProblem(
                    other.name, None, DUPLICATE,
                    f"is the same export as {keep.name}, which was saved later and was "
                    "imported instead — import only the file you edited"))
        earlier = history.get(stem, set()) - {keep.name}
        if earlier:
            report.problems.append(SheetProblem(
                keep.name, None, DUPLICATE,
                f"this export was already imported from {', '.join(sorted(earlier))} — "
                "import only the file you edited (the .xlsx or the .csv, not both)"))
            continue
        chosen.append(keep)
    return chosen


def import_review_sheets(
    paths: Sequence[str | Path],
    corpus_reviews_dir: str | Path,
    segments_csv: str | Path | None,
    codebook: Codebook | Sequence[str],
    *,
    coder: str | None = None,
) -> ImportReport:
    """Check review sheets and append their valid decisions to ``<reviews>/<coder>.csv``.

    ``segments_csv`` (normally ``outputs/segments.csv``) is needed to report unknown
    segments and changed text; ``None`` skips both checks. ``coder`` fills in rows whose
    ``coder`` cell is empty. Rows with a problem are reported and not imported; nothing
    already on record is changed (see the module docstring for the rules).
    """
    report = ImportReport()
    code_ids = _code_ids(codebook)
    reviews_dir = Path(corpus_reviews_dir)
    texts: dict[str, str] | None = None
    if segments_csv is not None:
        texts = {s.segment_id: s.text for s in _load_segments(Path(segments_csv)).values()}
    names = codebook.ids_by_name if isinstance(codebook, Codebook) else {}
    existing = load_reviews(reviews_dir, code_ids, names)
    latest = {key: r.codes for key, r in existing.latest().items()}  # (segment, coder)
    from_sheet: dict[tuple[str, str, str], frozenset[str]] = {}
    history: dict[str, set[str]] = {}
    for r in existing.reviews:
        if r.sheet:
            stem = Path(r.sheet).stem
            from_sheet[(stem, r.coder, r.segment_id)] = r.codes
            history.setdefault(stem, set()).add(r.sheet)

    candidates: list[_Row] = []
    for path in _sheet_files([Path(p) for p in paths], history, report):
        candidates.extend(_read_sheet(path, code_ids, texts, coder, report, names))
    # A coder as the review files spell them ('alice' for a sheet's 'Alice'): what is on
    # record is found, and nothing is imported twice.
    spelled = {coder_key(c): c for c in existing.coders}
    for row in candidates:
        row.coder = spelled.setdefault(coder_key(row.coder), row.coder)

    # Within one sheet, a coder's segment twice is a duplicate.
    first: dict[tuple[str, str, str], _Row] = {}
    conflicted: set[tuple[str, str, str]] = set()
    for row in candidates:
        key = (row.sheet, *row.key)
        seen = first.get(key)
        if seen is None:
            first[key] = row
            continue
        same = seen.codes == row.codes
        report.problems.append(SheetProblem(
            row.sheet, row.row, DUPLICATE,
            f"segment '{row.segment_id}' appears again for coder '{row.coder}' (first at row "
            f"{seen.row}) " + ("with the same codes — imported once" if same else
                               "with different codes — neither row was imported; keep one")))
        if not same:
            conflicted.add(key)
    valid = [r for key, r in first.items() if key not in conflicted]

    # Already on record: the coder's latest decision, or what this sheet said last time.
    fresh: list[_Row] = []
    for row in valid:
        said = from_sheet.get((Path(row.sheet).stem, row.coder, row.segment_id))
        if latest.get((row.segment_id, row.coder)) == row.codes or said == row.codes:
            report.unchanged += 1
        else:
            fresh.append(row)

    # Across sheets of one import, two different new decisions are a conflict.
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in fresh:
        groups.setdefault(row.key, []).append(row)
    new: list[_Row] = []
    for (who, sid), rows in groups.items():
        if len({r.codes for r in rows}) == 1:
            new.append(rows[0])
            continue
        where = ", ".join(f"{r.sheet}:{r.row}" for r in rows)
        for r in rows:
            report.problems.append(SheetProblem(
                r.sheet, r.row, DUPLICATE,
                f"segment '{sid}' has different decisions by '{who}' in {where} — none was "
                "imported; import the sheet with the right one alone"))

    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    by_coder: dict[str, list[_Row]] = {}
    for row in sorted(new, key=lambda r: (r.sheet, r.row)):
        by_coder.setdefault(row.coder, []).append(row)
    for who, rows in by_coder.items():
        records = [{"segment_id": r.segment_id, "codes": r.codes, "coder": r.coder,
                    "memo": r.memo, "text_sha256": r.sha, "sheet": r.sheet,
                    "sheet_row": r.row, "imported_at": stamp} for r in rows]
        try:
            written = append_reviews(reviews_dir, records)
        except (DecodeError, OSError) as err:
            target = coder_file(reviews_dir, who)
            report.problems.append(SheetProblem(
                str(target), None, UNREADABLE,
                f"cannot be updated ({getattr(err, 'reason', err)}) — the {len(rows)} new "
                f"decisions of '{who}' were not imported; repair or move that file"))
            continue
        report.appended[who] = report.appended.get(who, 0) + len(rows)
        report.files.extend(p for p in written if p not in report.files)
    return report


def _xlsx_cells(path: Path, broken: dict[int, str]) -> list[tuple[int, list[str]]]:
    """The numbered rows of a workbook's ``review`` sheet (else its first), read with
    openpyxl's sheet parser told to read on past a cell it cannot read (a number cell that
    holds text, a lost shared string ...): such a cell is read as empty and ``broken`` gets
    its row and why. openpyxl itself stops reading the whole sheet there."""
    from openpyxl import load_workbook
    from openpyxl.worksheet._reader import WorkSheetParser

    class Parser(WorkSheetParser):
        def parse_cell(self, element: Any) -> dict[str, Any]:
            try:
                return super().parse_cell(element)
            except (ValueError, TypeError, IndexError, KeyError, OverflowError) as err:
                self.col_counter += 1
                cell = element.get("r") or f"in column {self.col_counter}"
                broken.setdefault(self.row_counter, f"cell {cell} cannot be read ({err})")
                return {"row": self.row_counter, "column": self.col_counter, "value": None,
                        "data_type": "n", "style_id": 0}

    rows: list[tuple[int, list[str]]] = []
    book = load_workbook(path, read_only=True, data_only=False)
    try:
        sheet = book["review"] if "review" in book.sheetnames else book.worksheets[0]
        with sheet._get_source() as source:
            parser = Parser(source, sheet._shared_strings, data_only=False, epoch=book.epoch,
                            date_formats=book._date_formats,
                            timedelta_formats=book._timedelta_formats)
            for number, cells in parser.parse():
                values = [""] * max((c["column"] for c in cells), default=0)
                for c in cells:
                    values[c["column"] - 1] = "" if c["value"] is None else str(c["value"])
                rows.append((number, values))
    finally:
        book.close()
    return rows


def _xlsx_table(path: Path) -> ReviewTable:
    """The table of a workbook with cells openpyxl cannot read (see :func:`_xlsx_cells`):
    the rows holding one are left out and listed. Raises :class:`DecodeError` when the
    sheet cannot be read even so, or its header row holds such a cell."""
    broken: dict[int, str] = {}
    try:
        raw = _xlsx_cells(path, broken)
    except Exception as err:  # a damaged file: openpyxl raises many kinds
        raise DecodeError(f"cannot be read as an Excel workbook ({err}) — save it as .xlsx "
                          "again or export it as CSV") from err
    table = ReviewTable([], [])
    if not raw:
        return table
    (first, head), *body = raw
    if first in broken:
        raise DecodeError(f"its header row: {broken[first]} — nothing was read from this "
                          "file; retype the column names (segment_id, codes, coder ...) "
                          "and import it again", first)
    table.header = [h.strip() for h in head]
    keys = [column_key(h) for h in table.header]
    for number, values in body:
        if number in broken:
            table.problems.append(RowProblem(
                number, broken[number], "retype the cell's value in the spreadsheet (or save "
                "the sheet again as .xlsx from Excel or LibreOffice) and import it again"))
            continue
        cells = [from_formula_safe(v) for v in values]
        if any(c.strip() for c in cells):
            table.rows.append((number, {k: (cells[i] if i < len(cells) else "")
                                        for i, k in enumerate(keys) if k}))
    return table


def _sheet_table(path: Path) -> ReviewTable:
    """The sheet's header and rows, the rows that cannot be read left out and listed (more
    cells than the header, an unclosed quote, a workbook cell that cannot be read): one bad
    row does not cost the others. Raises :class:`DecodeError` or :class:`OSError` when the
    file cannot be read at all."""
    try:
        return read_table(path)
    except (DecodeError, OSError):
        raise
    except Exception:  # openpyxl gives up at the first cell it cannot read
        if path.suffix.lower() not in (".xlsx", ".xlsm"):
            raise
        return _xlsx_table(path)


def _read_sheet(path: Path, code_ids: Sequence[str], texts: Mapping[str, str] | None,
                default_coder: str | None, report: ImportReport,
                names: Mapping[str, str] | None = None) -> list[_Row]:
    name = path.name
    try:
        table = _sheet_table(path)
    except (DecodeError, OSError) as err:
        report.problems.append(SheetProblem(name, getattr(err, "line", None), UNREADABLE,
                                            f"{getattr(err, 'reason', err)}"))
        return []
    header, rows = table.header, table.rows
    if not any(header) and not rows and not table.problems:
        report.problems.append(SheetProblem(name, 1, UNREADABLE, "is empty — nothing was "
                                            "imported; save the review sheet into it again"))
        return []
    keys = [column_key(h) for h in header]
    if twice := repeated_column(keys):
        report.problems.append(SheetProblem(
            name, 1, UNREADABLE, f"has {twice} — nothing was imported from it (which one "
            "holds the decisions is unclear); delete or rename the others and import it again"))
        return []
    columns = set(keys)
    missing = [c for c in ("segment_id", "codes") if c not in columns]
    if missing:
        report.problems.append(SheetProblem(
            name, 1, UNREADABLE,
            f"has no {' or '.join(repr(m) for m in missing)} column — is this a review sheet? "
            "It needs segment_id, codes and coder"))
        return []
    if "coder" not in columns and not default_coder:
        report.problems.append(SheetProblem(
            name, 1, MISSING_CODER,
            "has no 'coder' column — add one with your name on every row, or import with "
            "--coder NAME; nothing was imported from it"))
        return []
    adjudication = any(c.startswith(CODER_COLUMN_PREFIX) for c in columns)
    start = len(report.problems)
    for problem in table.problems:
        report.rows += 1
        report.problems.append(SheetProblem(name, problem.row, UNREADABLE, problem.reason()))
    found: list[_Row] = []
    for number, record in rows:
        report.rows += 1
        sid = record.get("segment_id", "").strip()
        raw_codes = record.get("codes", "")
        if adjudication and not raw_codes.strip():
            report.undecided += 1
            continue
        problems: list[tuple[str, str]] = []
        who = record.get("coder", "").strip() or (default_coder or "").strip()
        if not sid:
            problems.append((UNKNOWN_SEGMENT, "no segment_id — the row cannot be matched to a "
                             "segment; restore its segment_id"))
        elif texts is not None and sid not in texts:
            problems.append((UNKNOWN_SEGMENT,
                             f"unknown segment '{sid}'{closest_segment(sid, texts.keys())} — it is "
                             "not in "
                             "segments.csv; correct the id (or rerun `qualcode run` if the "
                             "corpus changed)"))
        codes, unknown = resolve_codes(raw_codes, code_ids, names or ())
        for code in unknown:
            problems.append((UNKNOWN_CODE,
                             f"unknown code id '{code}'{code_hint(code, code_ids, names)} — "
                             "correct it "
                             "(valid ids are on the 'codes' sheet) and import the sheet again"))
        if not who:
            problems.append((MISSING_CODER,
                             "no coder — write your name in the 'coder' cell (or import with "
                             "--coder NAME), or delete the row if you did not review it"))
        sha = record.get("text_sha256", "").strip()
        if sid and texts is not None and sid in texts and sha and sha != text_sha256(texts[sid]):
            problems.append((TEXT_CHANGED,
                             f"the text of segment '{sid}' changed since the sheet was "
                             "exported — review it again in a new sheet"))
        for kind, message in problems:
            report.problems.append(SheetProblem(name, number, kind, message))
        if problems:
            continue
        found.append(_Row(name, number, sid, who, codes, record.get("memo", "").strip(), sha))
    report.problems[start:] = sorted(report.problems[start:], key=lambda p: p.row or 0)
    return found
