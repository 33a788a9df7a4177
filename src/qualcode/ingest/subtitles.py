"""Subtitle cues (.vtt, .srt) with their line numbers: a malformed cue is reported, never
read as the previous cue's words or dropped without a word."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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


def parse_cues(text: str, fmt: str) -> tuple[list[list[str]], list[CueProblem]]:
    """The text lines of each well-formed cue, and the cues (or stray text) left out.

    ``text`` is decoded with ``\\n`` line ends; a .vtt file's ``WEBVTT`` first line is
    checked by the caller. In .srt a block without timings continues the cue before it
    (some exporters put blank lines in a caption); in .vtt it is a cue without timings.
    """
    cues: list[list[str]] = []
    problems: list[CueProblem] = []
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
    return cues, problems
