"""Turn a file's bytes into text, or say exactly why that cannot be done safely."""

from __future__ import annotations

import codecs
import re

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


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``.

    Accepts UTF-8 (with or without BOM), UTF-16/32 with a BOM, BOM-less UTF-16 and
    Windows-1252. Raises :class:`DecodeError` for binary data, undecodable bytes and
    files that mix UTF-8 with a legacy encoding, rather than returning garbled text.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data[len(bom) :].decode(encoding)), encoding
            except UnicodeDecodeError as err:
                raise DecodeError(
                    f"starts with a {encoding} byte-order mark but is not valid {encoding} "
                    "— re-save it as UTF-8",
                ) from err
    if b"\x00" in data:
        text = _utf16_without_bom(data)
        if text is not None:
            return _checked(text), "utf-16"
        raise DecodeError(
            "looks like a binary file, not text (it contains NUL bytes) — export it as "
            "UTF-8 text or give it its real extension"
        )
    try:
        return _checked(data.decode("utf-8")), "utf-8"
    except UnicodeDecodeError as err:
        utf8_error = err
    # Binary data is rarely valid UTF-8: tell it from text in a legacy encoding before
    # naming an encoding problem (latin-1 maps each byte to one character).
    _checked(data.decode("latin-1"))
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
    return _checked(text), "cp1252"


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


def _checked(text: str) -> str:
    controls = len(_CONTROL.findall(text))
    if controls and controls > max(2, len(text) // 1000):
        raise DecodeError(
            f"looks like a binary file, not text ({controls} control characters) — export "
            "it as UTF-8 text or give it its real extension"
        )
    return text
