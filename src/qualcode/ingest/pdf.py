"""PDF files: the text layer page by page, less running headers, footers and page
numbers (noted), with words hyphenated across a line break joined and a sentence that
runs over a page break kept in one paragraph; a damaged, encrypted or scanned PDF is
explained."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Sequence

from ..speakers import LABEL_RE
from .decode import text_lines
from .readers import RawDoc, ReadError, RowProblem, _content_hint, _layout, _require_text


def _not_pdf(data: bytes, warnings: Sequence[str] = ()) -> ReadError:
    """Why ``data`` is no readable PDF, in plain words, with the fix (and pypdf's first
    warning, which says what it found wrong)."""
    if b"%PDF-" not in data[:1024]:
        return ReadError(f"is not a PDF, although its name ends in .pdf"
                         f"{_content_hint(data)} — export the document again as PDF, or "
                         "give the file its real extension")
    what = "cut short or corrupted"
    if warnings:
        what = ("cut short: its end is missing" if "EOF marker" in warnings[0] else
                f"{what}; the PDF library says '{warnings[0].strip().rstrip('.')}'")
    return ReadError(f"is a damaged PDF ({what}) — open it in a PDF reader and save it "
                     "again, or export it again as PDF from the program that made it")


def _decrypted(reader) -> bool:
    """Whether an encrypted PDF opens without a password (one that only restricts printing
    or copying, as publishers' PDFs often do)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # an unsupported encryption, or a damaged encryption dictionary
        return False


class _PdfWarnings(logging.Handler):
    """pypdf's warnings (``EOF marker not found`` ...) do not name the file: kept, per
    thread, for the reason a damaged PDF is skipped, instead of printed on the console."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(self.local, "found", None)
        if found is not None:
            found.append(record.getMessage())

    @contextlib.contextmanager
    def kept(self) -> Iterator[list[str]]:
        self.local.found = []
        try:
            yield self.local.found
        finally:
            self.local.found = None


@functools.cache
def _pdf_warnings() -> _PdfWarnings:
    handler = _PdfWarnings()
    logger = logging.getLogger("pypdf")
    logger.addHandler(handler)
    logger.propagate = False
    return handler


# A line that is only a page number: "3", "Page 3", "3 of 12", "Page 3 / 12", "- 3 -".
_PAGE_NUMBER = re.compile(r"[-–—]?\s*(?:page\s+)?\d+(?:\s+(?:of|/)\s+\d+)?\s*[-–—]?",
                          re.IGNORECASE)
_EDGE_LINES = 2  # a page's first and last lines that may hold a running header or footer
# A word hyphenated across a line break, lower case on both sides ("nego-\ntiation").
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u00ad]\n(?=[^\W\d_])")
# The end of a page's last line that ends a sentence: the next page starts a paragraph.
_SENTENCE_END = re.compile(r"[.?!:…][\"'”’»)\]]*$|[\"”»]$")


def _running_key(line: str) -> str:
    """A header or footer line as compared across pages: digits (page numbers, dates)
    normalised, spacing and case ignored."""
    return re.sub(r"\d+", "0", " ".join(line.split())).casefold()


def _edges(lines: list[str]) -> list[int]:
    """The indexes of a page's first and last ``_EDGE_LINES`` non-empty lines."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted({*filled[:_EDGE_LINES], *filled[-_EDGE_LINES:]})


def _without_running_lines(pages: list[str]) -> tuple[list[str], list[str]]:
    """The pages less their running headers and footers (lines that recur, digits
    normalised, among the first or last lines of at least half of the pages of a PDF of
    two or more) and lone page numbers at their top or bottom; and the lines removed.

    A line that is only a speaker's label (``Interviewer:`` atop each page) is kept."""
    split = [page.split("\n") for page in pages]
    running: set[str] = set()
    if len(pages) >= 2:
        seen: dict[str, int] = {}
        for lines in split:
            for key in {_running_key(lines[i]) for i in _edges(lines)}:
                seen[key] = seen.get(key, 0) + 1
        running = {key for key, n in seen.items()
                   if n >= 2 and 2 * n >= len(pages) and key and not _label_only(key)}
    removed: list[str] = []
    kept: list[str] = []
    for lines in split:
        drop = {i for i in _edges(lines) if _running_key(lines[i]) in running}
        filled = [i for i, line in enumerate(lines) if line.strip() and i not in drop]
        for i in (filled[:1] + filled[-1:]) if filled else []:
            if _PAGE_NUMBER.fullmatch(lines[i].strip()):
                drop.add(i)
        removed.extend(lines[i].strip() for i in sorted(drop))
        kept.append("\n".join(line for i, line in enumerate(lines) if i not in drop).strip())
    return kept, removed


def _label_only(line: str) -> bool:
    """Whether ``line`` is a speaker's label with the words on the lines below."""
    match = LABEL_RE.match(line)
    return match is not None and not line[match.end() :].strip()


def _joined_pages(pages: list[str]) -> str:
    """The pages as one text: a page whose last line ends a sentence ends a paragraph;
    otherwise the sentence runs on, so the next page continues the line below."""
    text = ""
    for page in pages:
        if not page:
            continue
        if text:
            text += "\n\n" if _SENTENCE_END.search(text) else "\n"
        text += page
    return text


def _running_note(removed: list[str]) -> RowProblem:
    """The note on the running headers, footers and page numbers removed from a PDF."""
    shown = removed[0] if len(removed[0]) <= 60 else removed[0][:57] + "..."
    what = ("1 line" if len(removed) == 1 else f"{len(removed)} lines")
    return RowProblem(None, (
        f"{what} at the top or bottom of its pages (running headers, footers and page "
        f"numbers, such as '{shown}') {'was' if len(removed) == 1 else 'were'} removed, so "
        "as not to end up inside a speaker's turn; the rest was read — if words of the "
        "transcript were removed, save the document as .docx or .txt instead of PDF"),
        note=True)


def read_pdf(
    data: bytes, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    """A PDF's text layer, page by page, without running headers, footers and page numbers
    (returned as a note), with words hyphenated across a line break joined and a sentence
    that runs over a page break kept in one paragraph."""
    import pypdf

    with _pdf_warnings().kept() as warnings:
        try:
            reader = pypdf.PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not _decrypted(reader):
                raise ReadError(
                    "is password-protected — open it with its password in a PDF reader and "
                    "print or export it to a PDF without a password")
            pages = [page.extract_text() or "" for page in reader.pages]
        except ReadError:
            raise
        except Exception as err:  # pypdf raises many kinds of errors on damaged files
            raise _not_pdf(data, warnings) from err
    pages = [text_lines(p).strip() for p in pages]
    if not any(pages):
        raise ReadError(
            "has no text layer (a scanned PDF?) — run OCR on it or add a text version"
        )
    pages, removed = _without_running_lines(pages)
    text = _LINE_HYPHEN.sub(_unhyphenated, _joined_pages(pages))
    _require_text(text, "PDF")
    return [RawDoc(text, _layout(text, interviewer_labels), {})], (
        [_running_note(removed)] if removed else [])


def _unhyphenated(match: re.Match[str]) -> str:
    """A hyphen and line break inside a word, between lower-case letters: left out."""
    text = match.string
    return "" if text[match.start() - 1].islower() and text[match.end()].islower() else match[0]
