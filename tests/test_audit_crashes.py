"""Bad input that used to crash a whole run: each is now skipped or noted, the rest read."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from qualcode.corpus import read_corpus
from qualcode.documents import Segment
from qualcode.ingest import discover_files, ingest_corpus, load_manifest
from qualcode.ingest.decode import DecodeError, decode

from .conftest import ROOT
from .test_readers import _corpus

GOOD = ("Interviewer: How did access work?\n\n"
        "Respondent: The commander agreed to open the road after the elders spoke to him.\n")


def _latin1_name(folder: Path) -> None:
    """``folder/latin1_<0xe9>.txt``: a name that is not UTF-8 (skip where none can exist)."""
    try:
        with open(os.fsencode(folder) + b"/latin1_\xe9.txt", "wb") as handle:
            handle.write(GOOD.encode())
    except OSError as err:  # macOS, Windows: names must be Unicode
        pytest.skip(f"this file system refuses non-UTF-8 names ({err})")


def _reasons(skipped) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for s in skipped:
        found.setdefault(s.path, []).append(s.reason)
    return found


# --- 1. file names that are not UTF-8 --------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"transcripts/good.txt": GOOD})
    _latin1_name(corpus / "transcripts")
    bad_folder = os.fsencode(corpus) + b"/caf\xe9"
    os.mkdir(bad_folder)
    with open(bad_folder + b"/inside.txt", "w", encoding="utf-8") as handle:
        handle.write(GOOD)

    paths, skipped = discover_files(corpus)
    assert paths == ["transcripts/good.txt"]
    why = _reasons(skipped)
    assert why["transcripts/latin1_\\xe9.txt"] == [
        "its file name is not valid UTF-8 — rename the file"]
    assert why["caf\\xe9/"][0].startswith("is a folder whose name is not valid UTF-8")
    assert len(skipped) == 2  # the file in that folder is not reported again

    batch = read_corpus(corpus)
    assert [d.doc_id for d in batch.documents] == ["good"]
    assert "transcripts/latin1_\\xe9.txt" in _reasons(batch.skipped)
    json.dumps([s.path for s in batch.skipped]).encode("utf-8")  # writable as it is


# --- 2. an unreadable manifest ---------------------------------------------------------


def test_a_manifest_that_cannot_be_read_is_reported_and_the_files_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = _corpus(tmp_path, {
        "a.txt": GOOD, "manifest.csv": "file,doc_id,case\na.txt,A-01,yemen\n"})
    read_bytes = pathlib.Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "manifest.csv":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)  # (we may be root)
    manifest = load_manifest(corpus)
    assert manifest.by_file == {} and len(manifest.problems) == 1
    problem = manifest.problems[0]
    assert problem.path == "manifest.csv" and not problem.note
    assert problem.reason.startswith("cannot be read (Permission denied); the files were "
                                     "read without their metadata — ")
    batch = read_corpus(corpus)
    assert [d.doc_id for d in batch.documents] == ["a"]  # read, without the manifest's id
    assert _reasons(batch.skipped)["manifest.csv"] == [problem.reason]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads any file; the test above covers it")
def test_a_manifest_without_read_permission_is_reported(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"a.txt": GOOD, "manifest.csv": "file\na.txt\n"})
    (corpus / "manifest.csv").chmod(0)
    try:
        assert "Permission denied" in load_manifest(corpus).problems[0].reason
    finally:
        (corpus / "manifest.csv").chmod(0o644)


# --- 3. a manifest row naming a loop of links ------------------------------------------


def test_a_manifest_row_naming_a_link_loop_is_a_manifest_problem(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {
        "transcripts/good.txt": GOOD,
        "manifest.csv": "file,doc_id,case\ntranscripts/l1.txt,LOOP,x\n"
                        "transcripts/good.txt,GOOD-01,yemen\n"})
    try:
        os.symlink("l2.txt", corpus / "transcripts/l1.txt")
        os.symlink("l1.txt", corpus / "transcripts/l2.txt")
        (corpus / "manifest.lnk.csv").symlink_to("manifest.lnk.csv")  # a loop on its own
    except OSError as err:
        pytest.skip(f"no symbolic links here ({err})")

    manifest = load_manifest(corpus)
    assert manifest.by_file == {"transcripts/good.txt": {"doc_id": "GOOD-01", "case": "yemen"}}
    assert [(p.line, p.reason.split(";")[0]) for p in manifest.problems] == [
        (2, "file 'transcripts/l1.txt' is a broken link (a loop: it leads back to itself)")]
    batch = read_corpus(corpus)
    assert [d.doc_id for d in batch.documents] == ["GOOD-01"]
    why = _reasons(batch.skipped)
    assert why["transcripts/l1.txt"][0].startswith("is a broken link — it leads back to itself")
    assert why["manifest.lnk.csv"][0].startswith("is a broken link — it leads back to itself")


def test_a_manifest_that_is_a_link_loop_is_reported(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"a.txt": GOOD})
    try:
        (corpus / "manifest.csv").symlink_to("manifest.csv")
    except OSError as err:
        pytest.skip(f"no symbolic links here ({err})")
    problems = load_manifest(corpus).problems
    assert [p.reason.split(";")[0] for p in problems] == [
        "is a broken link that leads back to itself (a loop), not a file that can be read"]
    assert [d.doc_id for d in read_corpus(corpus).documents] == ["a"]


# --- 4. lone surrogates in text and metadata -------------------------------------------


def _tounicode_pdf(lines: list[str], code: str, unicode: str) -> bytes:
    """A one-page PDF whose font maps byte ``code`` (hex) to UTF-16 ``unicode`` (hex, e.g.
    a lone surrogate ``D800``) in its ToUnicode CMap: pypdf extracts it as is."""
    cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n"
            f"<00> <FF>\nendcodespacerange\n1 beginbfchar\n<{code}> <{unicode}>\nendbfchar\n"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode()
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    ops += [f"({line}) Tj" if i == 0 else f"T* ({line}) Tj" for i, line in enumerate(lines)]
    stream = "\n".join([*ops, "ET"]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 "
        b"0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding "
        b"/ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
    ]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


SURROGATES = {
    # a JSON-style escape of an emoji: PyYAML makes it two lone surrogates
    "transcripts/emoji.txt": ('---\ndoc_id: FM-EMOJI\ninterviewee_role: "Field officer '
                              '\\ud83d\\ude00"\n---\n\n' + GOOD),
    "transcripts/lone.txt": ('---\ninterviewee_role: "Officer \\ud800 \\udfff"\n---\n\n'
                             + GOOD),
    "transcripts/scan.pdf": _tounicode_pdf(
        ["Interviewer: How did access work~?",
         "Respondent: The commander agreed to open the road~ after we threatened to stop."],
        "7E", "D800"),
}


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_lone_surrogates_become_valid_unicode_with_a_note(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {**SURROGATES, "transcripts/good.txt": GOOD})
    batch = read_corpus(corpus)
    docs = {d.path: d for d in batch.documents}
    assert len(docs) == 4
    for doc in docs.values():
        assert _valid(doc.text) and _valid(doc.doc_id)
        assert all(_valid(k) and _valid(v) for k, v in doc.metadata.items())
    for segments in batch.segments:
        assert all(_valid(s.text) and all(map(_valid, s.metadata.values())) for s in segments)
    assert docs["transcripts/emoji.txt"].metadata["interviewee_role"] == "Field officer 😀"
    assert docs["transcripts/lone.txt"].metadata["interviewee_role"] == "Officer \ufffd \ufffd"
    pdf = docs["transcripts/scan.pdf"].text
    assert pdf.count("\ufffd") == 2 and "agreed to open the road\ufffd after" in pdf
    notes = {s.path: s for s in batch.skipped if s.note and "not valid Unicode" in s.reason}
    assert set(notes) == {"transcripts/lone.txt", "transcripts/scan.pdf"}  # the pair is fine
    assert notes["transcripts/lone.txt"].reason.startswith("held 2 characters that are not "
                                                           "valid Unicode")
    assert "commander" not in notes["transcripts/scan.pdf"].reason  # no text in messages


def test_hashing_and_writing_never_fail_on_a_surrogate(tmp_path: Path) -> None:
    from flows.incremental import _sha, coding_key, plan_batches
    from qualcode.outputs import atomic_write_text

    assert _sha("latin1_\udce9.txt") != _sha("latin1_\udce8.txt")
    segment = Segment("a:1", "a", "interview", "R", 1, 0, 5, "road\ud800", True)
    assert coding_key([segment], {}, "model", "codebook").startswith("code-")
    assert plan_batches(["a\udce9.txt", "b.txt"], 1)
    secret = "SECRET transcript words \ud800"
    with pytest.raises(ValueError) as info:
        atomic_write_text(tmp_path / "segments.csv", secret)
    assert "segments.csv" in str(info.value) and "SECRET" not in str(info.value)
    assert info.value.__context__ is None  # the UnicodeEncodeError, which holds the text
    assert not (tmp_path / "segments.csv").exists()


def test_cli_run_codes_around_bad_names_and_surrogates(tmp_path: Path) -> None:
    """End to end (items 1 and 4): the real command on Prefect's temporary server."""
    corpus = _corpus(tmp_path, {**SURROGATES, "transcripts/good.txt": GOOD})
    _latin1_name(corpus / "transcripts")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "qualcode.cli", "run", "--corpus", "corpus", "--codebook",
         str(ROOT / "codebook.yaml"), "--out", "out", "--backend", "fast", "--workers", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output
    assert "transcripts/latin1_\\xe9.txt: its file name is not valid UTF-8" in result.stdout
    assert "documents      4" in result.stdout
    segments = pd.read_csv(tmp_path / "out" / "segments.csv", dtype=str, encoding="utf-8-sig")
    assert set(segments["doc_id"]) == {"FM-EMOJI", "lone", "scan", "good"}
    assert "Field officer 😀" in set(segments["interviewee_role"].dropna())
    run = json.loads((tmp_path / "out" / "run_manifest.json").read_text(encoding="utf-8"))
    assert {s["path"] for s in run["skipped"]} == {"transcripts/latin1_\\xe9.txt"}
    assert {n["path"] for n in run["notes"]} >= {"transcripts/lone.txt", "transcripts/scan.pdf"}


# --- 5. exclusive_outputs: fn is not run inside an except block -------------------------


def test_a_failure_in_a_first_run_is_not_chained_to_the_missing_out_folder(
    tmp_path: Path
) -> None:
    from qualcode.outputs import exclusive_outputs

    @exclusive_outputs
    def run(out: str) -> None:
        raise KeyError("the real failure")

    for out in (tmp_path / "new", tmp_path):  # first run (no folder yet), then locked
        with pytest.raises(KeyError) as info:
            run(out=str(out))
        assert info.value.__context__ is None and info.value.__cause__ is None


# --- 6. other 8-bit encodings read as Windows-1252 --------------------------------------

FOREIGN = {
    "cp1251": ("Интервьюер: Как вы получили доступ?\nРеспондент: Командир согласился "
               "открыть дорогу после переговоров со старейшинами.\n"),
    "koi8-r": ("Интервьюер: Как вы получили доступ?\nРеспондент: Командир согласился "
               "открыть дорогу.\n"),
    "cp1256": ("المحاور: كيف حصلتم على الوصول؟\nالمستجيب: وافق القائد على فتح الطريق بعد "
               "المفاوضات مع الشيوخ.\n"),
    "iso-8859-2": ("Ankieter: Jak uzyskaliście dostęp?\nRespondent: Dowódca zgodził się "
                   "otworzyć drogę, gdy było już późno. Może jutro będzie łatwiej.\n"),
    "mac-roman": ("Interviewer: Was it “safe”?\nRespondent: It’s hard to say. We didn’t "
                  "know, and the “commander” wouldn’t tell us.\n"),
}
WESTERN = {
    "fr": ("Intervieweur : C’était « sûr » ?\nRépondant : Oui — le café était réouvert, créé "
           "et réélu. L’été, où êtes-vous allés ? À Noël, déjà. 50 € et 10 °C.\n"),
    "es": ("Entrevistador: ¿Cómo fue? ¡Qué difícil!\nRespondent: El niño está aquí; la "
           "situación es difícil. Él comió en Peñalolén, año 2020 — “así”.\n"),
    "de": ("Interviewer: Wie war es?\nBefragte: Für uns war die Straße gefährlich, und die "
           "Mädchen konnten nicht zur Schule. Übermäßig, Größe, Öl.\n"),
    "pt-ca-is": ("Resposta: INFORMAÇÕES, ação, não, põe; la col·lecció és il·lustrada; "
                 "Þjóðfélagið er í lagi, fæðið er gott. It´s 2×3, ©2020 Acme™.\n"),
}


@pytest.mark.parametrize("encoding", sorted(FOREIGN))
def test_text_in_another_encoding_is_not_read_as_windows_1252(encoding: str) -> None:
    data = FOREIGN[encoding].encode(encoding)
    data.decode("cp1252")  # it would decode, garbled
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason.startswith("looks like text in another encoding (")
    assert "read as Windows-1252" in info.value.reason and "as UTF-8" in info.value.reason
    assert info.value.line in (1, 2)


@pytest.mark.parametrize("language", sorted(WESTERN))
def test_western_text_in_windows_1252_still_reads_without_a_note(language: str) -> None:
    decoded = decode(WESTERN[language].encode("cp1252"))
    assert (decoded.text, decoded.encoding, decoded.notes()) == (
        WESTERN[language], "cp1252", [])


def test_a_file_in_another_encoding_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {
        "transcripts/ru.txt": FOREIGN["cp1251"].encode("cp1251"),
        "transcripts/fr.txt": WESTERN["fr"].encode("cp1252"),
    })
    result = ingest_corpus(corpus)
    assert [d.doc_id for d in result.documents] == ["fr"]
    assert result.documents[0].text == WESTERN["fr"]
    assert [(s.path, s.line, s.note) for s in result.skipped] == [
        ("transcripts/ru.txt", 1, False)]
    assert "Cyrillic" in result.skipped[0].reason
