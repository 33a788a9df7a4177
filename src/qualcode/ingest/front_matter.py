"""YAML front matter (``---`` … ``---`` atop a .txt or .md file): the file's own
metadata, read safely (values as written, no aliases, nothing nested), each entry left
out or changed reported at its line; a ``---`` that opens prose is a horizontal rule."""

from __future__ import annotations

import datetime as dt
import re

import yaml

from .readers import ReadError, RowProblem, metadata_note, metadata_value


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe YAML in which ``0042``, ``10:30`` and ``no`` stay as written (YAML 1.1 would
    read them as 34, 630 and False); dates and nulls are still recognised."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] not in
            ("int", "float", "bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# The same with libyaml's parser (several times faster) where PyYAML was built with it;
# errors are still reported by the pure-Python one, in its words.
_FastFrontMatterLoader = type("_FastFrontMatterLoader",
                              (getattr(yaml, "CSafeLoader", _FrontMatterLoader),),
                              {"yaml_implicit_resolvers":
                               _FrontMatterLoader.yaml_implicit_resolvers})

_FRONT = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.DOTALL | re.MULTILINE)
MAX_METADATA_CHARS = 10_000  # a longer front matter value is cut (it is copied to every row)
_TOO_DEEP = ("front matter is nested too deeply — write it as 'key: value' lines between "
             "the '---' lines")


def _line(node: yaml.Node) -> int:
    """A front matter node's line in the file (the block starts on line 2)."""
    return node.start_mark.line + 2


_RULE_NOTE = RowProblem(1, (
    "opens with a '---' line followed by text, not by 'key: value' lines, so the '---' was "
    "read as a horizontal rule and the file has no front matter — if you meant metadata, "
    "write it as 'key: value' lines between the '---' lines"), note=True)
_YAML_LINE = re.compile(r"\s|[-#\[{'\"]|[^:]*:(?:\s|$)")  # indented, list, comment, key


def _prose(block: str) -> bool:
    """True when text between two ``---`` lines is prose (a Markdown file opening with a
    horizontal rule), not front matter: a line of three or more words that is no
    ``key: value``, list item, comment or indented continuation."""
    return any(len(line.split()) >= 3 and not _YAML_LINE.match(line)
               for line in block.splitlines())


def _compose(block: str) -> tuple[yaml.BaseLoader, yaml.Node | None]:
    """The front matter's YAML node tree (aliases are the anchored node itself), with the
    loader that constructs its values. libyaml parses where PyYAML was built with it; an
    error is reported by the pure-Python parser, in its words."""
    error: yaml.YAMLError | None = None
    for loader_class in dict.fromkeys((_FastFrontMatterLoader, _FrontMatterLoader)):
        loader = loader_class(block)
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError as err:
            loader.dispose()
            mark = getattr(err, "problem_mark", None)
            if "nesting depth" in str(getattr(err, "problem", "")):
                raise ReadError(_TOO_DEEP, mark.line + 2 if mark else 2) from None
            error = err
        except (RecursionError, MemoryError):  # the pure-Python parser on deep nesting
            loader.dispose()
            raise ReadError(_TOO_DEEP, 2) from None
    mark = getattr(error, "problem_mark", None)
    problem = str(getattr(error, "problem", error))
    fix = "write it as 'key: value' lines between the '---' lines"
    if "mapping values" in problem:
        fix += ", each name at the start of its line; a value that holds ': ' goes in quotes "
        fix += "(title: \"Access: a study\")"
    raise ReadError(f"front matter is not valid YAML ({problem}) — {fix}",
                    mark.line + 2 if mark else None)


def _front_matter_value(loader, key: str, node: yaml.Node, seen: set[int]
                        ) -> tuple[str | None, str | None]:
    """A front matter entry's value as metadata, or (None, why it was left out): only a
    single value or a flat list of them (``[ar, en]``), never an alias (``*name``: an
    alias bomb expands a few lines into gigabytes)."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    aliased = any(id(n) in seen for n in (node, *items))
    seen.update(id(n) for n in (node, *items))
    if aliased:
        return None, (f"front matter '{key}' uses a YAML alias (*name), which qualcode does "
                      "not accept, so it was left out — write the value out in full")
    if key == "doc_id" and not isinstance(node, yaml.ScalarNode):
        return None, ("front matter 'doc_id' must be a single value, not a list — write it "
                      "as 'doc_id: YOUR-ID'; the file name is used as doc_id until then")
    if not all(isinstance(n, yaml.ScalarNode) for n in items):
        return None, (f"front matter '{key}' holds a nested list or mapping, which metadata "
                      "cannot hold, so it was left out — write a single value or a flat "
                      "list such as [a, b]")
    if isinstance(node, yaml.ScalarNode):
        return metadata_value(_scalar(loader, node)), None
    return metadata_value([_scalar(loader, n) for n in items]), None


def _scalar(loader, node: yaml.ScalarNode) -> object:
    """A scalar's value (a date, null or text); as written when YAML cannot make it one
    (``2023-02-30`` looks like a date, ``<<`` is a merge key)."""
    try:
        return loader.construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError):
        return node.value


def _front_matter_key(loader, node: yaml.Node) -> tuple[str | None, str | None]:
    """A front matter key as a metadata name, or (None, why the entry was left out)."""
    if not isinstance(node, yaml.ScalarNode):
        return None, ("front matter has a list or mapping where a name should be, so the "
                      "entry was left out — write it as 'name: value'")
    key = _scalar(loader, node)
    if isinstance(key, str) and key.strip():
        return key.strip(), None
    what = ("read as empty (null)" if key is None else "empty" if not str(key).strip() else
            f"read as a {'date' if isinstance(key, dt.date) else type(key).__name__}")
    written = node.value.strip()
    return None, (f"front matter name '{written}' is {what}, not a name, so the entry was "
                  "left out — write it as 'name: value' with a name in letters")


def split_front_matter(text: str) -> tuple[dict[str, str], str, list[RowProblem]]:
    """Split YAML front matter (``---`` … ``---``) from the body.

    Returns the metadata, the body and the entries left out or changed, with their lines:
    a nested value, an alias, a name that is not one, a repeated name (the last value is
    used) and a value longer than ``MAX_METADATA_CHARS`` (cut).
    """
    if not text.startswith("---"):
        return {}, text, []
    match = _FRONT.match(text)
    if not match:
        raise ReadError(
            "front matter opens with '---' at line 1 but is never closed — add a '---' line "
            "after the metadata",
            1,
        )
    try:
        loader, root = _compose(match.group(1))
    except ReadError:
        if _prose(match.group(1)):
            return {}, text, [_RULE_NOTE]
        raise
    try:
        if root is None:
            return {}, text[match.end() :], []
        if not isinstance(root, yaml.MappingNode):
            if _prose(match.group(1)):
                return {}, text, [_RULE_NOTE]
            raise ReadError(
                "front matter must be 'key: value' lines between the '---' lines", 2
            )
        meta: dict[str, str] = {}
        lines: dict[str, int] = {}
        problems: list[RowProblem] = []
        seen: set[int] = set()
        for key_node, value_node in root.value:
            line = _line(key_node)
            key, why = _front_matter_key(loader, key_node)
            if key is not None:
                value, why = _front_matter_value(loader, key, value_node, seen)
            if why is not None:
                problems.append(RowProblem(line, why))
                continue
            if key in lines:
                problems.append(RowProblem(line, (
                    f"front matter '{key}' is given twice (lines {lines[key]} and {line}); "
                    f"the value on line {line} was used — delete the other one"), note=True))
            if len(value) > MAX_METADATA_CHARS:
                problems.append(RowProblem(line, (
                    f"front matter '{key}' is {len(value):,} characters long; only its "
                    f"first {MAX_METADATA_CHARS:,} were kept (metadata is repeated on every "
                    "segment's row) — shorten it, or put long text in the body"), note=True))
                value = value[:MAX_METADATA_CHARS]
            if key == "doc_id" and not value:
                problems.append(RowProblem(line, (
                    "front matter 'doc_id' is empty, so the file name is used as doc_id — "
                    "write the id after 'doc_id:', or delete the line"), note=True))
            elif note := metadata_note(key, value):
                problems.append(RowProblem(line, f"front matter {note}", note=True))
            meta[key], lines[key] = value, line
    except (RecursionError, MemoryError):
        raise ReadError(_TOO_DEEP, 2) from None
    finally:
        loader.dispose()
    return meta, text[match.end() :], problems
