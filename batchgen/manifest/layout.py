"""The columns a table keeps and the sheet-wide notes: names, width, hidden rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchgen.errors import ManifestError
from batchgen.manifest.columns import column_letter
from batchgen.manifest.model import MAX_COLUMNS, RESULT_COLUMNS_RESERVED, as_text, show
from batchgen.manifest.table import RawTable

__all__ = ["check_width", "column_names", "hidden_note"]

_ROWS_LISTED = 20


def check_width(path: Path, names: dict[int, str]) -> None:
    """ManifestError when the results of these columns would not fit in a sheet."""
    limit = MAX_COLUMNS - RESULT_COLUMNS_RESERVED
    if len(names) > limit:
        raise ManifestError(
            path,
            f"has {len(names):,} columns: with batchgen's result columns the results sheet "
            f"would need more than the {MAX_COLUMNS:,} a spreadsheet holds; keep at most "
            f"{limit:,} columns (delete unused ones or split the file)",
        )


def hidden_note(numbers: list[int], included: bool, sheet: str | None = None) -> str:
    """The file-wide note about rows hidden in the sheet (skipped, or included); ``sheet``
    is the name of an XLSX sheet (None for a CSV)."""
    listed = ", ".join(map(str, numbers[:_ROWS_LISTED]))
    if len(numbers) > _ROWS_LISTED:
        listed += f" and {len(numbers) - _ROWS_LISTED:,} more"
    one = len(numbers) == 1
    count = f"{len(numbers):,} row{'' if one else 's'}"
    where = "the sheet" if sheet is None else f"the sheet {show(sheet)}"
    rows = f"row{'' if one else 's'} {listed}"
    if included:
        verb = "is" if one else "are"
        return f"{count} hidden in {where} {verb} included (--include-hidden): {rows}"
    return (
        f"{count} hidden in {where} (by a filter or by hand) {'was' if one else 'were'} "
        f"skipped, not sent: {rows}; --include-hidden sends {'it' if one else 'them'}"
    )


def column_names(table: RawTable) -> tuple[dict[int, str], list[int] | None, list[str]]:
    """Display names of the kept columns (by raw position), the kept positions (None: all),
    and notes about renamed or unnamed columns."""
    names: dict[int, str] = {}
    notes: list[str] = []
    used: set[str] = set()
    for index, raw in enumerate(table.header):
        name = as_text(raw).replace("\ufeff", "")
        letter = column_letter(index)
        if not name.strip():
            if not any(_filled(values[index]) for _, values in table.rows):
                continue  # an empty column without a header: a stray cell format, or ",,"
            name = f"column {letter}"
            notes.append(f"column {letter} has no header; its values are kept as {show(name)}")
        if name in used:
            original, number = name, 2
            while f"{original} ({number})" in used:
                number += 1
            name = f"{original} ({number})"
            notes.append(
                f"column {letter} repeats the header {show(original)}; kept as {show(name)}"
            )
        used.add(name)
        names[index] = name
    keep = None if len(names) == len(table.header) else sorted(names)
    return names, keep, notes


def _filled(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())
