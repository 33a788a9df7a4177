"""One reader per file format: bytes in, raw documents out (no ids, no manifest)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import html
import io
import itertools
import json
import logging
import re
import threading
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import yaml

from ..documents import EXCERPT, PROSE, TRANSCRIPT
from ..speakers import (
    DEFAULT_INTERVIEWER_LABELS,
    FORMAT_CHARS,
    KNOWN_LABELS,
    LABEL_RE,
    TURN_LABEL_RE,
    find_labels,
    is_interviewer,
    label_key,
)
from .decode import ENCRYPTED_OFFICE, DecodeError, decode, decode_bytes, file_kind, text_lines
from .subtitles import parse_cues

TEXT_FORMATS = ("txt", "md")
SUBTITLE_FORMATS = ("vtt", "srt")
TABLE_FORMATS = ("csv", "xlsx")
FORMATS = (*TEXT_FORMATS, "docx", "pdf", *SUBTITLE_FORMATS, *TABLE_FORMATS)
ID_COLUMNS = ("excerpt_id", "id", "doc_id")
# What a spreadsheet shows (and exports to CSV) for a formula that failed.
SPREADSHEET_ERRORS = frozenset({"#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NAME?", "#NUM!",
                                "#NULL!", "#SPILL!", "#CALC!", "#GETTING_DATA"})


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


def _column_letter(index: int) -> str:
    """A spreadsheet column letter for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


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
MAX_METADATA_CHARS = 10_000  # a longer front matter value is cut (it is copied to every row)
_TOO_DEEP = ("front matter is nested too deeply — write it as 'key: value' lines between "
             "the '---' lines")


def _line(node: yaml.Node) -> int:
    """A front matter node's line in the file (the block starts on line 2)."""
    return node.start_mark.line + 2


_RULE_NOTE = RowProblem(1, (
    "opens with a '---' line followed by text, not by 'key: value' lines, so the '---' was "
    "read as a horizontal rule and the file has no front matter — if you meant metadata, "
    "write it as 'key: value' lines between the '---' lines"), note=True)
_YAML_LINE = re.compile(r"\s|[-#\[{'\"]|[^:]*:(?:\s|$)")  # indented, list, comment, key


def _prose(block: str) -> bool:
    """True when text between two ``---`` lines is prose (a Markdown file opening with a
    horizontal rule), not front matter: a line of three or more words that is no
    ``key: value``, list item, comment or indented continuation."""
    return any(len(line.split()) >= 3 and not _YAML_LINE.match(line)
               for line in block.splitlines())


def _compose(block: str) -> tuple[yaml.BaseLoader, yaml.Node | None]:
    """The front matter's YAML node tree (aliases are the anchored node itself), with the
    loader that constructs its values. libyaml parses where PyYAML was built with it; an
    error is reported by the pure-Python parser, in its words."""
    error: yaml.YAMLError | None = None
    for loader_class in dict.fromkeys((_FastFrontMatterLoader, _FrontMatterLoader)):
        loader = loader_class(block)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError as err:
            loader.dispose()
            mark = getattr(err, "problem_mark", None)
            if "nesting depth" in str(getattr(err, "problem", "")):
                raise ReadError(_TOO_DEEP, mark.line + 2 if mark else 2) from None
            error = err
        except (RecursionError, MemoryError):  # the pure-Python parser on deep nesting
            loader.dispose()
            raise ReadError(_TOO_DEEP, 2) from None
    mark = getattr(error, "problem_mark", None)
    problem = str(getattr(error, "problem", error))
    fix = "write it as 'key: value' lines between the '---' lines"
    if "mapping values" in problem:
        fix += ", each name at the start of its line; a value that holds ': ' goes in quotes "
        fix += "(title: \"Access: a study\")"
    raise ReadError(f"front matter is not valid YAML ({problem}) — {fix}",
                    mark.line + 2 if mark else None)


def _front_matter_value(loader, key: str, node: yaml.Node, seen: set[int]
                        ) -> tuple[str | None, str | None]:
    """A front matter entry's value as metadata, or (None, why it was left out): only a
    single value or a flat list of them (``[ar, en]``), never an alias (``*name``: an
    alias bomb expands a few lines into gigabytes)."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    aliased = any(id(n) in seen for n in (node, *items))
    seen.update(id(n) for n in (node, *items))
    if aliased:
        return None, (f"front matter '{key}' uses a YAML alias (*name), which qualcode does "
                      "not accept, so it was left out — write the value out in full")
    if key == "doc_id" and not isinstance(node, yaml.ScalarNode):
        return None, ("front matter 'doc_id' must be a single value, not a list — write it "
                      "as 'doc_id: YOUR-ID'; the file name is used as doc_id until then")
    if not all(isinstance(n, yaml.ScalarNode) for n in items):
        return None, (f"front matter '{key}' holds a nested list or mapping, which metadata "
                      "cannot hold, so it was left out — write a single value or a flat "
                      "list such as [a, b]")
    if isinstance(node, yaml.ScalarNode):
        return metadata_value(_scalar(loader, node)), None
    return metadata_value([_scalar(loader, n) for n in items]), None


def _scalar(loader, node: yaml.ScalarNode) -> object:
    """A scalar's value (a date, null or text); as written when YAML cannot make it one
    (``2023-02-30`` looks like a date, ``<<`` is a merge key)."""
    try:
        return loader.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError):
        return node.value


def _front_matter_key(loader, node: yaml.Node) -> tuple[str | None, str | None]:
    """A front matter key as a metadata name, or (None, why the entry was left out)."""
    if not isinstance(node, yaml.ScalarNode):
        return None, ("front matter has a list or mapping where a name should be, so the "
                      "entry was left out — write it as 'name: value'")
    key = _scalar(loader, node)
    if isinstance(key, str) and key.strip():
        return key.strip(), None
    what = ("read as empty (null)" if key is None else "empty" if not str(key).strip() else
            f"read as a {'date' if isinstance(key, dt.date) else type(key).__name__}")
    written = node.value.strip()
    return None, (f"front matter name '{written}' is {what}, not a name, so the entry was "
                  "left out — write it as 'name: value' with a name in letters")


def split_front_matter(text: str) -> tuple[dict[str, str], str, list[RowProblem]]:
    """Split YAML front matter (``---`` … ``---``) from the body.

    Returns the metadata, the body and the entries left out or changed, with their lines:
    a nested value, an alias, a name that is not one, a repeated name (the last value is
    used) and a value longer than ``MAX_METADATA_CHARS`` (cut).
    """
    if not text.startswith("---"):
        return {}, text, []
    match = _FRONT.match(text)
    if not match:
        raise ReadError(
            "front matter opens with '---' at line 1 but is never closed — add a '---' line "
            "after the metadata",
            1,
        )
    try:
        loader, root = _compose(match.group(1))
    except ReadError:
        if _prose(match.group(1)):
            return {}, text, [_RULE_NOTE]
        raise
    try:
        if root is None:
            return {}, text[match.end() :], []
        if not isinstance(root, yaml.MappingNode):
            if _prose(match.group(1)):
                return {}, text, [_RULE_NOTE]
            raise ReadError(
                "front matter must be 'key: value' lines between the '---' lines", 2
            )
        meta: dict[str, str] = {}
        lines: dict[str, int] = {}
        problems: list[RowProblem] = []
        seen: set[int] = set()
        for key_node, value_node in root.value:
            line = _line(key_node)
            key, why = _front_matter_key(loader, key_node)
            if key is not None:
                value, why = _front_matter_value(loader, key, value_node, seen)
            if why is not None:
                problems.append(RowProblem(line, why))
                continue
            if key in lines:
                problems.append(RowProblem(line, (
                    f"front matter '{key}' is given twice (lines {lines[key]} and {line}); "
                    f"the value on line {line} was used — delete the other one"), note=True))
            if len(value) > MAX_METADATA_CHARS:
                problems.append(RowProblem(line, (
                    f"front matter '{key}' is {len(value):,} characters long; only its "
                    f"first {MAX_METADATA_CHARS:,} were kept (metadata is repeated on every "
                    "segment's row) — shorten it, or put long text in the body"), note=True))
                value = value[:MAX_METADATA_CHARS]
            meta[key], lines[key] = value, line
    except (RecursionError, MemoryError):
        raise ReadError(_TOO_DEEP, 2) from None
    finally:
        loader.dispose()
    return meta, text[match.end() :], problems


def read_text(
    data: bytes, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    text, notes = _decode(data, lines=True)
    meta, body, problems = split_front_matter(text)
    _require_text(body)
    if "|" in body and _PIPE_DELIMITER.search(body):
        above = text[: len(text) - len(body)].count("\n")  # the front matter's lines
        body, table_problems = _pipe_tables(body, tuple(interviewer_labels), above)
        problems += table_problems
    return [RawDoc(body, _layout(body, interviewer_labels), meta)], notes + problems


# A Markdown pipe table's delimiter row, below its header row: ``|---|:---:|``, ``--- | ---``.
_PIPE_DELIMITER = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?$",
                             re.MULTILINE)
_PIPE_SPLIT = re.compile(r"(?<!\\)\|")
_PIPE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _pipe_cells(line: str, width: int | None = None) -> list[str]:
    """A Markdown table row's cells (``| a | b |``), ``\\|`` and ``<br>`` unescaped; with
    ``width``, as many as the header's (GFM: missing ones empty, extra ones dropped)."""
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    cells = [_PIPE_BREAK.sub("\n", cell).replace("\\|", "|").strip()
             for cell in _PIPE_SPLIT.split(line)]
    return cells if width is None else (cells + [""] * width)[:width]


def _pipe_tables(text: str, interviewer_labels: tuple[str, ...], above: int = 0
                 ) -> tuple[str, list[RowProblem]]:
    """``text`` with each Markdown pipe table of turns (``| Speaker | Text |`` /
    ``|---|---|`` / ``| Interviewer | ... |``) written as ``Speaker: words`` paragraphs,
    as a Word table of turns is (:func:`docx_text.table_paragraphs`); other tables stay
    as written. Rows that are notes and columns with text not read are noted, with their
    line in the file (``above``: the lines of front matter above ``text``)."""
    from .docx_text import note_rows, unread_columns

    lines = text.split("\n")
    out: list[str] = []
    problems: list[RowProblem] = []
    i = 0
    while i < len(lines):
        width = len(_pipe_cells(lines[i])) if "|" in lines[i] else 0
        if width < 2 or i + 1 == len(lines) or not _PIPE_DELIMITER.fullmatch(lines[i + 1]):
            out.append(lines[i])
            i += 1
            continue
        end = i + 2
        while end < len(lines) and "|" in lines[end] and lines[end].strip():
            end += 1
        rows = [_pipe_cells(line, width) for line in (lines[i], *lines[i + 2:end])]
        paragraphs = _table_of_turns(rows, interviewer_labels)
        if paragraphs is None:
            out.extend(lines[i:end])
        else:
            out.extend(["", "\n\n".join(paragraphs), ""])
            head = above + i + 1  # the header row's line; row n (from 1) is n lines below
            problems += [RowProblem(head + row, (
                f"this table row is a note, not a turn ({_quoted(note)}); it was left out "
                "and not coded — if it holds words someone said, put the speaker's name in "
                "its speaker cell"), note=True) for row, note in note_rows(rows)]
            problems += [RowProblem(head, (
                f"the table's column '{name}' was not read ("
                + (f"{len(texts)} cells with text, e.g. " if len(texts) > 1 else "")
                + f"{_quoted(texts[0])}): only its speaker, text and time columns are — "
                "if such a cell holds words someone said, move them into the text column"),
                note=True) for name, texts in unread_columns(rows)]
        i = end
    return "\n".join(out), problems


def _table_of_turns(rows: list[list[str]], interviewer_labels: tuple[str, ...]
                    ) -> list[str] | None:
    """A pipe table's rows as ``Speaker: words`` paragraphs, or None when it is no table
    of turns: its header names no speaker and text columns (``Speaker | Text``, ``Time |
    Speaker | Text``), and fewer than half of its rows, header included, open with a
    speaker's label (``| Interviewer | How did it start? |``)."""
    from .docx_text import named_columns, table_paragraphs

    paragraphs = table_paragraphs(rows)
    if named_columns(rows) is not None:
        return paragraphs
    labels = find_labels("\n\n".join(paragraphs), interviewer_labels)
    return paragraphs if len(labels) >= max(2, len(rows) / 2) else None


# What an Office file's zip holds (its main part), to say what a misnamed one really is.
_OFFICE_PARTS = {
    "docx": ("word/document.xml", "a", "Word document", "Word or LibreOffice Writer"),
    "xlsx": ("xl/workbook.xml", "an", "Excel workbook", "Excel or LibreOffice Calc"),
    "pptx": ("ppt/presentation.xml", "a", "PowerPoint presentation", "PowerPoint"),
}
_OLD_OFFICE = {"docx": ".doc", "xlsx": ".xls"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word/Excel 97-2003 (.doc, .xls)


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


def _zip_names(data: bytes) -> set[str] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _not_office_file(data: bytes, fmt: str, err: Exception) -> ReadError:
    """Why ``data`` is no readable .docx/.xlsx, in plain words, with the fix."""
    part, article, kind, program = _OFFICE_PARTS[fmt]
    fix = f"open it in {program} and save it again as .{fmt}"
    not_one = f"is not {article} {kind}, although its name ends in .{fmt}"
    if data.startswith(_OLE_MAGIC) and ENCRYPTED_OFFICE in data:
        # Word and Excel store a file with a password to open it in an old-style container.
        where = "File › Info › Protect Document" if fmt == "docx" else \
            "File › Info › Protect Workbook"
        return ReadError(f"is password-protected — qualcode cannot read encrypted files: "
                         f"open it in {program} with its password, remove the password "
                         f"({where} › Encrypt with Password, empty the box) and save it")
    if data.startswith(_OLE_MAGIC):
        return ReadError(f"is an old-style {_OLD_OFFICE[fmt]} file with a .{fmt} name — "
                         f"open it in {program} and save it as .{fmt}")
    if not data.startswith(_ZIP_MAGIC):
        return ReadError(f"{not_one}{_content_hint(data)} — {fix}, or give the file its "
                         "real extension")
    names = _zip_names(data)
    damaged = f"is a damaged {kind}"
    fresh = "; if it will not open, get a fresh copy from where it came from"
    if names is None:
        return ReadError(f"{damaged} (cut short or corrupted) — {fix}{fresh}")
    if part not in names:
        other = next((f"{a} {k}" for p, a, k, _ in _OFFICE_PARTS.values() if p in names), None)
        if other is None and fmt == "xlsx" and "xl/workbook.bin" in names:
            return ReadError("is an Excel Binary Workbook (.xlsb) with a .xlsx name — open "
                             "it in Excel and save it as an Excel Workbook (.xlsx)")
        what = f"it is {other}" if other else f"it is a zip archive without {part}"
        return ReadError(f"{not_one} ({what}) — {fix}, or give the file its real extension")
    try:
        reason = _damage(data, fmt, err)
    except _ZIP_ERRORS:  # a part that cannot even be unpacked
        reason = None
    if reason:
        return ReadError(reason)
    said = " ".join(_MEMORY_ADDRESS.sub("", str(err)).split())
    what = f"{type(err).__name__}: {said[:120]}" if said else type(err).__name__
    return ReadError(f"{damaged} (its content cannot be read: {what}) — {fix}{fresh}")


# Errors of reading a damaged zip's parts (zlib.error: a corrupted compressed part).
_ZIP_ERRORS = (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error, RuntimeError,
               NotImplementedError)


def _damage(data: bytes, fmt: str, err: Exception) -> str | None:
    """Why an Office file (a zip with its main part) cannot be read, when its parts tell:
    Strict Open XML, a macro-enabled file or a template, missing or broken parts."""
    part, article, kind, program = _OFFICE_PARTS[fmt]
    fix = f"open it in {program} and save it again as .{fmt}"
    fresh = "; if it will not open, get a fresh copy from where it came from"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if _is_strict(archive):
            return _strict_reason(fmt)
        main = _content_type(archive, part).lower()
        if "macroenabled" in main:
            return (f"is a macro-enabled {kind} ({_MACRO[fmt]}) with a .{fmt} name — open "
                    f"it in {program} and save it as .{fmt} (File › Save As), which leaves "
                    "the macros out")
        if ".template." in main:
            return (f"is {article} {kind} template ({_TEMPLATE[fmt]}) with a .{fmt} name — "
                    f"open it in {program} and save it as .{fmt} (File › Save As)")
        missing = _missing_parts(archive, set(archive.namelist()))
        named = _NO_ITEM.search(str(err)) if isinstance(err, KeyError) else None
        if named and named[1] not in missing:
            missing.insert(0, named[1])  # a part read by name (xl/_rels/workbook.xml.rels)
        if missing:
            listed = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            are = "parts" if len(missing) > 1 else "part"
            return (f"is a damaged {kind} (its {are} {listed} "
                    f"{'are' if len(missing) > 1 else 'is'} missing) — {fix}{fresh}")
        broken = _broken_part(archive)
        if broken:
            return f"is a damaged {kind} (its part {broken} is cut short or corrupted) — " \
                f"{fix}{fresh}"
    return None


_MACRO = {"docx": ".docm", "xlsx": ".xlsm"}
_TEMPLATE = {"docx": ".dotx", "xlsx": ".xltx"}
_NO_ITEM = re.compile(r"no item named '([^']+)' in the archive")
_MEMORY_ADDRESS = re.compile(r"'?<[\w.]+ object at 0x[0-9a-fA-F]+>'?")


def _content_type(archive: zipfile.ZipFile, part: str) -> str:
    """The content type ``[Content_Types].xml`` gives ``part`` ("" if none)."""
    from lxml import etree

    try:
        root = etree.fromstring(archive.read("[Content_Types].xml"),
                                etree.XMLParser(resolve_entities=False, no_network=True))
    except (KeyError, etree.XMLSyntaxError, *_ZIP_ERRORS):
        return ""
    return next((o.get("ContentType", "") for o in root.iter("{*}Override")
                 if o.get("PartName", "").lstrip("/").lower() == part.lower()), "")


def _missing_parts(archive: zipfile.ZipFile, names: set[str]) -> list[str]:
    """The parts of an Office file's package that it lists or links to, but lacks."""
    import posixpath

    from lxml import etree

    lower = {n.lower() for n in names}
    missing = [p for p in ("[Content_Types].xml", "_rels/.rels") if p.lower() not in lower]
    for rels in sorted(n for n in names if n.endswith(".rels")):
        try:
            root = etree.fromstring(archive.read(rels),
                                    etree.XMLParser(resolve_entities=False, no_network=True))
        except (etree.XMLSyntaxError, *_ZIP_ERRORS):
            continue
        # word/_rels/document.xml.rels holds the links of word/document.xml
        base = posixpath.dirname(posixpath.dirname(rels))
        for rel in root.iter("{*}Relationship"):
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External" or not target or "://" in target:
                continue
            path = target.lstrip("/") if target.startswith("/") else \
                posixpath.normpath(posixpath.join(base, target))
            if path.lower() not in lower and path not in missing:
                missing.append(path)
    return missing


def _broken_part(archive: zipfile.ZipFile) -> str | None:
    """The first XML part of an Office file that is not well-formed (cut short), if any."""
    from lxml import etree

    for info in archive.infolist():
        if not info.filename.endswith((".xml", ".rels")):
            continue
        try:
            etree.fromstring(archive.read(info),
                             etree.XMLParser(resolve_entities=False, no_network=True,
                                             huge_tree=True))
        except (etree.XMLSyntaxError, *_ZIP_ERRORS):
            return info.filename
    return None


# Strict Open XML (Word's and Excel's "Strict Open XML Document/Spreadsheet" in Save As)
# writes the same parts under other namespace names: mapped to the usual (transitional)
# ones they stand for, the most specific first, the file reads as any other.
_STRICT = b"http://purl.oclc.org/ooxml/"
_OOXML = b"http://schemas.openxmlformats.org/"
_STRICT_NAMESPACES = tuple((_STRICT + a, _OOXML + b) for a, b in (
    (b"officeDocument/relationships/extendedProperties",
     b"officeDocument/2006/relationships/extended-properties"),
    (b"officeDocument/relationships/customProperties",
     b"officeDocument/2006/relationships/custom-properties"),
    (b"officeDocument/relationships", b"officeDocument/2006/relationships"),
    (b"officeDocument/extendedProperties", b"officeDocument/2006/extended-properties"),
    (b"officeDocument/customProperties", b"officeDocument/2006/custom-properties"),
    (b"officeDocument/", b"officeDocument/2006/"),  # math, docPropsVTypes, customXml ...
    (b"wordprocessingml/main", b"wordprocessingml/2006/main"),
    (b"spreadsheetml/main", b"spreadsheetml/2006/main"),
    (b"presentationml/main", b"presentationml/2006/main"),
    (b"drawingml/", b"drawingml/2006/"),  # main, picture, chart, wordprocessingDrawing ...
    (b"schemaLibrary/main", b"schemaLibrary/2006/main"),
))
# A strict namespace declared, or a relationship's strict type (never text that names it).
_STRICT_URI = re.compile(
    rb"""(\b(?:xmlns(?::[\w.-]+)?|Type)\s*=\s*["'])(http://purl\.oclc\.org/ooxml/[^"'<>]*)""")
_XML_PART = (".xml", ".rels", ".vml")
_HEAD = 16384  # an XML part declares its namespaces at its top


def _transitional_uri(match: re.Match[bytes]) -> bytes:
    uri = match[2]
    for old, new in _STRICT_NAMESPACES:
        if uri.startswith(old):
            return match[1] + new + uri[len(old) :]
    return match[0]


def _is_strict(archive: zipfile.ZipFile) -> bool:
    """Whether an Office file is written in Strict Open XML: a strict namespace in one of
    its relationship parts or at the top of one of its XML parts."""
    for info in archive.infolist():
        if info.filename.endswith(_XML_PART):
            with contextlib.suppress(*_ZIP_ERRORS), \
                    archive.open(info) as part:
                head = part.read(-1 if info.filename.endswith(".rels") else _HEAD)
                if _STRICT_URI.search(head):
                    return True
    return False


def _transitional(data: bytes) -> bytes | None:
    """An Office file in Strict Open XML rewritten with the usual namespaces (None if it
    is no zip or not strict): its text, tables and cells mean the same."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        return None
    with archive:
        try:
            if not _is_strict(archive):
                return None
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
                for info in archive.infolist():
                    content = archive.read(info)
                    if info.filename.endswith(_XML_PART) and _STRICT in content:
                        content = _STRICT_URI.sub(_transitional_uri, content)
                        content = content.replace(b' conformance="strict"', b"", 1)
                    copy.writestr(info, content)
        except _ZIP_ERRORS:
            return None  # a damaged archive: reported as such by the reader
    return out.getvalue()


def _strict_reason(fmt: str) -> str:
    """Why a Strict Open XML file that could not be read even so was skipped."""
    if fmt == "docx":
        return ("is a Word document in Strict Open XML format, which could not be read — "
                "open it in Word and save it as a normal Word Document (.docx) (File › Save "
                "As › Word Document)")
    return ("is an Excel workbook in Strict Open XML format, which could not be read — open "
            "it in Excel and save it as a normal Excel Workbook (.xlsx) (File › Save As › "
            "Excel Workbook)")


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


_Header = tuple[int, int, dict[str, str]]  # a key | value table's paragraphs, its fields


_TableNote = tuple[int, int, str]  # a timed table's row that is a note: table, row, text
_UnreadColumn = tuple[int, str, list[str]]  # a table's column not read: table, header, texts


def _docx_paragraphs(
    document, interviewer_labels: Iterable[str]
) -> tuple[list[str], dict[str, str], list[_TableNote], list[_UnreadColumn]]:
    """The body's paragraphs and table rows as text, content controls and text boxes
    included, the fields of ``key | value`` tables above the first speaker's turn
    (``Date | 12 May``, ``Interviewer | J. Doe``): the document's metadata, not its text,
    the rows of ``time | speaker | words`` tables that are notes, left out, and the
    columns with text of ``speaker | words | comment`` tables that were not read."""
    from .docx_text import (
        TABLE,
        TEXT_BOX,
        body_blocks,
        header_fields,
        note_rows,
        table_paragraphs,
        table_rows,
        unread_columns,
    )

    body = document.element.body
    # Most documents have no text box: then no paragraph is searched for one.
    boxes = next(body.iter(TEXT_BOX), None) is not None
    paragraphs: list[str] = []
    tables: list[_Header] = []
    notes: list[_TableNote] = []
    unread: list[_UnreadColumn] = []
    table_count = 0
    for block in body_blocks(body):
        if block.tag == TABLE:
            rows = table_rows(block, boxes)
            table_count += 1
            notes.extend((table_count, row, text) for row, text in note_rows(rows))
            unread.extend((table_count, name, texts) for name, texts in unread_columns(rows))
            fields = header_fields(rows, MAX_METADATA_CHARS)
            start = len(paragraphs)
            paragraphs.extend(table_paragraphs(rows))
            if fields is not None:
                tables.append((start, len(paragraphs), fields))
        else:
            paragraphs.extend(_block_paragraphs(block, boxes))
    headers = _headers(paragraphs, tables, interviewer_labels) if tables else []
    meta: dict[str, str] = {}
    for start, end, fields in reversed(headers):
        meta = {**fields, **meta}
        del paragraphs[start:end]
    return paragraphs, meta, notes, unread


def _headers(paragraphs: list[str], tables: list[_Header],
             interviewer_labels: Iterable[str]) -> list[_Header]:
    """The ``key | value`` tables (their paragraphs) that head the document: text follows
    them, no speaker's turn comes before them and fewer than half of their keys are
    speakers (a short ``speaker | words`` table, one per exchange, is all speakers)."""
    labels = find_labels("\n\n".join(paragraphs), interviewer_labels)
    first = labels[0].start if labels else None
    speakers = {label.key for label in labels}
    offsets = list(itertools.accumulate((len(p) + 2 for p in paragraphs), initial=0))
    return [
        (start, end, fields) for start, end, fields in tables
        if end < len(paragraphs) and (first is None or first >= offsets[start])
        and 2 * sum(label_key(key) in speakers for key in fields) < len(fields)
    ]


def _docx_blocks(element, boxes: bool) -> Iterator[str]:
    """The paragraphs and table rows of a body or text box; with ``boxes``, each text box's
    paragraphs after the paragraph that anchors it."""
    from .docx_text import body_blocks

    for block in body_blocks(element):
        yield from _block_paragraphs(block, boxes)


def _block_paragraphs(block, boxes: bool) -> Iterator[str]:
    """A ``w:p`` (with its text boxes' paragraphs, with ``boxes``) or ``w:tbl`` as text."""
    from .docx_text import TABLE, paragraph_text, table_paragraphs, table_rows, text_boxes

    if block.tag == TABLE:
        # Transcription services often deliver "speaker | words" tables.
        yield from table_paragraphs(table_rows(block, boxes))
        return
    if text := paragraph_text(block).strip():
        yield text
    if boxes:
        for box in text_boxes(block):
            yield from _docx_blocks(box, boxes)


def _docx_notes(document) -> list[RowProblem]:
    """The footnotes and endnotes, which are not read (inlined, they would end up in a
    speaker's turn), as a note."""
    from .docx_text import note_counts

    footnotes, endnotes = note_counts(document.part)
    if not footnotes + endnotes:
        return []
    counted = " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in
                           ((footnotes, "footnote"), (endnotes, "endnote")) if n)
    return [RowProblem(None, (
        f"has {counted}, which {'were' if footnotes + endnotes > 1 else 'was'} not read (only "
        "the body and text boxes are) — the rest of the file was read; if a note holds part "
        "of the transcript, move its text into the body"), note=True)]


def _open_docx(data: bytes):
    """The python-docx Document of ``data``; a file in Strict Open XML (whose body
    python-docx does not know) is read through the usual namespaces (_transitional)."""
    import docx  # python-docx; imported here because it is slow to import
    from docx.oxml.ns import qn

    def opened(data: bytes):
        document = docx.Document(io.BytesIO(data))
        if document.element.tag != qn("w:document"):
            raise ValueError(f"the main part is a '{document.element.tag}', not a Word body")
        return document

    try:
        return opened(data)
    except Exception as err:
        strict = _transitional(data)
        if strict is None:
            raise
        try:
            return opened(strict)
        except Exception:
            raise ReadError(_strict_reason("docx")) from err


def read_docx(
    data: bytes, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    """A Word document's body (tables and text boxes too) and what was left out of it:
    its footnotes and endnotes, as a note."""
    try:
        document = _open_docx(data)
    except ReadError:
        raise
    except Exception as err:  # zipfile's, python-docx's and lxml's errors on damage
        raise _not_office_file(data, "docx", err) from err
    interviewer_labels = tuple(interviewer_labels)
    paragraphs, fields, table_notes, unread = _docx_paragraphs(document, interviewer_labels)
    text = text_lines("\n\n".join(paragraphs))
    _require_text(text, ".docx")
    props = document.core_properties
    meta = {"title": props.title} if props.title else {}
    meta.update(fields)  # a header table's Title, on the page, over the file's property
    problems = _table_notes(table_notes) + _unread_note(unread) + _docx_notes(document)
    return [RawDoc(text, _layout(text, interviewer_labels), meta)], problems


def _table_notes(notes: list[_TableNote]) -> list[RowProblem]:
    """The rows of ``time | speaker | words`` tables that were left out as notes, as one
    note naming them (the first few)."""
    if not notes:
        return []
    shown = "; ".join(f"table {table}, row {row}: {_quoted(text)}"
                      for table, row, text in notes[:3])
    more = f"; and {len(notes) - 3} more" if len(notes) > 3 else ""
    what = ("a row that is a note, not a turn" if len(notes) == 1
            else f"{len(notes)} rows that are notes, not turns")
    return [RowProblem(None, (
        f"has {what}, in its time | speaker | words table ({shown}{more}), left out and not "
        "coded — the rest of the file was read; if such a row holds words someone said, put "
        "the speaker's name in its speaker cell"), note=True)]


def _unread_note(columns: list[_UnreadColumn]) -> list[RowProblem]:
    """The columns of transcript tables that were not read (``Comment``, ``Notes``) but
    hold text, as one note naming them."""
    if not columns:
        return []
    shown = "; ".join(
        f"table {table}, column '{' '.join(name.split())}': "
        + (f"{len(texts)} cells, e.g. " if len(texts) > 1 else "") + _quoted(texts[0])
        for table, name, texts in columns)
    what = ("a column with text in its transcript table that was" if len(columns) == 1
            else f"{len(columns)} columns with text in its transcript tables that were")
    return [RowProblem(None, (
        f"has {what} not read ({shown}): only the speaker, text and time columns are read, so this "
        "text was left out and not coded — the rest of the file was read; if such a cell "
        "holds words someone said, move them into the text column"), note=True)]


def _quoted(text: str, limit: int = 60) -> str:
    """``text`` on one line, in quotes, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit - 3]}...'"


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


_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
# Markup in a cue's text: the cue tags of WebVTT and the font tags of .srt, nothing else
# between '<' and '>' ("the cost was <5% or >10%" is words): <i> <b> <u> <ruby> <rt>,
# <c.yellow>, <v Name>, <lang en>, <font color=...>, their closing forms, and timestamp
# tags (<00:00:01.000>); a ruby annotation (<rt>かんじ</rt>) goes with its tags, as in .docx.
# Also the override tags of ASS/SSA subtitle editors (Aegisub, Subtitle Edit: {\an8},
# {\i1}) with their hard line breaks and spaces (\N, \n, \h), which become spaces.
_TAG = re.compile(
    r"<rt(?:\.[\w.-]*)?>[^<]*(?:</rt>|(?=</ruby>))"
    r"|</?(?:[ibu]|ruby|rt)(?:\.[\w.-]*)?>"
    r"|<(?:c|v|lang)(?:\.[\w.-]*)?(?:[ \t][^<>]*)?>|</(?:c|v|lang)>"
    r"|<font(?:\s[^<>]*)?>|</font>"
    r"|<(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}>",
    re.IGNORECASE,
)
_ASS_TAG = re.compile(r"\{\\[^}]*\}|\\[Nnh]")
# Character references (&amp; &lt; &nbsp; &#8212; &#x2014;), always with their ';'
# ("AT&T", "R&D" and "&notes" stay as written).
_CHAR_REF = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _untagged(text: str) -> str:
    """A caption's words: cue tags removed, then character references decoded (so a
    ``&lt;b&gt;`` written in the captions stays as the words ``<b>``)."""
    text = _TAG.sub("", text)
    if "\\" in text:
        text = _ASS_TAG.sub(_ass_space, text)
    return _CHAR_REF.sub(_character, text) if "&" in text else text


def _character(ref: re.Match[str]) -> str:
    """The character a reference stands for; as written when it stands for none (an
    unknown name, ``&#0;``, a control character other than a line break or tab)."""
    text = html.unescape(ref.group())
    if not text or "\ufffd" in text or any(
            unicodedata.category(c) in ("Cc", "Cs") and not c.isspace() for c in text):
        return ref.group()
    return text


def _ass_space(tag: re.Match[str]) -> str:
    return "" if tag.group().startswith("{") else " "


def _voice_spans(line: str) -> list[tuple[str | None, str]]:
    """A caption line cut at each ``<v Name>`` tag: ``(voice, text)`` for each part (the
    text before the first tag has no voice), so two voices on one line are two turns."""
    if "<v" not in line:
        return [(None, line)]
    tags = list(_VOICE.finditer(line))
    if not tags:
        return [(None, line)]
    ends = [tag.start() for tag in tags[1:]] + [len(line)]
    spans = [(" ".join(_untagged(tag[1]).split()) or None, line[tag.end() : end])
             for tag, end in zip(tags, ends, strict=True)]
    return [(None, line[: tags[0].start()]), *spans] if tags[0].start() else spans


_NAME_CHAR = re.compile(rf"[\w.'’&/#,{FORMAT_CHARS}-]")


def _is_name_char(char: str) -> bool:
    """A character a speaker's label may hold after its first letter (as ``speakers``
    reads labels): a letter, digit or mark, or one of ``_.'’&/#,-``."""
    return _NAME_CHAR.match(char) is not None or unicodedata.category(char)[0] == "M"


def _reads_back(label: str, interviewer_labels: tuple[str, ...]) -> bool:
    """Whether ``label: words`` opening a paragraph is read as that one speaker's label."""
    found = find_labels(f"{label}: words", interviewer_labels, paragraph_labels=True)
    return len(found) == 1 and found[0].start == 0 and found[0].end == len(label) + 2


def _voice_head(name: str) -> tuple[str, str]:
    """``name`` cut into a head a label can be (up to four words of name characters, the
    first a letter) and the rest (``Dr. Ahmed bin Salim`` + ``Al-Harthy``)."""
    if not name[:1].isalnum() or name[:1].isdecimal():
        return "", name
    end = 0
    for words, word in enumerate(re.finditer(r"\S+", name)):
        stop = next((i for i, c in enumerate(word.group()) if not _is_name_char(c)),
                    len(word.group()))
        if words == 4 or stop == 0:
            break
        end = word.start() + stop
        if stop < len(word.group()):
            break
    return name[:end], name[end:]


_NOTE_MAX = 40  # the characters a label's note in brackets may have ("Amira (translator)")


def _voice_label(name: str, interviewer_labels: tuple[str, ...]) -> str | None:
    """The label written for the voice ``name`` of ``<v name>``: ``name`` itself when the
    transcript's label parser reads it back as a label; else its first words with the rest
    as a note in brackets (``Dr. Ahmed bin Salim (Al-Harthy)``, ``Interviewer (Anna)``
    for ``Interviewer: Anna``, ``Speaker (#3)``); None if no such form reads back."""
    if _reads_back(name, interviewer_labels):
        return name
    head, rest = _voice_head(name)
    if not head:
        head, rest = "Speaker", name
        if _reads_back(f"{head} {rest}", interviewer_labels):
            return f"{head} {rest}"
    note = " ".join(re.sub(r"[():\[\]{}<>]", " ", rest).split()).strip(" ,;-–—")
    if len(note) > _NOTE_MAX:
        note = note[: _NOTE_MAX - 1].rstrip() + "…"
    label = f"{head} ({note})" if note else head
    return label if _reads_back(label, interviewer_labels) else None


def _voice_labels(voices: Iterable[str], interviewer_labels: tuple[str, ...]
                  ) -> tuple[dict[str, str], list[RowProblem]]:
    """The label written for each voice name, and a note for each voice whose name is no
    label as it stands (so the speaker column shows another form of it)."""
    labels: dict[str, str] = {}
    notes: list[RowProblem] = []
    voices = list(dict.fromkeys(voices))
    taken = {label_key(voice) for voice in voices}
    others = 0
    for voice in voices:
        label = _voice_label(voice, interviewer_labels)
        if label is None:  # no form of the name reads back: a numbered voice
            others += 1
            while label_key(f"Voice {others}") in taken:
                others += 1
            label = f"Voice {others}"
        labels[voice] = label
        if label != voice:
            notes.append(RowProblem(None, (
                f"the voice tag '<v {voice}>' was read as the speaker '{label}' (a "
                "speaker's name in the results has at most four words, starts with a "
                "letter and holds no ':', brackets or '@'); nothing was left out — to see "
                "another name, change it in the voice tags"), note=True))
    return labels, notes


# A caption line's mark of a new speaker: a dialogue dash ("- ", "– ", "— ") or broadcast
# captions' chevrons (">>"); taken off before the line is searched for a label.
_TURN_MARK = re.compile(r"(?:[-–—] |>>+ ?)(?=\S)")
# "[Name] words": a speaker's name in brackets opening a line, read like "Name: words".
_BRACKET_NAME = re.compile(r"\[(?P<name>[^\W\d_][^\[\]:\n]{0,39})\]:? (?=\S)")
# Sounds captioned in brackets at a line start, never a speaker ("[Music] ...").
_SOUNDS = {
    "music", "applause", "laughter", "laughs", "laughing", "chuckles", "cheering",
    "inaudible", "unintelligible", "indistinct", "crosstalk", "silence", "pause", "noise",
    "background noise", "sighs", "coughs", "beep", "overlapping", "blank_audio", "no audio",
    "foreign", "foreign language", "speaking foreign language", "phone rings", "static",
}


def _unmarked(words: str) -> str:
    """A caption line without its dialogue dash or chevrons when a speaker's label follows
    them (``- Interviewer: ...``); a dash that continues a sentence stays."""
    bare = _TURN_MARK.sub("", words, count=1)
    return bare if LABEL_RE.match(bare) or _BRACKET_NAME.match(bare) else words


def _bracket_label(words: str, interviewer_labels: Iterable[str]) -> tuple[str, str] | None:
    """``(name, words after it)`` for a line opening with ``[Name]``: a capitalised name
    (or an interviewer label) of up to four words that is no captioned sound."""
    match = _BRACKET_NAME.match(words)
    if not match:
        return None
    name = " ".join(match["name"].split())
    if (len(name.split()) > 4 or label_key(name) in _SOUNDS
            or not (name[0].isupper() or is_interviewer(name, interviewer_labels))):
        return None
    return name, words[match.end() :]


def _as_label_line(words: str, interviewer_labels: Iterable[str]) -> str:
    """A caption line with ``[Name] words`` written as ``Name: words``, to find labels."""
    bracket = _bracket_label(words, interviewer_labels) if words.startswith("[") else None
    return f"{bracket[0]}: {bracket[1]}" if bracket else words


def _line_speaker(
    words: str, accepted: set[str], interviewer_labels: Iterable[str]
) -> tuple[str | None, str]:
    """The speaker a caption line without a voice tag names (``Name: words`` or
    ``[Name] words``, when the name is one of the ``accepted`` labels) and its words."""
    match = LABEL_RE.match(words)
    if match and label_key(match["name"]) in accepted:
        return match["name"], words[match.end() :]
    if words.startswith("["):
        bracket = _bracket_label(words, interviewer_labels)
        if bracket and label_key(bracket[0]) in accepted:
            return bracket
    return None, words


def _vtt_header_problem(lines: list[str]) -> ReadError | None:
    if lines[0].startswith("WEBVTT"):
        return None
    if len(lines) > 1 and lines[0].strip().isdigit() and "-->" in lines[1] and "," in lines[1]:
        return ReadError("has no 'WEBVTT' first line and looks like an .srt file — rename "
                         "it to .srt, or add a line 'WEBVTT' at the top and export it again "
                         "as .vtt", 1)
    return ReadError("has no 'WEBVTT' first line, which every .vtt file must start with — "
                     "add a line 'WEBVTT' and an empty line at the top, or export the "
                     "captions again as .vtt", 1)


def _cues(text: str, fmt: str) -> tuple[list[list[str]], list[RowProblem]]:
    """Each cue's text lines; a malformed cue is a problem at its line, not a guess."""
    if fmt == "vtt":
        error = _vtt_header_problem(text.split("\n", 2))
        if error:
            raise error
    cues, problems = parse_cues(text, fmt)
    if not cues and problems:
        first = problems[0]
        raise ReadError(
            f"is not a valid .{fmt} file: no cue could be read ({first.what}) — "
            f"{first.fix}, or export the captions again as .{fmt}",
            first.line,
        )
    return cues, [RowProblem(p.line, p.reason()) for p in problems]


def read_subtitles(
    data: bytes, fmt: str, interviewer_labels: Iterable[str]
) -> tuple[list[RawDoc], list[RowProblem]]:
    """Subtitles → ``Speaker: words`` turns; consecutive cues of one speaker merge.

    A malformed cue is left out and returned as a problem with its line (the good cues
    are kept); a file without one readable cue is a :class:`ReadError`.
    """
    text, notes = _decode(data, lines=True)
    _require_text(text)
    captions, problems = _cues(text, fmt)
    problems = notes + problems
    interviewer_labels = tuple(interviewer_labels)
    cues: list[tuple[str | None, str]] = []
    for caption in captions:
        for raw in caption:
            for voice, span in _voice_spans(raw):
                words = " ".join(_untagged(span).split())
                if words[:1] in ("-", "–", "—", ">"):
                    words = _unmarked(words)
                if not _blank(words):
                    cues.append((voice, words))
    if not cues:
        raise ReadError(
            f"the .{fmt} file has no caption text — export the captions again or remove the file"
        )
    # A voice tag names its speaker: each cue with one starts that speaker's turn, under a
    # label that segmentation reads back (see _voice_label). Labels written as "Name:
    # words" or "[Name] words" count only when they recur (see find_labels).
    voices, renamed = _voice_labels((v for v, _ in cues if v is not None), interviewer_labels)
    plain = "\n".join(_as_label_line(words, interviewer_labels)
                      for voice, words in cues if voice is None)
    accepted = {label.key for label in find_labels(plain, interviewer_labels)}
    turns: list[list[str]] = []  # [speaker, words...]
    for voice, words in cues:
        if voice is not None:
            speaker: str | None = voices[voice]
        else:
            speaker, words = _line_speaker(words, accepted, interviewer_labels)
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
    return [RawDoc(body, layout, {})], problems + renamed


def _sniff_delimiter(sample: str) -> str:
    """The delimiter; when rows disagree (an unquoted one in a cell), the header's."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = sample.split("\n", 1)[0]
        return max(",;\t", key=header.count)  # "," when the header has none


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _fed(lines: list[str], ended: list[bool]) -> Iterator[str]:
    """``lines``, then a mark in ``ended`` that all of them were taken."""
    yield from lines
    ended.append(True)


def _csv_records(lines: list[str], sep: str) -> Iterator[tuple[int, int, list[str] | None]]:
    """The records of CSV ``lines`` as ``(first line, line after it, cells)``, 0-based. A
    record whose quoted cell never ends (an unclosed quote) has no cells and takes its first
    line only: the lines below it are read on their own (they hold no quote that would
    have closed it, so none of them opens another). Raises ``csv.Error``."""
    start = 0
    while start < len(lines):
        ended: list[bool] = []
        reader = csv.reader(_fed(lines[start:], ended), delimiter=sep)
        first = start
        for cells in reader:
            if ended:  # the csv module returns a quoted cell open at the end as a cell
                break
            yield first, start + reader.line_num, cells
            first = start + reader.line_num
        else:
            return
        yield first, first + 1, None
        start = first + 1


_CLOSE_QUOTE = "add the closing quote or remove the opening one"


def _blank_bad_rows(text: str, sep: str, above: int) -> tuple[str, list[RowProblem]]:
    """Blank out each row with more cells than the header (an unquoted delimiter in a cell:
    pandas would shift every column or give up on the whole file) and the first line of
    each row whose quoted cell never ends (an unclosed quote: pandas would give up), whose
    lines below are read on their own. A blanked row stays as an empty line, so the rows
    below keep their spreadsheet numbers (``above``: lines above the header, passed over)."""
    lines = io.StringIO(text).readlines()
    header: list[str] | None = None
    bad: list[tuple[int, int, int, str]] = []  # (row, its first line, line after it, why)
    long_row = ('has more cells than the header — quote the text cell ("...") or remove '
                f"the extra {_DELIMITER_NAMES.get(sep, repr(sep))}")
    try:
        for row, (first, end, cells) in enumerate(_csv_records(lines, sep), start=1):
            if cells is None:
                line = first + 1 + above
                if header is None:
                    raise ReadError(f'its header row has an unclosed quote (") starting on '
                                    f"line {line} — {_CLOSE_QUOTE}", line)
                bad.append((row, first, end, (
                    f'unclosed quote (") starting on line {line}: its cell never ends — the '
                    "row was left out (the lines below it were read on their own); "
                    f"{_CLOSE_QUOTE}")))
            elif header is None:
                header = cells
            elif header and len(cells) > len(header):
                bad.append((row, first, end, long_row))
    except csv.Error:  # e.g. a cell over the csv module's size limit: pandas decides
        return text, []
    for _, first, end, _ in reversed(bad):
        lines[first:end] = ["\n" if lines[end - 1].endswith("\n") else ""]
    return "".join(lines), [RowProblem(row + above, reason) for row, _, _, reason in bad]


_HEADER_ROWS = 10  # a table's header row is looked for in its first rows
_SEP_HINT = re.compile(r"\s*sep=(.)\s*", re.IGNORECASE)  # Excel's delimiter line


def _above_header(text: str) -> tuple[str, int, str | None]:
    """``text`` less the lines above a CSV table's header row (Excel's ``sep=;`` line, a
    title), how many there were, and the delimiter the ``sep=`` line names. The header is
    the first of the top rows with a ``text`` cell (as in a workbook); none: the first."""
    hint = _SEP_HINT.fullmatch(text.split("\n", 1)[0])
    skip = 1 if hint else 0
    sep = hint.group(1) if hint else None
    rest = text.split("\n", 1)[1] if hint and "\n" in text else "" if hint else text
    reader = csv.reader(io.StringIO(rest), delimiter=sep or _sniff_delimiter(rest[:8192]))
    start = 0
    try:
        for _ in range(_HEADER_ROWS):
            cells = next(reader, None)
            if cells is None:
                break
            if any(c.strip().lower() == "text" for c in cells):
                skip += start
                break
            start = reader.line_num
    except csv.Error:  # pandas reports the table's quoting
        pass
    return (text if not skip else "\n".join(text.split("\n")[skip:])), skip, sep


def _read_csv_frame(data: bytes):
    """The table, its rows with more cells than the header (left out, reported) and how
    many lines above the header were passed over (Excel's ``sep=`` line, a title)."""
    import pandas as pd

    text, notes = _decode(data)
    _require_text(text)
    text, above, sep = _above_header(text)
    sep = sep or _sniff_delimiter(text[:8192])
    text, problems = _blank_bad_rows(text, sep, above)
    problems = notes + problems
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # a blank line is a spreadsheet row: keep row numbers true
            index_col=False,  # never take the first column for an index
        )
    except Exception as err:  # pandas ParserError names the line
        line = re.search(r"line (\d+)", str(err))
        raise ReadError(
            f"is not a well-formed CSV table ({str(err).strip()}) — check the quoting on "
            "that line",
            int(line.group(1)) + above if line else None,
        ) from err
    frame, unnamed = _without_unnamed(frame, 1 + above)
    return frame, problems + unnamed, above


_UNNAMED = re.compile(r"Unnamed: \d+")  # pandas' name for a column with an empty header cell


def _without_unnamed(frame, header: int) -> tuple[object, list[RowProblem]]:
    """``frame`` with its columns without a name in the header row (``header``), which
    pandas calls ``Unnamed: 4``, left out when empty (a spreadsheet's trailing empty
    columns, ``a,b,,`` in CSV) and else named by their letter (``column E``), with a note."""
    unnamed = [i for i, name in enumerate(frame.columns)
               if isinstance(name, str) and (_UNNAMED.fullmatch(name) or not name.strip())]
    if not unnamed:
        return frame, []
    names = list(frame.columns)
    kept = [i for i in range(len(names)) if i not in unnamed]
    notes = []
    for i in unnamed:
        cells = frame.iloc[:, i]
        if (cells.isna() | cells.astype(str).str.strip().eq("")).all():
            continue
        names[i] = f"column {_column_letter(i)}"
        kept.append(i)
        notes.append(RowProblem(header, (
            f"{names[i]} has no name in the header row; its values were read as the "
            f"metadata field '{names[i]}' — give the column a name (or delete it)"), note=True))
    kept.sort()
    return frame.set_axis(names, axis=1).iloc[:, kept], notes


@dataclass(slots=True)
class _Sheet:
    name: str
    frame: object  # pandas.DataFrame, read below the header row
    header: int  # the header's spreadsheet row (1 = top)
    # What was taken out of ``frame`` while reading: rows (blanked) whose formulas were
    # never calculated, columns without a name (a note).
    left_out: list[RowProblem] = field(default_factory=list)

    def problems(self, where: str = "") -> list[RowProblem]:
        """What was left out, each reason starting with ``where``."""
        return [RowProblem(p.row, f"{where}{p.reason}", p.note) for p in self.left_out]


def _header_index(probe) -> int | None:
    """The first of a sheet's top rows (0-based) with a ``text`` cell, if any."""
    for i, cells in enumerate(probe.itertuples(index=False)):
        if any(isinstance(c, str) and c.strip().lower() == "text" for c in cells):
            return i
    return None


def _read_sheets(data: bytes) -> tuple[list[_Sheet], list[RowProblem]]:
    """Every visible sheet, each read below its header row (the row 1 if none has
    ``text``), and a note for each hidden one, which is not read (hiding a sheet is how
    people retire drafts)."""
    import pandas as pd

    data = _transitional(data) or data  # a workbook in Strict Open XML
    try:
        book = pd.ExcelFile(io.BytesIO(data))
        # pandas opens the workbook with openpyxl, which has read each sheet's state.
        states = {ws.title: getattr(ws, "sheet_state", "visible")
                  for ws in getattr(book.book, "worksheets", ())}
        hidden = [name for name in book.sheet_names if states.get(name, "visible") != "visible"]
        if hidden and len(hidden) == len(book.sheet_names):
            names = ", ".join(f"'{n}'" for n in hidden)
            raise ReadError(f"has only hidden sheets ({names}), which are not read — unhide "
                            "the sheets to include (right-click a sheet tab › Unhide)")
        visible = [name for name in book.sheet_names if name not in hidden]
        extents = {name: _sheet_extent(book.book, name) for name in visible}
        too_big = _too_big(extents)
        if too_big and len(too_big) == len(visible):
            raise ReadError(" ".join(p.reason for p in too_big))
        visible = [name for name in visible if not any(p.name == name for p in too_big)]
        # Cells as written: "NA", "None", "n/a" or "#N/A" typed in a cell are text (an
        # excerpt id, a metadata value), only an empty cell is empty (NaN).
        cells = {"dtype": object, "keep_default_na": False, "na_values": [""]}
        probes = pd.read_excel(book, sheet_name=visible, header=None, nrows=_HEADER_ROWS,
                               **cells)
        sheets = []
        for name, probe in probes.items():
            index = _header_index(probe) or 0
            frame = pd.read_excel(book, sheet_name=name, header=index, **cells)
            sheets.append(_Sheet(str(name), frame, index + 1))
            _ids_as_shown(book.book, sheets[-1])
            _errors_as_text(book.book, sheets[-1])
            if (extent := extents.get(name)) is not None and extent.merged:
                _fill_merged(sheets[-1], extent.merged)
        _leave_out_uncalculated(data, sheets)
    except ReadError:
        raise
    except Exception as err:  # pandas', openpyxl's and zipfile's errors on damage
        raise _not_office_file(data, "xlsx", err) from err
    for sheet in sheets:  # after _leave_out_uncalculated, which counts columns
        sheet.frame, unnamed = _without_unnamed(sheet.frame, sheet.header)
        sheet.left_out.extend(unnamed)
    left_out = [RowProblem(None, p.reason) for p in too_big]
    return sheets, left_out + [_hidden_sheet(name, states[name]) for name in hidden]


# pandas makes every row of a sheet as wide as its widest one, from row 1 to the last row
# with a value: one value in cell XFD1048576 made it 17 billion cells (24 GB); and it
# works column by column (one value in XFD2 took 15 s). A sheet larger than this is not
# read (100,000 excerpts with 50 columns are 5,000,000 cells).
MAX_SHEET_CELLS = 5_000_000
MAX_SHEET_COLUMNS = 1024


@dataclass(slots=True)
class _TooBig:
    name: str
    reason: str


def _too_big(extents: dict[str, _Extent | None]) -> list[_TooBig]:
    """The sheets (name -> extent) that would span more than ``MAX_SHEET_CELLS`` cells or
    ``MAX_SHEET_COLUMNS`` columns, each with the reason: values far outside the table
    (delete them) or a sheet too large."""
    found = []
    for name, extent in extents.items():
        if extent is None or (extent.rows * extent.columns <= MAX_SHEET_CELLS
                              and extent.columns <= MAX_SHEET_COLUMNS):
            continue
        span = f"{extent.rows:,} rows × {extent.columns:,} columns"
        if extent.far:
            one = len(extent.far) == 1 and not extent.more
            cells = ", ".join(extent.far) + (" and more" if extent.more else "")
            what = f"a value in cell {cells}" if one else f"values in cells {cells}"
            them = "it" if one else "them"
            reason = (f"sheet '{name}' has {what}, far outside the table (with {them}, the "
                      f"sheet spans {span}, too many to read), so the sheet was not "
                      f"read — delete {them} (or move {them} into the table) and save the "
                      "workbook")
        else:
            reason = (f"sheet '{name}' spans {span}, more than qualcode reads from one "
                      f"sheet ({MAX_SHEET_CELLS:,} cells, {MAX_SHEET_COLUMNS:,} columns), so "
                      "it was not read — delete the columns that are not needed, or split "
                      "the table over several sheets or workbooks")
        found.append(_TooBig(name, reason))
    return found


# Values beyond this many empty rows or columns lie outside the table.
_GAP_ROWS, _GAP_COLUMNS = 1000, 50


@dataclass(slots=True)
class _Extent:
    rows: int  # the last row with a value
    columns: int  # the last column with a value
    far: list[str]  # cells with a value beyond a gap of empty rows or columns (the first)
    more: bool  # there are more such cells than those in ``far``
    merged: list[str] = field(default_factory=list)  # merged cells' ranges ("C4:C5")


def _sheet_extent(book: object, name: str) -> _Extent | None:
    """Where a read-only sheet's values are, from its XML cell by cell (no row is padded
    to the sheet's width, and values are not converted: a quick pass before pandas');
    None if the workbook is not open read-only."""
    from openpyxl.utils import get_column_letter

    sheet = book[name] if hasattr(book, "sheetnames") else None
    if not hasattr(sheet, "_get_source") or not hasattr(sheet, "_shared_strings"):
        return None
    rows = columns = 0
    table_rows = None  # the table's last row, once a gap of empty rows follows it
    far_rows: list[str] = []  # the first cells of the rows below that gap
    more = False
    first: dict[int, str] = {}  # each column's first cell with a value
    seen: set[int] = set()  # the columns with more than one
    merged: list[str] = []
    with sheet._get_source() as source:
        for number, filled in _filled_cells(source, sheet._shared_strings, merged):
            if table_rows is None and rows and number - rows > _GAP_ROWS:
                table_rows = rows
            if table_rows is not None:
                more = more or len(filled) > 1 or len(far_rows) == 3
                if len(far_rows) < 3:
                    far_rows.append(f"{get_column_letter(filled[0])}{number}")
            rows, columns = number, max(columns, *filled)
            for column in filled:
                if column in first:
                    seen.add(column)  # a second value in the column
                else:
                    first[column] = f"{get_column_letter(column)}{number}"
    used = sorted(first)
    end = next((a for a, b in itertools.pairwise(used) if b - a > _GAP_COLUMNS), None)
    far_columns = [c for c in used if end is not None and c > end]
    far = list(dict.fromkeys([first[c] for c in far_columns] + far_rows))
    more = more or len(far) > 3 or any(c in seen for c in far_columns)
    return _Extent(rows, columns, far[:3], more, merged)


_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")


def _filled_cells(source, shared: Sequence[object], merged: list[str] | None = None
                  ) -> Iterator[tuple[int, list[int]]]:
    """A worksheet XML's rows with a value (as pandas reads them: a cached formula
    result, no formula without one, no empty text), each with the columns that have one;
    the ranges of merged cells ("C4:C5") are added to ``merged``."""
    from lxml import etree
    from openpyxl.utils import column_index_from_string

    row = 0
    column = 0
    filled: list[int] = []
    for event, element in etree.iterparse(source, events=("start", "end"),
                                          tag=("{*}row", "{*}c", "{*}mergeCell"),
                                          huge_tree=True, resolve_entities=False,
                                          no_network=True):
        local = etree.QName(element).localname
        if local == "mergeCell":
            if event == "end" and merged is not None and element.get("ref"):
                merged.append(element.get("ref"))
            continue
        if local == "row":
            if event == "start":
                row = int(element.get("r") or row + 1)
                column, filled = 0, []
                continue
            if filled:
                yield row, filled
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
            continue
        if event == "start":
            continue
        ref = _CELL_REF.fullmatch(element.get("r") or "")
        column = column_index_from_string(ref[1].upper()) if ref else column + 1
        if _has_value(element, shared):
            filled.append(column)
        element.clear(keep_tail=False)


def _has_value(cell, shared: Sequence[object]) -> bool:
    """Whether a worksheet XML ``c`` element holds a value (see :func:`_filled_cells`)."""
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return any(t.text for t in cell.iter("{*}t"))
    value = next((v.text for v in cell.iterchildren("{*}v")), None)
    if not value:
        return False
    if kind == "s":
        with contextlib.suppress(ValueError, IndexError, TypeError):
            return shared[int(value)] not in (None, "")
    return True


# An id cell's number format that only pads with zeros and adds fixed text: '000',
# '"LIT-"000', 'EX\-0000'. Any other format (decimals, thousands, dates) is left alone.
_ID_FORMAT = re.compile(r'((?:"[^"]*"|\\.|[-_ /:])*?)([0#]+)((?:"[^"]*"|\\.|[-_ /:])*)')
_LITERAL = re.compile(r'"([^"]*)"|\\(.)|(.)')


def _literal(part: str) -> str:
    return "".join(a or b or c for a, b, c in _LITERAL.findall(part))


def _shown_id(value: object, number_format: str) -> str | None:
    """A whole-number id as the spreadsheet shows it: 1 with format ``000`` is "001" (the
    id people read, and write in manifests and review files), not "1"."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or not float(value).is_integer() or value < 0:
        return None
    form = _ID_FORMAT.fullmatch(number_format.split(";")[0])
    if form is None:
        return None
    prefix, digits, suffix = form.groups()
    return f"{_literal(prefix)}{str(int(value)).zfill(digits.count('0'))}{_literal(suffix)}"


def _ids_as_shown(book: object, sheet: _Sheet) -> None:
    """Numbers in the id column become the text the sheet shows (see :func:`_shown_id`);
    the cells' formats are read only when the column holds numbers."""
    _, id_col, _ = _columns(sheet.frame)
    if id_col is None or not hasattr(book, "worksheets"):
        return
    values = sheet.frame[id_col].tolist()
    if not any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return
    column = sheet.frame.columns.get_loc(id_col) + 1
    rows = book[sheet.name].iter_rows(min_row=sheet.header + 1,
                                      max_row=sheet.header + len(values),
                                      min_col=column, max_col=column)
    shown = list(values)
    for i, cells in enumerate(rows):
        if cells and (text := _shown_id(cells[0].value, cells[0].number_format or "")):
            shown[i] = text
    sheet.frame[id_col] = shown


def _errors_as_text(book: object, sheet: _Sheet) -> None:
    """Error values in the text column (``#N/A``, ``#REF!``), which pandas reads as empty
    cells, become their text, for :func:`_excerpts` to report as such (a formula to fix,
    not a text to add); the cells are read only when the column has empty ones."""
    text_col, _, _ = _columns(sheet.frame)
    if text_col is None or not hasattr(book, "worksheets"):
        return
    empty = sheet.frame[text_col].isna().to_numpy().nonzero()[0]
    if not len(empty):
        return
    column = sheet.frame.columns.get_loc(text_col) + 1
    first = sheet.header + 1  # the spreadsheet row of the frame's first row
    rows = book[sheet.name].iter_rows(min_row=first + empty[0], max_row=first + empty[-1],
                                      min_col=column, max_col=column)
    wanted = set(empty.tolist())
    for index, cells in enumerate(rows, start=int(empty[0])):
        if index in wanted and cells and getattr(cells[0], "data_type", None) == "e":
            sheet.frame.iloc[index, column - 1] = str(cells[0].value)


def _fill_merged(sheet: _Sheet, ranges: list[str]) -> None:
    """Cells merged over rows below the header (``C4:C5``), whose value only the first
    row holds: a metadata value is filled into every row; a text is read once, for the
    first row, and each other row with an id is left out and reported (not as "an empty
    text")."""
    from openpyxl.utils.cell import range_boundaries

    text_col, id_col, _ = _columns(sheet.frame)
    if id_col is None:
        return  # the sheet is not read
    names = list(sheet.frame.columns)
    id_pos = names.index(id_col)
    first = sheet.header + 1  # the spreadsheet row of the frame's first row
    for ref in ranges:
        try:
            min_col, min_row, _, max_row = range_boundaries(ref)
        except (ValueError, TypeError):
            continue
        top, bottom = min_row - first, min(max_row - first, len(sheet.frame) - 1)
        if top < 0 or bottom <= top or min_col > len(names) or min_col - 1 == id_pos:
            continue  # a merged header, a range on one row or outside the table; an id
            # merged over rows leaves the others without one, which is reported as such
        column = min_col - 1
        if names[column] != text_col:
            sheet.frame.iloc[top + 1:bottom + 1, column] = sheet.frame.iloc[top, column]
            continue
        head = metadata_value(sheet.frame.iloc[top, id_pos])
        for index in range(top + 1, bottom + 1):
            excerpt_id = metadata_value(sheet.frame.iloc[index, id_pos])
            if not excerpt_id or not _blank(metadata_value(sheet.frame.iloc[index, column])):
                continue
            sheet.frame.iloc[index, [column, id_pos]] = None
            owner = f"excerpt '{head}' (row {min_row})" if head else f"row {min_row}"
            sheet.left_out.append(RowProblem(first + index, (
                f"excerpt '{excerpt_id}' has no text of its own: its text cell is part of "
                f"the merged cell {ref}, whose text was read once, for {owner}, so the "
                "row was left out — unmerge the cells (Home › Merge & Center › Unmerge "
                "Cells) and put each excerpt's text in its own row")))


def _hidden_sheet(name: object, state: str) -> RowProblem:
    """The note for a hidden sheet left out."""
    if state == "veryHidden":  # set by a macro or program; Excel's Unhide does not list it
        how = ("make it visible in Excel's VBA editor (Alt+F11, the sheet's Visible "
               "property) or in LibreOffice (Sheet › Show Sheet)")
    else:
        how = "unhide it (right-click a sheet tab › Unhide)"
    return RowProblem(None, f"sheet '{name}' is hidden and was not read — {how} to include "
                      "it", note=True)


def _is_formula(value: object) -> bool:
    """Whether a cell's value in openpyxl's formula view is a formula."""
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    return (isinstance(value, str) and value.startswith("=")) or isinstance(
        value, ArrayFormula | DataTableFormula)


def _leave_out_uncalculated(data: bytes, sheets: list[_Sheet]) -> None:
    """Blank out the rows whose text or id cell is empty only because it holds a formula
    whose result was never stored (a workbook written by a script, never opened in Excel)
    and report each with its cells: "empty text" or "no id" would send the user to fix the
    wrong thing. The formulas are read, in a second pass through the workbook, only when a
    sheet has an empty text or id cell."""
    empty: dict[str, object] = {}  # sheet -> its rows with an empty text or id cell
    for sheet in sheets:
        text_col, id_col, _ = _columns(sheet.frame)
        if text_col is not None and id_col is not None:
            cells = sheet.frame[[id_col, text_col]].isna()
            if cells.to_numpy().any():
                empty[sheet.name] = cells[cells.any(axis=1)]
    if not empty:
        return
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        for sheet in sheets:
            if sheet.name not in empty:
                continue
            cells = empty[sheet.name]
            columns = [sheet.frame.columns.get_loc(c) + 1 for c in cells.columns]
            first = sheet.header + 1  # the spreadsheet row of the frame's first row
            rows = book[sheet.name].iter_rows(
                min_row=first + cells.index[0], max_row=first + cells.index[-1],
                min_col=min(columns), max_col=max(columns), values_only=True)
            wanted = dict(zip(cells.index, cells.to_numpy(), strict=True))
            for index, values in enumerate(rows, start=cells.index[0]):
                if index not in wanted:
                    continue
                formulas = [get_column_letter(col) + str(first + index)
                            for col, is_empty in zip(columns, wanted[index], strict=True)
                            if is_empty and _is_formula(values[col - min(columns)])]
                if formulas:
                    sheet.frame.loc[index, list(cells.columns)] = None
                    sheet.left_out.append(RowProblem(first + index, _uncalculated(formulas)))
    finally:
        book.close()


def _uncalculated(cells: list[str]) -> str:
    what = (f"cell {cells[0]} holds a formula whose result was" if len(cells) == 1 else
            f"cells {' and '.join(cells)} hold formulas whose results were")
    return (f"{what} never calculated (the workbook was saved by a program that does not "
            "calculate formulas), so the row was not read — open the workbook in Excel or "
            "LibreOffice and save it, which stores the results")


def column_key(name: object) -> str:
    """A column name as matched against ``text`` and :data:`ID_COLUMNS`: in lower case,
    spaces and hyphens read as ``_`` (``Excerpt ID``, ``excerpt-id``, ``ExcerptID`` and
    ``Doc ID`` all name an id column)."""
    key = re.sub(r"[\s_-]+", "_", str(name).strip().lower())
    return {"excerptid": "excerpt_id", "docid": "doc_id"}.get(key, key)


# A transcript table's speaker column (``Speaker``, ``Speaker name``); not ``Name``, which
# an excerpt table without an id column may have for its author.
_SPEAKER_COLUMNS = {"speaker", "speakers", "speaker_name", "participant"}


def _transcript_table(frame, interviewer_labels: tuple[str, ...]) -> RawDoc | None:
    """A table that is a transcript (``Speaker | Start time | Text``, as transcription
    services and QDA programs export one): no id column, and a header naming a speaker
    and a text column. Its rows become ``Speaker (time): words`` turns, as in a Word
    table of turns (:func:`docx_text.table_paragraphs`); None for any other table."""
    from .docx_text import named_columns, table_paragraphs

    if _columns(frame)[1] is not None or not any(
            column_key(c) in _SPEAKER_COLUMNS for c in frame.columns):
        return None
    rows = [[str(c).strip() for c in frame.columns],
            *([metadata_value(v) for v in row] for row in frame.itertuples(index=False))]
    named = named_columns(rows)
    if named is None or column_key(rows[0][named[1]]) not in _SPEAKER_COLUMNS:
        return None
    text = "\n\n".join(table_paragraphs(rows))
    _require_text(text, "transcript table")
    return RawDoc(text, _layout(text, interviewer_labels), {})


def _columns(frame) -> tuple[object | None, object | None, str]:
    """The ``text`` column, the id column (``None`` if missing) and all columns, listed."""
    columns: dict[str, object] = {}
    for c in frame.columns:
        columns.setdefault(column_key(c), c)
    id_col = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    return columns.get("text"), id_col, ", ".join(str(c) for c in frame.columns) or "none"


def _repeated_columns(frame, header: int, where: str = "") -> list[RowProblem]:
    """Column names given twice or more (in any case): pandas reads the later ones as
    ``name.1``... A repeated ``text`` or id column is an error (which holds the excerpt?);
    another is reported, its later columns kept as metadata under their new names."""
    names = [str(c).strip() for c in frame.columns]
    keys = {column_key(n) for n in names}
    groups: dict[str, list[str]] = {}
    for name in names:
        mangled = re.fullmatch(r"(.+)\.\d+", name)
        base = mangled.group(1) if mangled and column_key(mangled.group(1)) in keys else name
        groups.setdefault(column_key(base), []).append(name)
    problems = []
    for key, group in groups.items():
        if len(group) < 2:
            continue
        listed = ", ".join(f"'{n}'" for n in group)
        if key == "text" or key in ID_COLUMNS:
            raise ReadError(f"{where}has the column '{group[0]}' {len(group)} times (read as "
                            f"{listed}), so which one to use is unclear — rename or delete "
                            "the extra ones", header)
        problems.append(RowProblem(header, (
            f"{where}column '{group[0]}' appears {len(group)} times; they were read as "
            f"{listed} — give each column its own name"), note=True))
    return problems


def _table_columns(frame, header: int = 1) -> tuple[object, object]:
    """The ``text`` and id columns of a table that must have both."""
    text_col, id_col, found = _columns(frame)
    if text_col is None:
        raise ReadError(
            f"has no 'text' column (columns: {found}) — name the column that holds the "
            "excerpt 'text'",
            header,
        )
    if id_col is None:
        raise ReadError(
            f"has no id column (columns: {found}) — add an 'excerpt_id' (or 'id') column "
            "with a unique id per row",
            header,
        )
    return text_col, id_col


def _excerpts(
    frame, text_col: object, id_col: object, first_row: int, sheet: str | None = None
) -> tuple[list[RawDoc], list[RowProblem]]:
    """One excerpt per row (``first_row`` = the first one's spreadsheet row); a row without
    id or text is a problem, its reason naming the ``sheet`` if given."""
    where = f"sheet '{sheet}': " if sheet is not None else ""
    docs: list[RawDoc] = []
    problems: list[RowProblem] = []
    for i, record in enumerate(frame.to_dict("records")):
        row = i + first_row
        values = {str(k).strip(): metadata_value(v) for k, v in record.items()}
        text = values[str(text_col).strip()]  # an empty .xlsx cell is NaN, not "nan"
        excerpt_id = values[str(id_col).strip()]
        empty = _blank(text)
        if not excerpt_id and empty:
            continue  # a blank row
        if (column_key(excerpt_id) == column_key(id_col)
                and column_key(text) == column_key(text_col)):
            problems.append(RowProblem(row, (
                f"{where}repeats the header row ('{excerpt_id}', '{text}'), as where two "
                "tables were pasted one below the other; it was left out — delete the row")))
            continue
        if not excerpt_id:
            problems.append(
                RowProblem(row, f"{where}no {id_col} — give the excerpt a unique id")
            )
            continue
        if empty:
            problems.append(RowProblem(
                row, f"{where}excerpt '{excerpt_id}' has an empty text — add the text"
            ))
            continue
        if text.strip().upper() in SPREADSHEET_ERRORS:
            problems.append(RowProblem(row, (
                f"{where}excerpt '{excerpt_id}' was not read: its text cell holds a "
                f"spreadsheet error ({text.strip()}), not text — fix the formula that gives "
                "it, or paste the text in as values (Paste Special › Values)")))
            continue
        meta = {k: v for k, v in values.items() if k not in (str(text_col).strip(),)}
        meta["doc_id"] = meta.pop(str(id_col).strip())
        docs.append(RawDoc(text.strip(), EXCERPT, meta, row, sheet))
    return docs, problems


def _read_sheet(sheet: _Sheet) -> tuple[list[RawDoc], list[RowProblem]]:
    """A sheet of a workbook with several: its excerpts, or why it was not read."""
    text_col, id_col, found = _columns(sheet.frame)
    name = f"sheet '{sheet.name}'"
    if text_col is None:
        return [], [RowProblem(None, f"{name} has no 'text' column and was not read — if it "
                               "holds excerpts, put a header row with a 'text' column in its "
                               f"first {_HEADER_ROWS} rows")]
    if id_col is None:
        return [], [RowProblem(sheet.header, f"{name} has no id column (columns: {found}) "
                               "and was not read — add an 'excerpt_id' (or 'id') column "
                               "with a unique id per row")]
    try:
        repeated = _repeated_columns(sheet.frame, sheet.header, f"{name} ")
    except ReadError as err:
        return [], [RowProblem(err.line, f"{err.reason}; the sheet was not read")]
    docs, problems = _excerpts(sheet.frame, text_col, id_col, sheet.header + 1, sheet.name)
    return docs, repeated + _by_row(problems + sheet.problems(f"{name}: "))


def _by_row(problems: list[RowProblem]) -> list[RowProblem]:
    return sorted(problems, key=lambda p: p.row or 0)


def _read_workbook(data: bytes, interviewer_labels: tuple[str, ...] = DEFAULT_INTERVIEWER_LABELS,
                   ) -> tuple[list[RawDoc], list[RowProblem]]:
    """Every sheet with a ``text`` and an id column; the others are reported by name. A
    workbook of one sheet may be a transcript (:func:`_transcript_table`)."""
    sheets, hidden = _read_sheets(data)
    filled = [s for s in sheets if len(s.frame.columns)] or sheets[:1]
    if len(filled) == 1:
        sheet = filled[0]
        transcript = _transcript_table(sheet.frame, interviewer_labels)
        if transcript is not None:
            return [transcript], hidden + sheet.problems()
        columns = _table_columns(sheet.frame, sheet.header)
        repeated = _repeated_columns(sheet.frame, sheet.header)
        docs, problems = _excerpts(sheet.frame, *columns, sheet.header + 1)
        return docs, hidden + repeated + _by_row(problems + sheet.problems())
    if all(_columns(s.frame)[0] is None for s in filled):
        names = ", ".join(f"'{s.name}'" for s in filled)
        raise ReadError(f"has no sheet with a 'text' column (sheets: {names}) — name the "
                        "column that holds the excerpt 'text'")
    docs: list[RawDoc] = []
    problems: list[RowProblem] = list(hidden)
    for sheet in filled:
        sheet_docs, sheet_problems = _read_sheet(sheet)
        docs.extend(sheet_docs)
        problems.extend(sheet_problems)
    return docs, problems


def read_table(data: bytes, fmt: str,
               interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
               ) -> tuple[list[RawDoc], list[RowProblem]]:
    """An excerpt table: one document per row, ``text`` + an id column, the rest metadata.

    A .csv row with more cells than the header is left out and reported; every sheet of a
    workbook that has both columns is read, its header row found in its first rows. A
    table without an id column whose header names a speaker and a text column (a
    transcript exported as a table) is one transcript (:func:`_transcript_table`).
    """
    if fmt == "xlsx":
        docs, problems = _read_workbook(data, tuple(interviewer_labels))
    else:
        frame, long_rows, above = _read_csv_frame(data)
        transcript = _transcript_table(frame, tuple(interviewer_labels))
        if transcript is not None:
            return [transcript], long_rows
        columns = _table_columns(frame, 1 + above)
        repeated = _repeated_columns(frame, 1 + above)
        docs, problems = _excerpts(frame, *columns, 2 + above)
        problems = sorted(long_rows + repeated + problems, key=lambda p: p.row or 0)
    if not docs and not problems:
        raise ReadError("the table has no rows — add excerpts or remove the file")
    return docs, problems


Reader = Callable[[bytes, Iterable[str]], list[RawDoc]]
