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
# Any well-formed multi-byte UTF-8 sequence (Arabic, Cyrillic ... not only Latin-1 letters)
# in a file that is not valid UTF-8 as a whole means UTF-8 mixed with a legacy encoding.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
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
    mojibake = _MOJIBAKE.search(text) or _UTF8_SEQUENCE.search(data)
    if mojibake:
        raise DecodeError(
            "mixes UTF-8 with another encoding (first invalid UTF-8 byte at line "
            f"{_line_of(data, utf8_error.start)}) — re-save the whole file as UTF-8",
            _line_of(data, utf8_error.start),
        )
    return _checked(text), "cp1252"


def _checked(text: str) -> str:
    controls = len(_CONTROL.findall(text))
    if controls and controls > max(2, len(text) // 1000):
        raise DecodeError(
            f"looks like a binary file, not text ({controls} control characters) — export "
            "it as UTF-8 text or give it its real extension"
        )
    return text
