"""Text encodings: every supported encoding decodes exactly; anything else raises, never garbles."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import pytest

from qualcode.ingest import ingest_corpus
from qualcode.ingest.decode import DecodeError, decode_bytes

TEXT = "Interviewer: Was it “safe”?\nRespondent: Café — yes, the road to Ta‘izz was open.\n"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _decode_file(path: Path) -> tuple[str, str]:
    return decode_bytes(path.read_bytes())


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16-le"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-16"), "utf-16-le"),  # Python writes a BOM in native (LE) order
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16-python"],
)
def test_unicode_files_decode_exactly(tmp_path: Path, data: bytes, encoding: str) -> None:
    text, used = _decode_file(_write(tmp_path, "t.txt", data))
    assert text == TEXT  # the BOM is gone, every character intact
    assert used == encoding


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_recognised(tmp_path: Path, codec: str) -> None:
    text, used = _decode_file(_write(tmp_path, "t.txt", TEXT.encode(codec)))
    assert text == TEXT
    assert used == "utf-16"


def test_windows_1252_decodes_curly_quotes_accents_and_dashes(tmp_path: Path) -> None:
    legacy = "Respondent: “We met the café owner — twice,” she said. It’s 50 €.\n"
    text, used = _decode_file(_write(tmp_path, "t.txt", legacy.encode("cp1252")))
    assert text == legacy
    assert used == "cp1252"


def test_bytes_invalid_in_utf8_and_cp1252_raise_with_line(tmp_path: Path) -> None:
    data = b"Interviewer: first line\nRespondent: bad \x81 and \x8d bytes\n"
    with pytest.raises(DecodeError) as info:
        _decode_file(_write(tmp_path, "t.txt", data))
    assert "neither UTF-8 nor Windows-1252" in info.value.reason
    assert "0x81" in info.value.reason
    assert "re-save it as UTF-8" in info.value.reason
    assert info.value.line == 2


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 8, b"\x01\x02\x03\x7f" * 300 + b"\x00" * 500],
    ids=["all-bytes", "controls-and-nul-padding"],
)
def test_binary_data_raises(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        _decode_file(_write(tmp_path, "image.txt", data))
    assert "binary file" in info.value.reason
    assert "export it as UTF-8 text" in info.value.reason


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64) + b"IHDR" + bytes(range(40)), "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)), "a JPEG image"),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n", "a PDF"),
        (b"\x7fELF\x02\x01\x01" + bytes(300), "a program (ELF), not a document"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
         "an old-style Office file (.doc, .xls or .ppt)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600) + "EncryptedPackage".encode("utf-16-le"),
         "a password-protected Office file"),
    ],
    ids=["png", "jpeg", "pdf", "elf", "ole", "encrypted-office"],
)
def test_known_kinds_of_file_are_named(tmp_path: Path, data: bytes, kind: str) -> None:
    with pytest.raises(DecodeError) as info:
        _decode_file(_write(tmp_path, "interview.txt", data))
    assert info.value.reason == (f"is {kind}, not text — put the text itself here (exported "
                                 "as UTF-8 text), or give the file its real extension")


@pytest.mark.parametrize(("member", "kind"), [("a.bin", "a zip archive"),
                                              ("word/document.xml", "a Word document (.docx)")])
def test_zip_archive_named_txt_raises(tmp_path: Path, member: str, kind: str) -> None:
    archive = tmp_path / "archive.txt"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, bytes(range(256)) * 20)
    with pytest.raises(DecodeError) as info:
        _decode_file(archive)
    assert info.value.reason.startswith(f"is {kind}, not text")


@pytest.mark.parametrize(
    ("utf8_part", "legacy_part"),
    [
        ("Respondent: the café was open.\n", "Interviewer: and the “checkpoint”?\n"),
        ("Respondent: the road — closed.\n", "Interviewer: why — the rain?\n"),
        # UTF-8 Arabic names next to Windows-1252 quotes: no Latin-1 mojibake to spot.
        ("Respondent: the sheikh of صنعاء agreed.\n", "Interviewer: he said “yes”?\n"),
        ("Respondent: in Мариуполь too.\n", "Interviewer: “really”?\n"),
    ],
    ids=["latin", "dash", "arabic", "cyrillic"],
)
def test_file_mixing_utf8_and_cp1252_raises(
    tmp_path: Path, utf8_part: str, legacy_part: str
) -> None:
    data = utf8_part.encode("utf-8") + legacy_part.encode("cp1252")
    with pytest.raises(DecodeError) as info:
        _decode_file(_write(tmp_path, "mixed.txt", data))
    assert "mixes UTF-8 with another encoding" in info.value.reason
    assert "re-save the whole file as UTF-8" in info.value.reason
    assert info.value.line == 2


def test_utf8_text_without_accents_is_plain_ascii_safe(tmp_path: Path) -> None:
    text, used = _decode_file(_write(tmp_path, "t.txt", b"plain ascii\n"))
    assert (text, used) == ("plain ascii\n", "utf-8")


def test_crlf_is_kept_by_decode_and_normalised_by_ingestion(tmp_path: Path) -> None:
    body = "Interviewer: Hello.\r\nRespondent: Café — fine.\r\n\r\nInterviewer: Thanks.\r\n"
    text, _ = decode_bytes(body.encode("utf-8"))
    assert text == body
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "crlf.txt").write_bytes(body.encode("cp1252"))
    (corpus / "cr.txt").write_bytes(body.replace("\r\n", "\r").encode("utf-8"))
    result = ingest_corpus(corpus)
    assert result.skipped == []
    for doc in result.documents:
        assert "\r" not in doc.text
        assert doc.text.startswith("Interviewer: Hello.\nRespondent: Café — fine.\n\n")


def test_undecodable_and_binary_txt_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "legacy.txt").write_bytes(b"Respondent: \x81\x8d\n")
    (corpus / "mixed.txt").write_bytes("café\n".encode() + "“x”\n".encode("cp1252"))
    (corpus / "good.txt").write_bytes(codecs.BOM_UTF16_LE + "Some prose.\n".encode("utf-16-le"))
    result = ingest_corpus(corpus)
    assert [d.path for d in result.documents] == ["good.txt"]
    assert result.documents[0].text == "Some prose.\n"
    reasons = {s.path: s for s in result.skipped}
    assert set(reasons) == {"binary.txt", "legacy.txt", "mixed.txt"}
    assert "binary file" in reasons["binary.txt"].reason
    assert "0x81" in reasons["legacy.txt"].reason
    assert reasons["legacy.txt"].line == 1
    assert "mixes UTF-8" in reasons["mixed.txt"].reason
    assert reasons["mixed.txt"].line == 2
    assert str(reasons["mixed.txt"]).startswith("mixed.txt:2: ")


@pytest.mark.parametrize(
    "legacy",
    [
        "Respondent: the banner said “CAFÉ” and «CAFÉ», “L’ÉTÉ”, ESPAÑA’s.\n",
        "Respondent: „Gruß“ und „Spaß…“ — “É”.\n",
        "Respondent: “We went to the café…” — Ørsted’s «ÅR».\n",
    ],
    ids=["capitals-before-quotes", "eszett-before-quote", "accent-before-ellipsis"],
)
def test_windows_1252_that_looks_like_utf8_pairs_is_read_as_windows_1252(
    tmp_path: Path, legacy: str
) -> None:
    # "É”" is C9 94 in Windows-1252, a well-formed UTF-8 sequence (ɔ): not a mixed file.
    data = ("Interviewer: What did it say?\n\n" + legacy).encode("cp1252")
    assert _decode_file(_write(tmp_path, "t.txt", data)) == (
        "Interviewer: What did it say?\n\n" + legacy, "cp1252")


@pytest.mark.parametrize(
    "utf8_part",
    ["Respondent: in Wrocław.\n", "Respondent: 😀 yes.\n", "Respondent: 中文 notes.\n"],
    ids=["latin-extended", "emoji", "cjk-word"],
)
def test_utf8_characters_next_to_windows_1252_still_raise(tmp_path: Path, utf8_part: str) -> None:
    data = utf8_part.encode("utf-8") + "Interviewer: “really”?\n".encode("cp1252")
    with pytest.raises(DecodeError) as info:
        _decode_file(_write(tmp_path, "mixed.txt", data))
    assert info.value.reason == ("mixes UTF-8 with another encoding (first invalid UTF-8 "
                                 "byte at line 2) — re-save the whole file as UTF-8")
    assert info.value.line == 2


# --- stray control characters and NUL padding (audit 3) -----------------------------------

GOOD = "Interviewer: How did it go?\n\nRespondent: We met the commander twice.\n" * 20


def test_nul_padding_at_the_end_is_removed_and_reported() -> None:
    from qualcode.ingest.decode import decode

    decoded = decode(GOOD.encode() + b"\x00" * 512)
    assert (decoded.text, decoded.encoding, decoded.stray) == (GOOD, "utf-8", 0)
    assert decoded.notes() == [(61, "ended in 512 NUL bytes (left by an interrupted copy or a "
                                    "crashed editor), which were removed — check that the end "
                                    "of the text is complete")]


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-8-sig", "utf-16-le", "utf-16-be"])
def test_nul_padding_keeps_every_character_of_unicode_files(codec: str) -> None:
    from qualcode.ingest.decode import decode

    data = GOOD.encode(codec) + b"\x00" * 7  # utf-16/32 with a BOM, utf-16-le/be without
    decoded = decode(data)
    assert decoded.text == GOOD
    assert decoded.padding == 7
    assert decoded.stray == 0


def test_a_few_stray_nul_and_control_characters_are_removed_with_the_first_line() -> None:
    from qualcode.ingest.decode import decode

    data = GOOD.replace("commander", "comm\x00ander", 2).replace("go?", "go?\x1b[1m", 1)
    decoded = decode(data.encode())
    assert decoded.text == GOOD
    assert decoded.stray == 3
    assert decoded.notes() == [(1, "held 3 stray invisible characters (NUL bytes and terminal "
                                   "colour codes), the first on this line; they were removed "
                                   "and the rest of the file was read — if the text there "
                                   "looks damaged, export the file again as UTF-8 text")]


def test_word_line_breaks_are_line_breaks_in_transcripts_and_spaces_in_tables() -> None:
    from qualcode.ingest.decode import decode

    data = GOOD.replace("We met", "We\x0bmet", 5).encode()
    transcript = decode(data, lines=True)
    assert (transcript.text, transcript.stray) == (GOOD.replace("We met", "We\nmet", 5), 0)
    table = decode(data)
    assert (table.text, table.stray) == (GOOD, 0)


def test_more_control_characters_than_stray_ones_are_reported_not_removed() -> None:
    from qualcode.ingest.decode import decode

    with pytest.raises(DecodeError) as info:
        decode(GOOD.replace("twice", "tw\x01ice").encode())
    assert info.value.reason == (
        "holds 20 invisible control characters (1.4% of the text; the first on this line), "
        "too many to be stray ones — the file may be damaged: open it in a text editor, "
        "check it and save it again as UTF-8 text")
    assert info.value.line == 3


def test_a_file_of_nul_bytes_only_says_so() -> None:
    with pytest.raises(DecodeError) as info:
        decode_bytes(b"\x00" * 8192)
    assert info.value.reason == ("holds only NUL bytes, no text (the file was not saved or "
                                 "copied completely) — get a good copy of the file")


def test_stray_characters_are_reported_on_the_file_that_is_still_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "padded.txt").write_bytes(GOOD.encode() + b"\x00" * 300)
    (corpus / "nul.md").write_bytes(GOOD.replace("twice", "tw\x00ice", 1).encode())
    (corpus / "lit.csv").write_bytes(b"excerpt_id,text\nA-1,The road\x00 was open.\n")
    (corpus / "ok.txt").write_text(GOOD, encoding="utf-8")
    result = ingest_corpus(corpus)
    assert sorted(d.path for d in result.documents) == ["lit.csv", "nul.md", "ok.txt",
                                                        "padded.txt"]
    assert all("\x00" not in d.text for d in result.documents)
    assert [(s.path, s.line, s.reason.split(";")[0].split(",")[0]) for s in result.skipped] == [
        ("lit.csv", 2, "held a stray invisible character (NUL byte) on this line"),
        ("nul.md", 3, "held a stray invisible character (NUL byte) on this line"),
        ("padded.txt", 61, "ended in 300 NUL bytes (left by an interrupted copy or a "
                           "crashed editor)"),
    ]


def test_a_cut_utf16_file_is_not_taken_for_padding() -> None:
    from qualcode.ingest.decode import decode

    with pytest.raises(DecodeError) as info:
        decode(codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le")[:-1])
    assert info.value.reason.startswith("starts with a utf-16-le byte-order mark but is not")
    decoded = decode(codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le") + b"\x00")
    assert (decoded.text, decoded.padding) == (GOOD, 1)


# --- UTF-16/UTF-32 without a byte-order mark, any script (audit 3, P20) -------------------

ARABIC = "المحاور: كيف وصلتم إلى تعز؟\nالمستجيب: عبر الطرق الخلفية، بمساعدة الشيوخ.\n" * 5
CHINESE = "采访者：你们是怎么到达的？\n受访者：通过后面的道路，在长老的帮助下。一二三\n" * 5


@pytest.mark.parametrize("text", [ARABIC, CHINESE], ids=["arabic", "chinese"])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_non_latin_utf16_and_utf32_without_bom_read_back_exactly(
    tmp_path: Path, text: str, codec: str
) -> None:
    assert _decode_file(_write(tmp_path, "t.txt", text.encode(codec))) == (text, codec)


def test_latin_utf32_without_bom_reads_back_exactly() -> None:
    assert decode_bytes(TEXT.encode("utf-32-le")) == (TEXT, "utf-32-le")


def test_utf16_without_bom_is_read_into_a_transcript(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "aden.txt").write_bytes(ARABIC.encode("utf-16-le"))
    result = ingest_corpus(corpus)
    assert result.skipped == []
    assert [d.text for d in result.documents] == [ARABIC]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_with_an_invalid_code_unit_keeps_its_byte_order(
    tmp_path: Path, codec: str
) -> None:
    # one unpaired surrogate (half of a character) in line 3 of a BOM-less file: read in
    # the byte order its zero bytes tell, not in the other one as "Chinese"
    lines = ["Interviewer: How did you reach Taiz?", "Respondent: By the back roads.",
             "Interviewer: And the checkpoints?", "Respondent: We paid nobody."] * 3
    data = "\n".join(lines).encode(codec)
    cut = len("\n".join(lines[:2])) * 2 + 12  # inside line 3
    bad = "\ud800".encode(codec, "surrogatepass")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "taiz.txt").write_bytes(data[:cut] + bad + data[cut:])
    result = ingest_corpus(corpus)
    [doc] = result.documents
    assert doc.text.split("\n")[2] == "Inter\ufffdviewer: And the checkpoints?"
    assert doc.text.replace("\ufffd", "") == "\n".join(lines)
    assert [(s.path, s.line, s.note, s.reason) for s in result.skipped] == [(
        "taiz.txt", 3, True, "held an invalid UTF-16 code unit (half of a character) on this "
        "line; it was replaced with '\ufffd' and the rest of the file was read — if the text "
        "there looks damaged, export the file again as UTF-8 text")]


def test_utf16_with_many_invalid_code_units_is_skipped_not_read_in_the_other_order(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    damaged = "Interviewer: Where?\nRespondent: " + "Aden \ud800" * 10 + "\n"
    (corpus / "aden.txt").write_bytes(damaged.encode("utf-16-le", "surrogatepass"))
    # with a byte-order mark, one such unit is replaced and noted, as without one
    one = TEXT.replace("yes", "y\udc00s").encode("utf-16-le", "surrogatepass")
    (corpus / "bom.txt").write_bytes(codecs.BOM_UTF16_LE + one)
    result = ingest_corpus(corpus)
    assert [(d.path, d.text) for d in result.documents] == [
        ("bom.txt", TEXT.replace("yes", "y\ufffds"))]
    assert [(s.path, s.line, s.note, s.reason.split(",")[0]) for s in result.skipped] == [
        ("aden.txt", 2, False, "holds 10 invalid UTF-16 code units (halves of characters; the "
                               "first on this line)"),
        ("bom.txt", 2, True, "held an invalid UTF-16 code unit (half of a character) on this "
                             "line; it was replaced with '\ufffd' and the rest of the file was "
                             "read — if the text there looks damaged"),
    ]


def _with_nul_bytes(data: bytes) -> bytes:
    return bytes(0 if i % 37 == 0 else b for i, b in enumerate(data))


@pytest.mark.parametrize(
    "data",
    [
        _with_nul_bytes(bytes(range(256)) * 16),
        _with_nul_bytes(codecs.encode(ARABIC.encode(), "zlib") * 8),  # compressed data
        b"\x89PNG\r\n\x1a\n" + _with_nul_bytes(codecs.encode(CHINESE.encode(), "zlib")),
        # (and os.urandom in the next test)
    ],
    ids=["all-bytes", "zlib", "png"],
)
def test_binary_data_with_nul_bytes_is_still_binary(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_bytes(data)
    assert "binary file" in info.value.reason or "PNG image" in info.value.reason


def test_random_bytes_with_nul_bytes_are_binary_with_the_utf16_hint() -> None:
    import os

    for _ in range(20):
        with pytest.raises(DecodeError) as info:
            decode_bytes(_with_nul_bytes(os.urandom(4000)))
        assert info.value.reason.startswith("looks like a binary file, not text (")
        assert info.value.reason.endswith(
            "— export it as UTF-8 text or give it its real extension (if it is text saved "
            "as UTF-16/UTF-32 without a byte-order mark, re-save it as UTF-8)")


def test_text_with_nul_bytes_in_it_is_not_read_as_utf16() -> None:
    # Read two bytes at a time, ASCII text becomes Chinese-looking letters ("Bush hid the
    # facts"): NUL bytes put into UTF-8 text leave it UTF-8 text, reported, never that.
    data = GOOD.encode().replace(b"e", b"e\x00")
    with pytest.raises(DecodeError) as info:
        decode_bytes(data)
    assert "binary file" in info.value.reason or "control characters" in info.value.reason
    stray = GOOD.encode().replace(b"commander", b"comm\x00ander", 1)
    assert decode_bytes(stray) == (GOOD, "utf-8")


# --- RTF and HTML with a text extension (audit 4, F7) ---------------------------------------

RTF_FIX = ("is an RTF document, not plain text — open it in Word and save it as .docx, or save "
           "it as plain text (.txt)")
HTML_FIX = "is a web page (HTML), not plain text — save the page's text as .txt"
RTF = (r"{\rtf1\ansi\ansicpg1252\cocoartf2709" "\n" r"{\fonttbl\f0\fswiss Helvetica;}" "\n"
       r"\f0\fs24 Interviewer: How did you get access?\par" "\n"
       r"Respondent: Through the elders' neutralit\'e9.\par" "\n}")
HTML = ("<!DOCTYPE html>\n<html><head><title>Interview 4</title></head><body>\n"
        "<p><b>Interviewer:</b> How did you get access?</p>\n"
        "<p><b>Respondent:</b> Through the elders.</p>\n</body></html>\n")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("r.txt", RTF.encode("cp1252"), RTF_FIX),
        ("r.md", b"\xef\xbb\xbf \r\n" + RTF.upper().encode(), RTF_FIX),  # BOM, space, case
        ("h.txt", HTML.encode(), HTML_FIX),
        ("h.md", b"\n  " + HTML.replace("<!DOCTYPE html>\n", "").upper().encode(), HTML_FIX),
        ("h.txt", HTML.encode("utf-16"), HTML_FIX),  # with a UTF-16 byte-order mark
        ("x.txt", b'<?xml version="1.0" encoding="utf-8"?>\n<!doctype HTML PUBLIC "-//W3C">'
         b"\n<html><body>Interviewer: Hi</body></html>", HTML_FIX),
    ],
    ids=["rtf", "rtf-bom-space-upper", "html", "html-tag-upper", "html-utf16", "xhtml"],
)
def test_rtf_or_html_named_as_text_is_skipped_with_the_fix(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    _write(tmp_path, name, data)
    result = ingest_corpus(tmp_path)
    assert result.documents == []
    assert [(s.path, s.reason) for s in result.skipped] == [(name, reason)]


@pytest.mark.parametrize(
    "text",
    [
        "# Interview 4\n\n<div align=center>Aden, 2023</div>\n\nInterviewer: Hi <b>there</b>."
        "\n\nRespondent: Hello.\n\nInterviewer: Bye.\n",
        "<!-- transcribed by AB -->\nInterviewer: Hi.\n\nRespondent: <html> is a tag.\n",
        "<div>Aden</div>\n\nInterviewer: What about {\\rtf1}?\n\nRespondent: Nothing.\n",
    ],
    ids=["inline-html", "comment-first", "div-first"],
)
def test_markdown_with_some_html_is_read_as_text(tmp_path: Path, text: str) -> None:
    _write(tmp_path, "notes.md", text.encode())
    result = ingest_corpus(tmp_path)
    assert result.skipped == []
    assert [d.text for d in result.documents] == [text]


def test_rtf_named_docx_says_what_it_is(tmp_path: Path) -> None:
    _write(tmp_path, "int.docx", RTF.encode("cp1252"))
    result = ingest_corpus(tmp_path)
    assert [s.reason for s in result.skipped] == [
        "is not a Word document, although its name ends in .docx (it is an RTF document) — "
        "open it in Word or LibreOffice Writer and save it again as .docx, or give the file "
        "its real extension"]
