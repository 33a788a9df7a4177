"""A table's columns as the .csv and .xlsx readers find them (and the manifest and
review files, which are tables too): names matched whatever their case and spacing
(:func:`column_key`), the ``text`` and id columns, the header row among a table's first
rows, columns without a name, and spreadsheet column letters."""

from __future__ import annotations

import re

from .readers import RowProblem

ID_COLUMNS = ("excerpt_id", "id", "doc_id")
# How a manifest names its file column (as column_key gives them).
FILE_COLUMNS = frozenset({"file", "filename", "file_name", "file_path", "filepath"})


def _column_letter(index: int) -> str:
    """A spreadsheet column letter for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


_HEADER_ROWS = 10  # a table's header row is looked for in its first rows


_UNNAMED = re.compile(r"Unnamed: \d+")  # pandas' name for a column with an empty header cell


def _without_unnamed(frame, header: int) -> tuple[object, list[RowProblem]]:
    """``frame`` with its columns without a name in the header row (``header``), which
    pandas calls ``Unnamed: 4``, left out when empty (a spreadsheet's trailing empty
    columns, ``a,b,,`` in CSV) and else named by their letter (``column E``), with a note."""
    unnamed = [i for i, name in enumerate(frame.columns)
               if isinstance(name, str) and (_UNNAMED.fullmatch(name) or not name.strip())]
    if not unnamed:
        return frame, []
    names = list(frame.columns)
    kept = [i for i in range(len(names)) if i not in unnamed]
    notes = []
    for i in unnamed:
        cells = frame.iloc[:, i]
        if (cells.isna() | cells.astype(str).str.strip().eq("")).all():
            continue
        names[i] = f"column {_column_letter(i)}"
        kept.append(i)
        notes.append(RowProblem(header, (
            f"{names[i]} has no name in the header row; its values were read as the "
            f"metadata field '{names[i]}' — give the column a name (or delete it)"), note=True))
    kept.sort()
    return frame.set_axis(names, axis=1).iloc[:, kept], notes


def column_key(name: object) -> str:
    """A column name as matched against ``text`` and :data:`ID_COLUMNS`: in lower case,
    spaces and hyphens read as ``_`` (``Excerpt ID``, ``excerpt-id``, ``ExcerptID`` and
    ``Doc ID`` all name an id column)."""
    key = re.sub(r"[\s_-]+", "_", str(name).strip().lower())
    return {"excerptid": "excerpt_id", "docid": "doc_id"}.get(key, key)


def _columns(frame) -> tuple[object | None, object | None, str]:
    """The ``text`` column, the id column (``None`` if missing) and all columns, listed."""
    columns: dict[str, object] = {}
    for c in frame.columns:
        columns.setdefault(column_key(c), c)
    id_col = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    return columns.get("text"), id_col, ", ".join(str(c) for c in frame.columns) or "none"
