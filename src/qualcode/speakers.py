"""Speaker labels in transcripts: ``Name:`` at a line start, with optional timestamps."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_INTERVIEWER_LABELS = ("Interviewer", "Int", "I", "Q", "Moderator")

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
LABEL_RE = re.compile(
    rf"""^[ \t]*
    (?:[\[(]?{_TIME}[\])]?[ \t]*(?:[-–—][ \t]*)?)?          # [00:12:03] or 00:12:03
    (?P<name>[^\W\d_][\w.'’&/-]*(?:[ \t]+[\w.'’&/-]+){{0,3}}?)  # up to four words
    (?:[ \t]*(?:[\[(]{_TIME}[\])]|(?P<note>\([^():\n]{{1,40}}\))))?  # (00:12:03) or (WFP)
    [ \t]*:(?=[ \t]|$)[ \t]*""",
    re.VERBOSE | re.MULTILINE,
)


@dataclass(slots=True, frozen=True)
class Label:
    """A speaker label found in a text: where it starts, where the words begin."""

    start: int  # offset of the line start
    end: int  # offset just after the label (and the spaces after it)
    key: str  # case-folded name, for grouping
    name: str  # display form


def label_key(name: str) -> str:
    return " ".join(name.casefold().split())


def _display(name: str) -> str:
    name = " ".join(name.split())
    return name.title() if name.isupper() and len(name) > 1 else name


def is_interviewer(name: str, labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS) -> bool:
    """True when ``name`` is one of ``labels`` (case-insensitive), e.g. ``INT`` or ``Q 2``."""
    key = label_key(name).rstrip(".")
    for label in labels:
        lab = label_key(label)
        if key == lab or re.fullmatch(rf"{re.escape(lab)}[ .\-#]*\d+|{re.escape(lab)} \(.*\)", key):
            return True
    return False


def find_labels(
    text: str,
    interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
    paragraph_labels: bool = False,
) -> list[Label]:
    """Speaker labels that open a turn, in order.

    A candidate ``Words:`` at a line start is accepted when the same name labels at
    least two lines of the text, is an interviewer label, or is a capitalised name
    after the first accepted label. A one-off ``Date:`` or ``Note:`` in a header block
    or prose is therefore not taken for a speaker.
    With ``paragraph_labels`` (text rebuilt from subtitles, one ``Speaker: words``
    paragraph per turn) a label opening a paragraph is accepted even if used once.
    """
    labels = list(interviewer_labels)
    candidates = [
        (m.start(), m.end(), label_key(_full_name(m)), _full_name(m))
        for m in LABEL_RE.finditer(text)
    ]
    counts = Counter(key for _, _, key, _ in candidates)
    names: dict[str, str] = {}
    for _, _, key, name in candidates:
        if key not in names or names[key].isupper():
            names[key] = name
    accepted = [
        counts[key] >= 2
        or is_interviewer(name, labels)
        or (paragraph_labels and (start == 0 or text.startswith("\n\n", start - 2)))
        for start, _, key, name in candidates
    ]
    # Once the conversation has started, a capitalised one-off label (a respondent who
    # speaks once, a second interviewee) is a speaker too, unless it is a header word.
    started = False
    for i, (_, _, key, name) in enumerate(candidates):
        if not accepted[i] and started and _looks_like_name(name) and key not in _HEADER_WORDS:
            accepted[i] = True
        started = started or accepted[i]
    return [
        Label(start, end, key, _display(names[key]))
        for ok, (start, end, key, _) in zip(accepted, candidates, strict=True)
        if ok
    ]


_HEADER_WORDS = {
    "date", "time", "note", "notes", "location", "place", "duration", "title", "subject",
    "topic", "language", "participants", "transcript", "transcriber", "recording", "source",
    "file", "case", "project", "re", "nb", "ps", "update", "edit", "summary", "question",
    "answer", "context", "background",
}


def _full_name(match: re.Match[str]) -> str:
    return f"{match['name']} {match['note']}" if match["note"] else match["name"]


def _looks_like_name(name: str) -> bool:
    words = [w for w in name.split() if not w.startswith("(")]
    return bool(words) and all(w[0].isupper() for w in words)
