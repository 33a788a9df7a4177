"""Files → Documents: find the corpus files, read each format, apply the manifest."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from ..documents import EXCERPT, TRANSCRIPT, Document, Skipped
from ..speakers import DEFAULT_INTERVIEWER_LABELS
from .decode import SURROGATE
from .docx_reader import read_docx
from .manifest import MANIFEST_NAME, Manifest, load_manifest, unmatched_doc_ids
from .pdf import read_pdf
from .readers import FORMATS, SUBTITLE_FORMATS, TABLE_FORMATS, TEXT_FORMATS, RawDoc, ReadError
from .subtitles import read_subtitles
from .tables import read_table
from .text import read_text

__all__ = [
    "FileRecord",
    "IngestResult",
    "Manifest",
    "discover_files",
    "drop_duplicate_ids",
    "find_copies",
    "ingest_corpus",
    "ingest_files",
    "load_manifest",
    "unmatched_doc_ids",
]

REVIEWS_DIR = "reviews"
_SILENT = {"thumbs.db", "desktop.ini"}


@dataclass(slots=True)
class FileRecord:
    """Provenance of one input file."""

    path: str
    sha256: str
    bytes: int
    format: str
    documents: int = 0


@dataclass(slots=True)
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)


def _ignored(relative: Path) -> bool:
    parts = relative.parts
    name = parts[-1]
    return (
        any(p.startswith(".") or p.startswith("~$") for p in parts)
        or name.lower() in _SILENT
        or name.endswith("~")
        or (len(name) > 2 and name.startswith("#") and name.endswith("#"))  # Emacs autosave
        # manifest.csv, in any case (in other case it is reported: _misnamed)
        or (len(parts) == 1 and (name.lower() == MANIFEST_NAME
                                 or name.lower().startswith("readme")))
        or parts[0] == REVIEWS_DIR
        or (len(parts) > 1 and parts[0].lower() == REVIEWS_DIR)  # Reviews/: reported
    )


def _misnamed(corpus: Path) -> list[Skipped]:
    """The top folder ``reviews/`` and file ``manifest.csv`` named so but for case
    (``Reviews/``, ``Manifest.csv``): not documents, and not read as coders' decisions or
    the manifest either, unless the file system ignores case."""
    reviews, manifest = corpus / REVIEWS_DIR, corpus / MANIFEST_NAME
    skipped = []
    for path in sorted(corpus.iterdir()):
        name = path.name
        if name.lower() == REVIEWS_DIR and name != REVIEWS_DIR and path.is_dir() \
                and not (reviews.is_dir() and reviews.samefile(path)):
            skipped.append(Skipped(f"{name}/", (
                "is not read, neither as documents nor as coders' decisions (their folder "
                f"must be named '{REVIEWS_DIR}', in lower case) — rename it to "
                f"'{REVIEWS_DIR}' or move its files into '{REVIEWS_DIR}/'")))
        elif name.lower() == MANIFEST_NAME and name != MANIFEST_NAME and path.is_file() \
                and not (manifest.is_file() and manifest.samefile(path)):
            fix = (f"move its rows into '{MANIFEST_NAME}' and delete it" if manifest.exists()
                   else f"rename it to '{MANIFEST_NAME}'")
            skipped.append(Skipped(name, (
                "is not read, neither as the manifest (its name must be "
                f"'{MANIFEST_NAME}', in lower case) nor as an excerpt table, so the files "
                f"were read without its metadata — {fix}")))
    return skipped


def _other_manifest(corpus: Path, name: str) -> Skipped | None:
    """A file at the top of the corpus named like the manifest but for its extension or an
    addition (``manifest.csv.txt`` as Notepad saves it, ``manifest.xlsx``, ``manifest
    (1).csv``): not read as the manifest, and no document either (a .txt one would be
    coded as prose)."""
    lower = name.lower()
    if not lower.startswith("manifest") or lower == MANIFEST_NAME:
        return None
    stem, _, ext = lower.partition(".")
    if not (stem == "manifest" or stem.startswith(("manifest ", "manifest_", "manifest-",
                                                   "manifest("))):
        return None  # manifestos.txt, manifesto.docx: documents
    if ext in ("csv.txt", "txt"):
        fix = (f"rename it to '{MANIFEST_NAME}' (Windows may hide the '.txt' at the end of "
               "its name: show file name extensions to see it)")
    elif ext in ("xlsx", "xls", "ods", "numbers"):
        fix = (f"save it as CSV (File › Save As › CSV UTF-8) under the name '{MANIFEST_NAME}' "
               "in the corpus folder")
    else:
        fix = f"rename it to '{MANIFEST_NAME}'"
    if (corpus / MANIFEST_NAME).is_file():
        fix = (f"move its rows into '{MANIFEST_NAME}' and delete it (or move it out of the "
               "corpus folder)")
    return Skipped(name, (
        f"is not read, neither as the manifest (only '{MANIFEST_NAME}' at the top of the "
        f"corpus folder is) nor as a document, so its metadata was not applied — {fix}"))


def _nested_manifest(posix: str) -> Skipped:
    """A ``manifest.csv`` in a sub-folder: only the corpus folder's own is the manifest,
    and one named so is no excerpt table either."""
    folder = PurePosixPath(posix).parent.as_posix()
    return Skipped(posix, (
        "is not read, neither as the manifest (only the one at the top of the corpus folder "
        "is) nor as an excerpt table — move its rows into the corpus folder's "
        f"'{MANIFEST_NAME}', with paths relative to the corpus folder ('{folder}/<file>'), "
        "and delete it; if it holds excerpts, rename it"))


_WRITER = "open it in Word or LibreOffice Writer and save it as .docx (File › Save As)"
_CALC = "open it in Excel or LibreOffice Calc and save it as .xlsx (File › Save As)"
_RECORDING = "transcribe it first and put the transcript here (.docx, .txt, .vtt or .srt)"
# What a researcher's files of other types are, and how to make them readable.
_CONVERT = {
    "doc": ("an old-style Word document", _WRITER),
    "dot": ("an old-style Word template", _WRITER),
    "docm": ("a macro-enabled Word document", _WRITER),
    "dotx": ("a Word template", _WRITER),
    "rtf": ("a Rich Text document", _WRITER),
    "odt": ("an OpenDocument text", _WRITER),
    "pages": ("an Apple Pages document", "open it in Pages and export it as Word (.docx)"),
    "wpd": ("a WordPerfect document", _WRITER),
    "xls": ("an old-style Excel workbook", _CALC),
    "xlsm": ("a macro-enabled Excel workbook", _CALC),
    "ods": ("an OpenDocument spreadsheet", _CALC),
    "numbers": ("an Apple Numbers spreadsheet", "open it in Numbers and export it as Excel "
                "(.xlsx)"),
    "tsv": ("a tab-separated table", "rename it to .csv (tabs are understood)"),
    "htm": ("a web page", "save the page's text as .txt, or copy it into a Word document"),
    "html": ("a web page", "save the page's text as .txt, or copy it into a Word document"),
    **{ext: ("an audio or video recording", _RECORDING) for ext in (
        "mp3", "m4a", "wav", "ogg", "opus", "aac", "flac", "wma", "mp4", "m4v", "mov",
        "avi", "mkv", "webm")},
}


def _unsupported(ext: str) -> str:
    """Why a file of type ``ext`` (not one of :data:`FORMATS`) is not read, and the fix."""
    if ext in _CONVERT:
        what, fix = _CONVERT[ext]
        return f"unsupported file type '.{ext}' ({what}) — {fix}, or move it out of the corpus"
    kind = f"'.{ext}'" if ext else "with no extension"
    return (f"unsupported file type {kind} — convert it to one of "
            f"{', '.join('.' + f for f in FORMATS)}, or move it out of the corpus")


# Python keeps the bytes of a file name that is not UTF-8 as lone surrogates (PEP 383).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _shown_name(name: str) -> str:
    """A file name as it can be shown and written: bytes that are not UTF-8 escaped
    (``latin1_\\xe9.txt``)."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:  # a surrogate no file system returns
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _link_problem(path: Path, root: Path) -> str | None:
    """Why a symbolic link in the corpus is not read, or None for a link to a corpus file."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        return (f"is a broken link — the file it points to ('{_shown_name(os.readlink(path))}') "
                "does not exist; copy the file itself into the corpus, or delete the link")
    except (OSError, RuntimeError) as err:  # RuntimeError: a loop of links (Python < 3.13)
        if isinstance(err, OSError) and err.errno != errno.ELOOP:
            return (f"is a link that cannot be followed ({err.strerror}) — copy the file "
                    "itself into the corpus, or delete the link")
        return ("is a broken link — it leads back to itself (a loop of links); delete the "
                "link and copy the file itself into the corpus")
    if target.is_dir():
        if path.parent.resolve().is_relative_to(target):
            return ("is a link to a folder that contains it (a loop) and was not followed "
                    "— delete the link")
        return ("is a link to a folder and was not followed (linked folders are not read) "
                "— copy the folder itself into the corpus, or delete the link")
    if not target.is_relative_to(root):
        return ("is a link to a file outside the corpus folder and was not read — copy the "
                "file into the corpus instead")
    return None


def discover_files(corpus: Path) -> tuple[list[str], list[Skipped]]:
    """Corpus files to read (POSIX paths relative to ``corpus``, sorted) and the skipped ones.

    Hidden files, office lock files (``~$...``), ``manifest.csv``, README files at the top
    and everything under ``reviews/`` are not documents and are passed over silently (a
    ``Reviews/`` folder or ``Manifest.csv`` file, in other case, is reported). Broken
    links, links to folders, links to files outside the corpus, links to corpus files read
    anyway, files (or folders) whose name is not valid UTF-8 and a ``manifest.csv`` in a
    sub-folder (the manifest is the top one) are skipped, and so are files at the top named
    like the manifest but for the extension or an addition (``manifest.csv.txt``,
    ``manifest.xlsx``, ``manifest (1).csv``).
    """
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus folder '{corpus}' does not exist")
    found: list[str] = []
    skipped: list[Skipped] = _misnamed(corpus)
    root = corpus.resolve()
    links: dict[str, str] = {}  # link -> the corpus file it leads to
    denied: tuple[str, ...] = ()  # folders that cannot be read ("locked/")
    for path in sorted(corpus.rglob("*")):
        relative = path.relative_to(corpus)
        if _ignored(relative):
            continue
        posix = relative.as_posix()
        if denied and posix.startswith(denied):
            continue
        if _NOT_UTF8.search(posix):
            # Such a name can be neither hashed, shown nor written to a CSV as it is.
            if path.is_dir() and not path.is_symlink():
                denied += (f"{posix}/",)
                skipped.append(Skipped(f"{_shown_name(posix)}/", (
                    "is a folder whose name is not valid UTF-8, so the files in it were not "
                    "read — rename the folder")))
            else:
                skipped.append(Skipped(_shown_name(posix), "its file name is not valid UTF-8 "
                                       "— rename the file"))
            continue
        problem = _link_problem(path, root) if path.is_symlink() else None
        if problem:
            skipped.append(Skipped(posix, problem))
            continue
        if path.is_dir():
            # rglob passes over a folder it may not list without a word
            if not os.access(path, os.R_OK | os.X_OK):
                denied += (f"{posix}/",)
                skipped.append(Skipped(f"{posix}/", (
                    "is a folder that cannot be read (no permission), so the files in it "
                    "were not coded — give yourself read access to it (chmod -R u+rX)")))
            continue
        if not path.is_file():
            if path.exists():  # a named pipe, socket or device: reading it could hang
                skipped.append(Skipped(posix, "is not a regular file (a pipe, socket or "
                                       "device) and was not read — put the file itself here"))
            continue
        if path.is_symlink():
            links[posix] = path.resolve().relative_to(root).as_posix()
        if path.name.lower() == MANIFEST_NAME:  # below the top: the top one is _ignored
            skipped.append(_nested_manifest(posix))
            continue
        other = _other_manifest(corpus, path.name) if len(relative.parts) == 1 else None
        if other is not None:
            skipped.append(other)
            continue
        ext = path.suffix.lower().lstrip(".")
        if ext not in FORMATS:
            skipped.append(Skipped(posix, _unsupported(ext)))
        else:
            found.append(posix)
    # A link to a file that is read anyway would read it twice.
    twice = {link for link, target in links.items() if target in found and target != link}
    skipped.extend(Skipped(link, f"is a link to {links[link]}, which is read already, so it "
                           "was not read again — delete the link") for link in sorted(twice))
    return [p for p in found if p not in twice], skipped


def _read(data: bytes, fmt: str, labels: Sequence[str]) -> tuple[list[RawDoc], list]:
    if fmt in TEXT_FORMATS:
        return read_text(data, labels)
    if fmt == "docx":
        return read_docx(data, labels)
    if fmt == "pdf":
        return read_pdf(data, labels)
    if fmt in SUBTITLE_FORMATS:
        return read_subtitles(data, fmt, labels)
    if fmt in TABLE_FORMATS:
        return read_table(data, fmt, labels)
    raise ReadError(f"unsupported format {fmt}")


def _merge(base: dict[str, str], override: dict[str, str] | None) -> dict[str, str]:
    merged = dict(base)
    merged.update({k: v for k, v in (override or {}).items() if v})
    return merged


def _fold_case(meta: dict[str, str], spellings: dict[str, str]) -> dict[str, str]:
    """Merge metadata names that differ only in case (``Author``, ``author``) under the
    manifest's spelling, else the first one; a later non-empty value wins (the manifest's
    over the file's own). ``source_type`` is always spelled so."""
    names = {**spellings, "source_type": "source_type"}
    folded: dict[str, str] = {}
    for key, value in meta.items():
        name = names.setdefault(key.casefold(), key)
        if value or name not in folded:
            folded[name] = value
    return folded


_ID_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _joined(pair: re.Match[str]) -> str:
    return pair.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _valid_unicode(text: str) -> tuple[str, int]:
    """``text`` as valid Unicode, and how many characters were replaced: a surrogate pair
    written as two escapes (YAML's or JSON's ``"\\ud83d\\ude00"``) becomes its character,
    a lone surrogate (such an escape, a damaged PDF) U+FFFD. No output can hold one."""
    if SURROGATE.search(text) is None:  # the usual case: no copy
        return text, 0
    return SURROGATE.subn("\ufffd", _SURROGATE_PAIR.sub(_joined, text))


def _valid_document(doc: Document) -> tuple[Document, int]:
    """``doc`` with its text, id and metadata as valid Unicode (``_valid_unicode``),
    and how many lone surrogates were replaced."""
    text, replaced = _valid_unicode(doc.text)
    doc_id, count = _valid_unicode(doc.doc_id)
    replaced += count
    metadata = {}
    for key, value in doc.metadata.items():
        (key, one), (value, two) = _valid_unicode(key), _valid_unicode(value)
        metadata[key] = value
        replaced += one + two
    if (text, doc_id, metadata) == (doc.text, doc.doc_id, doc.metadata):
        return doc, 0
    return replace(doc, text=text, doc_id=doc_id, metadata=metadata), replaced


def _replaced_note(doc: Document, replaced: int) -> Skipped:
    what = ("a character that is not valid Unicode (a lone surrogate, from a '\\ud800'-style "
            "escape or a damaged text layer); it was" if replaced == 1 else
            f"{replaced} characters that are not valid Unicode (lone surrogates, from "
            "'\\ud800'-style escapes or a damaged text layer); they were")
    return Skipped(doc.path, f"held {what} replaced with '\ufffd' and the rest was read — "
                   "look for '\ufffd' in its text and metadata, and fix the file (or export "
                   "it again)", doc.row, note=True)


def _document(
    raw: RawDoc, path: str, fmt: str, sha256: str, manifest: Manifest, stem: str
) -> Document:
    if raw.layout == EXCERPT:
        meta = _merge(raw.metadata, {k: v for k, v in manifest.by_file.get(path, {}).items()
                                     if k != "doc_id"})
    else:
        meta = _merge(raw.metadata, manifest.by_file.get(path))
    # A line break or other control character (a multi-line id cell) would be carried
    # into every segment id: such runs become one space.
    doc_id = _ID_BREAKS.sub(" ", meta.get("doc_id") or stem).strip()
    if raw.layout != EXCERPT and (manifest.by_file.get(path) or {}).get("doc_id"):
        id_source = "manifest"
    elif raw.metadata.get("doc_id"):
        id_source = "id column" if raw.layout == EXCERPT else "front matter"
    else:
        id_source = "file name"
    meta = _merge(meta, manifest.by_doc_id.get(doc_id))
    meta.pop("doc_id", None)
    meta = _fold_case(meta, manifest.spellings)
    if "source_type" in meta:
        meta["source_type"] = meta["source_type"].strip().lower()
    if raw.layout == EXCERPT and "citation" not in meta:
        citation = _citation(meta)
        if citation:
            meta["citation"] = citation
    return Document(doc_id, path, fmt, raw.layout, raw.text, sha256, meta, raw.row, id_source)


def _citation(meta: dict[str, str]) -> str:
    """``Author (Year) Title, p. N`` from the usual bibliographic columns, when present."""
    lower = {k.lower(): v for k, v in meta.items()}
    author, year = lower.get("author", ""), lower.get("year", "")
    if not author:
        return ""
    text = f"{author} ({year})" if year else author
    if lower.get("title"):
        text += f" {lower['title']}"
    if lower.get("page"):
        text += f", p. {lower['page']}"
    return text


def ingest_files(
    corpus: Path,
    paths: Iterable[str],
    manifest: Manifest,
    interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS,
) -> IngestResult:
    """Read ``paths`` (relative to ``corpus``); a bad file is skipped with its reason."""
    result = IngestResult()
    for path in paths:
        fmt = Path(path).suffix.lower().lstrip(".")
        try:
            data = (corpus / path).read_bytes()
        except OSError as err:
            result.skipped.append(
                Skipped(path, f"cannot be read ({err.strerror}) — check that the file is not "
                        "open elsewhere and that you may read it")
            )
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        record = FileRecord(path, sha256, len(data), fmt)
        result.files.append(record)
        if not data.strip():
            result.skipped.append(Skipped(path, "is empty — add the text or remove the file"))
            continue
        try:
            raws, row_problems = _read(data, fmt, interviewer_labels)
        except ReadError as err:
            result.skipped.append(Skipped(path, _valid_unicode(err.reason)[0], err.line))
            continue
        result.skipped.extend(Skipped(path, _valid_unicode(p.reason)[0], p.row, p.note)
                              for p in row_problems)
        stem = Path(path).stem
        docs = []
        for raw in raws:
            doc, replaced = _valid_document(_document(raw, path, fmt, sha256, manifest, stem))
            if replaced:
                result.skipped.append(_replaced_note(doc, replaced))
            docs.append(doc)
        docs, repeated = _repeated_ids(raws, docs)
        result.skipped.extend(repeated)
        record.documents = len(docs)
        result.documents.extend(docs)
    return result


def _repeated_ids(raws: list[RawDoc], docs: list[Document]
                  ) -> tuple[list[Document], list[Skipped]]:
    """The documents of one file (read from ``raws``) less the table rows whose id an
    earlier row of the table has (in sheet, then row order), each reported with the sheet
    and row of both (:func:`drop_duplicate_ids` knows no sheets)."""
    first: dict[str, RawDoc] = {}
    kept: list[Document] = []
    skipped: list[Skipped] = []
    for raw, doc in zip(raws, docs, strict=True):
        other = first.setdefault(doc.doc_id, raw) if doc.row is not None and doc.doc_id else raw
        if other is raw:
            kept.append(doc)
            continue
        here = f"sheet '{raw.sheet}': " if raw.sheet is not None else ""
        there = f"sheet '{other.sheet}' " if other.sheet is not None else ""
        skipped.append(Skipped(doc.path, (
            f"{here}duplicate doc_id '{doc.doc_id}' (already used by {there}row {other.row}) "
            "— give each excerpt its own id in the id column"), doc.row))
    return kept, skipped


# A name a file manager or mail client gives a copy: "x (1)", "x - Copy (2)", "Copy of x",
# "x_copy", "x copy 2".
_COPY_NAME = re.compile(r"^copy (?:\(\d+\) )?of |(?: \(\d+\)|[ _-]+copy(?: ?\(?\d+\)?)?)$",
                        re.IGNORECASE)


def _copy_name(path: str) -> bool:
    """Whether the file's name looks like that of a copy (``interview (1).txt``)."""
    return _COPY_NAME.search(PurePosixPath(path).stem.strip()) is not None


def _keep_rank(doc: Document) -> tuple[bool, bool]:
    """Which of two copies to keep: the lower rank."""
    return doc.id_source != "manifest", _copy_name(doc.path)


def find_copies(documents: Iterable[Document]) -> dict[str, Skipped]:
    """Files (of ``documents``, in path order) with the same bytes as another file (a copy
    under another name): path -> the report of the copy left out. Of such files the one
    kept is the first whose doc_id the manifest gives, else whose name does not look like
    a copy's (``interview (1).txt``, ``Copy of ...``, ``... - Copy``), else the first.
    Files the manifest gives different doc_ids are two documents, not copies."""
    documents = list(documents)
    first: dict[str, Document] = {}
    for doc in documents:
        kept = first.setdefault(doc.sha256, doc)
        if kept is not doc and _keep_rank(doc) < _keep_rank(kept):
            first[doc.sha256] = doc
    copies: dict[str, Skipped] = {}
    for doc in documents:
        kept = first[doc.sha256]
        if kept.id_source == doc.id_source == "manifest" and kept.doc_id != doc.doc_id:
            continue
        if kept.path != doc.path and doc.path not in copies:
            same_id = (f" and a duplicate doc_id '{doc.doc_id}'"
                       if doc.row is None and doc.doc_id == kept.doc_id else "")
            copies[doc.path] = Skipped(doc.path, f"has the same content{same_id} as "
                                       f"{kept.path} (kept) — delete one copy")
    return copies


# Of documents sharing a doc_id, the one whose id was given on purpose is kept: a new
# file named like an established interview must not take its place (and its reviews).
_ID_SOURCE_RANK = {"manifest": 0, "front matter": 1, "id column": 1, "file name": 2}


def drop_duplicate_ids(documents: list[Document]) -> tuple[list[Document], list[Skipped]]:
    """Keep one document of each ``doc_id``: the one whose id comes from the manifest,
    else from front matter or an id column, else from its file name; of equals, the
    first in path order, then in the order given (a workbook's rows sheet by sheet). The
    others are reported, the rows of one table whose ids another file uses once for the
    table. The documents kept are in that order."""
    # A stable sort by path alone: rows of two sheets must not interleave by row number.
    order = {id(d): i for i, d in enumerate(sorted(documents, key=lambda d: d.path))}
    chosen: dict[str, Document] = {}
    skipped: list[Skipped] = []
    clashes: dict[str, list[tuple[Document, Document]]] = {}  # table -> (row, kept document)
    for doc in sorted(documents, key=lambda d: (_ID_SOURCE_RANK[d.id_source], order[id(d)])):
        if not doc.doc_id:
            skipped.append(Skipped(doc.path, "has an empty doc_id — set one in the manifest",
                                   doc.row))
        elif doc.doc_id in chosen:
            other = chosen[doc.doc_id]
            if doc.row is not None and other.path != doc.path:
                clashes.setdefault(doc.path, []).append((doc, other))
            else:
                skipped.append(_duplicate(doc, other))
        else:
            chosen[doc.doc_id] = doc
    for pairs in clashes.values():
        skipped.append(_duplicate(*pairs[0]) if len(pairs) == 1 else _table_clash(pairs))
    kept = sorted(chosen.values(), key=lambda d: order[id(d)])
    return kept, sorted(skipped, key=lambda s: (s.path, s.line or 0))


def _duplicate(doc: Document, other: Document) -> Skipped:
    """The report of ``doc``, left out since ``other`` has its doc_id."""
    path, kept = PurePosixPath(doc.path), PurePosixPath(other.path)
    if doc.id_source == other.id_source == "file name" and path != kept \
            and path.with_suffix("") == kept.with_suffix(""):
        # the same name in two formats: another doc_id would code the interview twice
        kind = "interview" if doc.layout == TRANSCRIPT else "document"
        formats = f"{kept.suffix} and {path.suffix}"
        return Skipped(doc.path, f"looks like the same {kind} as {other.path} (kept), saved "
                       f"as {formats} — keep one of the two files (only if it is another "
                       f"{kind}, give it its own doc_id)")
    where = other.path + (f" row {other.row}" if other.row else "")
    why = ("" if _ID_SOURCE_RANK[other.id_source] == _ID_SOURCE_RANK[doc.id_source]
           else f", whose id comes from the {other.id_source}")
    return Skipped(doc.path, f"duplicate doc_id '{doc.doc_id}' (already used by {where}{why}) "
                   f"— {_rename_one(doc, other, where)}", doc.row)


def _rename_one(doc: Document, other: Document, where: str) -> str:
    """How to fix a doc_id that ``doc`` (left out) shares with ``other`` (at ``where``): an
    excerpt's id is renamed in its table, a file's given in the manifest or front matter."""
    if doc.row is None:
        fix = {"manifest": "give this document its own doc_id in manifest.csv (its row there "
                           "gives it this one)",
               "front matter": "give this document its own doc_id in its front matter (the "
                               "'doc_id:' line)",
               }.get(doc.id_source,
                     "give this document its own doc_id (manifest, front matter or id column)")
        return fix + (f", or rename the id in {where}" if other.row is not None else "")
    if other.row is not None:
        return (f"rename one of the two ids in the id column (this row's, or the one in "
                f"{where}), so that both excerpts are read")
    return (f"rename this row's id in the table's id column (or give {other.path} another "
            "doc_id in the manifest), so that both are read")


def _table_clash(pairs: list[tuple[Document, Document]]) -> Skipped:
    """One report for the rows of a table whose ids other files use (table row, kept)."""
    pairs = sorted(pairs, key=lambda pair: pair[0].row or 0)
    table = pairs[0][0].path
    ids = [doc.doc_id for doc, _ in pairs]
    shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
    others = list(dict.fromkeys(other.path for _, other in pairs))
    used_by = ", ".join(others[:-1]) + " and " + others[-1] if len(others) > 1 else others[0]
    rows = _ranges([doc.row or 0 for doc, _ in pairs])
    return Skipped(table, f"rows {rows} (ids {shown}) have doc_ids already used by {used_by} "
                   "— give this table's excerpts their own ids (e.g. prefix them: "
                   f"{PurePosixPath(table).stem}-{ids[0]}), so that they are read",
                   pairs[0][0].row)


def _ranges(numbers: list[int]) -> str:
    """Sorted numbers as runs: ``2–4, 7``."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def ingest_corpus(
    corpus: str | Path, interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS
) -> IngestResult:
    """Read a whole corpus folder in one go (the flow does the same in batches)."""
    corpus = Path(corpus)
    manifest = load_manifest(corpus)
    paths, skipped = discover_files(corpus)
    result = ingest_files(corpus, paths, manifest, interviewer_labels)
    copies = find_copies(sorted(result.documents, key=lambda d: d.path))  # rows as read
    result.documents, duplicates = drop_duplicate_ids(
        [d for d in result.documents if d.path not in copies])
    unmatched = unmatched_doc_ids(manifest, result.documents)
    result.skipped = [*manifest.problems, *unmatched, *skipped,
                      *(s for s in result.skipped if s.path not in copies),
                      *copies.values(), *duplicates]
    result.files = [replace(f, documents=0) if f.path in copies else f for f in result.files]
    return result
