"""The codebook: its schema, a validator that reports every problem at once, and a summary.

A codebook is data (``codebook.yaml``): categories, and codes with a definition, guidance,
examples and spaCy rules. Nothing here knows any particular code: swapping the file for
another study's must just work.

``validate_codebook`` never stops at the first problem. It parses the YAML node tree so that
every problem (a pydantic error or one of the checks below) names the file, the line and a
fix. Besides the schema it checks:

- ids: ``^[A-Za-z][A-Za-z0-9_-]*$``, at most 64 characters (ids name output files such as
  ``cooccurrence_<a>_x_<b>.csv``), unique; code ids must not clash (case-insensitively)
  with the columns of ``coded_segments.csv`` (``segment_id`` ... ``codes``); the suggested
  fix transliterates accents (``négociation`` -> ``negociation``);
- references: a code's ``category`` must name a category (a ``related`` code that does not
  exist is only a warning: it is a hint, and a renamed codebook may miss one);
- text: ``name`` and ``definition`` must not be blank, phrases must not be empty;
- rules: every token pattern must compile in a validating spaCy ``Matcher``; attributes that
  the rule layer's pipeline (``spacy.blank`` + lookup lemmatizer) never sets, such as
  ``POS`` or ``DEP``, are reported because such a pattern could never match;
- broad rules: rules that match almost every sentence (a rule hit alone applies a code) are
  problems: a phrase with no letter or digit, a cue phrase that is a single English stop
  word (spaCy's list; multi-word phrases of stop words such as "back down" are real cues,
  and a stop word is a fine exclusion, e.g. "not"), a cue or exclusion phrase made only of
  the ~15 commonest English words ("of the", "and", "it is": stop words at least as common
  as "for" in spaCy's word frequencies), a pattern whose tokens are all optional, or whose
  required tokens are only punctuation, IS_*/LIKE_* flags or any word (or, for a cue, a
  single stop word; or only the commonest words);
- shape: at least one code, and no category without codes. An empty category is treated as
  a problem (not a warning): it is almost always a typo in a code's ``category`` or an
  unfinished edit, it would show up as a row of zeros in every report, and the fix (delete
  it, or add its codes) takes a second;
- YAML: duplicate keys in a mapping (YAML silently keeps the last one; a merge key
  ``<<: *anchor`` is none, and keys written beside it override the merged ones), and
  unquoted on/off/yes/no inside token patterns (YAML reads them as booleans).

A missing field is reported at the line of the entry that lacks it; a misspelt required
field is reported once, as an unknown field with the suggested name.

``check_codebook`` also warns (without failing) about codes that have no rules (only the
model applies them, and without reviews far less precisely) and about
``related`` hints that name no code.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "OUTPUT_COLUMNS",
    "Category",
    "Code",
    "Codebook",
    "CodebookError",
    "CodebookProblem",
    "Examples",
    "LabelledSegment",
    "Rules",
    "check_codebook",
    "codebook_warnings",
    "load_codebook",
    "summary_table",
    "validate_codebook",
]

ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# Ids name output columns and files (cooccurrence_<a>_x_<b>.csv): two ids must fit in one
# file name (255 bytes on most file systems) with room for the temp file's affixes.
ID_MAX_LENGTH = 64
ID_RULE = (f"an id starts with a letter (A-Z, a-z), then has only letters, digits, '_' or "
           f"'-' (no spaces, dots or accents), at most {ID_MAX_LENGTH} characters")
# Columns of coded_segments.csv that come before the one-column-per-code block.
OUTPUT_COLUMNS = (
    "segment_id", "doc_id", "source_type", "speaker", "turn", "char_start", "char_end",
    "text", "codable", "reviewed", "codes",
)
# Names that other tables put beside the code ids (a code so called would overwrite the
# column, or crash writing it, or be taken for the average row): the table that has it.
TABLE_NAMES = {
    "code_id": "cooccurrence.csv", "name": "cooccurrence_<a>_x_<b>.csv",
    "segments": "cooccurrence_<a>_x_<b>.csv", "status": "cooccurrence_<a>_x_<b>.csv",
    "n_segments": "code_document_matrix.csv", "n_codable": "code_document_matrix.csv",
    "micro_avg": "evaluation.csv", "macro_avg": "evaluation.csv",
}
# Token attributes set only by a tagger, parser, morphologiser, NER or senter: the rule
# layer runs spacy.blank("en") + a lookup lemmatizer, so patterns using them never match.
UNSET_TOKEN_ATTRS = frozenset({
    "POS", "TAG", "MORPH", "DEP", "ENT_TYPE", "ENT_IOB", "ENT_ID", "ENT_KB_ID",
    "IS_SENT_START", "SENT_START",
})
_LOADER_FIELDS = ("sha256", "path")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Category(_Model):
    """A group of codes (e.g. tactics, mechanisms, outcomes)."""

    id: str
    name: str
    description: str = ""


class Examples(_Model):
    """Short passages that do (positive) and do not (negative: near-misses) take the code."""

    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)


class Rules(_Model):
    """spaCy cues: phrases (lower-case text and lemmas), token patterns, and exclusions."""

    phrases: list[str] = Field(default_factory=list)
    patterns: list[list[dict[str, Any]]] = Field(default_factory=list)
    exclude_phrases: list[str] = Field(default_factory=list)
    exclude_patterns: list[list[dict[str, Any]]] = Field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of positive cues (phrases + patterns)."""
        return len(self.phrases) + len(self.patterns)


class LabelledSegment(_Model):
    """A whole passage coded against the codebook (written for it): training data. The codes
    it carries are the codes that list its id under ``segments``."""

    id: str
    text: str


class Code(_Model):
    """One code: what it means, when (not) to apply it, examples and rules."""

    id: str
    name: str
    category: str
    definition: str
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    examples: Examples = Field(default_factory=Examples)
    rules: Rules = Field(default_factory=Rules)
    related: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)  # ids of labelled segments it applies to


class ReportHints(_Model):
    """What the study's reports compare: category pairs for the co-occurrence cross-tabs."""

    category_pairs: list[tuple[str, str]] = Field(default_factory=list)


class Codebook(_Model):
    """A validated codebook; ``sha256`` and ``path`` are set by the loader, not the file."""

    name: str
    version: str
    description: str = ""
    categories: list[Category]
    codes: list[Code]
    report: ReportHints = Field(default_factory=ReportHints)
    labelled_segments: list[LabelledSegment] = Field(default_factory=list)
    sha256: str = ""
    path: str = ""

    @property
    def code_ids(self) -> list[str]:
        """Code ids in codebook order (the order of the output columns)."""
        return [c.id for c in self.codes]

    @property
    def ids_by_name(self) -> dict[str, str]:
        """Code id by code name, case and spacing folded (coders sometimes type the name)."""
        return {" ".join(c.name.split()).casefold(): c.id for c in self.codes}

    def code(self, code_id: str) -> Code:
        """The code with this id (KeyError naming the known ids otherwise)."""
        for c in self.codes:
            if c.id == code_id:
                return c
        raise KeyError(f"no code {code_id!r} in codebook {self.name!r}; codes: "
                       + ", ".join(self.code_ids))

    def category(self, category_id: str) -> Category:
        """The category with this id (KeyError naming the known ids otherwise)."""
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(f"no category {category_id!r} in codebook {self.name!r}; categories: "
                       + ", ".join(c.id for c in self.categories))

    def codes_in(self, category_id: str) -> list[Code]:
        """The codes of one category, in codebook order."""
        return [c for c in self.codes if c.category == category_id]

    def training_segments(self) -> tuple[list[str], list[frozenset[str]], list[str]]:
        """The labelled segments as training data: texts, the codes of each (the codes that
        list its id) and its document (the id up to its last ':'); blank ones and repeated
        ids are left out."""
        carried: dict[str, set[str]] = {}
        for code in self.codes:
            for segment_id in code.segments:
                carried.setdefault(segment_id, set()).add(code.id)
        texts, codes, groups, seen = [], [], [], set()
        for seg in self.labelled_segments:
            if seg.id in seen or not seg.text.strip():
                continue
            seen.add(seg.id)
            texts.append(seg.text)
            codes.append(frozenset(carried.get(seg.id, ())))
            groups.append(seg.id.rpartition(":")[0] or seg.id)
        return texts, codes, groups


@dataclass(frozen=True, slots=True)
class CodebookProblem:
    """One thing wrong with a codebook file: where it is and how to fix it."""

    file: str
    line: int | None
    where: str  # e.g. "codes[3] 'my_code' rules.patterns[0]" ("" for the whole file)
    message: str
    fix: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        where = f" {self.where}:" if self.where else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{place}:{where} {self.message}{fix}"


class CodebookError(Exception):
    """The codebook has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[CodebookProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- YAML lines

Loc = tuple[str | int, ...]


class _Lines:
    """Maps a location such as ("codes", 3, "rules") to its 1-based line in the file."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def line(self, loc: Loc) -> int | None:
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                pair = _find_key(node, part)
                if pair is None:
                    return line  # a missing field: point at its owner
                key, node = pair
                line = key.start_mark.line + 1
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def _find_key(node: yaml.MappingNode, name: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    found = None
    for key, value in node.value:  # the last duplicate wins, as in the constructed data
        if isinstance(key, yaml.ScalarNode) and key.value == str(name):
            found = (key, value)
    return found


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _duplicate_keys(node: yaml.Node, loc: Loc, out: list[tuple[Loc, int, int]]) -> None:
    """Collect (loc of the key, line of the first, line of the repeat) for repeated keys.

    Run on the composed tree, before construction: constructing a mapping with a merge key
    (``<<: *anchor``) copies the merged keys into it, and a key written beside the merge
    rightly overrides a merged one. A merge key itself is no key of the data.
    """
    seen_ids: set[int] = set()
    stack = [(node, loc)]
    while stack:
        current, where = stack.pop()
        if id(current) in seen_ids:  # aliases can share nodes
            continue
        seen_ids.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and key.tag != _MERGE_TAG:
                    if name in first:
                        out.append(((*where, name), first[name], key.start_mark.line + 1))
                    else:
                        first[name] = key.start_mark.line + 1
                stack.append((value, (*where, name if name is not None else "?")))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((v, (*where, i)) for i, v in enumerate(current.value))


# --------------------------------------------------------------------------- helpers


def _yaml_type(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping (key: value lines)"
    return type(value).__name__


def _closest(word: str, choices: list[str]) -> str | None:
    hits = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not hits:  # case slips ("My_code" for "my_code") fall below the ratio cutoff
        lower = {c.lower(): c for c in choices}
        return lower.get(word.lower())
    return hits[0]


def _fields(loc: Loc) -> list[str]:
    """Valid field names of the model at ``loc`` (for "did you mean" suggestions)."""
    names = tuple(p for p in loc if isinstance(p, str))
    model: type[BaseModel] | None = {
        (): Codebook,
        ("categories",): Category,
        ("codes",): Code,
        ("codes", "examples"): Examples,
        ("codes", "rules"): Rules,
    }.get(names)
    if model is None:
        return []
    return [f for f in model.model_fields if not (model is Codebook and f in _LOADER_FIELDS)]


def _fmt_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Context:
    """Collects problems for one file, naming entries by index and id."""

    def __init__(self, file: str, data: Any, lines: _Lines):
        self.file = file
        self.data = data if isinstance(data, dict) else {}
        self.lines = lines
        self.problems: list[CodebookProblem] = []

    def entry_id(self, section: str, index: int) -> str | None:
        items = self.data.get(section)
        if isinstance(items, list) and 0 <= index < len(items) \
                and isinstance(items[index], dict) and isinstance(items[index].get("id"), str):
            return items[index]["id"]
        return None

    def where(self, loc: Loc) -> str:
        if len(loc) >= 2 and loc[0] in ("codes", "categories") and isinstance(loc[1], int):
            head = f"{loc[0]}[{loc[1]}]"
            entry = self.entry_id(str(loc[0]), loc[1])
            if entry is not None:
                head += f" {entry!r}"
            rest = _fmt_loc(loc[2:])
            return f"{head} {rest}" if rest else head
        return _fmt_loc(loc)

    def add(self, loc: Loc, message: str, fix: str) -> None:
        self.problems.append(
            CodebookProblem(self.file, self.lines.line(loc), self.where(loc), message, fix))


# --------------------------------------------------------------------------- schema errors


def _schema_problem(ctx: _Context, err: Any) -> None:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        name = str(loc[-1])
        ctx.add(loc[:-1], f"missing required field '{name}'.",
                f"add a line '{name}: ...' to this entry.")
    elif kind == "extra_forbidden":
        name = str(loc[-1])
        valid = _fields(loc[:-1])
        guess = _closest(name, valid)
        if name in _LOADER_FIELDS and loc[:-1] == ():
            fix = f"remove it: '{name}' is set by the loader, not written in the file."
        elif guess:
            fix = f"did you mean '{guess}'? Rename the field."
        else:
            fix = "remove it, or use one of: " + ", ".join(valid) + "."
        message = f"unknown field '{name}'."
        if err.get("renamed"):
            message = f"unknown field '{name}' (and the required field '{err['renamed']}' " \
                      "is missing)."
        ctx.add(loc, message, fix)
    elif kind == "string_type":
        if isinstance(value, bool | int | float):
            fix = f"put the value in quotes, e.g. {loc[-1] if isinstance(loc[-1], str) else 'x'}"
            fix += f": \"{value}\" (YAML reads unquoted numbers and yes/no as other types)."
        elif value is None:
            fix = "write the text after the colon (or remove the line if it is optional)."
        elif isinstance(value, dict):
            fix = ("put the whole text in quotes: YAML reads 'words: more words' as a key "
                   "and a value.")
        else:
            fix = "write a single piece of text here."
        ctx.add(loc, f"expected text, found {_yaml_type(value)}.", fix)
    elif kind == "list_type":
        fix = "write one '- item' per line under it (or [item, item] on one line)."
        if isinstance(value, str):
            fix = "put '- ' before the text to make it a one-item list, or add more '- ' lines."
        ctx.add(loc, f"expected a list, found {_yaml_type(value)}.", fix)
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        if len(loc) >= 2 and any(p in ("patterns", "exclude_patterns") for p in loc):
            message = f"expected a token mapping like {{LOWER: aid}}, found {_yaml_type(value)}."
            fix = "write each token as {ATTRIBUTE: value}, e.g. [{LEMMA: suspend}, {LOWER: aid}]."
        else:
            message = f"expected a mapping of 'key: value' lines, found {_yaml_type(value)}."
            fix = "write indented 'key: value' lines under it."
        ctx.add(loc, message, fix)
    else:
        ctx.add(loc, f"{err['msg']}.", "see the schema described at the top of codebook.yaml.")


def _merge_typos(errors: list[Any]) -> list[dict[str, Any]]:
    """Report a misspelt required field once ("unknown 'defintion'"), not also as missing."""
    out = [dict(e) for e in errors]
    missing = {(tuple(e["loc"][:-1]), e["loc"][-1]) for e in out if e["type"] == "missing"}
    renamed: set[tuple[Loc, Any]] = set()
    for e in out:
        if e["type"] == "extra_forbidden":
            owner = tuple(e["loc"][:-1])
            guess = _closest(str(e["loc"][-1]), _fields(owner))
            if (owner, guess) in missing:
                renamed.add((owner, guess))
                e["renamed"] = guess
    return [e for e in out
            if not (e["type"] == "missing" and (tuple(e["loc"][:-1]), e["loc"][-1]) in renamed)]


# --------------------------------------------------------------------------- own checks


@lru_cache(maxsize=1)
def _vocab() -> Any:
    # A bare vocabulary is enough to check patterns (English's would take ~0.3 s to load).
    from spacy.vocab import Vocab

    return Vocab()


@lru_cache(maxsize=1)
def _token_attrs() -> list[str]:
    from spacy.schemas import TokenPattern

    return [f.alias or name.upper() for name, f in TokenPattern.model_fields.items()]


_SPACY_LINE = re.compile(r"^- \[pattern -> (\d+)(?: -> ([^\]]*))?\] (.*)$")


def _check_pattern(ctx: _Context, loc: Loc, pattern: list[dict[str, Any]]) -> None:
    from spacy.matcher import Matcher

    if not pattern:
        ctx.add(loc, "empty token pattern.", "add at least one token, or remove the pattern.")
        return
    booleans = False
    for k, token in enumerate(pattern):
        for attr, value in token.items():
            if _stray_bool(str(attr), value):
                booleans = True
                ctx.add((*loc, k), f"{attr} has a true/false value: YAML reads unquoted "
                        "on, off, yes and no as booleans.",
                        'put the word in quotes, e.g. {LOWER: "on"} or [in, "on", at].')
            if str(attr).upper() in UNSET_TOKEN_ATTRS:
                ctx.add((*loc, k), f"attribute {attr} is never set by the rule layer "
                        "(spacy.blank + lookup lemmatizer, no tagger/parser/NER), so this "
                        "pattern can never match.",
                        "use LOWER or LEMMA (or a phrase) instead.")
    if booleans:  # spaCy's message for these is cryptic; ours above says it all
        return
    try:
        Matcher(_vocab(), validate=True).add("check", [pattern])
    except Exception as exc:  # MatchPatternError, ValueError, re.error ...
        by_token: dict[int, list[str]] = {}
        hints: dict[int, str] = {}
        for text in str(exc).splitlines():
            m = _SPACY_LINE.match(text.strip())
            if not m:
                continue
            k, path, msg = int(m.group(1)), (m.group(2) or "").split(" -> "), m.group(3)
            attr = path[0] if path and path[0] else ""
            by_token.setdefault(k, []).append(f"{attr + ': ' if attr else ''}{msg}")
            if msg.startswith("Extra inputs") and attr:
                guess = _closest(attr, _token_attrs())
                by_token[k][-1] = f"unknown attribute '{attr}'"
                hints[k] = (f"did you mean '{guess}'?" if guess else
                            "valid attributes: " + ", ".join(_token_attrs()) + ".")
        if not by_token:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            ctx.add(loc, f"invalid spaCy token pattern: {first}",
                    "see https://spacy.io/usage/rule-based-matching#matcher and fix the "
                    "pattern.")
            return
        for k, msgs in by_token.items():
            unique = list(dict.fromkeys(msgs))
            ctx.add((*loc, k) if k < len(pattern) else loc,
                    f"invalid spaCy token pattern, token {k}: " + "; ".join(unique) + ".",
                    hints.get(k) or "write tokens like {LEMMA: suspend} or "
                    "{LOWER: {IN: [aid, assistance]}} (see https://spacy.io/usage/"
                    "rule-based-matching#matcher).")


def _stray_bool(attr: str, value: Any) -> bool:
    """A boolean where spaCy expects text: the YAML on/off/yes/no trap."""
    if attr.upper().startswith(("IS_", "LIKE_", "SPACY", "SENT_")):
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, dict):
        return any(_stray_bool(attr, v) for v in value.values())
    if isinstance(value, list):
        return any(isinstance(v, bool) for v in value)
    return False


def _suggest_id(value: str, kind: str) -> str:
    """A valid id close to ``value``: accents transliterated (négociation -> negociation)."""
    ascii_text = "".join(ch for ch in unicodedata.normalize("NFKD", value)
                         if not unicodedata.combining(ch))
    guess = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_-") or "my_id"
    if not guess[0].isalpha():
        guess = f"{kind[0]}_{guess}"
    return guess[:ID_MAX_LENGTH].rstrip("_-")


def _check_id(ctx: _Context, loc: Loc, value: str, kind: str) -> None:
    if not ID_PATTERN.match(value):
        ctx.add(loc, f"{kind} id {value!r} is not a valid id: {ID_RULE}.",
                f"use a letter first, then letters, digits, '_' or '-' (no spaces), e.g. "
                f"'{_suggest_id(value, kind)}'.")
    if len(value) > ID_MAX_LENGTH:
        shown = value if len(value) <= 24 else value[:24] + "…"
        ctx.add(loc, f"{kind} id '{shown}' is {len(value)} characters long; ids may have at "
                f"most {ID_MAX_LENGTH} (they name output columns and files such as "
                "cooccurrence_<a>_x_<b>.csv, which would be too long to write).",
                f"shorten it to {ID_MAX_LENGTH} characters or fewer, e.g. "
                f"'{_suggest_id(value, kind)}', and use the same id wherever it is "
                "referred to.")
    if kind == "code" and value.lower() in OUTPUT_COLUMNS:
        ctx.add(loc, f"code id {value!r} clashes with the output column '{value.lower()}' "
                "of coded_segments.csv.",
                f"rename the code, e.g. '{value}_code'. Reserved: {', '.join(OUTPUT_COLUMNS)}.")
    elif kind == "code" and value.lower() in TABLE_NAMES:
        what = "row" if value.lower().endswith("_avg") else "column"
        ctx.add(loc, f"code id {value!r} clashes with the {what} '{value.lower()}' of "
                f"{TABLE_NAMES[value.lower()]}.",
                f"rename the code, e.g. '{value}_code'. Reserved: {', '.join(TABLE_NAMES)}.")


def _blank(ctx: _Context, entry: dict[str, Any], loc: Loc, field: str) -> None:
    value = entry.get(field)
    if isinstance(value, str) and not value.strip():
        ctx.add((*loc, field), f"{field} is empty.",
                f"write the {field} (it is shown to coders and used in reports).")


def _check_entries(ctx: _Context) -> None:
    data = ctx.data
    categories = data.get("categories")
    codes = data.get("codes")

    cat_ids: dict[str, int] = {}
    for i, cat in enumerate(categories if isinstance(categories, list) else []):
        if not isinstance(cat, dict):
            continue
        loc: Loc = ("categories", i)
        cid = cat.get("id")
        if isinstance(cid, str):
            _check_id(ctx, (*loc, "id"), cid, "category")
            same_case = next((c for c in cat_ids if c.casefold() == cid.casefold()), None)
            if cid in cat_ids:
                first = ctx.lines.line(("categories", cat_ids[cid], "id"))
                ctx.add((*loc, "id"), f"duplicate category id {cid!r} (first defined at line "
                        f"{first}).", "give each category a unique id, or merge the two.")
            elif same_case is not None:  # cooccurrence_<a>_x_<b>.csv would be one file
                first = ctx.lines.line(("categories", cat_ids[same_case], "id"))
                ctx.add((*loc, "id"), f"category id {cid!r} differs from {same_case!r} (line "
                        f"{first}) only in case: on Windows and macOS their output files "
                        "would overwrite each other.", "give each category its own id.")
                cat_ids[cid] = i
            else:
                cat_ids[cid] = i
        _blank(ctx, cat, loc, "name")

    if not isinstance(codes, list):
        return
    if not codes:
        ctx.add(("codes",), "the codebook has no codes.",
                "add at least one entry under 'codes:' (the default codebook.yaml shows "
                "the format).")
    code_ids: dict[str, int] = {}
    for i, code in enumerate(codes):
        if not isinstance(code, dict) or not isinstance(code.get("id"), str):
            continue
        cid = code["id"]
        _check_id(ctx, ("codes", i, "id"), cid, "code")
        if cid in code_ids:
            first = ctx.lines.line(("codes", code_ids[cid], "id"))
            ctx.add(("codes", i, "id"), f"duplicate code id {cid!r} (first defined at line "
                    f"{first}).", "give each code a unique id, or merge the two entries.")
        else:
            code_ids[cid] = i
    folded = {c.lower() for c in code_ids}
    for cid, i in code_ids.items():  # cooccurrence_<a>_x_<b>.csv has jaccard_<code> columns
        if cid.lower().startswith("jaccard_") and cid.lower()[8:] in folded:
            ctx.add(("codes", i, "id"), f"code id {cid!r} clashes with the column '{cid}' "
                    f"(the Jaccard index of code '{cid[8:]}') of cooccurrence_<a>_x_<b>.csv.",
                    f"rename the code, e.g. '{cid[8:]}_{cid[:7]}'.")

    used: set[str] = set()
    for i, code in enumerate(codes):
        if not isinstance(code, dict):
            continue
        loc = ("codes", i)
        category = code.get("category")
        if isinstance(category, str) and isinstance(categories, list):
            used.add(category)
            if category not in cat_ids:
                guess = _closest(category, list(cat_ids))
                known = ", ".join(cat_ids) or "none defined"
                ctx.add((*loc, "category"), f"unknown category {category!r}.",
                        (f"did you mean '{guess}'? " if guess else "")
                        + f"Categories: {known}; or add it under 'categories:'.")
        related = code.get("related")
        for j, other in enumerate(related if isinstance(related, list) else []):
            if not isinstance(other, str):
                continue
            if other == code.get("id"):
                ctx.add((*loc, "related", j), f"related names the code itself ({other!r}).",
                        "remove it: related lists other codes.")
        _blank(ctx, code, loc, "name")
        _blank(ctx, code, loc, "definition")
        rules = code.get("rules")
        if isinstance(rules, dict):
            _check_rules(ctx, (*loc, "rules"), rules)

    if isinstance(categories, list) and codes:  # with no codes at all, say that once
        for cid, i in cat_ids.items():
            if cid not in used:
                ctx.add(("categories", i), f"category {cid!r} has no codes.",
                        f"add codes with 'category: {cid}', or remove the category.")


def _check_rules(ctx: _Context, loc: Loc, rules: dict[str, Any]) -> None:
    for name in ("phrases", "exclude_phrases"):
        items = rules.get(name)
        for j, phrase in enumerate(items if isinstance(items, list) else []):
            if isinstance(phrase, str) and not phrase.strip():
                ctx.add((*loc, name, j), "empty phrase.",
                        "write the cue words between the quotes, or remove the line.")
            elif isinstance(phrase, str):
                _check_broad_phrase(ctx, (*loc, name, j), phrase, name == "phrases")
    for name in ("patterns", "exclude_patterns"):
        items = rules.get(name)
        for j, pattern in enumerate(items if isinstance(items, list) else []):
            if isinstance(pattern, list) and all(isinstance(t, dict) for t in pattern):
                _check_pattern(ctx, (*loc, name, j), pattern)
                if pattern:
                    _check_broad_pattern(ctx, (*loc, name, j), pattern, name == "patterns")


# A rule hit alone applies a code (without reviews), and an exclusion hit drops every cue of
# its sentence, so a rule that matches almost every sentence is a problem, not a style issue.
_BROAD_CUE = ("matches almost every sentence — without reviews a rule hit alone applies the "
              "code, so it would go on nearly every segment")
_BROAD_EXCLUSION = ("matches almost every sentence — the code's cues would be dropped almost "
                    "everywhere")
_TEXT_ATTRS = frozenset({"ORTH", "TEXT", "LOWER", "NORM", "LEMMA"})
_OPTIONAL_OPS = frozenset({"?", "*"})
# Function words that a phrase made only of them ("of the", "on the", "with them", "it
# was") finds in almost every sentence: the stop words at least as common as "she" in
# English text (log frequency >= -7.0 in spaCy's lexeme_prob table of spacy-lookups-data)
# that are articles, demonstratives, personal pronouns, prepositions, "and"/"or" or forms
# of be, have and do, with the rest of their sets ("us", "our", "its", "am", "these"). Left
# out as they can make a rule: negations ("not", "no"), "if", "but", modals ("would",
# "could", "will"), particles ("up", "out", "back") and adverbs ("only", "just", "now").
# Written out because loading that table costs ~0.5 s per check and run.
_COMMONEST_WORDS = frozenset({
    "the", "a", "an", "this", "that", "these", "those",
    "i", "me", "my", "you", "your", "he", "him", "his", "she", "her", "it", "its",
    "we", "us", "our", "they", "them", "their", "there",
    "of", "in", "to", "for", "on", "with", "as", "at", "about", "from", "by", "into",
    "and", "or",
    "is", "am", "are", "was", "were", "be", "been", "being",
    "has", "have", "had", "do", "does", "did",
    "'s", "n't", "'re", "'m", "'ve",
})


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _no_word(text: str) -> bool:
    return not any(ch.isalnum() for ch in text)


def _words(text: str) -> list[str]:
    return [w.strip(".,;:!?\"'()") for w in text.lower().split()]


def _stop_word(text: str) -> bool:
    """One word (no space) that is an English stop word ("the", "and", "of", "was")."""
    words = _words(text)
    return len(words) == 1 and words[0] in _stop_words()


def _commonest(words: list[str]) -> bool:
    """Every word is one of the commonest English function words (:data:`_COMMONEST_WORDS`)."""
    return bool(words) and all(w in _COMMONEST_WORDS for w in words)


def _check_broad_phrase(ctx: _Context, loc: Loc, phrase: str, cue: bool) -> None:
    what = _BROAD_CUE if cue else _BROAD_EXCLUSION
    if _no_word(phrase):
        ctx.add(loc, f"phrase {phrase!r} has no letter or digit: it {what}.",
                "write the cue words (e.g. 'suspended the distribution'), or remove the line.")
    elif cue and _stop_word(phrase):
        # Only for cues: an exclusion such as "not" (negation) is a reasonable rule.
        ctx.add(loc, f"phrase {phrase!r} is a single very common word: it {what}.",
                "use a longer phrase: the word with the words around it that make the cue "
                "specific, or remove the line.")
    elif _commonest(_words(phrase)):
        # "of the", "and", "it is": in almost every sentence, as a cue or as an exclusion.
        ctx.add(loc, f"phrase {phrase!r} is made only of the commonest English words (stop "
                f"words such as 'the', 'of', 'and', 'in', 'is'): it {what}.",
                "use a longer phrase: the word with the words around it that make the cue "
                "specific, or remove the line." if cue else
                "name the words that make a sentence an exception (e.g. 'not', 'only if', "
                "'refused the'), or remove the line.")


def _weak_value(value: Any, cue: bool) -> bool:
    """A text attribute's value that matches almost any token (punctuation, a stop word)."""
    if isinstance(value, str):
        return _no_word(value) or (cue and _stop_word(value))
    if isinstance(value, dict):
        if any(str(op).upper() in ("NOT_IN", "!=") for op in value):
            return True
        options = value.get("IN")
        return isinstance(options, list) and bool(options) \
            and all(_weak_value(v, cue) for v in options)
    return False


def _weak_token(token: dict[str, Any], cue: bool) -> bool:
    """A token that matches almost any token: no attribute, only IS_*/LIKE_* flags,
    punctuation (or, for a lone cue token, a stop word), or a negated one (OP "!")."""
    if token.get("OP") == "!":
        return True
    attrs = {str(a).upper(): v for a, v in token.items() if str(a).upper() != "OP"}
    for attr, value in attrs.items():
        if attr.startswith(("IS_", "LIKE_")):
            continue
        if attr in _TEXT_ATTRS and _weak_value(value, cue):
            continue
        return False
    return True


def _check_broad_pattern(ctx: _Context, loc: Loc, pattern: list[dict[str, Any]],
                         cue: bool) -> None:
    required = [t for t in pattern if t.get("OP") not in _OPTIONAL_OPS]
    what = _BROAD_CUE if cue else _BROAD_EXCLUSION
    fix = ("give it at least one required token that names a word, e.g. [{LEMMA: suspend}, "
           "{OP: \"?\"}, {LOWER: aid}], or remove the pattern.")
    if not required:
        ctx.add(loc, f"every token of this pattern is optional (OP \"?\" or \"*\"): it {what}.",
                fix)
        return
    specific = [t for t in required if not _weak_token(t, cue=False)]
    if not specific:
        ctx.add(loc, "this pattern's required tokens are only punctuation, IS_*/LIKE_* flags or "
                f"any word: it {what}.", fix)
    elif cue and len(specific) == 1 and _weak_token(specific[0], cue=True):
        # One stop word plus flags ([{LOWER: the}, {IS_ALPHA: true}]) is as broad as the
        # phrase "the"; two or more stop words ("back down") can be a real cue.
        ctx.add(loc, "this pattern's only word is a very common one (a stop word such as "
                f"'the' or 'of'), the rest being optional or flags: it {what}.", fix)
    elif all(_common_token(t) for t in specific):
        ctx.add(loc, "this pattern's required words are all among the commonest English "
                f"words (stop words such as 'the', 'of', 'and', 'in', 'is'): it {what}.", fix)


def _common_token(token: dict[str, Any]) -> bool:
    """A token whose text attributes allow only the commonest words ({LOWER: the},
    {LOWER: {IN: [of, in]}}), whatever IS_*/LIKE_* flags it also has."""
    found = False
    for attr, value in token.items():
        name = str(attr).upper()
        if name == "OP" or name.startswith(("IS_", "LIKE_")):
            continue
        options = value.get("IN") if isinstance(value, dict) and len(value) == 1 else None
        words = [value] if isinstance(value, str) else options
        if name not in _TEXT_ATTRS or not isinstance(words, list) \
                or not all(isinstance(w, str) for w in words) \
                or not _commonest([w.lower() for w in words]):
            return False
        found = True
    return found


# --------------------------------------------------------------------------- entry points


def _yaml_fix(problem: str) -> str:
    if "\t" in problem or "\\t" in problem:
        return "indent with spaces, not tabs."
    if "mapping values are not allowed" in problem:
        return "put text that contains ': ' in quotes, or check the indentation of this line."
    if "found undefined alias" in problem:
        return "remove the '*' or define the anchor ('&name') first."
    if "expected a single document" in problem:
        return "remove the extra '---' document separator."
    if "for merging" in problem:
        return ("write '<<: *name' with the name of an anchored mapping ('&name' before its "
                "first key), or a list of them: '<<: [*a, *b]'.")
    return "check the indentation, quotes and brackets on this line and the one above it."


_OPENERS = {  # YAML's context of an error -> what was opened, and the fix's end
    "while parsing a flow sequence": ("the '['", "with ']', or put the text in quotes."),
    "while parsing a flow mapping": ("the '{'", "with '}', or put the text in quotes."),
    "while scanning a quoted scalar": ("the quote", "(or remove it)."),
}


def _check_report(ctx: _Context) -> None:
    report = ctx.data.get("report")
    pairs = report.get("category_pairs") if isinstance(report, dict) else None
    if not isinstance(pairs, list):
        return
    known = [c.get("id") for c in ctx.data.get("categories") or [] if isinstance(c, dict)]
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list):
            continue
        for j, category in enumerate(pair):
            if isinstance(category, str) and category not in known:
                hint = _closest(category, [k for k in known if isinstance(k, str)])
                fix = f"did you mean '{hint}'?" if hint else "use one of the categories' ids."
                ctx.add(("report", "category_pairs", i, j), f"unknown category '{category}'.",
                        fix)


def _parse(text: str, loader_class: type
           ) -> tuple[yaml.Node | None, Any, list[tuple[Loc, int, int]]]:
    """The document's node tree (for line numbers), its data and its repeated keys (see
    :func:`_duplicate_keys`)."""
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        dupes: list[tuple[Loc, int, int]] = []
        if root is None:
            return None, None, dupes
        _duplicate_keys(root, (), dupes)
        return root, loader.construct_document(root), dupes
    finally:
        loader.dispose()


def validate_codebook(path: str | Path) -> tuple[Codebook | None, list[CodebookProblem]]:
    """Validate a codebook file; return (codebook or None, every problem found)."""
    file = str(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return None, [CodebookProblem(file, None, "", "file not found.",
                                      "check the path (the default is codebook.yaml in the "
                                      "project folder) or pass the codebook file explicitly.")]
    except IsADirectoryError:
        return None, [CodebookProblem(file, None, "", "this is a folder, not a file.",
                                      "pass the path of the .yaml file itself.")]
    except OSError as exc:
        return None, [CodebookProblem(file, None, "", f"cannot read the file ({exc.strerror}).",
                                      "check that the file exists and that you may read it.")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [CodebookProblem(file, line, "", f"not UTF-8 text (byte "
                                      f"0x{raw[exc.start]:02x}).",
                                      "save the file as UTF-8 in your editor.")]
    key = (file, hashlib.sha256(raw).hexdigest())
    if key not in _VALIDATED:
        try:
            found = _validate_text(file, raw, text)
        except RecursionError:  # YAML's parser and the checks below walk the tree recursively
            found = None, [CodebookProblem(
                file, None, "", "the YAML is nested too deeply to read.",
                "look for runs of '[' or '{' (or deep indentation): a codebook needs only a "
                "few levels.")]
        if len(_VALIDATED) >= 8:
            _VALIDATED.clear()
        _VALIDATED[key] = found
    book, problems = _VALIDATED[key]
    # a copy: a caller may change its codebook, and the next must get the file's
    return (None if book is None else book.model_copy(deep=True)), list(problems)


# Codebooks validated in this process, by file name and content: a command checks its
# codebook, loads it and hands it to the flow, which loads it again (~0.3 s each).
_VALIDATED: dict[tuple[str, str], tuple[Codebook | None, list[CodebookProblem]]] = {}


def _validate_text(file: str, raw: bytes, text: str
                   ) -> tuple[Codebook | None, list[CodebookProblem]]:
    """:func:`validate_codebook` of the file's decoded ``text`` (``raw``: its bytes)."""
    try:
        root, data, dupes = _parse(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        root, data, dupes = None, None, []  # reported below, in the pure-Python parser's words
    try:
        if root is None:
            root, data, dupes = _parse(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        fix = _yaml_fix(message)
        opened = _OPENERS.get(str(exc.context))
        if opened and exc.context_mark and exc.problem_mark \
                and exc.context_mark.line != exc.problem_mark.line:
            # An unclosed '[', '{' or quote is found lines (in a codebook: often dozens)
            # after the place to fix: point there.
            message += f" (at line {line}): {opened[0]} here is not closed"
            line = exc.context_mark.line + 1
            fix = f"close {opened[0]} on this line {opened[1]}"
        return None, [CodebookProblem(file, line, "", f"YAML syntax error: {message}.", fix)]
    except yaml.YAMLError as exc:
        return None, [CodebookProblem(file, None, "", f"YAML error: {exc}.", _yaml_fix(str(exc)))]

    lines = _Lines(root)
    ctx = _Context(file, data, lines)
    if not isinstance(data, dict):
        got = "the file is empty" if data is None else f"the file holds {_yaml_type(data)}"
        ctx.add((), f"the top level must be a mapping (name:, version:, categories:, codes:); "
                f"{got}.", "start the file with 'name: ...' and 'version: \"1.0\"' lines, as in "
                "the default codebook.yaml.")
        return None, ctx.problems

    for loc, first, repeat in sorted(dupes, key=lambda d: d[2]):
        where = ctx.where(loc[:-1])
        ctx.problems.append(CodebookProblem(
            file, repeat, where, f"key '{loc[-1]}' appears twice in this entry (first at line "
            f"{first}); YAML keeps only the last one.", "remove or rename one of them."))

    fields = {k: v for k, v in data.items() if k not in _LOADER_FIELDS}
    for k in _LOADER_FIELDS:
        if k in data:
            _schema_problem(ctx, {"loc": (k,), "type": "extra_forbidden"})
    book: Codebook | None = None
    try:
        book = Codebook.model_validate(fields)
    except ValidationError as exc:
        for err in _merge_typos(exc.errors()):
            _schema_problem(ctx, err)
    _check_entries(ctx)
    _check_report(ctx)

    problems = sorted(ctx.problems, key=lambda p: (p.line or 0))
    if problems or book is None:
        return None, problems
    book.sha256 = hashlib.sha256(raw).hexdigest()
    book.path = file
    return book, []


def load_codebook(path: str | Path) -> Codebook:
    """Load and validate a codebook; raise CodebookError listing every problem."""
    book, problems = validate_codebook(path)
    if problems or book is None:
        raise CodebookError(problems)
    return book


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def summary_table(codebook: Codebook) -> str:
    """A plain-text table of the codebook: per category, each code's examples and rules."""
    n_pos = sum(len(c.examples.positive) for c in codebook.codes)
    n_neg = sum(len(c.examples.negative) for c in codebook.codes)
    n_rules = sum(c.rules.count for c in codebook.codes)
    id_w = max([len("id"), *(len(c.id) for c in codebook.codes)])
    name_w = min(44, max([len("name"), *(len(c.name) for c in codebook.codes)]))
    out = [
        f"{codebook.name} (version {codebook.version}, sha256 {codebook.sha256[:12]})",
        f"{_plural(len(codebook.codes), 'code')} in "
        f"{_plural(len(codebook.categories), 'category', 'categories')}; "
        f"examples {n_pos} positive / {n_neg} negative; {_plural(n_rules, 'rule')}"
        + (f"; {_plural(len(codebook.labelled_segments), 'labelled segment')}"
           if codebook.labelled_segments else ""),
    ]
    header = (f"  {'id':<{id_w}}  {'name':<{name_w}}  {'ex+':>4} {'ex-':>4} {'segs':>4} "
              f"{'rules':>5}")
    for cat in codebook.categories:
        codes = codebook.codes_in(cat.id)
        out += ["", f"{cat.id} - {cat.name} ({_plural(len(codes), 'code')})", header]
        for c in codes:
            name = c.name if len(c.name) <= name_w else c.name[: name_w - 1] + "…"
            out.append(f"  {c.id:<{id_w}}  {name:<{name_w}}  {len(c.examples.positive):>4} "
                       f"{len(c.examples.negative):>4} {len(c.segments):>4} "
                       f"{c.rules.count:>5}")
    return "\n".join(out)


def codebook_warnings(codebook: Codebook) -> list[str]:
    """Things that do not stop a run but that the researcher should know (one line each).

    Codes without rules (no phrases, no patterns) are applied only by the model, which
    without reviewed segments has only the codebook's definition and examples to go on:
    much less precise than rules, and with the fast backend (hashed words) hardly ever.
    A ``related`` hint naming no code is ignored.
    """
    ids = list(codebook.code_ids)
    warnings = _segment_warnings(codebook)
    for code in codebook.codes:
        for other in code.related:
            if other not in ids:
                guess = _closest(other, ids)
                warnings.append(
                    f"warning: code '{code.id}' lists related code '{other}', which the "
                    "codebook does not define, so that hint is ignored — "
                    + (f"did you mean '{guess}'?" if guess else
                       "use the id of a code defined under 'codes:', or remove it."))
        warnings += [f"warning: code '{code.id}' {where}: {dead}" for where, dead
                     in _dead_lemmas(code.rules)]
    bare = [c.id for c in codebook.codes if not c.rules.count]
    if bare:
        warnings.append(
            f"warning: codes without rules ({', '.join(bare)}) are applied only by the model, "
            "which needs reviewed segments to learn them: without reviews it applies them "
            "from their similarity to the definition and examples, far less precisely than "
            "rules (the fast backend hardly at all) — add phrases or patterns, or review "
            "segments (qualcode review export).")
    return warnings


def _segment_warnings(codebook: Codebook) -> list[str]:
    """Labelled segments that are blank or listed twice, and codes listing unknown ones."""
    warnings, seen = [], set()
    for i, seg in enumerate(codebook.labelled_segments):
        if seg.id in seen:
            warnings.append(f"warning: labelled_segments[{i}]: id '{seg.id}' is used twice; "
                            "only the first is used — give each segment its own id.")
        elif not seg.text.strip():
            warnings.append(f"warning: labelled_segments[{i}] '{seg.id}' has no text and is "
                            "left out.")
        seen.add(seg.id)
    for code in codebook.codes:
        unknown = [s for s in code.segments if s not in seen]
        if unknown:
            shown = ", ".join(f"'{s}'" for s in unknown[:3]) + (" ..." if len(unknown) > 3
                                                                 else "")
            warnings.append(f"warning: code '{code.id}' lists segments that are not among "
                            f"labelled_segments ({shown}); they are ignored — check the ids.")
    return warnings


def _dead_lemmas(rules: Rules) -> list[tuple[str, str]]:
    """LEMMA values in token patterns that no token can have: an inflected form whose
    lemma is another word (LEMMA 'talks' never matches: the lemma of "talks" is 'talk')."""
    from .rules import dead_lemmas  # spaCy's lemma table: loaded only to check

    return [(f"rules.{name}[{i}]",
             f"LEMMA '{word}' never matches (the lemma of '{word}' is '{lemma}') — write "
             f"LEMMA '{lemma}' for all its forms, or LOWER '{word}' for this form only.")
            for name in ("patterns", "exclude_patterns")
            for i, pattern in enumerate(getattr(rules, name))
            for word, lemma in dead_lemmas(pattern)]


def check_codebook(path: str | Path = "codebook.yaml") -> tuple[int, str]:
    """What ``qualcode codebook check`` prints, and its exit status (0 valid, 1 not).

    Warnings (``codebook_warnings``) are printed after "OK" and do not change the status.
    """
    book, problems = validate_codebook(path)
    if problems or book is None:
        lines = [str(p) for p in problems]
        lines.append(f"{_plural(len(problems), 'problem')} in {path}: the codebook was not "
                     "loaded.")
        return 1, "\n".join(lines)
    warnings = "".join(f"\n{w}" for w in codebook_warnings(book))
    return 0, f"{path}: OK{warnings}\n\n{summary_table(book)}"
