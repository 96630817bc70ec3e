"""Reading a big .xlsx manifest fast: the values through calamine, the rest from the XML.

openpyxl builds Python objects for every cell it parses: 100,000 rows took about 14 s of CPU.
calamine (a Rust reader; ``python-calamine``, the engine pandas offers as ``engine=
"calamine"``) reads the same values in under a second, but it does not see everything the
manifest reader must: which rows are hidden, which cells are formulas or errors (their saved
value is not always what the user saw), hyperlinks (the cell shows a label, the link is the
image), merged ranges, and the number formats that show an id with leading zeros. And it
reads a sheet into one dense grid: a single value placed at ``XFD1048576`` makes it ask for
half a terabyte and abort the process.

So one streaming pass over the sheet's XML (through zlib, with byte patterns: no object per
cell) finds what calamine cannot see, and the extent of the cells that hold something, before
calamine is asked for anything:

* rows hidden in the sheet, the ``<hyperlinks>`` and ``<mergeCells>`` parts, the sheet's
  relationships (the links' targets), the workbook's sheets, states and active tab are read
  here and applied as :mod:`batchgen.manifest.xlsx` applies them;
* anything this reader does not reproduce exactly sends the whole workbook to the openpyxl
  reader (:func:`read_fast` returns None): a formula or an error cell, a zero-padded number
  format, cells or rows without a reference, namespace prefixes, a chart sheet, a grid larger
  than ``MAX_AREA`` cells or much larger than the cells it holds, or no sheet with a prompt
  column (the openpyxl reader then says precisely what is wrong).

A test reads the project's hostile and odd workbooks with both readers and compares the
answers. Call :func:`batchgen.manifest.xlsx_guard.check_container` first, as
:func:`batchgen.manifest.xlsx.read_xlsx` does.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from batchgen.errors import ManifestError
from batchgen.manifest.columns import (
    HEADER_SEARCH_ROWS,
    column_letter,
    has_prompt_column,
    map_columns,
)
from batchgen.manifest.model import MAX_COLUMNS, as_text, show
from batchgen.manifest.table import RawTable, check_limits
from batchgen.manifest.xlsx_links import apply_hyperlinks, apply_merges

__all__ = ["HEADER_SEARCH_MAX_ROW", "MAX_AREA", "read_fast"]

#: A header further down than this row is not looked for (a sheet formatted down to row
#: 1,048,576 would otherwise be scanned to its end for a header it does not have).
HEADER_SEARCH_MAX_ROW = 1_000

#: Largest grid (rows x columns, from A1 to the last cell holding something) read through
#: calamine; larger sheets are read by openpyxl, which keeps memory bounded by the cells.
MAX_AREA = 8_000_000
#: ... and calamine is used only while the grid is at most this many times the cells it holds
#: (plus a margin), so a sparse sheet cannot make it allocate for nothing.
MAX_SPARSENESS = 4
_MARGIN = 100_000
_PART_LIMIT = 4 * 1024 * 1024  # bytes of workbook.xml, a relationships part or styles.xml
_CHUNK = 1 << 20
_TAIL = 256
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

_FORMULA = re.compile(rb"<f[\s>/]")
_ERROR = b't="e"'  # a cell whose value is an error (a byte search: a pattern is slower)
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.-]*:(?:row|c|sheetData)[\s>/]")
_ROW_OPEN = re.compile(rb"<row[\s>/]")
_ROW_REF = b'<row r="'
_HIDDEN_ROW = re.compile(rb"<row r=\"(\d{1,7})\"[^>]*?\shidden=\"(?:1|true)\"")
_CELL_OPEN = re.compile(rb"<c[\s>/]")
_CELL_REF = b'<c r="'
#: a cell holding something (not ``<c r="A9" s="1"/>``, formatting only, which calamine skips)
_CONTENT_CELL = re.compile(rb"<c r=\"([A-Z]{1,3})(\d{1,7})\"[^>/]*>")
_DATA_END = b"</sheetData>"
_DIMENSION = re.compile(rb"<dimension ref=\"(?:[A-Z]{1,3}\d{1,7}:)?([A-Z]{1,7})(\d{1,10})\"")
#: a text run without xml:space="preserve" that starts or ends with white space: openpyxl
#: keeps the space, calamine drops it
_LOOSE_SPACE = re.compile(rb"<t>\s|<t>[^<]*\s</t>")
_PHONETIC = b"<rPh"
_ZERO_PADDED_FORMAT = re.compile(rb"formatCode=\"0{2,}\"")


class Unsupported(Exception):
    """The workbook holds something this reader does not reproduce: use openpyxl."""


@dataclass
class SheetScan:
    """What one pass over a sheet's XML found."""

    last_row: int = 0  # of the cells holding something (1-based; 0: none)
    last_column: int = 0
    cells: int = 0  # cells holding something
    hidden: set[int] = field(default_factory=set)  # rows hidden in the sheet
    tail: bytes = b""  # everything after </sheetData> (hyperlinks, merged cells...)


def _column_number(letters: bytes) -> int:
    number = 0
    for byte in letters:
        number = number * 26 + byte - 64
    return number


def scan_sheet(archive: zipfile.ZipFile, part: str) -> SheetScan:
    """One streaming pass over the sheet part ``part``; Unsupported when it holds what this
    reader does not reproduce (see the module's docstring)."""
    scan, seen, after = SheetScan(), b"", False
    counts = {"rows": 0, "row_refs": 0, "cells": 0, "cell_refs": 0}
    columns: set[bytes] = set()
    with archive.open(part) as handle:
        while chunk := handle.read(_CHUNK):
            if not seen and not after:
                _check_dimension(chunk)
            if after:
                scan.tail += chunk
                continue
            data = seen + chunk
            end = data.find(_DATA_END)
            body = data if end < 0 else data[: end + len(_DATA_END)]
            _scan_body(body, scan, counts, columns, len(seen))
            if end >= 0:
                after, scan.tail = True, data[end:]
            seen = data[-_TAIL:]
    if counts["rows"] != counts["row_refs"] or counts["cells"] != counts["cell_refs"]:
        raise Unsupported("a row or a cell without a reference")
    if columns:
        scan.last_column = max(_column_number(c) for c in columns)
    return scan


def _check_dimension(head: bytes) -> None:
    """Unsupported when the sheet declares more rows or columns than Excel allows (openpyxl's
    reader refuses the file, naming them)."""
    found = _DIMENSION.search(head)
    if found is not None:
        letters, digits = found.groups()
        if len(letters) > 3 or _column_number(letters) > MAX_COLUMNS or int(digits) > 1_048_576:
            raise Unsupported("a dimension beyond Excel's")


def _scan_body(
    data: bytes, scan: SheetScan, counts: dict[str, int], columns: set[bytes], overlap: int
) -> None:
    """Look at ``data``, whose first ``overlap`` bytes were looked at with the chunk before:
    a tag wholly inside them was counted then; one cut there is counted now."""
    if _FORMULA.search(data) or _ERROR in data or _PREFIXED.search(data):
        raise Unsupported("a formula, an error cell or a namespace prefix")
    if _LOOSE_SPACE.search(data):
        raise Unsupported("text with white space at an end, not marked to keep it")
    head = data[:overlap]
    counts["rows"] += len(_ROW_OPEN.findall(data)) - len(_ROW_OPEN.findall(head))
    counts["row_refs"] += data.count(_ROW_REF) - head.count(_ROW_REF)
    counts["cells"] += len(_CELL_OPEN.findall(data)) - len(_CELL_OPEN.findall(head))
    counts["cell_refs"] += data.count(_CELL_REF) - head.count(_CELL_REF)
    scan.hidden.update(int(number) for number in _HIDDEN_ROW.findall(data))
    found = _CONTENT_CELL.findall(data)
    scan.cells += len(found) - len(_CONTENT_CELL.findall(head))
    if found:
        columns.update(letters for letters, _ in found)
        scan.last_row = max(scan.last_row, max(int(number) for _, number in found))


# --- the workbook's parts ---------------------------------------------------------------------


@dataclass(frozen=True)
class SheetEntry:
    """A sheet as ``xl/workbook.xml`` lists it."""

    name: str
    hidden: bool
    part: str  # its XML part in the zip


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > _PART_LIMIT:
        raise Unsupported(f"{name} is large")
    return archive.read(info)


def _rels(archive: zipfile.ZipFile, part: str) -> list[ElementTree.Element]:
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", name + ".rels")
    if rels not in archive.namelist():
        return []
    return list(ElementTree.fromstring(_read_part(archive, rels)).iter(f"{_PKG_REL}Relationship"))


def _target(part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(part), target))


def workbook_sheets(archive: zipfile.ZipFile) -> tuple[list[SheetEntry], int]:
    """The worksheets in workbook order, and the index of the active tab."""
    book = ElementTree.fromstring(_read_part(archive, "xl/workbook.xml"))
    targets = {
        r.get("Id"): (r.get("Type", ""), _target("xl/workbook.xml", r.get("Target", "")))
        for r in _rels(archive, "xl/workbook.xml")
    }
    sheets = []
    for sheet in book.iter(f"{_MAIN}sheet"):
        kind, part = targets.get(sheet.get(f"{_REL}id"), ("", ""))
        if not kind.endswith("/worksheet") or part not in archive.namelist():
            raise Unsupported("a chart sheet, or a sheet without its part")
        sheets.append(
            SheetEntry(sheet.get("name", ""), sheet.get("state", "visible") != "visible", part)
        )
    view = book.find(f"{_MAIN}bookViews/{_MAIN}workbookView")
    active = int(view.get("activeTab", "0")) if view is not None else 0
    return sheets, active


def _zero_padded_formats(archive: zipfile.ZipFile) -> bool:
    name = "xl/styles.xml"
    return name in archive.namelist() and bool(
        _ZERO_PADDED_FORMAT.search(_read_part(archive, name))
    )


def _check_shared_strings(archive: zipfile.ZipFile) -> None:
    """Unsupported when a shared string holds what calamine reads otherwise than openpyxl
    (white space at the end of a run not marked to keep it; phonetic runs)."""
    for member in archive.infolist():
        if not member.filename.lower().endswith("sharedstrings.xml"):
            continue
        tail = b""
        with archive.open(member) as handle:
            while chunk := handle.read(_CHUNK):
                data = tail + chunk
                if _LOOSE_SPACE.search(data) or _PHONETIC in data:
                    raise Unsupported("shared strings calamine reads otherwise")
                tail = data[-_TAIL:]


# --- values ---------------------------------------------------------------------------------


def _value(value: Any) -> Any:
    """A calamine value (not text) as openpyxl gives it: an int for a whole number (Excel
    writes ``5``, which openpyxl reads as an int), a datetime for a date."""
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if type(value) is dt.date:  # openpyxl gives a datetime at midnight
        return dt.datetime(value.year, value.month, value.day)
    return value


def _rows(sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values from column A) of the rows calamine holds."""
    if sheet.start is None:
        return
    first_row, first_column = sheet.start
    pad = [None] * first_column
    for index, row in enumerate(sheet.iter_rows()):
        values = [(v or None) if type(v) is str else _value(v) for v in row]
        yield first_row + index + 1, pad + values


def _is_empty(values: list[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _trimmed(values: list[Any]) -> list[Any]:
    """The values up to the last one (as openpyxl's reader gives a header row)."""
    last = max((i for i, v in enumerate(values[:MAX_COLUMNS]) if v is not None), default=-1)
    return values[: last + 1]


# --- the reader -----------------------------------------------------------------------------


def read_fast(path: Path, sheet: str | None, include_hidden: bool) -> RawTable | None:
    """The manifest sheet of ``path`` as :func:`batchgen.manifest.xlsx.read_xlsx` reads it,
    or None when this reader does not reproduce what the workbook holds (then openpyxl
    reads it). ``path`` has passed ``check_container``."""
    import python_calamine

    try:
        with zipfile.ZipFile(path) as archive:
            sheets, active = workbook_sheets(archive)
            if _zero_padded_formats(archive):
                return None
            _check_shared_strings(archive)
            candidates = _candidates(sheets, active, sheet, include_hidden)
            with python_calamine.CalamineWorkbook.from_path(str(path)) as book:
                for entry in candidates:
                    table = _try_sheet(path, archive, book, entry)
                    if table is not None:
                        hidden = [s.name for s in sheets if s.hidden and s is not entry]
                        if hidden and sheet is None:
                            names = ", ".join(show(t, 40) for t in hidden[:10])
                            table.notes.append(
                                f"hidden sheet(s) {names} were not read; --sheet NAME reads "
                                "one of them"
                            )
                        return table
    except ManifestError:
        raise  # too many rows: the same answer openpyxl would give, sooner
    except Exception:  # Unsupported, or anything unusual: openpyxl reads it, and words it
        return None
    return None


def _candidates(
    sheets: list[SheetEntry], active: int, wanted: str | None, include_hidden: bool
) -> list[SheetEntry]:
    """The sheets to try, in :mod:`batchgen.manifest.xlsx`'s order."""
    if wanted is not None:
        exact = [s for s in sheets if s.name == wanted]
        folded = [s for s in sheets if s.name.strip().casefold() == wanted.strip().casefold()]
        return (exact or folded)[:1]
    first = sheets[active] if 0 <= active < len(sheets) else None
    visible = [s for s in sheets if not s.hidden]
    ordered = ([first] if first in visible else []) + [s for s in visible if s is not first]
    return ordered + ([s for s in sheets if s.hidden] if include_hidden else [])


def _try_sheet(
    path: Path, archive: zipfile.ZipFile, book: Any, entry: SheetEntry
) -> RawTable | None:
    """The sheet read, if it has a prompt column (None: it has not)."""
    scan = scan_sheet(archive, entry.part)
    area = scan.last_row * scan.last_column
    if area > MAX_AREA or area > MAX_SPARSENESS * scan.cells + _MARGIN:
        raise Unsupported("a grid much larger than its cells")
    if scan.cells == 0:
        return None
    rows = _rows(book.get_sheet_by_name(entry.name))
    found = _header(rows)
    if found is None:
        return None
    header_row, header = found
    columns = map_columns(header)
    if isinstance(columns, str):
        raise Unsupported("a header the openpyxl reader words the problem of")
    table = RawTable(
        header=[as_text(h) for h in header],
        columns=columns,
        header_row=header_row,
        rows=[],
        sheet=entry.name,
    )
    beyond: list[str] = []
    width = len(header)
    for number, values in rows:
        if _add_row(table, number, values, width, beyond):
            if number in scan.hidden:
                table.hidden.add(number)
            check_limits(path, len(table.rows), width)
    if beyond:
        table.notes.append(
            f"{len(beyond):,} cells right of the last named column are ignored "
            f"(the first is {beyond[0]}); give the column a header to keep it"
        )
    _apply_tail(table, archive, entry.part, scan.tail)
    return table


def _header(rows: Iterator[tuple[int, list[Any]]]) -> tuple[int, list[Any]] | None:
    seen = 0
    for number, values in rows:
        if number > HEADER_SEARCH_MAX_ROW:
            return None
        if _is_empty(values):
            continue
        trimmed = _trimmed(values)
        if has_prompt_column(trimmed):
            return number, trimmed
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            return None
    return None


def _add_row(
    table: RawTable, number: int, values: list[Any], width: int, beyond: list[str]
) -> bool:
    for column in range(width, min(len(values), MAX_COLUMNS)):
        value = values[column]
        if value is not None and not (isinstance(value, str) and not value.strip()):
            beyond.append(f"{column_letter(column)}{number}")
    row = values[:width] + [None] * (width - len(values))
    if _is_empty(row):
        return False
    table.rows.append((number, row))
    return True


def _apply_tail(table: RawTable, archive: zipfile.ZipFile, part: str, tail: bytes) -> None:
    """Hyperlinks and merged ranges, from the XML after ``</sheetData>``."""
    from openpyxl.worksheet.hyperlink import HyperlinkList
    from openpyxl.worksheet.merge import MergeCells

    links = _section(tail, b"hyperlinks")
    if links is not None:
        targets = {
            r.get("Id", ""): r.get("Target", "")
            for r in _rels(archive, part)
            if r.get("TargetMode") == "External" and r.get("Target")
        }
        apply_hyperlinks(table, HyperlinkList.from_tree(links).hyperlink, targets)
    merges = _section(tail, b"mergeCells")
    if merges is not None:
        apply_merges(table, MergeCells.from_tree(merges).mergeCell)


def _section(tail: bytes, name: bytes) -> ElementTree.Element | None:
    start = tail.find(b"<" + name)
    if start < 0:
        return None
    end = tail.find(b"</" + name + b">", start)
    if end < 0:
        raise Unsupported(f"a {name.decode()} part without its end")
    xml = tail[start : end + len(name) + 3]
    # the namespaces the element uses are declared on the root, out of this slice
    xml = xml.replace(
        b"<" + name,
        b"<" + name + b' xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        b' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"',
        1,
    )
    return ElementTree.fromstring(xml)
