"""Turn a file's bytes into text, or say exactly why that cannot be done safely."""

from __future__ import annotations

import codecs
import collections
import re
import unicodedata
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
# Text in another 8-bit encoding read as Windows-1252 (see ``_foreign_encoding``): runs of
# three or more upper-half letters (Cyrillic, Greek, Arabic, Hebrew: "Ïðèâåò"), a symbol
# between two letters (Polish, Czech in ISO-8859-2: "by³o"; Catalan's "l·l", dashes and
# an acute accent typed for an apostrophe, "don´t", are left alone), and a capital right
# after a small letter (Mac Roman: "donÕt", "fŸr").
_SMALL = "a-z\u00b5\u00df-\u00f6\u00f8-\u00ff\u0153\u0161\u017e\u0192"
_FOREIGN_RUN = re.compile("[\u00c0-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e]{3,}")
_FOREIGN_SYMBOL = re.compile(
    "(?<=[^\\W\\d_])[\u00a1-\u00a7\u00a9\u00ab-\u00b3\u00b6\u00b8\u00b9\u00bb-\u00bf"
    "\u2020\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122](?=[^\\W\\d_])")
_FOREIGN_CAPITAL = re.compile(
    f"(?<=[{_SMALL}])[\u00c0-\u00d6\u00d8-\u00de\u0152\u0160\u0178\u017d]")
_NON_ASCII_WORD = re.compile(r"\S*[^\x00-\x7f]\S*")
_FOREIGN_SHARE = 0.1  # of the words with a non-ASCII character
_FOREIGN_KINDS = {
    "run": "Cyrillic, Greek, Arabic or Hebrew?",
    "symbol": "Central European, such as Polish or Czech?",
    "capital": "Mac Roman, from an old Mac?",
}
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
# Text formats that are not plain text, by how they open (after a byte-order mark, white
# space and an XML declaration, in any case), and how to get the text out of them. Only
# the opening counts: Markdown with some inline HTML is text.
RTF = "an RTF document"
HTML = "a web page (HTML)"
_MARKUP_FIXES = {
    RTF: "open it in Word and save it as .docx, or save it as plain text (.txt)",
    HTML: "save the page's text as .txt",
}
_MARKUP = re.compile(
    r"\s*(?:<\?xml[^>]*\?>\s*)?(?:(?P<rtf>\{\\rtf)|<!doctype\s+html|<html(?:[\s>]|$))",
    re.IGNORECASE,
)
_MARKUP_HEAD = 1024  # bytes looked at
_UNIT = {"utf-8": 1, "utf-16": 2, "utf-32": 4}  # bytes per code unit
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word/Excel 97-2003, encrypted Office
ENCRYPTED_OFFICE = "EncryptedPackage".encode("utf-16-le")  # an OLE stream's name
# BOM-less UTF-16/32 in any script (Arabic or Chinese text has zero bytes only in its
# spaces, line breaks and ASCII): taken when it decodes to what ordinary text is made of,
# letters, marks, digits, punctuation and spaces (``_WIDE_SHARE`` of it, and at least one
# space or line break), with no control character but line breaks and tabs. The invisible
# marks of ordinary text (Persian's zero-width non-joiner, direction marks) count as text.
_WIDE = (("utf-16-le", 2), ("utf-16-be", 2), ("utf-32-le", 4), ("utf-32-be", 4))
_WIDE_SHARE = 0.95
_WIDE_MIN_CHARS = 16  # fewer say too little (random bytes pass now and then)
_WIDE_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_TEXT_FORMAT = frozenset("\t\n\r\x0b\x0c\x85\u00ad\u061c\u200b\u200c\u200d\u200e\u200f\ufeff")
_NARROW_CONTROL = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WIDE_HINT = (" (if it is text saved as UTF-16/UTF-32 without a byte-order mark, re-save it "
              "as UTF-8)")
# A surrogate: in decoded UTF-16, half of a pair without the other (a damaged file: an
# invalid code unit, decoded as is, "surrogatepass", so that the rest can be read).
SURROGATE = re.compile("[\ud800-\udfff]")
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
    invalid: int = 0  # invalid UTF-16 code units (unpaired surrogates) replaced with U+FFFD
    invalid_line: int | None = None

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
        if self.invalid:
            what = ("an invalid UTF-16 code unit (half of a character) on this line; it was"
                    if self.invalid == 1 else
                    f"{self.invalid} invalid UTF-16 code units (halves of characters), the "
                    "first on this line; they were")
            notes.append((self.invalid_line, (
                f"held {what} replaced with '\ufffd' and the rest of the file was read — if "
                "the text there looks damaged, export the file again as UTF-8 text")))
        if self.padding:
            notes.append((self.padding_line, (
                f"ended in {self.padding} NUL bytes (left by an interrupted copy or a crashed "
                "editor), which were removed — check that the end of the text is complete")))
        return notes


class DecodeError(ValueError):
    """The bytes are not text we can decode without garbling it (``binary``: they look like
    binary data)."""

    def __init__(self, reason: str, line: int | None = None, binary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.binary = binary


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _utf16_order(data: bytes) -> str | None:
    """The byte order of BOM-less UTF-16 (``utf-16-le`` or ``utf-16-be``), from where the
    zero bytes of ASCII characters fall: in the high byte of at least half of the code
    units, and in their low byte in a quarter as many or fewer (a damaged or unusual
    character); None if they do not tell."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    for zeros, other, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros >= len(data) // 4 and 4 * other <= zeros:
            return encoding
    return None


def _errors(encoding: str) -> str:
    """How to decode: UTF-16 keeps an unpaired surrogate (``_checked`` replaces it)."""
    return "surrogatepass" if encoding.startswith("utf-16") else "strict"


def _sprinkled(data: bytes) -> bool:
    """Whether ``data`` less its NUL bytes is plain UTF-8 text (mostly not line breaks or
    tabs, which Gurmukhi or Bengali in UTF-16 leave): text with NUL bytes in it, which
    read as UTF-16 would look like Chinese."""
    rest = data.replace(b"\x00", b"")
    if _NARROW_CONTROL.search(rest):
        return False
    try:
        text = rest.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.count("\n") + text.count("\t") + text.count("\r") <= 0.25 * len(text)


def _text_characters(text: str) -> int:
    """How many characters of ``text`` ordinary text is made of; 0 without a space or line
    break."""
    counts = collections.Counter(text)
    if not any(char.isspace() for char in counts):
        return 0
    return sum(n for char, n in counts.items()
               if unicodedata.category(char)[0] in "LMNPZ" or char in _TEXT_FORMAT)


def _wide_text(data: bytes) -> tuple[str, str, int] | None:
    """``(text, encoding, padding)`` of BOM-less UTF-16/UTF-32 in any script, if ``data``
    decodes to ordinary text (see ``_WIDE``) in one of them: the one with the most
    characters of text; None for binary data."""
    # Text with NUL bytes in it reads as UTF-16 "Chinese". UTF-32 of Latin text looks like
    # such text too, but nothing else decodes as valid UTF-32.
    sprinkled = _sprinkled(data)
    best: tuple[int, str, str, int] | None = None
    for encoding, unit in _WIDE:
        body, padding = _unpadded(data, unit)
        if (unit == 2 and sprinkled) or len(body) % unit or len(body) < _WIDE_MIN_CHARS * unit:
            continue
        try:
            text = body.decode(encoding, _errors(encoding))  # UTF-32 past U+10FFFF fails
        except UnicodeDecodeError:
            continue
        if _WIDE_CONTROL.search(text):
            continue
        good = _text_characters(text)
        if good >= _WIDE_SHARE * len(text) and (best is None or good > best[0]):
            best = (good, text, encoding, padding)
    return best[1:] if best else None


def decode_bytes(data: bytes, lines: bool = False) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)`` (see :func:`decode`; a few stray
    control characters are removed without a word: use :func:`decode` to report them)."""
    decoded = decode(data, lines)
    return decoded.text, decoded.encoding


def decode(data: bytes, lines: bool = False) -> Decoded:
    """Decode ``data``; with ``lines``, every line break as ``\n`` and no byte-order mark
    inside the text (:func:`text_lines`).

    Accepts UTF-8 (with or without BOM), UTF-16/32 with a BOM, BOM-less UTF-16/32 and
    Windows-1252. NUL bytes padding the end and a few stray control characters (under
    ``STRAY_SHARE`` of the text) are removed, a few invalid UTF-16 code units replaced
    with U+FFFD, and the result says so. Raises
    :class:`DecodeError` for other kinds of file (named when known: a PNG image ...),
    binary data, undecodable bytes, files that mix UTF-8 with a legacy encoding and files
    that read like another 8-bit encoding (Cyrillic, Arabic ...) as Windows-1252, rather
    than returning garbled text.
    """
    kind = file_kind(data)
    if kind in _MARKUP_FIXES:
        raise DecodeError(f"is {kind}, not plain text — {_MARKUP_FIXES[kind]}")
    if kind:
        raise DecodeError(f"is {kind}, not text — put the text itself here (exported as "
                          "UTF-8 text), or give the file its real extension")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            body, padding = _unpadded(data[len(bom) :], _UNIT[encoding[:6]])
            try:
                text = body.decode(encoding, _errors(encoding))
                return _padded(_checked(text, encoding, lines), padding)
            except UnicodeDecodeError as err:
                raise DecodeError(
                    f"starts with a {encoding} byte-order mark but is not valid {encoding} "
                    "— re-save it as UTF-8",
                ) from err
    if b"\x00" not in data:
        return _narrow(data, 0, lines)
    if not data.strip(b"\x00 \t\r\n"):
        raise DecodeError("holds only NUL bytes, no text (the file was not saved or "
                          "copied completely) — get a good copy of the file")
    units, padding = _unpadded(data, 2)
    order = _utf16_order(units)
    try:
        if order is not None:
            text = units.decode(order, "surrogatepass")
            return _padded(_checked(text, "utf-16", lines), padding)
        core = data.rstrip(b"\x00")
        return _narrow(core, len(data) - len(core), lines)
    except DecodeError as err:
        if order is not None and not err.binary:
            raise  # UTF-16 by its zero bytes, only damaged: never read in the other order
        # Only when nothing else reads the file: UTF-16/32 without a BOM in a script whose
        # text has few zero bytes (Arabic, Chinese ...), or UTF-32.
        wide = _wide_text(data)
        if wide is not None:
            text, encoding, padding = wide
            return _padded(_checked(text, encoding, lines), padding)
        if err.binary:
            raise DecodeError(err.reason + _WIDE_HINT, err.line, binary=True) from err
        raise


def _narrow(data: bytes, padding: int, lines: bool) -> Decoded:
    """``data`` (without NUL padding: ``padding`` bytes of it) as UTF-8 or Windows-1252."""
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
        if _UTF8_SEQUENCE.search(data):  # UTF-8 characters (the byte is in one) and others
            raise _mixed(data, utf8_error) from err
        raise DecodeError(
            "is neither UTF-8 nor Windows-1252 text (byte "
            f"0x{data[err.start]:02x} cannot be decoded) — re-save it as UTF-8",
            _line_of(data, err.start),
        ) from err
    mojibake = _MOJIBAKE.search(text) or _utf8_characters(data, text)
    if mojibake:
        raise _mixed(data, utf8_error)
    foreign = _foreign_encoding(text)
    if foreign:
        kind, offset = foreign
        raise DecodeError(
            f"looks like text in another encoding ({_FOREIGN_KINDS[kind]}) read as "
            "Windows-1252, which would garble it (the first garbled word is on this line) — "
            "open it in the program that wrote it and save it as UTF-8",
            text.count("\n", 0, offset) + 1,
        )
    return _padded(_checked(text, "cp1252", lines), padding)


def _mixed(data: bytes, utf8_error: UnicodeDecodeError) -> DecodeError:
    """The error of a file that mixes UTF-8 with another encoding, at the line of its first
    byte that is not UTF-8 (text pasted in from elsewhere), where an editor shows it."""
    line = _line_of(data, utf8_error.start)
    return DecodeError(f"mixes UTF-8 with another encoding (first invalid UTF-8 byte at line "
                       f"{line}) — re-save the whole file as UTF-8", line)


def _foreign_encoding(text: str) -> tuple[str, int] | None:
    """``(kind, offset of the first sign)`` if ``text`` (a file read as Windows-1252) reads
    like text in another 8-bit encoding: marks of garbling (see ``_FOREIGN_RUN``) in at
    least two places, in ``_FOREIGN_SHARE`` of its words with non-ASCII characters or more
    (a run of five letters or more counts twice); else None. French, Spanish or German
    text in Windows-1252 has none or one."""
    marks: list[tuple[int, int, str]] = [
        (m.start(), 2 if len(m.group()) >= 5 else 1, "run") for m in _FOREIGN_RUN.finditer(text)]
    marks += [(m.start(), 1, "symbol") for m in _FOREIGN_SYMBOL.finditer(text)]
    marks += [(m.start(), 1, "capital") for m in _FOREIGN_CAPITAL.finditer(text)]
    weight = sum(w for _, w, _ in marks)
    if weight < 2 or weight < _FOREIGN_SHARE * len(_NON_ASCII_WORD.findall(text)):
        return None
    counts: collections.Counter[str] = collections.Counter()
    for _, w, kind in marks:
        counts[kind] += w
    return counts.most_common(1)[0][0], min(offset for offset, _, _ in marks)


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
    return _markup_kind(data)


def _markup_kind(data: bytes) -> str | None:
    """``RTF`` or ``HTML`` for a file that opens like one (in any of the encodings with a
    byte-order mark, or an ASCII-compatible one), else None."""
    head = data[:_MARKUP_HEAD]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            opening = head[len(bom) :].decode(encoding, "ignore")
            break
    else:
        opening = head.decode("latin-1")
    match = _MARKUP.match(opening)
    if not match:
        return None
    return RTF if match["rtf"] else HTML


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
    invalid, invalid_line = 0, None
    lone = SURROGATE.search(text) if encoding.startswith("utf-16") else None
    if lone is not None:
        invalid_line = text.count("\n", 0, lone.start()) + 1
        text, invalid = SURROGATE.subn("\ufffd", text)
        if invalid > max(2, len(text) * STRAY_SHARE):
            raise DecodeError(
                f"holds {invalid} invalid UTF-16 code units (halves of characters; the first "
                "on this line), too many for a damaged character or two — the file may be "
                "damaged: open it in a text editor, check it and save it again as UTF-8 text",
                invalid_line,
            )
    if _CONTROL.search(text) is None:  # (faster than _STRAY's search)
        return Decoded(text, encoding, invalid=invalid, invalid_line=invalid_line)
    first = _STRAY.search(text)
    stray = _STRAY.findall(text)
    count = len(stray)
    line = text.count("\n", 0, first.start()) + 1
    if count > max(2, len(text) * STRAY_SHARE):
        controls = len(_CONTROL.findall(text))
        if controls >= len(text) * _BINARY_SHARE:
            raise DecodeError(
                f"looks like a binary file, not text ({controls} control characters) — "
                "export it as UTF-8 text or give it its real extension", binary=True,
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
    return Decoded(_STRAY.sub("", text), encoding, count, line, named,
                   invalid=invalid, invalid_line=invalid_line)
