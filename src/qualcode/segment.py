"""Documents → Segments: speaker turns, paragraphs or whole excerpts, with stable ids."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .documents import EXCERPT, TRANSCRIPT, Document, Segment
from .speakers import DEFAULT_INTERVIEWER_LABELS, TIME, find_labels, is_interviewer

DEFAULT_MAX_TURN_CHARS = 4000
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence's end: . ! ? … before a space, or a Chinese/Japanese full stop, or the danda
# of Hindi and other Indian scripts (no space needed after them).
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+|[。！？।॥][\"'”’」』)\]]*\s*")


# A transcript's closing line, bracketed or between dashes: "[END OF TRANSCRIPT]", "[End of
# interview]", "-- END --", "(Recording ends 00:41:10)", "[END]".
_ENDS = r"(?:end|ends|ended|stop|stops|stopped)"
_RECORD = r"(?:transcript|transcription|interview|recording|tape)"
_END_WORDS = (rf"(?:(?:the\s+)?{_ENDS}(?:\s+of)?(?:\s+(?:the|this))?(?:\s+\w+)?\s+{_RECORD}"
              rf"|(?:the\s+)?{_RECORD}(?:\s+\w+)?\s+{_ENDS}|end)(?:\s+(?:at\s+)?{TIME})?[.!]?")
_DASHES = r"(?:-{2,}|[–—]+)"
_CLOSING_LINE = re.compile(
    rf"\n[ \t]*(?:\[\s*{_END_WORDS}\s*\]|\(\s*{_END_WORDS}\s*\)"
    rf"|{_DASHES}[ \t]*{_END_WORDS}[ \t]*{_DASHES}?)[ \t]*\Z", re.IGNORECASE)


def _without_closing_line(text: str, start: int, stop: int) -> int:
    """The end of the last turn ``text[start:stop]`` without a closing line of its own
    (``[END OF TRANSCRIPT]``, ``-- END --``): that is no one's words."""
    closing = _CLOSING_LINE.search(text, start, stop)
    return _trimmed(text, start, closing.start())[1] if closing else stop


# A line holding only a time stamp ("00:00:09", "[00:00:09]", "(0:09)"), as some
# transcription services write above each speaker's label: it opens the next turn.
_TIME_LINE = re.compile(rf"[ \t]*[\[(]?{TIME}[\])]?[ \t]*")


def _without_time_line(text: str, start: int, stop: int, whole: bool = False) -> int:
    """The end of ``text[start:stop]`` without a last line that is only a time stamp
    (that of the turn below it, written on the line above its label); with ``whole``,
    also when it is the only line (a preamble; a turn may answer "12:30")."""
    stop = _trimmed(text, start, stop)[1]
    line = text.rfind("\n", start, stop)
    if (line >= 0 or whole) and _TIME_LINE.fullmatch(text, max(line + 1, start), stop):
        return _trimmed(text, start, max(line, start))[1]
    return stop


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Non-empty paragraph spans (split at blank lines) inside ``text[start:end]``."""
    spans = []
    cursor = start
    for brk in _PARAGRAPH_BREAK.finditer(text, start, end):
        spans.append(_trimmed(text, cursor, brk.start()))
        cursor = brk.end()
    spans.append(_trimmed(text, cursor, end))
    return [(s, e) for s, e in spans if e > s]


def _cut(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """``text[start:end]`` in spans of at most ``limit`` characters, each cut after the
    last sentence end that fits (or else the last space; a text without any is cut at
    ``limit``), never before half of ``limit``."""
    spans = []
    while end - start > limit:
        low, stop = start + limit // 2, start + limit
        cut = max((m.end() for m in _SENTENCE_END.finditer(text, low, stop)), default=0)
        if not cut:
            cut = next((i + 1 for i in range(stop - 1, low, -1) if text[i].isspace()), stop)
        spans.append(_trimmed(text, start, cut))
        start = _trimmed(text, cut, end)[0]
    spans.append(_trimmed(text, start, end))
    return [(s, e) for s, e in spans if e > s]


def _pieces(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Paragraphs of ``text[start:end]``, those longer than ``limit`` cut (``_cut``)."""
    return [piece for s, e in _paragraphs(text, start, end) for piece in _cut(text, s, e, limit)]


def _pack(spans: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Greedily join consecutive paragraphs into parts of at most ``limit`` characters."""
    parts: list[tuple[int, int]] = []
    for start, end in spans:
        if parts and end - parts[-1][0] <= limit:
            parts[-1] = (parts[-1][0], end)
        else:
            parts.append((start, end))
    return parts


def _segment(doc: Document, sid: str, speaker: str, turn: int | None, span: tuple[int, int],
             codable: bool) -> Segment:
    start, end = span
    return Segment(
        segment_id=f"{doc.doc_id}:{sid}",
        doc_id=doc.doc_id,
        source_type=doc.source_type,
        speaker=speaker,
        turn=turn,
        char_start=start,
        char_end=end,
        text=doc.text[start:end],
        codable=codable,
        metadata=doc.metadata,
    )


def segment_document(
    doc: Document,
    interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> list[Segment]:
    """Cut one document into segments following the id contract in the design."""
    if max_turn_chars < 1:  # no part could ever be short enough
        raise ValueError(f"max_turn_chars must be at least 1, not {max_turn_chars}")
    text = doc.text
    if doc.layout == EXCERPT:
        return [_segment(doc, "1", "", None, _trimmed(text, 0, len(text)), True)]
    if doc.layout != TRANSCRIPT:
        segments = []
        for n, (start, end) in enumerate(_paragraphs(text, 0, len(text)), start=1):
            parts = _cut(text, start, end, max_turn_chars)
            segments.extend(
                _segment(doc, f"{n}.{part}" if len(parts) > 1 else str(n), "", None, span, True)
                for part, span in enumerate(parts, start=1))
        return segments
    # Subtitle text is rebuilt one "Speaker: words" paragraph per turn: a speaker who
    # talks once (an interpreter, a single <v Name> cue) is still a speaker.
    labels = find_labels(text, interviewer_labels, paragraph_labels=doc.format in ("vtt", "srt"))
    segments: list[Segment] = []
    first = labels[0].start if labels else len(text)
    preamble = _trimmed(text, 0, _without_time_line(text, 0, first, whole=True))
    if preamble[1] > preamble[0]:
        segments.append(_segment(doc, "0", "", 0, preamble, False))
    turns = [(label.name, *_trimmed(text, label.end, _without_time_line(
                  text, label.end, labels[i].start if i < len(labels) else len(text))))
             for i, label in enumerate(labels, start=1)]
    if turns:
        name, start, stop = turns[-1]
        turns[-1] = (name, start, _without_closing_line(text, start, stop))
    interviewer = [is_interviewer(name, interviewer_labels) for name, _, _ in turns]
    if not any(interviewer) and tuple(interviewer_labels) == DEFAULT_INTERVIEWER_LABELS:
        asker = question_asker(text, turns)
        interviewer = [name == asker for name, _, _ in turns]
    if all(interviewer):
        turns = _with_unlabelled_answers(text, turns)
        interviewer = [name != UNLABELLED_ANSWER for name, _, _ in turns]
    for turn, ((name, start, stop), asks) in enumerate(zip(turns, interviewer, strict=True),
                                                       start=1):
        if stop <= start:
            continue  # a label with no words still counts as a turn
        parts = (
            _pack(_pieces(text, start, stop, max_turn_chars), max_turn_chars)
            if stop - start > max_turn_chars
            else [(start, stop)]
        )
        for part, span in enumerate(parts, start=1):
            sid = f"{turn}.{part}" if len(parts) > 1 else str(turn)
            segments.append(_segment(doc, sid, name, turn, span, not asks))
    return segments


def question_asker(text: str, turns: Sequence[tuple[str, int, int]]) -> str | None:
    """Of exactly two speakers, neither with an interviewer label (``SL:`` / ``NB:``), the
    one who asks: at least half of their (3 or more) turns end in a question and at most
    a fifth of the other's do. ``None`` when it is not that clear."""
    asked: dict[str, list[bool]] = {}
    for name, start, stop in turns:
        if stop > start:
            asked.setdefault(name, []).append("?" in text[max(start, stop - 40):stop])
    if len(asked) != 2 or any(len(ends) < 3 for ends in asked.values()):
        return None
    (one, a), (other, b) = ((name, sum(ends) / len(ends)) for name, ends in asked.items())
    if a >= 0.5 and b <= 0.2:
        return one
    return other if b >= 0.5 and a <= 0.2 else None


# The speaker of the words after an interviewer's question in a transcript whose every
# label is an interviewer's (``Q: ...`` lines with the answers unlabelled below them).
UNLABELLED_ANSWER = "Respondent (unlabelled)"
_LINE_BREAK = re.compile(r"\n\s*")


def _with_unlabelled_answers(text: str, turns: list[tuple[str, int, int]]
                             ) -> list[tuple[str, int, int]]:
    """``turns`` (all an interviewer's), each followed by the answer its text holds: what
    comes after its first paragraph break, or else after its first line break."""
    result = []
    for name, start, stop in turns:
        brk = _PARAGRAPH_BREAK.search(text, start, stop) or _LINE_BREAK.search(text, start, stop)
        if brk is None:
            result.append((name, start, stop))
            continue
        result.append((name, *_trimmed(text, start, brk.start())))
        result.append((UNLABELLED_ANSWER, *_trimmed(text, brk.end(), stop)))
    return result


def segment_documents(
    documents: Iterable[Document],
    interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> list[Segment]:
    """Segments of all ``documents``, in document order."""
    return [
        seg
        for doc in documents
        for seg in segment_document(doc, interviewer_labels, max_turn_chars)
    ]
