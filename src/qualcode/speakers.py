"""Speaker labels in transcripts: ``Name:`` at a line start (timestamps, Markdown, Otter)."""

from __future__ import annotations

import bisect
import difflib
import functools
import itertools
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

DEFAULT_INTERVIEWER_LABELS = (
    "Interviewer", "Int", "I", "Q", "Question", "Moderator", "Facilitator",
    "Entrevistador", "Entrevistadora", "Enquêteur", "Enquêtrice", "Intervieweur",
)

TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_STAMP = rf"[\[(]?{TIME}[\])]?[ \t]*(?:[-–—][ \t]*)?"  # [00:12:03] or 00:12:03 -
# Invisible format characters: zero-width spaces and joiners, the word joiner and the
# direction marks (an Arabic or Hebrew transcript's labels often start with U+200F).
# They may open a label's line and sit inside a name; ``label_key`` leaves them out.
FORMAT_CHARS = "\u200b-\u200f\u2060\u202a-\u202e"
_FORMAT_RE = re.compile(f"[{FORMAT_CHARS}]")
_LINE_START = rf"^[ \t{FORMAT_CHARS}]*"


def _combining_marks() -> str:
    """Ranges of the combining marks (Unicode category M) for a character class: Python's
    ``\\w`` leaves them out, so Burmese, Devanagari, Thai or vowelled Arabic names (and
    accents stored decomposed) would end at their first mark."""
    ranges: list[list[int]] = []
    for code in range(0x300, 0x1F000):
        if unicodedata.category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


_MARKS = _combining_marks()
# A name's characters after its first letter: word characters and marks, and . ' ’ & / #
# , - (``Dr. Aung``, ``O’Neil``, ``Participant #3``, ``Al-Sayed, Omar``).
_NAME_CHARS = rf"[\w{_MARKS}.'’&/#,{FORMAT_CHARS}-]"
_NAME = (rf"[^\W\d_]{_NAME_CHARS}*"
         rf"(?:[ \t]+{_NAME_CHARS}+){{0,3}}?")  # up to four words
_AFTER_NAME = rf"(?:[ \t]*(?:[\[(]{TIME}[\])]|(?P<note>\([^():\n]{{1,40}}\))))?"  # (00:12:03)
# Before the colon: spaces, also no-break ones (French typography: ``Enquêteur :``).
_BEFORE_COLON = r"[ \t\u00a0\u202f\u2007]*"
# The plain ``Name:`` form, as subtitle cues are read (ingest/subtitles.py).
LABEL_RE = re.compile(
    rf"{_LINE_START}(?:{_STAMP})?(?P<name>{_NAME}){_AFTER_NAME}{_BEFORE_COLON}:"
    rf"(?=[ \t\u00a0\u202f]|$)[ \t]*",
    re.MULTILINE,
)
# Transcript turn labels: the plain form, also with a full-width colon, in Markdown
# (``**Name:**``, ``*Name*:``, ``__Name:__`` after an optional ``- ``, ``* `` or ``> ``),
# and Otter.ai's ``Name  0:03`` line with the words on the lines below it; after a line
# number and a tab (MAXQDA's and f4's numbered exports). A ``semi``-colon for the colon
# counts for a name that is a label elsewhere (``find_labels``). A label typed
# without a space after its colon (``Respondent:We``) is ``tight``: it counts only for a
# name that is a label elsewhere in the text (``find_labels``).
TURN_LABEL_RE = re.compile(
    rf"""{_LINE_START}(?:\d{{1,6}}\t[ \t]*)?(?:
        (?:(?P<mark>[-*>])[ \t]+)?(?:{_STAMP})?(?P<em>\*\*|__|\*|_)?(?(em)(?:{_STAMP})?)
        (?P<name>{_NAME}){_AFTER_NAME}{_BEFORE_COLON}
        (?(em)(?:(?P=em)[ \t]*[:：]|[:：](?P=em))|(?:[:：]|(?P<semi>;)))
        (?:(?<=[：*_])|(?=[ \t\u00a0\u202f]|$)|(?P<tight>)(?=[^\W\d_]))
      | (?P<otter>{_NAME})[ \t]+{TIME}[ \t]*$
    )[ \t]*""",
    re.VERBOSE | re.MULTILINE,
)

# Labels without a colon, taken only where a text has no ``Name:`` labels and the
# conversation is unmistakable (``_alternative_labels``): ``Q. words`` / ``A. words``
# (legal and oral-history transcripts), ``INTERVIEWER - words`` (also with – or —),
# ``[Interviewer] words``, ``I<tab>words`` (a Word table's layout, kept with tabs), and a
# name alone on its line, with the words below it, as
# transcription services write it (``[00:00:05] Interviewer``, ``Interviewer [00:00:05]``,
# ``00:00:05 - Speaker 1``, ``INTERVIEWER``), also as a Markdown heading or in bold
# (``### Interviewer``, ``**INTERVIEWER**``).
_ALT_LABEL_RE = re.compile(
    rf"""{_LINE_START}(?:{_STAMP})?(?:
        (?P<dot>[^\W\d_][^\W_]{{0,11}})\.[ \t\u00a0]+(?=\S)
      | (?P<dash>{_NAME})[ \t\u00a0]+[-–—][ \t\u00a0]+(?=\S)
      | \[(?P<bracket>{_NAME})\][ \t\u00a0]+(?=\S)
      | (?P<tab>{_NAME})\t[ \t]*(?=\S)
      | (?:\#{{1,6}}[ \t]+)?(?P<lem>\*\*|__)?(?P<line>{_NAME})(?(lem)(?P=lem))
        (?:[ \t]+[\[(]?{TIME}[\])]?)?[ \t]*$
    )""",
    re.VERBOSE | re.MULTILINE,
)
_ALT_FORMS = ("dot", "dash", "bracket", "tab", "line")
_ROMAN = re.compile(r"[ivxlc]+")
_NUMBERED = re.compile(r"(?<=[^\W\d_])\d+$")  # ``Q1``, ``Q2``: one role (not ``Speaker 1``)
_TIME_RE = re.compile(TIME)


@dataclass(slots=True, frozen=True)
class Label:
    """A speaker label found in a text: where it starts, where the words begin."""

    start: int  # offset of the line start
    end: int  # offset just after the label (and the spaces after it)
    key: str  # case-folded name, for grouping
    name: str  # display form


def label_key(name: str) -> str:
    if not name.isascii():
        name = _visible(name)
    return " ".join(name.casefold().split())


def _visible(name: str) -> str:
    """``name`` without invisible format characters (a zero-width space, a direction
    mark)."""
    return _FORMAT_RE.sub("", name) if _FORMAT_RE.search(name) else name


def _display(name: str) -> str:
    """A label as shown: an all-capitals name in title case (``RESPONDENT 2`` ->
    ``Respondent 2``; not initials: ``SL``), its note in brackets as written
    (``RESPONDENT 1 (male, 40s)`` -> ``Respondent 1 (male, 40s)``, ``(UNHCR)``)."""
    name = " ".join((name if name.isascii() else _visible(name)).split())
    head, bracket, note = name.partition(" (")
    if head.isupper() and len(head) > 2:
        head = head.title()
    return head + bracket + note


def is_interviewer(name: str, labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS) -> bool:
    """True when ``name`` is one of ``labels`` (case-insensitive), e.g. ``INT`` or ``Q 2``."""
    return _interviewer_re(tuple(labels)).fullmatch(label_key(name).rstrip(".")) is not None


@functools.lru_cache(maxsize=16)
def _interviewer_re(labels: tuple[str, ...]) -> re.Pattern[str]:
    """A label itself, or followed by a number (``Q 2``) or a note in brackets."""
    alternatives = "|".join(re.escape(label_key(label)) for label in labels) or "(?!)"
    return re.compile(rf"(?:{alternatives})(?:[ .\-#]*\d+| \(.*\))?")


class _Candidate(NamedTuple):
    """A match of ``TURN_LABEL_RE``: where it starts and ends, its name and the match."""

    start: int
    end: int
    key: str
    name: str
    match: re.Match[str]


def _form(match: re.Match[str]) -> tuple[str | None, str | None, bool]:
    """How a label is laid out: its list or quote marker, its emphasis, Otter style."""
    return match["mark"], match["em"], match["otter"] is not None


_remembered = threading.local()


@contextmanager
def labels_remembered() -> Iterator[None]:
    """Within, :func:`find_labels` remembers each text's labels on this thread: reading a
    batch decides each file's layout from its labels, then segmenting asks again."""
    outer = getattr(_remembered, "found", None)
    _remembered.found = {}
    try:
        yield
    finally:
        _remembered.found = outer


def find_labels(
    text: str,
    interviewer_labels: Iterable[str] = DEFAULT_INTERVIEWER_LABELS,
    paragraph_labels: bool = False,
) -> list[Label]:
    """Speaker labels that open a turn, in order (see :func:`_find_labels`)."""
    found = getattr(_remembered, "found", None)
    labels = tuple(interviewer_labels)
    if found is None:
        return _find_labels(text, labels, paragraph_labels)
    key = (text, labels, paragraph_labels)
    if key not in found:
        found[key] = tuple(_find_labels(text, labels, paragraph_labels))
    return list(found[key])


def _find_labels(text: str, interviewer_labels: tuple[str, ...], paragraph_labels: bool
                 ) -> list[Label]:
    """Speaker labels that open a turn, in order.

    A candidate ``Words:`` at a line start (or another form of ``TURN_LABEL_RE``) is
    accepted when the same name labels at least two lines of the text or is an
    interviewer label, so a one-off ``Date:`` or ``Note:`` in a header block or prose is
    not taken for a speaker; a one-off name inside the conversation may be one
    (``_one_off_speakers``). In a hard-wrapped turn a line may start with words and a
    colon (``...go to the`` / ``school: the road``): a lower-case candidate that goes on
    with the previous line's sentence is no label, and neither are a recurring name
    never written with a capital that is no known label nor words that read as a
    clause (``_recurring``).
    With ``paragraph_labels`` (text rebuilt from subtitles, one ``Speaker: words``
    paragraph per turn) a label opening a paragraph is accepted even if used once.
    """
    labels = list(interviewer_labels)
    candidates = [
        _Candidate(m.start(), m.end(), label_key(name := _full_name(m)), name, m)
        for m in TURN_LABEL_RE.finditer(text)
    ]
    # A lower-case word going on with the line above is text, not a label; but where the
    # roles are written in lower case (``interviewer:``, ``respondent:`` and no
    # ``Respondent:``), one opening a line, one-line turns may end without a full stop.
    continues = [_continues_sentence(text, c) for c in candidates]
    roles = [_role(c, labels) for c in candidates]
    role_lines = [(c, go_on) for c, go_on, r in zip(candidates, continues, roles, strict=True)
                  if r]
    lower_roles = (any(not go_on for _, go_on in role_lines)
                   and all(_lower_case(c.name) for c, _ in role_lines))
    candidates = [c for c, go_on, r in zip(candidates, continues, roles, strict=True)
                  if not go_on or (lower_roles and r)]
    if any(c.match["semi"] is not None for c in candidates):
        # ``Interviewer; ...``: a slip of the finger, for a label written with a colon
        # elsewhere (or an interviewer label); otherwise a semicolon is punctuation
        colon = {c.key for c in candidates if c.match["semi"] is None}
        candidates = [c for c in candidates if c.match["semi"] is None or c.key in colon
                      or is_interviewer(c.name, labels)]
    counts = Counter(c.key for c in candidates)
    names: dict[str, str] = {}
    for c in candidates:
        if c.key not in names or names[c.key].isupper():
            names[c.key] = c.name
    spaced = {c.key for c in candidates if c.match["tight"] is None}
    capitalised = {c.key for c in candidates if not _lower_case(c.name)}
    recurring = [_recurring(c, counts[c.key], spaced, labels, c.key in capitalised)
                 for c in candidates]
    accepted = recurring
    if paragraph_labels:
        accepted = [ok or _starts_paragraph(text, c.start)
                    for ok, c in zip(recurring, candidates, strict=True)]
    accepted = _one_off_speakers(text, candidates, recurring, accepted, labels)
    found = [
        Label(c.start, c.end, c.key, _display(names[c.key]))
        for ok, c in zip(accepted, candidates, strict=True)
        if ok
    ]
    found = _typos_of_interviewers(found, counts, labels)
    found = _after_header_block(text, found, candidates)
    if len(found) < 2 and not paragraph_labels:
        return _alternative_labels(text, labels) or found
    return found


_HEADER_LINE_CHARS = 100  # a header block's lines are this short: names, dates, places
_HEADER_TURNS = 50  # the turns after a header block looked at to see they are sentences
# A value's last word that ends in a full stop without ending a sentence: initials
# (``A.B.``, ``J.``) and the titles and abbreviations of names and organisations.
_ABBREVIATION = re.compile(r"(?:[^\W\d_]\.)+|(?:dr|mr|mrs|ms|prof|jr|sr|st|ltd|inc|co|etc)\.",
                           re.IGNORECASE)


def _after_header_block(text: str, found: list[Label], candidates: list[_Candidate]
                        ) -> list[Label]:
    """``found`` without the labels of a header block atop a transcript that names the
    people (``Interviewer: Jane Doe`` / ``Respondent: P07`` / ``Date: 12 May``), one field
    per line or per paragraph (a Word document's): the lines around the first label are
    short ``Key: value`` lines, each key once, a speaker's followed by a name, not a
    sentence, and one key labels no turn (``Date``); the block ends at the first label
    that repeats a key or says a sentence or a greeting, and two or more turns follow,
    most of them ending in a sentence's end (so short unpunctuated turns are not taken for
    fields).
    The block is then part of the preamble; a text that is nothing but such a block
    has no turns."""
    if not found:
        return found
    keys: set[str] = set()
    begin = found[0].start
    while begin > 0:  # the fields above the first label (``Date: ...``)
        above = text.rfind("\n", 0, begin - 1) + 1
        if text[above:begin - 1].strip():
            field = _field(text, above, candidates)
            if field is None:
                break
            keys.add(field[0].key)
        begin = above
    starts = {label.start for label in found}
    pos = found[0].start
    while pos < len(text):  # the fields from the first label on
        field = _field(text, pos, candidates)
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        if field is None:
            if text[pos:line_end].strip():
                break
        else:
            candidate, value = field
            if candidate.key in keys or (pos in starts and (_is_sentence(value)
                                                            or _is_greeting(value))):
                break
            keys.add(candidate.key)
        pos = line_end + 1
    rest = [label for label in found if label.start >= pos]
    if pos >= len(text) and not keys <= {label.key for label in found}:
        return []  # a header block and nothing else
    if (pos not in starts or len(rest) == len(found) or len(rest) < 2
            or keys <= {label.key for label in rest}):
        return found
    ends = [_ends_sentence(text, after.start) for after in rest[1:_HEADER_TURNS + 1]]
    if len(rest) <= _HEADER_TURNS:
        ends.append(_ends_sentence(text, len(text)))  # the last turn's
    return rest if 3 * sum(ends) >= 2 * len(ends) else found


def _field(text: str, start: int, candidates: list[_Candidate]
           ) -> tuple[_Candidate, str] | None:
    """The ``Key: value`` of a header block's line at ``start`` (the key a label
    candidate), or None for any other line: a longer one, a label with the words below
    it."""
    i = bisect.bisect_left(candidates, start, key=attrgetter("start"))
    if i == len(candidates) or candidates[i].start != start:
        return None
    candidate = candidates[i]
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    value = text[candidate.end:end].strip()
    if end - start > _HEADER_LINE_CHARS or candidate.match["otter"] or not value:
        return None
    return candidate, value


def _is_sentence(value: str) -> bool:
    """True for a value that ends as a sentence does (``Yes.``, ``Ready?``), not for a
    name ending in initials or an abbreviation (``A.B.``, ``Smith Ltd.``, ``P07 (f.)``)."""
    value = value.rstrip("\"'”’»")
    if not value.endswith((".", "?", "!", "…", "。", "！", "？", "।")) or value.endswith(".)"):
        return False
    return not (value.endswith(".") and _ABBREVIATION.fullmatch(value.split()[-1]))


# Words of a greeting or a reply to one: a speaker field of a header block holds a name,
# a role or an id, never only these (``Interviewer: Good morning`` opens the interview).
_GREETING_WORDS = frozenset({
    "good", "morning", "afternoon", "evening", "day", "hello", "hi", "hey", "welcome",
    "thanks", "thank", "you", "yes", "yeah", "ok", "okay", "sure", "fine", "great", "nice",
    "right", "so", "well", "salaam", "salam", "assalamu", "alaikum", "peace"})


def _is_greeting(value: str) -> bool:
    """True for a value made only of greeting words (``Good morning``, ``Hi!``)."""
    words = re.findall(r"[^\W\d_]+", value.casefold())
    return bool(words) and all(w in _GREETING_WORDS for w in words)


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the text before ``end`` (white space aside) ends in a sentence's end."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end > 0 and text[end - 1] in _SENTENCE_END


def _typos_of_interviewers(found: list[Label], counts: Counter[str],
                           interviewer_labels: list[str]) -> list[Label]:
    """``found``, with a one-off label that is a typo of a recurring interviewer label of
    the text (``Interviwer:`` among ``Interviewer:``) read as that label: its question
    is not coded."""
    asking = {label.key: label for label in found
              if counts[label.key] >= 2 and is_interviewer(label.name, interviewer_labels)}
    if not asking:
        return found
    result = []
    for label in found:
        if counts[label.key] == 1 and label.key not in asking and len(label.key) >= 6:
            like = max(asking, key=lambda key: _similarity(key, label.key))
            if _similarity(like, label.key) >= 0.85:
                label = Label(label.start, label.end, like, asking[like].name)
        result.append(label)
    return result


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _initials(name: str, count: int) -> bool:
    """A speaker's initials that are also a common abbreviation (``NB:``, ``PS:``, ``RE:``)
    when they label three or more lines: a note is not written that often."""
    return count >= 3 and 2 <= len(name) <= 3 and name.isascii() and name.isalpha() \
        and name.isupper()


def _recurring(c: _Candidate, count: int, spaced: set[str], interviewer_labels: list[str],
               capitalised: bool) -> bool:
    """Whether a candidate is a speaker by itself: an interviewer label, or a name used
    for two or more labels that is no common word (``Note:``, ``Follow-up:``, ``He
    said:`` twice are not speakers) and reads as no clause (``It was targeted:``);
    written in lower case only (not ``capitalised`` anywhere: ``school:`` in wrapped
    lines), a known label (``respondent``, ``p1``) or emphasised or Otter-style; typed
    without a space after the colon, a name that is also written with one, or looks like
    a name."""
    if is_interviewer(c.name, interviewer_labels):
        return True
    if count < 2 or (_common_words(c.key) and c.key not in _ROLES
                     and not _initials(c.name, count)) or _reads_like_clause(c.name):
        return False
    if not capitalised and not (_laid_out(c) or _role(c, interviewer_labels)):
        return False
    return c.match["tight"] is None or c.key in spaced or _looks_like_name(c.name)


# Labels that may be written in lower case (``respondent:``, ``p1:``), besides the
# interviewer labels: other roles in a conversation.
KNOWN_LABELS = (
    "Respondent", "Resp", "R", "Interviewee", "Participant", "P", "Speaker", "Answer", "A",
    "Interpreter", "Translator", "Narrator", "Informant", "Entrevistado", "Entrevistada",
    "Enquêté", "Enquêtée", "Répondant", "Répondante",
)


def _role(c: _Candidate, interviewer_labels: list[str]) -> bool:
    """An interviewer label or one of ``KNOWN_LABELS`` (``respondent``, ``speaker 2``)."""
    return is_interviewer(c.name, interviewer_labels) or is_interviewer(c.name, KNOWN_LABELS)


def _laid_out(c: _Candidate) -> bool:
    """Laid out as a label whatever its words: emphasised (``**amira:**``) or Otter's
    ``amira  0:03``."""
    return c.match["em"] is not None or c.match["otter"] is not None


def _lower_case(name: str) -> bool:
    """True when ``name`` has cased letters, none a capital (``school``, ``it was``);
    false for ``al-Sayed`` and for scripts without case (Arabic, Chinese)."""
    return name != name.upper() and name == name.lower()


# Sentence ends: the last character of a line before a label (closing quotes and
# brackets, Markdown emphasis and the CJK and Devanagari stops included).
_SENTENCE_END = set(".!?…:;\"'”’»)]*_。！？।")


def _continues_sentence(text: str, c: _Candidate) -> bool:
    """True for a lower-case candidate whose line goes on with the sentence of the line
    above it (``...go to the`` / ``school: the road``, ``I had one`` / ``question: why``),
    in a hard-wrapped turn: that line is not blank and ends in no sentence end. Never
    for a label laid out as one (``_laid_out``)."""
    if c.start == 0 or not _lower_case(c.name) or _laid_out(c):
        return False
    before = text[text.rfind("\n", 0, c.start - 1) + 1 : c.start - 1].rstrip()
    return bool(before) and before[-1] not in _SENTENCE_END


def _alternative_labels(text: str, interviewer_labels: list[str]) -> list[Label]:
    """Labels of one of the ``_ALT_LABEL_RE`` forms, in a text without ``Name:`` labels.
    Taken only for a conversation: at least two roles that each open two or more lines,
    one of them an interviewer label, taking turns (the role changes at half the labels
    or more). So numbered headings (``A. Access``, ``I. Context``, ``II. Findings``), a
    dash inside prose and short lines of prose stay prose."""
    candidates = [(m, label_key(next(m[f] for f in _ALT_FORMS if m[f])))
                  for m in _ALT_LABEL_RE.finditer(text)]
    for form in _ALT_FORMS:
        found = [(m, key) for m, key in candidates if m[form]]
        roles = [_NUMBERED.sub("", key) for _, key in found]
        counts = Counter(roles)
        recurring = {role for role, n in counts.items() if n >= 2}
        if len(recurring) < 2 or all(_ROMAN.fullmatch(role) for role in recurring):
            continue
        kept = [(m, key) for (m, key), role in zip(found, roles, strict=True)
                if role in recurring]
        # a name alone on each of its lines with a time stamp: a transcription service's
        if not any(is_interviewer(role, interviewer_labels) for role in recurring) and not (
                form == "line" and all(_TIME_RE.search(m.group()) for m, _ in kept)):
            continue
        changes = sum(a[1] != b[1] for a, b in itertools.pairwise(kept))
        if changes * 2 < len(kept) - 1:
            continue
        return [Label(m.start(), m.end(), key, _display(m[form])) for m, key in kept]
    return []


def _one_off_speakers(
    text: str, candidates: list[_Candidate], recurring: list[bool], accepted: list[bool],
    interviewer_labels: list[str],
) -> list[bool]:
    """``accepted``, plus the one-off labels that are speakers: a capitalised name (an
    interpreter, a second interviewee), not a common word, after the first accepted
    label and before a recurring speaker's turn (or answering the last question: the
    first label after the last interviewer turn), laid out like the recurring labels
    (same Markdown form; starting a paragraph where they are separated by blank lines).
    So ``Example:`` or ``Then:`` opening a line inside an answer is not a speaker."""
    first = next((i for i, ok in enumerate(accepted) if ok), len(accepted))
    last = next((i for i in range(len(recurring) - 1, first, -1) if recurring[i]), first)
    if last + 1 < len(candidates) and accepted[last] and is_interviewer(
            candidates[last].name, interviewer_labels):
        last += 2  # the answer to the last question
    one_offs = [i for i in range(first + 1, last) if not accepted[i]]
    if not one_offs:
        return accepted
    later = [c for c, ok in zip(candidates[first:], recurring[first:], strict=True) if ok]
    forms = {_form(c.match) for c in later}
    paragraphs = any(c.start > 0 and _starts_paragraph(text, c.start) for c in later)
    result = list(accepted)
    for i in one_offs:
        c = candidates[i]
        result[i] = (
            _form(c.match) in forms
            and _looks_like_name(c.name)
            and not _common_words(c.key)
            and (not paragraphs or _starts_paragraph(text, c.start))
        )
    return result


def _starts_paragraph(text: str, start: int) -> bool:
    """True when the line at ``start`` opens the text or follows a blank line."""
    if start == 0:
        return True
    before = text.rfind("\n", 0, start - 1) + 1
    return not text[before : start - 1].strip()


# Words that end a one-off label inside a turn or a header, never a speaker's.
_NOT_SPEAKERS = {
    "date", "time", "note", "notes", "location", "place", "duration", "title", "subject",
    "topic", "language", "participants", "transcript", "transcriber", "recording", "source",
    "file", "case", "project", "re", "nb", "ps", "update", "edit", "summary", "question",
    "answer", "context", "background",
    "example", "examples", "e.g.", "eg", "i.e.", "ie", "then", "so", "and", "but", "also",
    "first", "firstly", "second", "secondly", "third", "thirdly", "finally", "lastly",
    "next", "later", "now", "today", "yesterday", "afterwards", "meanwhile", "however",
    "therefore", "because", "well", "yes", "no", "ok", "okay", "result", "results",
    "reason", "reasons", "problem", "problems", "issue", "issues", "point",
    "points", "lesson", "lessons", "conclusion", "step", "steps", "option", "options",
    "part", "section", "comment", "remark", "reply", "response", "quote", "translation",
    "correction", "clarification", "definition", "observation", "warning", "reminder",
    "fact", "important", "end", "start", "break", "pause", "inaudible", "crosstalk",
    "laughter", "silence", "message", "email", "letter", "demand", "demands", "condition",
    "conditions", "request", "agenda", "attendees", "present", "interview",
    "said", "says", "asked", "asks", "replied", "answered", "told", "follow-up", "followup",
    "probe", "prompt",
}
# Common words that do name speakers when they recur (``Question:`` / ``Answer:``).
_ROLES = {"question", "answer"}
# Words that never begin a speaker's name or role (``For Example:``, ``In Short:``).
_NOT_NAME_STARTS = {
    "for", "in", "on", "at", "to", "as", "by", "and", "but", "or", "so", "then", "also",
    "if", "when", "my", "our", "your", "their", "this", "that", "what", "why", "how",
}


# Words that make a run of words a clause, not a name, when written in lower case
# (``It was targeted``, ``Each wants something``, ``We said it plainly``): pronouns,
# auxiliary verbs, quantifiers, conjunctions. Capitalised, some are names (``May Thu``).
_CLAUSE_WORDS = {
    "i", "we", "you", "he", "she", "it", "they", "me", "us", "him", "them", "its", "there",
    "am", "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "do",
    "does", "did", "will", "would", "shall", "should", "can", "could", "may", "might",
    "must", "not", "each", "every", "some", "any", "many", "few", "much", "such",
    "something", "anything", "nothing", "everything", "someone", "anyone", "everyone",
    "somebody", "anybody", "nobody", "everybody", "which", "who", "whom", "whose", "that",
    "because", "if", "when", "where", "while", "although", "though", "than",
}


def _reads_like_clause(name: str) -> bool:
    """True for words that read as a clause, not a name: two or more words, one of them
    a lower-case ``_CLAUSE_WORDS`` (``it was targeted``; not ``KIO liaison officer``)."""
    words = [w.strip(",.") for w in name.split(" (", 1)[0].split()]
    return len(words) > 1 and any(w in _CLAUSE_WORDS for w in words)


def _common_words(key: str) -> bool:
    """True for ``example``, ``for example``, ``key point``: not a one-off speaker."""
    words = [w.strip(",.") for w in key.split(" (", 1)[0].split()]
    return words[0] in _NOT_NAME_STARTS or words[-1] in _NOT_SPEAKERS


def _full_name(match: re.Match[str]) -> str:
    name = match["name"] or match["otter"]
    return f"{name} {match['note']}" if match["note"] else name


def _looks_like_name(name: str) -> bool:
    """Capitalised words, numbers allowed after the first (``Participant 1``, ``#3``)."""
    words = [w for w in name.split() if not w.startswith("(")]
    return bool(words) and words[0][0].isupper() and all(
        w[0].isupper() or w.lstrip("#").isdigit() for w in words[1:])
