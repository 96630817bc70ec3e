"""The streaming sheet parser behind :mod:`batchgen.manifest.xlsx`.

openpyxl's ``WorkSheetParser`` is used for what it does well (cell types, dates, shared
strings), with four changes that keep memory and time bounded by the data, not by the
formatting, and keep what the user saw:

- a row's ``hidden`` flag (set by a filter or by hand) is kept for that row only
  (:attr:`Parser.row_hidden`), and no per-row dimension record is stored: openpyxl keeps one
  dict per formatted row, about 500 MB for a sheet formatted down to row 1,048,576;
- each row element is removed from the tree once parsed (``iterparse`` otherwise keeps every
  cleared row attached to ``<sheetData>``), and style-only cells (no value, no formula) are
  not parsed at all;
- a formula cell gives its saved value, except ``HYPERLINK("url", "label")``, which gives
  its URL (Excel saves the label as the value); a formula without a usable saved value, or a
  ``HYPERLINK`` whose URL is not written in the formula, becomes a :class:`Flagged` value
  that names the formula;
- error values (``#N/A``) become :class:`Flagged` values too.

Relies on openpyxl 3.1 internals (``WorkSheetParser``); pyproject pins openpyxl below 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Flagged", "PaddedIds", "hyperlink_target", "make_parser"]


@dataclass(frozen=True, slots=True)
class Flagged:
    """A cell value the validator must look at: ``kind`` is ``no_value`` (a formula without
    a saved result), ``hyperlink_label`` (a HYPERLINK formula whose URL is not in its text)
    or ``cell_error``; ``detail`` is the formula (without ``=``) or the error text; ``value``
    is what the cell shows (None when nothing)."""

    kind: str
    detail: str
    value: Any = None


# --- HYPERLINK -----------------------------------------------------------------------------

_HYPERLINK = re.compile(r"^\s*(?:_xlfn\.)?HYPERLINK\s*\(", re.IGNORECASE)
_LITERAL = re.compile(r'\s*"((?:[^"]|"")*)"\s*')


def is_hyperlink(formula: str) -> bool:
    """True when ``formula`` (without ``=``) is a HYPERLINK call."""
    return _HYPERLINK.match(formula) is not None


def hyperlink_target(formula: str) -> str | None:
    """The link of ``HYPERLINK("https://…", "label")`` when its first argument is text
    written in the formula (string literals, possibly joined with ``&``); else None."""
    start = _HYPERLINK.match(formula)
    if start is None:
        return None
    position, parts = start.end(), []
    while True:
        literal = _LITERAL.match(formula, position)
        if literal is None:
            return None
        parts.append(literal.group(1).replace('""', '"'))
        position = literal.end()
        if position < len(formula) and formula[position] == "&":
            position += 1
            continue
        if position < len(formula) and formula[position] in ",)":
            return "".join(parts).strip() or None
        return None


def _looks_like_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


# --- the parser ----------------------------------------------------------------------------


def make_parser(worksheet: Any) -> Any:
    """A parser of ``worksheet`` (an openpyxl read-only worksheet); iterate ``parse()`` for
    ``(row number, cells)``, read ``row_hidden`` right after each row, and ``hyperlinks`` /
    ``merged_cells`` once the iteration is over. Close ``parser.source`` when done."""
    from openpyxl.worksheet._reader import (
        FORMULA_TAG,
        HYPERLINK_TAG,
        MERGE_TAG,
        ROW_TAG,
        VALUE_TAG,
        WorkSheetParser,
    )
    from openpyxl.worksheet.hyperlink import HyperlinkList
    from openpyxl.worksheet.merge import MergeCells
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse

    data_tag = f"{{{SHEET_MAIN_NS}}}sheetData"

    class Parser(WorkSheetParser):
        """openpyxl's parser, changed as the module docstring says."""

        row_hidden = False

        def parse(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
            for _, element in iterparse(self.source):
                tag = element.tag
                if tag == ROW_TAG:
                    row = self.parse_row(element)
                    element.clear()
                    yield row
                elif tag == HYPERLINK_TAG:
                    self.hyperlinks = HyperlinkList.from_tree(element)
                    element.clear()
                elif tag == MERGE_TAG:
                    self.merged_cells = MergeCells.from_tree(element)
                    element.clear()
                elif tag == data_tag:
                    element.clear()  # drops the cleared rows it still holds

        def parse_row(self, row: Any) -> tuple[int, list[dict[str, Any]]]:
            number = row.get("r")
            if number is not None:
                self.row_counter = int(float(number))
            else:
                self.row_counter += 1
            self.col_counter = 0
            self.row_hidden = row.get("hidden") in ("1", "true")
            # A cell with a reference and no child is formatting only: nothing to read.
            cells = [self.parse_cell(c) for c in row if len(c) or c.get("r") is None]
            return self.row_counter, cells

        def parse_cell(self, element: Any) -> dict[str, Any]:
            cell: dict[str, Any] = super().parse_cell(element)
            # <f> comes first in a cell, so one look tells whether there is a formula
            formula = element[0] if len(element) and element[0].tag == FORMULA_TAG else None
            if formula is not None:
                cell["value"] = _formula_value(
                    formula.text or "", cell["value"], element, VALUE_TAG
                )
            elif cell["data_type"] == "e":
                cell["value"] = Flagged("cell_error", str(cell["value"]), str(cell["value"]))
            return cell

    workbook = worksheet.parent
    return Parser(
        worksheet._get_source(),
        worksheet._shared_strings,
        data_only=True,
        epoch=workbook.epoch,
        date_formats=workbook._date_formats,
        timedelta_formats=workbook._timedelta_formats,
    )


def _formula_value(formula: str, saved: Any, element: Any, value_tag: str) -> Any:
    if is_hyperlink(formula):
        target = hyperlink_target(formula)
        if target is not None:
            return target
        if _looks_like_url(saved):
            return saved
        return Flagged("hyperlink_label", formula, saved)
    if element.get("t") == "e" and saved is not None:
        return Flagged("cell_error", str(saved), str(saved))
    # Excel saves a formula whose result is empty text as t="str" with <v></v>. No <v>, or
    # an empty one on a number cell, means the file was written by a program that does not
    # calculate formulas (openpyxl, many exporters).
    if saved is None and (element.find(value_tag) is None or element.get("t", "n") != "str"):
        return Flagged("no_value", formula)
    return saved


# --- ids shown with zeros by a number format -----------------------------------------------

_ZERO_PADDED = re.compile(r"^(0{2,})$")


class PaddedIds:
    """Finds id cells holding a number that a format such as ``0000`` shows with leading
    zeros (``7`` shown as ``0007``): the id is the number, so a note says so once."""

    def __init__(self, workbook: Any, id_column: int | None) -> None:
        self.column = None if id_column is None else id_column + 1
        # style index -> digits the format shows; empty when no id column or no such format
        self.styles = {} if self.column is None else _zero_padded_styles(workbook)
        self.count = 0
        self.first: tuple[int, int | float, str] | None = None  # (row, value, shown)

    def look(self, number: int, cells: list[dict[str, Any]]) -> None:
        """Count row ``number``'s id cell if it is such a number."""
        for cell in cells:
            if cell["column"] != self.column:
                continue
            value, width = cell["value"], self.styles.get(cell["style_id"])
            if width and type(value) in (int, float) and float(value).is_integer():
                self.count += 1
                if self.first is None:
                    self.first = (number, value, str(int(value)).zfill(width))
            return

    def note(self) -> str:
        """The file-wide note."""
        assert self.first is not None
        number, value, shown = self.first
        return (
            f"{self.count:,} id cells hold numbers that a number format shows with leading "
            f"zeros (row {number} shows '{shown}', its id is {int(value)}): the zeros are not "
            "part of the id; to keep them, format the id column as Text and type them"
        )


def _zero_padded_styles(workbook: Any) -> dict[int, int]:
    from openpyxl.styles.numbers import BUILTIN_FORMATS

    custom = list(getattr(workbook, "_number_formats", []))
    found: dict[int, int] = {}
    for index, style in enumerate(getattr(workbook, "_cell_styles", [])):
        fmt_id = style.numFmtId
        code = BUILTIN_FORMATS.get(fmt_id) if fmt_id < 164 else None
        if code is None and 0 <= fmt_id - 164 < len(custom):
            code = custom[fmt_id - 164]
        match = _ZERO_PADDED.match(str(code or ""))
        if match:
            found[index] = match.group(1).count("0")
    return found
