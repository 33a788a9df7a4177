"""Word and Excel files as the zip archives they are, for the .docx and .xlsx readers:
why one cannot be read, in plain words with the fix (no Office file at all, an old
.doc/.xls, password-protected, macro-enabled, a template, missing or broken parts), and a
file in Strict Open XML rewritten with the usual namespaces, so that it reads as any
other."""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
import zlib

from .decode import ENCRYPTED_OFFICE
from .readers import ReadError, _content_hint

# What an Office file's zip holds (its main part), to say what a misnamed one really is.
_OFFICE_PARTS = {
    "docx": ("word/document.xml", "a", "Word document", "Word or LibreOffice Writer"),
    "xlsx": ("xl/workbook.xml", "an", "Excel workbook", "Excel or LibreOffice Calc"),
    "pptx": ("ppt/presentation.xml", "a", "PowerPoint presentation", "PowerPoint"),
}
_OLD_OFFICE = {"docx": ".doc", "xlsx": ".xls"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word/Excel 97-2003 (.doc, .xls)


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
