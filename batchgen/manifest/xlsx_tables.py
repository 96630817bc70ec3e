"""Excel tables (ListObjects, Insert > Table) on the manifest sheet: which rows are data.

A table's part (``xl/tables/tableN.xml``, ECMA-376 Part 1, section 18.5.1.2) says which cells
it covers (``ref="A3:D12"``), how many header rows it starts with (``headerRowCount``, default
1) and how many total rows end it (``totalsRowCount``, default 0). Excel shows a Total Row as
an ordinary row holding the word "Total" and a sum or a count: read as data, it was once sent
as a brief ("Total", with the default mode and ratio: 40 credits). So, on a sheet where a
table holds the prompt column:

* the header and total rows of every such table are not data (a second table's header row
  repeats the column names, and would be sent as a prompt too);
* a row outside every such table is still read, with a warning on the row: most often it was
  typed under the table without the table growing to take it, sometimes it is a note.

The parts are found from the zip itself (``xl/workbook.xml``, its relationships, then the
sheet's), whatever library reads the cells. Each part is read only up to ``MAX_PART_BYTES``.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from batchgen.errors import ManifestError
from batchgen.manifest.model import show
from batchgen.manifest.table import CellIssue, RawTable
from batchgen.xlsx_bounds import READ_ERRORS

__all__ = ["MAX_PART_BYTES", "TableArea", "apply_tables", "sheet_tables"]

#: Largest workbook, relationships or table part read (a table of 16,384 columns is ~1 MB).
MAX_PART_BYTES = 4 * 1024 * 1024
_TABLE_TYPE = "/table"
_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})(?::\$?([A-Za-z]{1,3})\$?(\d{1,7}))?$")


@dataclass(frozen=True, slots=True)
class TableArea:
    """One table: ``name`` and its cells (1-based rows and columns, ends included), with
    ``header_rows`` at its top and ``total_rows`` at its bottom."""

    name: str
    ref: str
    first_row: int
    last_row: int
    first_col: int
    last_col: int
    header_rows: int = 1
    total_rows: int = 0

    def holds_column(self, column: int) -> bool:
        """Whether 1-based ``column`` is one of the table's."""
        return self.first_col <= column <= self.last_col

    def holds_row(self, row: int) -> bool:
        """Whether ``row`` is one of the table's (header and total rows included)."""
        return self.first_row <= row <= self.last_row

    def is_data(self, row: int) -> bool:
        """Whether ``row`` is one of the table's data rows (neither header nor total)."""
        return self.first_row + self.header_rows <= row <= self.last_row - self.total_rows


def sheet_tables(path: Path, sheet: str) -> list[TableArea]:
    """The tables on the sheet named ``sheet`` of the workbook at ``path`` (none when the
    sheet has none). Raises ManifestError when a part that defines them cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _tables(archive, sheet)
    except (*READ_ERRORS, ElementTree.ParseError, KeyError) as exc:
        raise ManifestError(
            path, "is damaged: its Excel table definitions cannot be read (re-save it in Excel)"
        ) from exc


def _tables(archive: zipfile.ZipFile, sheet: str) -> list[TableArea]:
    workbook = "xl/workbook.xml"
    names = set(archive.namelist())
    if workbook not in names:
        return []
    rel_id = next(
        (
            _attr(e, "id")
            for e in _root(archive, workbook).iter()
            if _local(e.tag) == "sheet" and e.get("name") == sheet
        ),
        None,
    )
    parts = {i: target for i, _, target in _relations(archive, workbook, names)}
    part = parts.get(rel_id or "")
    if part is None:
        return []
    found = []
    for _, rel_type, target in _relations(archive, part, names):
        if rel_type.endswith(_TABLE_TYPE) and target in names:
            area = _area(_root(archive, target))
            if area is not None:
                found.append(area)
    return found


def _area(root: ElementTree.Element) -> TableArea | None:
    match = _REF.match((root.get("ref") or "").strip())
    if match is None:
        return None
    first_col, first_row = _column(match.group(1)), int(match.group(2))
    last_col = _column(match.group(3)) if match.group(3) else first_col
    last_row = int(match.group(4)) if match.group(4) else first_row
    return TableArea(
        name=root.get("displayName") or root.get("name") or "a table",
        ref=match.group(0).replace("$", "").upper(),
        first_row=min(first_row, last_row),
        last_row=max(first_row, last_row),
        first_col=min(first_col, last_col),
        last_col=max(first_col, last_col),
        header_rows=_count(root.get("headerRowCount"), 1),
        total_rows=_count(root.get("totalsRowCount"), 0),
    )


def _count(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default


def _column(letters: str) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + ord(char) - ord("A") + 1
    return number


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _attr(element: ElementTree.Element, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (``r:id``)."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _root(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    info = archive.getinfo(name)
    if info.file_size > MAX_PART_BYTES:
        raise ValueError(f"{name} is larger than {MAX_PART_BYTES} bytes")
    return ElementTree.fromstring(archive.read(info))


def _relations(archive: zipfile.ZipFile, part: str, names: set[str]) -> list[tuple[str, str, str]]:
    """``(id, type, target part)`` of each internal relationship of ``part``."""
    folder, _, file = part.rpartition("/")
    rels = f"{folder}/_rels/{file}.rels" if folder else f"_rels/{file}.rels"
    if rels not in names:
        return []
    found = []
    for element in _root(archive, rels).iter():
        target = element.get("Target")
        if _local(element.tag) != "Relationship" or not target:
            continue
        if element.get("TargetMode") == "External":
            continue
        path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found.append((element.get("Id") or "", element.get("Type") or "", posixpath.normpath(path)))
    return found


def apply_tables(table: RawTable, areas: list[TableArea]) -> None:
    """Drop the header and total rows of the tables holding the prompt column from
    ``table.rows``, and flag each row outside all of them (``outside_table``)."""
    prompt = table.columns.prompt + 1
    mine = [a for a in areas if a.holds_column(prompt)]
    if not mine:
        return
    kept: list[tuple[int, list[Any]]] = []
    dropped: list[int] = []
    for number, values in table.rows:
        inside = [a for a in mine if a.holds_row(number)]
        if inside and not any(a.is_data(number) for a in inside):
            dropped.append(number)
            table.issues.pop(number, None)
            table.hidden.discard(number)
            continue
        kept.append((number, values))
        if not inside:
            table.add_issue(number, CellIssue("outside_table", None, _outside(mine)))
    table.rows[:] = kept
    if dropped:
        shown = ", ".join(str(n) for n in dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        table.notes.append(
            f"row(s) {shown} are header or total rows of the Excel table(s) "
            f"{_names(mine)}: not briefs, so not read"
        )


def _names(areas: list[TableArea]) -> str:
    return ", ".join(f"{show(a.name, 40)} ({a.ref})" for a in areas[:5])


def _outside(areas: list[TableArea]) -> str:
    return (
        f"this row is outside the Excel table {_names(areas)} that holds the briefs: if it is "
        "one, extend the table to take it in; if not, delete it (it is read as a brief)"
    )
