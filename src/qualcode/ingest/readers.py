"""One reader per file format: bytes in, raw documents out (no ids, no manifest)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import yaml

from ..documents import EXCERPT, PROSE, TRANSCRIPT
from ..speakers import LABEL_RE, find_labels, label_key
from .decode import DecodeError, decode_bytes

TEXT_FORMATS = ("txt", "md")
SUBTITLE_FORMATS = ("vtt", "srt")
TABLE_FORMATS = ("csv", "xlsx")
FORMATS = (*TEXT_FORMATS, "docx", "pdf", *SUBTITLE_FORMATS, *TABLE_FORMATS)
ID_COLUMNS = ("excerpt_id", "id", "doc_id")


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


@dataclass(slots=True)
class RowProblem:
    row: int
    reason: str


def _decode(data: bytes) -> str:
    try:
        text, _ = decode_bytes(data)
    except DecodeError as err:
        raise ReadError(err.reason, err.line) from err
    return text.replace("\r\n", "\n").replace("\r", "\n")


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


def _layout(text: str, interviewer_labels: Iterable[str]) -> str:
    return TRANSCRIPT if len(find_labels(text, interviewer_labels)) >= 2 else PROSE


def _require_text(text: str, what: str = "file") -> None:
    if not text.strip():
        raise ReadError(f"the {what} has no text — add the text or remove the file")


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe YAML in which ``0042``, ``10:30`` and ``no`` stay as written (YAML 1.1 would
    read them as 34, 630 and False); dates and nulls are still recognised."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] not in
            ("int", "float", "bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# The same with libyaml's parser (several times faster) where PyYAML was built with it;
# errors are still reported by the pure-Python one, in its words.
_FastFrontMatterLoader = type("_FastFrontMatterLoader",
                              (getattr(yaml, "CSafeLoader", _FrontMatterLoader),),
                              {"yaml_implicit_resolvers":
                               _FrontMatterLoader.yaml_implicit_resolvers})

_FRONT = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split YAML front matter (``---`` … ``---``) from the body."""
    if not text.startswith("---"):
        return {}, text
    match = _FRONT.match(text)
    if not match:
        raise ReadError(
            "front matter opens with '---' at line 1 but is never closed — add a '---' line "
            "after the metadata",
            1,
        )
    try:
        try:
            meta = yaml.load(match.group(1), Loader=_FastFrontMatterLoader) or {}
        except yaml.YAMLError:
            meta = yaml.load(match.group(1), Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 2 if mark else None
        raise ReadError(
            f"front matter is not valid YAML ({getattr(err, 'problem', err)}) — write it as "
            "'key: value' lines between the '---' lines",
            line,
        ) from err
    if not isinstance(meta, dict):
        raise ReadError(
            "front matter must be 'key: value' lines between the '---' lines", 2
        )
    return {str(k).strip(): metadata_value(v) for k, v in meta.items()}, text[match.end() :]


def read_text(data: bytes, interviewer_labels: Iterable[str]) -> list[RawDoc]:
    meta, body = split_front_matter(_decode(data))
    _require_text(body)
    return [RawDoc(body, _layout(body, interviewer_labels), meta)]


def read_docx(data: bytes, interviewer_labels: Iterable[str]) -> list[RawDoc]:
    import docx  # python-docx; imported here because it is slow to import
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise ReadError(
            f"is not a readable .docx ({type(err).__name__}: {err}) — open it in Word or "
            "LibreOffice and save it again as .docx"
        ) from err
    except Exception as err:  # python-docx raises its own and lxml's errors on damage
        raise ReadError(
            f"is not a readable .docx ({type(err).__name__}) — open it in Word or "
            "LibreOffice and save it again as .docx"
        ) from err
    paragraphs: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            # Transcription services often deliver "speaker | words" tables.
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for i, c in enumerate(cells) if c and c not in cells[:i]]
                if len(cells) >= 2 and not cells[0].endswith(":"):
                    cells[0] += ":"
                if cells:
                    paragraphs.append(" ".join(cells))
        elif block.text.strip():
            paragraphs.append(block.text.strip())
    text = "\n\n".join(paragraphs)
    _require_text(text, ".docx")
    props = document.core_properties
    meta = {"title": props.title} if props.title else {}
    return [RawDoc(text, _layout(text, interviewer_labels), meta)]


def read_pdf(data: bytes, interviewer_labels: Iterable[str]) -> list[RawDoc]:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ReadError("is an encrypted PDF — save an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ReadError:
        raise
    except Exception as err:  # pypdf raises many kinds of errors on damaged files
        raise ReadError(
            f"is not a readable PDF ({type(err).__name__}: {err}) — export it again as PDF"
        ) from err
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise ReadError(
            "has no text layer (a scanned PDF?) — run OCR on it or add a text version"
        )
    return [RawDoc(text, _layout(text, interviewer_labels), {})]


_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG = re.compile(r"</?[^>]+>")


def read_subtitles(data: bytes, fmt: str, interviewer_labels: Iterable[str]) -> list[RawDoc]:
    """Subtitles → ``Speaker: words`` turns; consecutive cues of one speaker merge."""
    import webvtt

    text = _decode(data)
    _require_text(text)
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt).captions
    except Exception as err:  # webvtt-py's MalformedFileError / MalformedCaptionError
        raise ReadError(
            f"is not a valid .{fmt} file ({err}) — check the cue numbers and "
            "'00:00:01.000 --> 00:00:04.000' timing lines"
        ) from err
    cues: list[tuple[str | None, str]] = []
    for caption in captions:
        for raw in caption.raw_text.split("\n"):
            voice = _VOICE.search(raw)
            words = " ".join(_TAG.sub("", raw).split())
            if words:
                cues.append((voice.group(1).strip() if voice else None, words))
    if not cues:
        raise ReadError(
            f"the .{fmt} file has no caption text — export the captions again or remove the file"
        )
    # Labels written as "Name: words" count only when they recur (see find_labels).
    plain = "\n".join(words for voice, words in cues if voice is None)
    accepted = {label.key for label in find_labels(plain, interviewer_labels)}
    turns: list[list[str]] = []  # [speaker, words...]
    for voice, words in cues:
        speaker = voice
        if speaker is None:
            match = LABEL_RE.match(words)
            if match and label_key(match["name"]) in accepted:
                speaker, words = match["name"], words[match.end() :]
        if speaker is not None and (not turns or label_key(turns[-1][0]) != label_key(speaker)):
            turns.append([speaker])
        elif not turns:
            turns.append([""])
        if words:
            turns[-1].append(words)
    body = "\n\n".join(
        (f"{t[0]}: " if t[0] else "") + " ".join(t[1:]) for t in turns if len(t) > 1 or t[0]
    )
    layout = TRANSCRIPT if any(t[0] for t in turns) else PROSE
    return [RawDoc(body, layout, {})]


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _read_table_frame(data: bytes, fmt: str):
    import pandas as pd

    if fmt == "xlsx":
        try:
            return pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=object)
        except Exception as err:  # openpyxl/zipfile errors on damaged workbooks
            raise ReadError(
                f"is not a readable .xlsx workbook ({type(err).__name__}: {err}) — save it "
                "again from your spreadsheet program"
            ) from err
    text = _decode(data)
    _require_text(text)
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=_sniff_delimiter(text[:8192]),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # a blank line is a spreadsheet row: keep row numbers true
        )
    except Exception as err:  # pandas ParserError names the line
        line = re.search(r"line (\d+)", str(err))
        raise ReadError(
            f"is not a well-formed CSV table ({str(err).strip()}) — check the quoting on "
            "that line",
            int(line.group(1)) if line else None,
        ) from err


def read_table(data: bytes, fmt: str) -> tuple[list[RawDoc], list[RowProblem]]:
    """An excerpt table: one document per row, ``text`` + an id column, the rest metadata."""
    frame = _read_table_frame(data, fmt)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    found = ", ".join(str(c) for c in frame.columns) or "none"
    if "text" not in columns:
        raise ReadError(
            f"has no 'text' column (columns: {found}) — name the column that holds the "
            "excerpt 'text'",
            1,
        )
    id_col = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    if id_col is None:
        raise ReadError(
            f"has no id column (columns: {found}) — add an 'excerpt_id' (or 'id') column "
            "with a unique id per row",
            1,
        )
    text_col = columns["text"]
    docs: list[RawDoc] = []
    problems: list[RowProblem] = []
    for i, record in enumerate(frame.to_dict("records")):
        row = i + 2
        values = {str(k).strip(): metadata_value(v) for k, v in record.items()}
        text = values[str(text_col).strip()]  # an empty .xlsx cell is NaN, not "nan"
        excerpt_id = values[str(id_col).strip()]
        if not excerpt_id and not text.strip():
            continue  # a blank row
        if not excerpt_id:
            problems.append(RowProblem(row, f"no {id_col} — give the excerpt a unique id"))
            continue
        if not text.strip():
            problems.append(
                RowProblem(row, f"excerpt '{excerpt_id}' has an empty text — add the text")
            )
            continue
        meta = {k: v for k, v in values.items() if k not in (str(text_col).strip(),)}
        meta["doc_id"] = meta.pop(str(id_col).strip())
        docs.append(RawDoc(text.strip(), EXCERPT, meta, row))
    if not docs and not problems:
        raise ReadError("the table has no rows — add excerpts or remove the file")
    return docs, problems


Reader = Callable[[bytes, Iterable[str]], list[RawDoc]]
