"""What the readers share (one per file format: bytes in, raw documents out, no ids, no
manifest): the formats read, a reader's result (:class:`RawDoc`; :class:`RowProblem`, a
part left out or to check; :class:`ReadError`, a file that cannot be read) and helpers
several readers use (decoding, a text's layout, metadata values, blank text). The readers
are in :mod:`.text` (.txt, .md), :mod:`.docx_reader`, :mod:`.pdf`, :mod:`.subtitles` (.vtt,
.srt) and :mod:`.tables` (.csv, .xlsx)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..documents import INTERVIEW, LITERATURE, PROSE, TRANSCRIPT
from ..speakers import KNOWN_LABELS, TURN_LABEL_RE, find_labels, is_interviewer
from .decode import DecodeError, decode, decode_bytes, file_kind

TEXT_FORMATS = ("txt", "md")
SUBTITLE_FORMATS = ("vtt", "srt")
TABLE_FORMATS = ("csv", "xlsx")
FORMATS = (*TEXT_FORMATS, "docx", "pdf", *SUBTITLE_FORMATS, *TABLE_FORMATS)


class ReadError(ValueError):
    """A file that cannot be read; ``reason`` says why and how to fix it."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class RawDoc:
    """What a reader found: text, its layout and the metadata the file itself carries."""

    text: str
    layout: str
    metadata: dict[str, str] = field(default_factory=dict)
    row: int | None = None  # spreadsheet row (header = 1) of an excerpt
    sheet: str | None = None  # its sheet, in a workbook with several


@dataclass(slots=True)
class RowProblem:
    """A part of a file that was left out: a table row or a subtitle cue (its line); with
    ``note``, something to check in a part that was read (stray characters removed)."""

    row: int | None  # None: the whole part (a workbook's sheet)
    reason: str
    note: bool = False


def _decode(data: bytes, lines: bool = False) -> tuple[str, list[RowProblem]]:
    """The text, with ``\n`` line ends; with ``lines`` (transcripts, subtitles) page breaks,
    Word's line breaks and Unicode line separators too, and no byte-order mark inside.
    Stray control characters and NUL padding are removed and returned as problems."""
    try:
        decoded = decode(data, lines)
    except DecodeError as err:
        raise ReadError(err.reason, err.line) from err
    text = decoded.text
    if not lines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, [RowProblem(line, reason, note=True) for line, reason in decoded.notes()]


def metadata_value(value: object) -> str:
    """Metadata as a spreadsheet-friendly string (dates ISO, 2016.0 -> 2016)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN from an empty spreadsheet cell
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value).strip()


_YMD = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")
# What a team writes for a date it does not know: not worth a note.
_NO_DATE = {"", "unknown", "n/a", "na", "tbd", "tbc", "none", "missing", "-", "?", "–", "—"}


def _real_date(year: str, month: str, day: str) -> bool:
    try:
        dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def metadata_note(name: str, value: str) -> str | None:
    """What to check in a metadata value given on purpose (manifest, front matter), or
    None: a ``source_type`` that looks like a misspelt ``interview`` or ``literature``
    (it would be a group of its own in the tables by source_type), and a date field
    (``date``, ``interview_date``) holding a day no calendar has or no date at all. The
    value is used as written either way."""
    key = re.sub(r"[\W_]+", "_", name.casefold()).strip("_")
    value = value.strip()
    if key == "source_type":
        typed = value.lower()
        near = difflib.get_close_matches(typed, (INTERVIEW, LITERATURE), n=1, cutoff=0.75)
        if typed and near and typed != near[0]:
            return (f"source_type '{value}' is neither '{INTERVIEW}' nor '{LITERATURE}'; it "
                    f"was used as written, a group of its own in the tables by source_type "
                    f"— did you mean '{near[0]}'? Correct it (another type, such as "
                    "'focus_group', is fine when meant)")
        return None
    if not (key == "date" or key.endswith("_date") or key.startswith("date_")):
        return None
    ymd, dmy = _YMD.fullmatch(value), _DMY.fullmatch(value)
    if ymd:
        bad = not _real_date(ymd[1], ymd[3], ymd[4])
    elif dmy:  # day/month/year or month/day/year: bad only when it is neither
        bad = not (_real_date(dmy[4], dmy[3], dmy[1]) or _real_date(dmy[4], dmy[1], dmy[3]))
    else:
        bad = not any(c.isdigit() for c in value) and value.lower() not in _NO_DATE
    if not bad:
        return None
    return (f"{name} '{value}' is not a real date; it was kept as written — correct it "
            "(e.g. 2023-03-09, as YYYY-MM-DD), or leave it empty if the date is unknown")


def _layout(text: str, interviewer_labels: Iterable[str]) -> str:
    """A transcript when speakers' labels are found, else prose; a text that is nothing
    but a transcript's header block (``Date: ...``, ``Interviewer: A.B.``) is a
    :class:`ReadError`: there is nothing to code."""
    if len(find_labels(text, interviewer_labels)) >= 2:
        return TRANSCRIPT
    keys = _header_keys(text, interviewer_labels)
    if keys:
        shown = ", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")
        raise ReadError(f"has only a header block ({shown}) and no interview text — add the "
                        "transcript below the header, each turn starting with the speaker's "
                        "label ('Interviewer: ...', 'Respondent: ...'), or remove the file")
    return PROSE


_HEADER_LINE = re.compile(r"[^\n]*\S[^\n]*")


def _header_keys(text: str, interviewer_labels: Iterable[str]) -> list[str] | None:
    """The keys of a text whose every line is a short ``Key: value`` (two or more, one of
    them a speaker's role: ``Interviewer``, ``Respondent``), else None."""
    keys: list[str] = []
    for line in _HEADER_LINE.finditer(text):  # prose stops at its first line
        match = TURN_LABEL_RE.match(line[0])
        if match is None or match["otter"] or len(line[0]) > 100 or not line[0][match.end():]:
            return None
        keys.append(match["name"])
    roles = (*interviewer_labels, *KNOWN_LABELS)
    return keys if len(keys) >= 2 and any(is_interviewer(k, roles) for k in keys) else None


# Nothing to read: white space and invisible format characters (zero-width spaces and
# joiners, direction marks, byte-order marks, soft hyphens).
_BLANK = re.compile("[\\s\u00ad\u200b-\u200f\u2060-\u2064\u202a-\u202e\ufeff]*")


def _blank(text: str) -> bool:
    """No visible character (invisible format characters count as none)."""
    return not text.strip() if text.isascii() else _BLANK.fullmatch(text) is not None


def _require_text(text: str, what: str = "file") -> None:
    if _blank(text):
        raise ReadError(f"the {what} has no text — add the text or remove the file")


def _content_hint(data: bytes) -> str:
    """What a file that is neither zip nor OLE seems to hold, as a parenthetical."""
    if b"%PDF-" in data[:1024]:
        return " (it is a PDF)"
    kind = file_kind(data)
    if kind:
        return f" (it is {kind})"
    try:
        decode_bytes(data[:65536])
    except DecodeError:
        return ""
    return " (it holds plain text)"


def _quoted(text: str, limit: int = 60) -> str:
    """``text`` on one line, in quotes, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit - 3]}...'"
