"""Excel workbooks (.xlsx) as tables, one per visible sheet, each read below its header
row as the spreadsheet shows it: ids in their number format ("001"), error values as
text, merged cells filled, rows whose formulas were never calculated left out (and
reported); hidden sheets and sheets too large to read are reported, not read. Which
rows are excerpts is for :mod:`.tables` to say."""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .columns import _HEADER_ROWS, _columns, _without_unnamed
from .office import _not_office_file, _transitional
from .readers import ReadError, RowProblem, _blank, metadata_value


@dataclass(slots=True)
class _Sheet:
    name: str
    frame: object  # pandas.DataFrame, read below the header row
    header: int  # the header's spreadsheet row (1 = top)
    # What was taken out of ``frame`` while reading: rows (blanked) whose formulas were
    # never calculated, columns without a name (a note).
    left_out: list[RowProblem] = field(default_factory=list)

    def problems(self, where: str = "") -> list[RowProblem]:
        """What was left out, each reason starting with ``where``."""
        return [RowProblem(p.row, f"{where}{p.reason}", p.note) for p in self.left_out]


def _header_index(probe) -> int | None:
    """The first of a sheet's top rows (0-based) with a ``text`` cell, if any."""
    for i, cells in enumerate(probe.itertuples(index=False)):
        if any(isinstance(c, str) and c.strip().lower() == "text" for c in cells):
            return i
    return None


def _read_sheets(data: bytes) -> tuple[list[_Sheet], list[RowProblem]]:
    """Every visible sheet, each read below its header row (the row 1 if none has
    ``text``), and a note for each hidden one, which is not read (hiding a sheet is how
    people retire drafts)."""
    import pandas as pd

    data = _transitional(data) or data  # a workbook in Strict Open XML
    try:
        book = pd.ExcelFile(io.BytesIO(data))
        # pandas opens the workbook with openpyxl, which has read each sheet's state.
        states = {ws.title: getattr(ws, "sheet_state", "visible")
                  for ws in getattr(book.book, "worksheets", ())}
        hidden = [name for name in book.sheet_names if states.get(name, "visible") != "visible"]
        if hidden and len(hidden) == len(book.sheet_names):
            names = ", ".join(f"'{n}'" for n in hidden)
            raise ReadError(f"has only hidden sheets ({names}), which are not read — unhide "
                            "the sheets to include (right-click a sheet tab › Unhide)")
        visible = [name for name in book.sheet_names if name not in hidden]
        extents = {name: _sheet_extent(book.book, name) for name in visible}
        too_big = _too_big(extents)
        if too_big and len(too_big) == len(visible):
            raise ReadError(" ".join(p.reason for p in too_big))
        visible = [name for name in visible if not any(p.name == name for p in too_big)]
        # Cells as written: "NA", "None", "n/a" or "#N/A" typed in a cell are text (an
        # excerpt id, a metadata value), only an empty cell is empty (NaN).
        cells = {"dtype": object, "keep_default_na": False, "na_values": [""]}
        probes = pd.read_excel(book, sheet_name=visible, header=None, nrows=_HEADER_ROWS,
                               **cells)
        sheets = []
        for name, probe in probes.items():
            index = _header_index(probe) or 0
            frame = pd.read_excel(book, sheet_name=name, header=index, **cells)
            sheets.append(_Sheet(str(name), frame, index + 1))
            _ids_as_shown(book.book, sheets[-1])
            _errors_as_text(book.book, sheets[-1])
            if (extent := extents.get(name)) is not None and extent.merged:
                _fill_merged(sheets[-1], extent.merged)
        _leave_out_uncalculated(data, sheets)
    except ReadError:
        raise
    except Exception as err:  # pandas', openpyxl's and zipfile's errors on damage
        raise _not_office_file(data, "xlsx", err) from err
    for sheet in sheets:  # after _leave_out_uncalculated, which counts columns
        sheet.frame, unnamed = _without_unnamed(sheet.frame, sheet.header)
        sheet.left_out.extend(unnamed)
    left_out = [RowProblem(None, p.reason) for p in too_big]
    return sheets, left_out + [_hidden_sheet(name, states[name]) for name in hidden]


# pandas makes every row of a sheet as wide as its widest one, from row 1 to the last row
# with a value: one value in cell XFD1048576 made it 17 billion cells (24 GB); and it
# works column by column (one value in XFD2 took 15 s). A sheet larger than this is not
# read (100,000 excerpts with 50 columns are 5,000,000 cells).
MAX_SHEET_CELLS = 5_000_000
MAX_SHEET_COLUMNS = 1024


@dataclass(slots=True)
class _TooBig:
    name: str
    reason: str


def _too_big(extents: dict[str, _Extent | None]) -> list[_TooBig]:
    """The sheets (name -> extent) that would span more than ``MAX_SHEET_CELLS`` cells or
    ``MAX_SHEET_COLUMNS`` columns, each with the reason: values far outside the table
    (delete them) or a sheet too large."""
    found = []
    for name, extent in extents.items():
        if extent is None or (extent.rows * extent.columns <= MAX_SHEET_CELLS
                              and extent.columns <= MAX_SHEET_COLUMNS):
            continue
        span = f"{extent.rows:,} rows × {extent.columns:,} columns"
        if extent.far:
            one = len(extent.far) == 1 and not extent.more
            cells = ", ".join(extent.far) + (" and more" if extent.more else "")
            what = f"a value in cell {cells}" if one else f"values in cells {cells}"
            them = "it" if one else "them"
            reason = (f"sheet '{name}' has {what}, far outside the table (with {them}, the "
                      f"sheet spans {span}, too many to read), so the sheet was not "
                      f"read — delete {them} (or move {them} into the table) and save the "
                      "workbook")
        else:
            reason = (f"sheet '{name}' spans {span}, more than qualcode reads from one "
                      f"sheet ({MAX_SHEET_CELLS:,} cells, {MAX_SHEET_COLUMNS:,} columns), so "
                      "it was not read — delete the columns that are not needed, or split "
                      "the table over several sheets or workbooks")
        found.append(_TooBig(name, reason))
    return found


# Values beyond this many empty rows or columns lie outside the table.
_GAP_ROWS, _GAP_COLUMNS = 1000, 50


@dataclass(slots=True)
class _Extent:
    rows: int  # the last row with a value
    columns: int  # the last column with a value
    far: list[str]  # cells with a value beyond a gap of empty rows or columns (the first)
    more: bool  # there are more such cells than those in ``far``
    merged: list[str] = field(default_factory=list)  # merged cells' ranges ("C4:C5")


def _sheet_extent(book: object, name: str) -> _Extent | None:
    """Where a read-only sheet's values are, from its XML cell by cell (no row is padded
    to the sheet's width, and values are not converted: a quick pass before pandas');
    None if the workbook is not open read-only."""
    from openpyxl.utils import get_column_letter

    sheet = book[name] if hasattr(book, "sheetnames") else None
    if not hasattr(sheet, "_get_source") or not hasattr(sheet, "_shared_strings"):
        return None
    rows = columns = 0
    table_rows = None  # the table's last row, once a gap of empty rows follows it
    far_rows: list[str] = []  # the first cells of the rows below that gap
    more = False
    first: dict[int, str] = {}  # each column's first cell with a value
    seen: set[int] = set()  # the columns with more than one
    merged: list[str] = []
    with sheet._get_source() as source:
        for number, filled in _filled_cells(source, sheet._shared_strings, merged):
            if table_rows is None and rows and number - rows > _GAP_ROWS:
                table_rows = rows
            if table_rows is not None:
                more = more or len(filled) > 1 or len(far_rows) == 3
                if len(far_rows) < 3:
                    far_rows.append(f"{get_column_letter(filled[0])}{number}")
            rows, columns = number, max(columns, *filled)
            for column in filled:
                if column in first:
                    seen.add(column)  # a second value in the column
                else:
                    first[column] = f"{get_column_letter(column)}{number}"
    used = sorted(first)
    end = next((a for a, b in itertools.pairwise(used) if b - a > _GAP_COLUMNS), None)
    far_columns = [c for c in used if end is not None and c > end]
    far = list(dict.fromkeys([first[c] for c in far_columns] + far_rows))
    more = more or len(far) > 3 or any(c in seen for c in far_columns)
    return _Extent(rows, columns, far[:3], more, merged)


_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")


def _filled_cells(source, shared: Sequence[object], merged: list[str] | None = None
                  ) -> Iterator[tuple[int, list[int]]]:
    """A worksheet XML's rows with a value (as pandas reads them: a cached formula
    result, no formula without one, no empty text), each with the columns that have one;
    the ranges of merged cells ("C4:C5") are added to ``merged``."""
    from lxml import etree
    from openpyxl.utils import column_index_from_string

    row = 0
    column = 0
    filled: list[int] = []
    for event, element in etree.iterparse(source, events=("start", "end"),
                                          tag=("{*}row", "{*}c", "{*}mergeCell"),
                                          huge_tree=True, resolve_entities=False,
                                          no_network=True):
        local = etree.QName(element).localname
        if local == "mergeCell":
            if event == "end" and merged is not None and element.get("ref"):
                merged.append(element.get("ref"))
            continue
        if local == "row":
            if event == "start":
                row = int(element.get("r") or row + 1)
                column, filled = 0, []
                continue
            if filled:
                yield row, filled
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
            continue
        if event == "start":
            continue
        ref = _CELL_REF.fullmatch(element.get("r") or "")
        column = column_index_from_string(ref[1].upper()) if ref else column + 1
        if _has_value(element, shared):
            filled.append(column)
        element.clear(keep_tail=False)


def _has_value(cell, shared: Sequence[object]) -> bool:
    """Whether a worksheet XML ``c`` element holds a value (see :func:`_filled_cells`)."""
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return any(t.text for t in cell.iter("{*}t"))
    value = next((v.text for v in cell.iterchildren("{*}v")), None)
    if not value:
        return False
    if kind == "s":
        with contextlib.suppress(ValueError, IndexError, TypeError):
            return shared[int(value)] not in (None, "")
    return True


# An id cell's number format that only pads with zeros and adds fixed text: '000',
# '"LIT-"000', 'EX\-0000'. Any other format (decimals, thousands, dates) is left alone.
_ID_FORMAT = re.compile(r'((?:"[^"]*"|\\.|[-_ /:])*?)([0#]+)((?:"[^"]*"|\\.|[-_ /:])*)')
_LITERAL = re.compile(r'"([^"]*)"|\\(.)|(.)')


def _literal(part: str) -> str:
    return "".join(a or b or c for a, b, c in _LITERAL.findall(part))


def _shown_id(value: object, number_format: str) -> str | None:
    """A whole-number id as the spreadsheet shows it: 1 with format ``000`` is "001" (the
    id people read, and write in manifests and review files), not "1"."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value \
            or not float(value).is_integer() or value < 0:
        return None
    form = _ID_FORMAT.fullmatch(number_format.split(";")[0])
    if form is None:
        return None
    prefix, digits, suffix = form.groups()
    return f"{_literal(prefix)}{str(int(value)).zfill(digits.count('0'))}{_literal(suffix)}"


def _ids_as_shown(book: object, sheet: _Sheet) -> None:
    """Numbers in the id column become the text the sheet shows (see :func:`_shown_id`);
    the cells' formats are read only when the column holds numbers."""
    _, id_col, _ = _columns(sheet.frame)
    if id_col is None or not hasattr(book, "worksheets"):
        return
    values = sheet.frame[id_col].tolist()
    if not any(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return
    column = sheet.frame.columns.get_loc(id_col) + 1
    rows = book[sheet.name].iter_rows(min_row=sheet.header + 1,
                                      max_row=sheet.header + len(values),
                                      min_col=column, max_col=column)
    shown = list(values)
    for i, cells in enumerate(rows):
        if cells and (text := _shown_id(cells[0].value, cells[0].number_format or "")):
            shown[i] = text
    sheet.frame[id_col] = shown


def _errors_as_text(book: object, sheet: _Sheet) -> None:
    """Error values in the text column (``#N/A``, ``#REF!``), which pandas reads as empty
    cells, become their text, for :func:`_excerpts` to report as such (a formula to fix,
    not a text to add); the cells are read only when the column has empty ones."""
    text_col, _, _ = _columns(sheet.frame)
    if text_col is None or not hasattr(book, "worksheets"):
        return
    empty = sheet.frame[text_col].isna().to_numpy().nonzero()[0]
    if not len(empty):
        return
    column = sheet.frame.columns.get_loc(text_col) + 1
    first = sheet.header + 1  # the spreadsheet row of the frame's first row
    rows = book[sheet.name].iter_rows(min_row=first + empty[0], max_row=first + empty[-1],
                                      min_col=column, max_col=column)
    wanted = set(empty.tolist())
    for index, cells in enumerate(rows, start=int(empty[0])):
        if index in wanted and cells and getattr(cells[0], "data_type", None) == "e":
            sheet.frame.iloc[index, column - 1] = str(cells[0].value)


def _fill_merged(sheet: _Sheet, ranges: list[str]) -> None:
    """Cells merged over rows below the header (``C4:C5``), whose value only the first
    row holds: a metadata value is filled into every row; a text is read once, for the
    first row, and each other row with an id is left out and reported (not as "an empty
    text")."""
    from openpyxl.utils.cell import range_boundaries

    text_col, id_col, _ = _columns(sheet.frame)
    if id_col is None:
        return  # the sheet is not read
    names = list(sheet.frame.columns)
    id_pos = names.index(id_col)
    first = sheet.header + 1  # the spreadsheet row of the frame's first row
    for ref in ranges:
        try:
            min_col, min_row, _, max_row = range_boundaries(ref)
        except (ValueError, TypeError):
            continue
        top, bottom = min_row - first, min(max_row - first, len(sheet.frame) - 1)
        if top < 0 or bottom <= top or min_col > len(names) or min_col - 1 == id_pos:
            continue  # a merged header, a range on one row or outside the table; an id
            # merged over rows leaves the others without one, which is reported as such
        column = min_col - 1
        if names[column] != text_col:
            sheet.frame.iloc[top + 1:bottom + 1, column] = sheet.frame.iloc[top, column]
            continue
        head = metadata_value(sheet.frame.iloc[top, id_pos])
        for index in range(top + 1, bottom + 1):
            excerpt_id = metadata_value(sheet.frame.iloc[index, id_pos])
            if not excerpt_id or not _blank(metadata_value(sheet.frame.iloc[index, column])):
                continue
            sheet.frame.iloc[index, [column, id_pos]] = None
            owner = f"excerpt '{head}' (row {min_row})" if head else f"row {min_row}"
            sheet.left_out.append(RowProblem(first + index, (
                f"excerpt '{excerpt_id}' has no text of its own: its text cell is part of "
                f"the merged cell {ref}, whose text was read once, for {owner}, so the "
                "row was left out — unmerge the cells (Home › Merge & Center › Unmerge "
                "Cells) and put each excerpt's text in its own row")))


def _hidden_sheet(name: object, state: str) -> RowProblem:
    """The note for a hidden sheet left out."""
    if state == "veryHidden":  # set by a macro or program; Excel's Unhide does not list it
        how = ("make it visible in Excel's VBA editor (Alt+F11, the sheet's Visible "
               "property) or in LibreOffice (Sheet › Show Sheet)")
    else:
        how = "unhide it (right-click a sheet tab › Unhide)"
    return RowProblem(None, f"sheet '{name}' is hidden and was not read — {how} to include "
                      "it", note=True)


def _is_formula(value: object) -> bool:
    """Whether a cell's value in openpyxl's formula view is a formula."""
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    return (isinstance(value, str) and value.startswith("=")) or isinstance(
        value, ArrayFormula | DataTableFormula)


def _leave_out_uncalculated(data: bytes, sheets: list[_Sheet]) -> None:
    """Blank out the rows whose text or id cell is empty only because it holds a formula
    whose result was never stored (a workbook written by a script, never opened in Excel)
    and report each with its cells: "empty text" or "no id" would send the user to fix the
    wrong thing. The formulas are read, in a second pass through the workbook, only when a
    sheet has an empty text or id cell."""
    empty: dict[str, object] = {}  # sheet -> its rows with an empty text or id cell
    for sheet in sheets:
        text_col, id_col, _ = _columns(sheet.frame)
        if text_col is not None and id_col is not None:
            cells = sheet.frame[[id_col, text_col]].isna()
            if cells.to_numpy().any():
                empty[sheet.name] = cells[cells.any(axis=1)]
    if not empty:
        return
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        for sheet in sheets:
            if sheet.name not in empty:
                continue
            cells = empty[sheet.name]
            columns = [sheet.frame.columns.get_loc(c) + 1 for c in cells.columns]
            first = sheet.header + 1  # the spreadsheet row of the frame's first row
            rows = book[sheet.name].iter_rows(
                min_row=first + cells.index[0], max_row=first + cells.index[-1],
                min_col=min(columns), max_col=max(columns), values_only=True)
            wanted = dict(zip(cells.index, cells.to_numpy(), strict=True))
            for index, values in enumerate(rows, start=cells.index[0]):
                if index not in wanted:
                    continue
                formulas = [get_column_letter(col) + str(first + index)
                            for col, is_empty in zip(columns, wanted[index], strict=True)
                            if is_empty and _is_formula(values[col - min(columns)])]
                if formulas:
                    sheet.frame.loc[index, list(cells.columns)] = None
                    sheet.left_out.append(RowProblem(first + index, _uncalculated(formulas)))
    finally:
        book.close()


def _uncalculated(cells: list[str]) -> str:
    what = (f"cell {cells[0]} holds a formula whose result was" if len(cells) == 1 else
            f"cells {' and '.join(cells)} hold formulas whose results were")
    return (f"{what} never calculated (the workbook was saved by a program that does not "
            "calculate formulas), so the row was not read — open the workbook in Excel or "
            "LibreOffice and save it, which stores the results")
