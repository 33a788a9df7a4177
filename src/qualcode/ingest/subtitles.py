"""Subtitles (.vtt, .srt) as a transcript: the cues with their line numbers (a malformed
cue is reported, never read as the previous cue's words or dropped without a word), then
their words as ``Speaker: words`` turns, the speaker taken from a voice tag
(``<v Name>``), a ``Name:`` or ``[Name]`` that recurs, with cue markup removed and
consecutive cues of one speaker merged."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..documents import PROSE, TRANSCRIPT
from ..speakers import FORMAT_CHARS, LABEL_RE, find_labels, is_interviewer, label_key
from .readers import RawDoc, ReadError, RowProblem, _blank, _decode, _require_text

Line = tuple[int, str]  # (1-based line number, text)

_TIME = {
    "srt": r"\d+:[0-5]?\d:[0-5]?\d[,.]\d{1,3}",
    "vtt": r"(?:\d+:)?[0-5]?\d:[0-5]?\d[,.]\d{1,3}",  # a comma, as converters write it
}
_TIMINGS = {fmt: re.compile(rf"\s*{t}\s*-->\s*{t}(?:\s|$)") for fmt, t in _TIME.items()}
_EXAMPLE = {"srt": "00:00:05,000 --> 00:00:09,000", "vtt": "00:00:05.000 --> 00:00:09.000"}
# A line meant as cue timings: it has the arrow, or starts with a time and a short arrow.
# (The possessive run and the lazy ``\S*?`` keep it linear: ``[\d:.,]*\S*`` backtracked
# quadratically over a long line of digits, 27 s for 40,000 of them.)
_TIMING_LIKE = re.compile(r"-->|^\s*\d[\d:.,]*+\S*?\s*-{1,2}>")
# Inside a cue's text (a blank line missing before the next cue): only a line that opens
# with a time (``00:00:05``) and an arrow followed by another time or nothing is timings;
# any other line with an arrow is the caption's words.
_TIMING_IN_TEXT = re.compile(r"\s*\d+:\d[^\s>-]*+\s*-{1,2}>\s*(?:\d|$)")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")


@dataclass(slots=True)
class CueProblem:
    """A cue (or stray text) that was left out: where, what is wrong and the fix."""

    line: int
    what: str
    fix: str

    def reason(self) -> str:
        return f"{self.what}, so it was left out — {self.fix}"


def _timing_like(text: str) -> bool:
    return bool(_TIMING_LIKE.search(text))


def _timing_in_text(text: str) -> bool:
    return bool(_TIMING_IN_TEXT.match(text))


def _number(text: str) -> bool:
    return text.strip().isdigit()


def _blocks(lines: list[str], header: bool) -> Iterator[list[Line]]:
    """Blocks of non-blank lines. A timing line that cannot be its block's own (a blank
    line is missing) starts a new block and takes a cue number just above it along; below
    a cue's timings, only a line that opens with timings (``_timing_in_text``) is one."""
    block: list[Line] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            if block:
                yield block
                block, header = [], False
            continue
        own = len(block) == 0 or (len(block) == 1 and not _timing_like(block[0][1]))
        if block and (_timing_like(text) if header else not own and _timing_in_text(text)):
            carry = [block.pop()] if len(block) > 1 and _number(block[-1][1]) else []
            yield block
            block, header = carry, False
        block.append((number, text))
    if block:
        yield block


def _joined(blocks: Iterator[list[Line]]) -> Iterator[list[Line]]:
    """A cue number alone, then a blank line, then the timings: one cue."""
    pending: list[Line] | None = None
    for block in blocks:
        if pending is not None and _timing_like(block[0][1]):
            block = pending + block
        elif pending is not None:
            yield pending
        pending = None
        if len(block) == 1 and _number(block[0][1]):
            pending = block
        else:
            yield block
    if pending is not None:
        yield pending


def _timing_index(block: list[Line]) -> int | None:
    if _timing_like(block[0][1]):
        return 0
    if len(block) > 1 and _timing_like(block[1][1]):
        return 1
    return None


def _cue_problem(block: list[Line], at: int | None, name: str, fmt: str) -> CueProblem | None:
    example = _EXAMPLE[fmt]
    if at is None:
        return CueProblem(block[0][0], f"{name} has no timing line",
                          f"add a timing line such as '{example}' above its text")
    number, timing = block[at]
    if _TIMINGS[fmt].match(timing):
        return None
    shown = timing.strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return CueProblem(number, f"{name} has a broken timing line '{shown}'",
                      f"write it as start --> end, such as '{example}'")


def _words_of_cue_before(block: list[Line], at: int | None) -> bool:
    """In .srt: a block without timings (a blank line inside a caption), or one line
    above timings without a cue number (the blank line before the cue is missing)."""
    first = block[0][1]
    if at is None:
        return not (_number(first) and len(block) > 1)
    return at == 1 and not _number(first)


def _stray_text(line: int, fmt: str) -> CueProblem:
    return CueProblem(line, "text outside any cue",
                      f"put a cue number and a timing line such as '{_EXAMPLE[fmt]}' above "
                      "it, or delete it")


def parse_cues(text: str, fmt: str
               ) -> tuple[list[list[str]], list[CueProblem], list[tuple[int, str, str]]]:
    """The text lines of each well-formed cue, the cues (or stray text) left out, and
    each well-formed cue's line, name and timing line.

    ``text`` is decoded with ``\\n`` line ends; a .vtt file's ``WEBVTT`` first line is
    checked by the caller. In .srt a block without timings continues the cue before it
    (some exporters put blank lines in a caption); in .vtt it is a cue without timings.
    """
    cues: list[list[str]] = []
    problems: list[CueProblem] = []
    timings: list[tuple[int, str, str]] = []
    current: list[str] | None = None  # the cue text continues; None before the first cue
    count = 0
    blocks = _joined(_blocks(text.split("\n"), header=fmt == "vtt"))
    if fmt == "vtt":
        next(blocks, None)  # the header block: WEBVTT and its metadata lines
    for block in blocks:
        first = block[0][1].strip()
        at = _timing_index(block)
        if fmt == "vtt" and at is None and first.startswith(_VTT_BLOCKS):
            continue  # a comment, style or region block
        if fmt == "srt" and _words_of_cue_before(block, at):
            words = block if at is None else block[:1]
            if current is None:
                problems.append(_stray_text(block[0][0], fmt))
            else:
                current.extend(t for _, t in words)
            if at is None:
                continue
            block, at, first = block[1:], 0, block[1][1].strip()
        count += 1
        name = f"cue {first}" if _number(first) else f"cue {count}"
        problem = _cue_problem(block, at, name, fmt)
        if problem:
            problems.append(problem)
            current = []  # text blocks that follow belong to the cue left out
        else:
            current = [t for _, t in block[(at or 0) + 1 :]]
            cues.append(current)
            timings.append((block[at or 0][0], name, block[at or 0][1]))
    return cues, problems, timings


_TIME_PARTS = r"(?:(\d+):)?(\d+):(\d+)[,.](\d+)"
_CUE_TIMES = re.compile(rf"\s*{_TIME_PARTS}\s*-->\s*{_TIME_PARTS}")


def _cue_seconds(timing: str) -> tuple[float, float]:
    """A well-formed timing line's start and end, in seconds."""
    h1, m1, s1, f1, h2, m2, s2, f2 = _CUE_TIMES.match(timing).groups()
    return (int(h1 or 0) * 3600 + int(m1) * 60 + int(s1) + int(f1) / 10 ** len(f1),
            int(h2 or 0) * 3600 + int(m2) * 60 + int(s2) + int(f2) / 10 ** len(f2))


def _order_notes(timings: list[tuple[int, str, str]]) -> list[RowProblem]:
    """A note on the first cue that starts before the cue above it (the cues are read in
    the file's order, so turns can come out of order or merged with the wrong ones), and
    on the first whose end comes before its start."""
    earlier: list[tuple[int, str, str, str]] = []  # (line, name, start, start above)
    backwards: list[tuple[int, str, str]] = []
    previous, above = -1.0, ""
    for line, name, timing in timings:
        start, end = _cue_seconds(timing)
        if start < previous:
            earlier.append((line, name, *(t.split("-->")[0].strip() for t in (timing, above))))
        if end < start:
            backwards.append((line, name, timing.strip()))
        previous, above = start, timing
    notes = []
    if earlier:
        line, name, start, before = earlier[0]
        more = f" (and {len(earlier) - 1} more cues below)" if len(earlier) > 1 else ""
        notes.append(RowProblem(line, (
            f"{name} starts at {start}, before the cue above it ({before}){more}: the cues "
            "were read in the order of the file, so turns may be out of order or joined to "
            "the wrong speaker's — put the cues in time order (a subtitle editor sorts them) "
            "or export the captions again; if the file joins two recordings, nothing to do; "
            "the file was read"), note=True))
    if backwards:
        line, name, timing = backwards[0]
        more = f" (and {len(backwards) - 1} more cues)" if len(backwards) > 1 else ""
        notes.append(RowProblem(line, (
            f"{name} ends before it starts ('{timing}'){more} — swap the two times or export "
            "the captions again; its words were read"), note=True))
    return notes


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
    cues, problems, timings = parse_cues(text, fmt)
    if not cues and problems:
        first = problems[0]
        raise ReadError(
            f"is not a valid .{fmt} file: no cue could be read ({first.what}) — "
            f"{first.fix}, or export the captions again as .{fmt}",
            first.line,
        )
    return cues, [*(RowProblem(p.line, p.reason()) for p in problems), *_order_notes(timings)]


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
