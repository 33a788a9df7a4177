"""Coders' decisions in ``<corpus>/reviews/*.csv``: read, check and reconcile them."""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .documents import Skipped
from .ingest.decode import DecodeError, decode_bytes

ADJUDICATOR = "adjudicator"
CODE_SEPARATOR = ";"


@dataclass(slots=True, frozen=True)
class Review:
    """One coder's decision on one segment (empty ``codes`` = reviewed, no code)."""

    segment_id: str
    codes: frozenset[str]
    coder: str
    source: str  # file name
    row: int  # row in that file (header = 1); later rows are later decisions


@dataclass(slots=True)
class ReviewSet:
    reviews: list[Review]
    problems: list[Skipped]
    sha256: str  # over all review files, to know when the training data changed

    def latest(self) -> dict[tuple[str, str], Review]:
        """The latest decision of each coder on each segment."""
        latest: dict[tuple[str, str], Review] = {}
        for review in self.reviews:
            latest[(review.segment_id, review.coder)] = review
        return latest

    def decisions(self) -> dict[str, frozenset[str]]:
        """One reference decision per reviewed segment.

        The adjudicator's decision wins; otherwise a code applies when at least half of
        the segment's coders applied it.
        """
        by_segment: dict[str, list[Review]] = {}
        for review in self.latest().values():
            by_segment.setdefault(review.segment_id, []).append(review)
        decided: dict[str, frozenset[str]] = {}
        for segment_id, reviews in by_segment.items():
            adjudicated = [r for r in reviews if r.coder.casefold() == ADJUDICATOR]
            if adjudicated:
                decided[segment_id] = adjudicated[-1].codes
                continue
            codes = {c for r in reviews for c in r.codes}
            decided[segment_id] = frozenset(
                c for c in codes if 2 * sum(c in r.codes for r in reviews) >= len(reviews)
            )
        return decided


def split_codes(value: str) -> list[str]:
    return [c.strip() for c in value.replace(",", CODE_SEPARATOR).split(CODE_SEPARATOR)
            if c.strip()]


def closest(value: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(value, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def read_review_file(path: Path, code_ids: Sequence[str]) -> tuple[list[Review], list[Skipped]]:
    """Rows of one review sheet; unknown codes and malformed rows become problems."""
    name = path.name
    try:
        text, _ = decode_bytes(path.read_bytes())
    except DecodeError as err:
        return [], [Skipped(name, err.reason, err.line)]
    reader = csv.DictReader(io.StringIO(text.replace("\r\n", "\n")))
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    missing = [c for c in ("segment_id", "codes") if c not in columns]
    if missing:
        return [], [Skipped(name, f"has no {' or '.join(repr(m) for m in missing)} column — "
                            "a review sheet needs segment_id, codes and coder", 1)]
    known = set(code_ids)
    reviews: list[Review] = []
    problems: list[Skipped] = []
    for row, record in enumerate(reader, start=2):
        segment_id = (record.get(columns["segment_id"]) or "").strip()
        if not segment_id:
            continue
        coder = (record.get(columns["coder"]) or "").strip() if "coder" in columns else ""
        coder = coder or path.stem
        codes = split_codes(record.get(columns["codes"]) or "")
        for code in codes:
            if code not in known:
                problems.append(Skipped(name, f"unknown code id '{code}'{closest(code, known)}"
                                        " — the code was ignored; fix the id", row))
        reviews.append(Review(segment_id, frozenset(c for c in codes if c in known), coder,
                              name, row))
    return reviews, problems


def load_reviews(folder: str | Path, code_ids: Sequence[str]) -> ReviewSet:
    """All review sheets (``*.csv``) in ``folder``, in file-name order."""
    folder = Path(folder)
    digest = hashlib.sha256()
    reviews: list[Review] = []
    problems: list[Skipped] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.csv")):
            if path.name.startswith((".", "~$")):
                continue
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
            found, bad = read_review_file(path, code_ids)
            reviews.extend(found)
            problems.extend(bad)
    return ReviewSet(reviews, problems, digest.hexdigest())
