"""Hyperlinks and merged ranges of a manifest sheet, applied to the rows read (by either
reader: :mod:`batchgen.manifest.xlsx` or :mod:`batchgen.manifest.xlsx_fast`)."""

from __future__ import annotations

import bisect
from typing import Any

from batchgen.manifest.table import CellIssue, RawTable

__all__ = ["apply_hyperlinks", "apply_merges"]


def apply_hyperlinks(table: RawTable, links: list[Any], targets: dict[str, str]) -> None:
    """Put each external link's target in the cells it covers (``links``: openpyxl
    ``Hyperlink`` records; ``targets``: the sheet's external relationships, id -> URL)."""
    from openpyxl.utils.cell import range_boundaries

    width = len(table.header)
    numbers = [number for number, _ in table.rows]
    for link in links:
        target = targets.get(link.id) if link.id else None
        if not target or target.startswith("#") or not link.ref:
            continue  # a link to a place inside the workbook: keep the shown text
        if link.location:
            target = f"{target}#{link.location}"
        min_col, min_row, max_col, max_row = range_boundaries(link.ref)
        for position in range(
            bisect.bisect_left(numbers, min_row), bisect.bisect_right(numbers, max_row)
        ):
            values = table.rows[position][1]
            for column in range(min_col, min(max_col, width) + 1):
                values[column - 1] = _link_value(values[column - 1], target)


def _link_value(shown: Any, target: str) -> Any:
    # Excel links a cell holding several typed URLs to the first one only: keep the text
    # then, or the other images would be lost.
    if isinstance(shown, str) and target in shown and shown.strip() != target:
        parts = shown.split()
        if len(parts) > 1 and all(p.startswith(("http://", "https://")) for p in parts):
            return shown
    return target


def apply_merges(table: RawTable, merged: list[Any]) -> None:
    """Flag the rows a merged range covers (``merged``: openpyxl ``MergeCell`` records)."""
    if not merged:
        return
    from openpyxl.utils.cell import range_boundaries

    width = len(table.header)
    numbers = [number for number, _ in table.rows]
    for cell_range in merged:
        min_col, min_row, _, max_row = range_boundaries(cell_range.ref)
        if min_col > width:
            continue
        first = bisect.bisect_left(numbers, max(min_row, table.header_row + 1))
        for position in range(first, bisect.bisect_right(numbers, max_row)):
            number = numbers[position]
            if not any(i.kind == "merged" for i in table.issues.get(number, ())):
                table.add_issue(number, CellIssue("merged", min_col - 1, cell_range.ref))
