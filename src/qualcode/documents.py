"""The data that flows through qualcode: Documents, Segments and skip reports."""

from __future__ import annotations

from dataclasses import dataclass, field

INTERVIEW = "interview"
LITERATURE = "literature"

# How a document's text is cut into segments.
TRANSCRIPT = "transcript"  # speaker turns
PROSE = "prose"  # paragraphs
EXCERPT = "excerpt"  # the whole text is one segment


@dataclass(slots=True)
class Document:
    """One unit of the corpus: a transcript, a prose document or one excerpt-table row.

    ``text`` is the decoded body (front matter removed; subtitles and .docx rebuilt
    as ``Speaker: words`` lines); segment offsets index into it.
    """

    doc_id: str
    path: str  # relative to the corpus folder, POSIX separators
    format: str  # txt, md, docx, pdf, vtt, srt, csv, xlsx
    layout: str  # TRANSCRIPT, PROSE or EXCERPT
    text: str
    sha256: str  # of the file's bytes (shared by all rows of one table)
    metadata: dict[str, str] = field(default_factory=dict)
    row: int | None = None  # spreadsheet row of an excerpt (header = row 1)
    id_source: str = "file name"  # or "manifest", "front matter", "id column"

    @property
    def source_type(self) -> str:
        return self.metadata.get("source_type") or (
            INTERVIEW if self.layout == TRANSCRIPT else LITERATURE
        )


@dataclass(slots=True)
class Segment:
    """A codable (or context-only) span of a document."""

    segment_id: str
    doc_id: str
    source_type: str
    speaker: str
    turn: int | None
    char_start: int
    char_end: int
    text: str
    codable: bool = True
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Skipped:
    """A file (or part of one) that was not used, and why, with how to fix it; with
    ``note``, something to check in a file that was read (stray characters removed, no
    interviewer label), listed apart in the run manifest."""

    path: str
    reason: str
    line: int | None = None  # line or spreadsheet row, when it applies
    note: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"
