"""Read an .xlsx/.xlsm manifest into a :class:`~batchgen.manifest.read.RawTable`.

One streaming pass over the sheet's XML gives the values, and, because Excel stores them
after the cells, the hyperlinks and merged ranges too: openpyxl's read-only mode keeps memory
flat but drops both, its normal mode keeps both but builds a Python object per cell (several
GB for 100,000 rows). So the workbook is opened read-only (shared strings, styles, sheet list)
and the sheet is parsed with openpyxl's own worksheet parser, which collects ``<hyperlinks>``
and ``<mergeCells>`` as it goes; cells are read sparsely, so a hostile sheet that declares or
places a cell at XFD1048576 costs nothing.

Most workbooks are read faster than that: :mod:`batchgen.manifest.xlsx_fast` reads the values
through calamine and what calamine cannot see from the XML, and hands back to this reader the
workbooks it does not reproduce exactly (formulas, error cells, zero-padded ids...).

Relies on openpyxl 3.1 internals (``WorkSheetParser``, ``ReadOnlyWorksheet._get_source``);
pyproject pins openpyxl below 4.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchgen.errors import ManifestError
from batchgen.manifest.columns import (
    HEADER_SEARCH_ROWS,
    column_letter,
    has_prompt_column,
    map_columns,
    missing_prompt_message,
)
from batchgen.manifest.model import MAX_COLUMNS, as_text, show
from batchgen.manifest.table import (
    CellIssue,
    RawTable,
    check_limits,
)
from batchgen.manifest.xlsx_cells import Flagged, PaddedIds, make_parser
from batchgen.manifest.xlsx_fast import HEADER_SEARCH_MAX_ROW, read_fast
from batchgen.manifest.xlsx_guard import check_container
from batchgen.manifest.xlsx_links import apply_hyperlinks, apply_merges
from batchgen.manifest.xlsx_tables import apply_tables, sheet_tables

__all__ = ["read_xlsx"]

EXCEL_MAX_ROWS = 1_048_576


def read_xlsx(
    path: Path, *, sheet: str | None = None, include_hidden: bool = False, fast: bool = True
) -> RawTable:
    """Read the manifest sheet of an .xlsx workbook; every failure is a ManifestError.

    The sheet is ``sheet`` when given (hidden or not); else the active sheet when it is
    visible and has a prompt column; else the first visible sheet that has one (hidden
    sheets too, after the visible ones, with ``include_hidden``). Rows hidden in the sheet
    are listed in ``RawTable.hidden``. ``fast``: read the values through calamine when
    :mod:`batchgen.manifest.xlsx_fast` reproduces the workbook (False: openpyxl always; the
    answer is the same, a test compares both).
    """
    check_container(path)
    table = read_fast(path, sheet, include_hidden) if fast else None
    if table is not None:
        apply_tables(table, sheet_tables(path, table.sheet or ""))
        return table
    # openpyxl and the XML parser raise a zoo of types on damaged or hostile files (KeyError,
    # ValueError, TypeError, zipfile and XML errors...): at this boundary every one of them
    # means "this workbook cannot be read", so all are translated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _read_workbook(path, sheet, include_hidden)
        except ManifestError:
            raise
        except Exception as exc:
            detail = show(str(exc) or type(exc).__name__, 120)
            raise ManifestError(path, f"cannot be read as an Excel workbook ({detail})") from exc


# --- the workbook ----------------------------------------------------------------------------


def _read_workbook(path: Path, sheet: str | None, include_hidden: bool) -> RawTable:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    try:
        worksheet, header_row, header = _choose_sheet(path, workbook, sheet, include_hidden)
        table = _read_sheet(path, workbook, worksheet, header_row, header)
        apply_tables(table, sheet_tables(path, worksheet.title))
        hidden = [s.title for s in workbook.worksheets if _hidden(s) and s is not worksheet]
        if hidden and sheet is None:
            names = ", ".join(show(t, 40) for t in hidden[:10])
            table.notes.append(
                f"hidden sheet(s) {names} were not read; --sheet NAME reads one of them"
            )
        return table
    finally:
        workbook.close()


def _hidden(worksheet: Any) -> bool:
    return getattr(worksheet, "sheet_state", "visible") != "visible"


def _choose_sheet(
    path: Path, workbook: Any, wanted: str | None, include_hidden: bool
) -> tuple[Any, int, list[Any]]:
    sheets = list(workbook.worksheets)
    if not sheets:
        raise ManifestError(path, "has no worksheets")
    if wanted is not None:
        chosen = _sheet_named(path, sheets, wanted)
        found = _find_header(path, chosen)
        if found is None:
            raise ManifestError(
                path, f"sheet {show(chosen.title)} {missing_prompt_message(_first_row(chosen))}"
            )
        return chosen, *found
    for candidate in _candidates(workbook, sheets, include_hidden):
        found = _find_header(path, candidate)
        if found is not None:
            return candidate, *found
    hidden = [s for s in sheets if _hidden(s) and _find_header(path, s) is not None]
    if hidden and not include_hidden:
        raise ManifestError(
            path,
            f"has no visible sheet with a prompt column; the hidden sheet "
            f"{show(hidden[0].title, 40)} has one: name it with --sheet to read it",
        )
    if len(sheets) == 1:
        raise ManifestError(path, missing_prompt_message(_first_row(sheets[0])))
    listed = ", ".join(show(s.title, 40) for s in sheets[:10])
    raise ManifestError(
        path,
        f"has no sheet with a prompt column (sheets: {listed}); "
        f"{missing_prompt_message(_first_row(sheets[0])).removeprefix('has ')}",
    )


def _candidates(workbook: Any, sheets: list[Any], include_hidden: bool) -> list[Any]:
    """The sheets to try, in order: the active one (if visible), the other visible ones,
    then (with ``include_hidden``) the hidden ones."""
    try:
        active = workbook.active
    except (IndexError, AttributeError):
        active = None
    visible = [s for s in sheets if not _hidden(s)]
    ordered = ([active] if active in visible else []) + [s for s in visible if s is not active]
    return ordered + ([s for s in sheets if _hidden(s)] if include_hidden else [])


def _sheet_named(path: Path, sheets: list[Any], wanted: str) -> Any:
    for ws in sheets:
        if ws.title == wanted:
            return ws
    for ws in sheets:
        if ws.title.strip().casefold() == wanted.strip().casefold():
            return ws
    listed = ", ".join(show(s.title, 40) for s in sheets[:20])
    raise ManifestError(path, f"has no sheet named {show(wanted)} (sheets: {listed})")


def _first_row(worksheet: Any) -> list[Any]:
    for _, values in _dense_rows(worksheet, None, limit=1):
        return values
    return []


def _find_header(path: Path, worksheet: Any) -> tuple[int, list[Any]] | None:
    _check_dimension(path, worksheet)
    for number, values in _dense_rows(worksheet, None, limit=HEADER_SEARCH_ROWS):
        if has_prompt_column(values):
            return number, values
    return None


def _check_dimension(path: Path, worksheet: Any) -> None:
    rows, cols = worksheet.max_row, worksheet.max_column
    if (rows or 0) > EXCEL_MAX_ROWS or (cols or 0) > MAX_COLUMNS:
        raise ManifestError(
            path,
            f"sheet {show(worksheet.title)} declares {rows:,} rows by {cols:,} columns, beyond "
            "what Excel allows: the file is damaged or hostile",
        )


def _dense_rows(worksheet: Any, width: int | None, *, limit: int) -> Iterator[tuple[int, list]]:
    """The first ``limit`` non-empty rows as (row number, values up to the last value)."""
    seen = 0
    parser = make_parser(worksheet)
    try:
        for number, cells in parser.parse():
            if number > HEADER_SEARCH_MAX_ROW:
                return
            values = _values(cells, width or _row_width(cells))
            if _is_empty(values):
                continue
            yield number, values
            seen += 1
            if seen >= limit:
                return
    finally:
        parser.source.close()


def _row_width(cells: list[dict[str, Any]]) -> int:
    used = [c["column"] for c in cells if c["value"] is not None and c["column"] <= MAX_COLUMNS]
    return max(used, default=0)


def _values(cells: list[dict[str, Any]], width: int) -> list[Any]:
    values: list[Any] = [None] * width
    for cell in cells:
        column = cell["column"]
        if column <= width:
            value = cell["value"]
            values[column - 1] = value.value if isinstance(value, Flagged) else value
    return values


def _is_empty(values: list[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


# --- the manifest sheet ----------------------------------------------------------------------


def _read_sheet(
    path: Path, workbook: Any, worksheet: Any, header_row: int, header: list[Any]
) -> RawTable:
    columns = map_columns(header)
    if isinstance(columns, str):
        raise ManifestError(path, f"sheet {show(worksheet.title)} {columns}")
    table = RawTable(
        header=[as_text(h) for h in header],
        columns=columns,
        header_row=header_row,
        rows=[],
        sheet=worksheet.title,
    )
    parser = make_parser(worksheet)
    beyond: list[str] = []
    request = columns.request_columns()
    padded = PaddedIds(workbook, columns.id)
    try:
        for number, cells in parser.parse():
            if number > EXCEL_MAX_ROWS:
                raise ManifestError(path, f"has a row numbered {number:,}, beyond Excel's limit")
            if number > header_row and _add_row(table, number, cells, beyond, request):
                if parser.row_hidden:
                    table.hidden.add(number)
                if padded.styles:
                    padded.look(number, cells)
                check_limits(path, len(table.rows), len(header))
    finally:
        parser.source.close()
    if padded.first is not None:
        table.notes.append(padded.note())
    if beyond:
        table.notes.append(
            f"{len(beyond):,} cells right of the last named column are ignored "
            f"(the first is {beyond[0]}); give the column a header to keep it"
        )
    links = getattr(parser.hyperlinks, "hyperlink", None) or []
    if links:
        apply_hyperlinks(table, links, _external_targets(workbook, worksheet))
    apply_merges(table, getattr(parser.merged_cells, "mergeCell", None) or [])
    return table


def _add_row(
    table: RawTable,
    number: int,
    cells: list[dict[str, Any]],
    beyond: list[str],
    request: set[int],
) -> bool:
    """Append the row unless it is empty; True when appended."""
    width = len(table.header)
    values: list[Any] = [None] * width
    issues: list[CellIssue] = []
    for cell in cells:
        column, value = cell["column"], cell["value"]
        if value is None:
            continue
        if column > width:
            if not (isinstance(value, str) and not value.strip()):
                beyond.append(f"{column_letter(column - 1)}{number}")
            continue
        if isinstance(value, Flagged):
            issues.append(CellIssue(value.kind, column - 1, value.detail))
            value = value.value
        values[column - 1] = value
    # A formula without a result in a request column keeps an otherwise empty row, so that
    # the user hears about it; elsewhere (a pre-filled helper column) it does not.
    if _is_empty(values) and not any(i.column in request for i in issues):
        return False
    table.rows.append((number, values))
    for issue in issues:
        table.add_issue(number, issue)
    return True


def _external_targets(workbook: Any, worksheet: Any) -> dict[str, str]:
    from openpyxl.packaging.relationship import get_dependents, get_rels_path

    rels_path = get_rels_path(worksheet._worksheet_path)
    archive = workbook._archive
    if rels_path not in archive.namelist():
        return {}
    rels = get_dependents(archive, rels_path)
    return {r.Id: r.Target for r in rels if r.TargetMode == "External" and r.Target}
