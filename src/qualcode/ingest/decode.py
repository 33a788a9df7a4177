"""Turn a file's bytes into text, or say exactly why that cannot be done safely."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# UTF-8 read as Windows-1252 leaves these tell-tale pairs behind (e.g. "â€”" for "—").
_MOJIBAKE = re.compile("[ÂÃâ][\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]")
# A well-formed multi-byte UTF-8 sequence (no overlong forms, surrogates or code points past
# U+10FFFF): Arabic, Cyrillic ... in a file that is not valid UTF-8 as a whole, unless it is
# only Windows-1252 text that looks like one (see ``_utf8_characters``).
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# What is taken out of text with a few stray control characters: a terminal's colour and
# cursor codes (``\x1b[1m``) whole, other control characters one by one.
_STRAY = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b\x0e-\x1f\x7f]")
STRAY_SHARE = 0.01  # more stray control characters than this share: not taken for text
_BINARY_SHARE = 0.05  # this share or more: a binary file (random bytes hold 11%)
# Files of other kinds, by their first bytes: what to call them.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a program (ELF), not a document"),
)
_UNIT = {"utf-8": 1, "utf-16": 2, "utf-32": 4}  # bytes per code unit
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word/Excel 97-2003, encrypted Office
ENCRYPTED_OFFICE = "EncryptedPackage".encode("utf-16-le")  # an OLE stream's name
# Line and page breaks other than \n (Word's Shift+Enter is \x0b, a page break \x0c; text
# copied from Word or a PDF may hold U+2028/U+2029/U+0085) and byte-order marks inside the
# text (two exports pasted together): to \n, or left out.
_BREAKS = ("\x0b", "\x0c", "\u2028", "\u2029", "\x85")


def text_lines(text: str) -> str:
    """``text`` with every line break as ``\n`` and no byte-order mark inside it.

    Segment offsets index the text returned here (it is what a document holds), so
    changing it before anything else looks at it is safe."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for brk in _BREAKS:
        if brk in text:
            text = text.replace(brk, "\n")
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
    return text


@dataclass(slots=True)
class Decoded:
    """Decoded text and what had to be taken out of it to read it."""

    text: str
    encoding: str
    stray: int = 0  # stray control characters (or terminal codes) removed
    stray_line: int | None = None  # the line of the first one
    stray_kinds: tuple[str, ...] = ()  # what they were, in words
    padding: int = 0  # NUL bytes removed from the end of the file
    padding_line: int | None = None

    def notes(self) -> list[tuple[int | None, str]]:
        """What was removed, as ``(line, reason)``: the file itself was read."""
        notes = []
        if self.stray:
            kinds = " and ".join(self.stray_kinds)
            what = (f"a stray invisible character ({kinds}) on this line; it was"
                    if self.stray == 1 else
                    f"{self.stray} stray invisible characters ({kinds}), the first on this "
                    "line; they were")
            notes.append((self.stray_line, (
                f"held {what} removed and the rest of the file was read — if the text "
                "there looks damaged, export the file again as UTF-8 text")))
        if self.padding:
            notes.append((self.padding_line, (
                f"ended in {self.padding} NUL bytes (left by an interrupted copy or a crashed "
                "editor), which were removed — check that the end of the text is complete")))
        return notes


class DecodeError(ValueError):
    """The bytes are not text we can decode without garbling it."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _utf16_without_bom(data: bytes) -> str | None:
    """Guess BOM-less UTF-16 from the zero bytes of ASCII characters."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    for zeros, encoding in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def decode_bytes(data: bytes, lines: bool = False) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)`` (see :func:`decode`; a few stray
    control characters are removed without a word: use :func:`decode` to report them)."""
    decoded = decode(data, lines)
    return decoded.text, decoded.encoding


def decode(data: bytes, lines: bool = False) -> Decoded:
    """Decode ``data``; with ``lines``, every line break as ``\n`` and no byte-order mark
    inside the text (:func:`text_lines`).

    Accepts UTF-8 (with or without BOM), UTF-16/32 with a BOM, BOM-less UTF-16 and
    Windows-1252. NUL bytes padding the end and a few stray control characters (under
    ``STRAY_SHARE`` of the text) are removed, and the result says so. Raises
    :class:`DecodeError` for other kinds of file (named when known: a PNG image ...),
    binary data, undecodable bytes and files that mix UTF-8 with a legacy encoding,
    rather than returning garbled text.
    """
    kind = file_kind(data)
    if kind:
        raise DecodeError(f"is {kind}, not text — put the text itself here (exported as "
                          "UTF-8 text), or give the file its real extension")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body, padding = _unpadded(data[len(bom) :], _UNIT[encoding[:6]])
            try:
                return _padded(_checked(body.decode(encoding), encoding, lines), padding)
            except UnicodeDecodeError as err:
                raise DecodeError(
                    f"starts with a {encoding} byte-order mark but is not valid {encoding} "
                    "— re-save it as UTF-8",
                ) from err
    padding = 0
    if b"\x00" in data:
        if not data.strip(b"\x00 \t\r\n"):
            raise DecodeError("holds only NUL bytes, no text (the file was not saved or "
                              "copied completely) — get a good copy of the file")
        units, padding = _unpadded(data, 2)
        text = _utf16_without_bom(units)
        if text is not None:
            return _padded(_checked(text, "utf-16", lines), padding)
        core = data.rstrip(b"\x00")
        padding, data = len(data) - len(core), core
    try:
        decoded = _checked(data.decode("utf-8"), "utf-8", lines)
    except UnicodeDecodeError as err:
        utf8_error = err
    else:
        return _padded(decoded, padding)
    # Binary data is rarely valid UTF-8: tell it from text in a legacy encoding before
    # naming an encoding problem (latin-1 maps each byte to one character).
    _checked(data.decode("latin-1"), "latin-1", lines)
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as err:
        raise DecodeError(
            "is neither UTF-8 nor Windows-1252 text (byte "
            f"0x{data[err.start]:02x} cannot be decoded) — re-save it as UTF-8",
            _line_of(data, err.start),
        ) from err
    mojibake = _MOJIBAKE.search(text) or _utf8_characters(data, text)
    if mojibake:
        raise DecodeError(
            "mixes UTF-8 with another encoding (first invalid UTF-8 byte at line "
            f"{_line_of(data, utf8_error.start)}) — re-save the whole file as UTF-8",
            _line_of(data, utf8_error.start),
        )
    return _padded(_checked(text, "cp1252", lines), padding)


def _unpadded(data: bytes, unit: int) -> tuple[bytes, int]:
    """``data`` without the NUL bytes padding its end, in whole code units of ``unit``
    bytes (UTF-16 text ends in a NUL byte), and how many bytes were removed."""
    end = len(data.rstrip(b"\x00"))
    end = min(end + -end % unit, len(data))
    return data[:end], len(data) - end


def _padded(decoded: Decoded, padding: int) -> Decoded:
    if padding:
        decoded.padding = padding
        decoded.padding_line = decoded.text.count("\n") + 1
    return decoded


def file_kind(data: bytes) -> str | None:
    """What a file that is no text holds, by its first bytes (``a PNG image``), if known."""
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data.startswith(_ZIP_MAGIC):
        head = data[:65536]
        for part, kind in ((b"word/", "a Word document (.docx)"),
                           (b"xl/", "an Excel workbook (.xlsx)"),
                           (b"ppt/", "a PowerPoint presentation (.pptx)")):
            if part in head:
                return kind
        return "a zip archive"
    if data.startswith(_OLE_MAGIC):
        if ENCRYPTED_OFFICE in data:
            return "a password-protected Office file"
        return "an old-style Office file (.doc, .xls or .ppt)"
    if data[4:8] == b"ftyp":
        return "a video or audio file (MP4/M4A)"
    if data.startswith(b"RIFF") and data[8:12] in (b"WAVE", b"AVI "):
        return "a WAV audio file" if data[8:12] == b"WAVE" else "an AVI video"
    return None


def _utf8_characters(data: bytes, text: str) -> bool:
    """Whether ``data`` (read as Windows-1252: ``text``) holds UTF-8 encoded characters.

    An accented letter before typographic punctuation can form a well-formed UTF-8 sequence
    (``“CAFÉ”`` holds ``C9 94``, UTF-8 for ``ɔ``). Such a lone look-alike is not taken for
    UTF-8; two sequences in a row (a word of Arabic or Cyrillic) or any other one is.
    """
    end = -1
    for match in _UTF8_SEQUENCE.finditer(data):
        if match.start() == end or not _cp1252_lookalike(text, match.start(), match.end()):
            return True
        end = match.end()
    return False


def _cp1252_lookalike(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` reads as Windows-1252 text: a letter followed by
    punctuation or symbols only (``É”``, ``é…”``, ``ß“``), a capital one not right after a
    lower-case letter (``Wrocław`` in UTF-8 reads ``WrocÅ‚aw``)."""
    if any(char.isalpha() for char in text[start + 1 : end]):
        return False
    return not (text[start].isupper() and start and text[start - 1].islower())


def _checked(text: str, encoding: str, lines: bool) -> Decoded:
    """``text`` as decoded; a few stray control characters are removed (and counted), more
    make it no text (:class:`DecodeError`)."""
    if lines:
        text = text_lines(text)
    elif "\x0b" in text:  # Word's line break, in a table cell: a space
        text = text.replace("\x0b", " ")
    if _CONTROL.search(text) is None:  # (faster than _STRAY's search)
        return Decoded(text, encoding)
    first = _STRAY.search(text)
    stray = _STRAY.findall(text)
    count = len(stray)
    line = text.count("\n", 0, first.start()) + 1
    if count > max(2, len(text) * STRAY_SHARE):
        controls = len(_CONTROL.findall(text))
        if controls >= len(text) * _BINARY_SHARE:
            raise DecodeError(
                f"looks like a binary file, not text ({controls} control characters) — "
                "export it as UTF-8 text or give it its real extension"
            )
        raise DecodeError(
            f"holds {controls} invisible control characters ({controls / len(text):.1%} of "
            "the text; the first on this line), too many to be stray ones — the file may "
            "be damaged: open it in a text editor, check it and save it again as UTF-8 text",
            line,
        )
    kinds = {"NUL byte" if c == "\x00" else "terminal colour code" if len(c) > 1 else
             "control character" for c in stray}
    plural = "s" if count > 1 else ""
    named = tuple(k + plural for k in ("NUL byte", "control character", "terminal colour code")
                  if k in kinds)
    return Decoded(_STRAY.sub("", text), encoding, count, line, named)
