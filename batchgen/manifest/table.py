"""The raw table every manifest reader produces, and the limits every reader enforces.

Shared by the CSV reader (:mod:`batchgen.manifest.read`) and the XLSX reader
(:mod:`batchgen.manifest.xlsx`), so that neither imports the other's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.errors import ManifestError
from batchgen.manifest.columns import ColumnMap
from batchgen.manifest.model import MAX_CELLS, MAX_DATA_ROWS

__all__ = ["OLE2_SIGNATURE", "ZIP_SIGNATURES", "CellIssue", "RawTable", "check_limits"]

OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True, slots=True)
class CellIssue:
    """Something the reader saw in a row that validation must turn into a problem.

    ``kind`` is ``merged`` (``detail`` is the range), ``no_value`` (a formula without a saved
    result), ``cell_error`` (``#N/A`` and kin), ``extra_cells`` (``detail`` lists them) or
    ``outside_table`` (a row outside the Excel table holding the others; ``detail`` is the
    warning).
    ``column`` is a 0-based position in the header, or None for the whole row.
    """

    kind: str
    column: int | None
    detail: str = ""


@dataclass(slots=True)
class RawTable:
    """A manifest as read: the header row and the data rows, unjudged.

    ``rows`` holds ``(row number, values)`` with exactly ``len(header)`` values each; fully
    empty rows are already left out (their numbers are skipped, as Excel shows them).
    """

    header: list[Any]
    columns: ColumnMap
    header_row: int
    rows: list[tuple[int, list[Any]]]
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)  # file-wide warnings
    issues: dict[int, list[CellIssue]] = field(default_factory=dict)
    hidden: set[int] = field(default_factory=set)  # rows hidden in the sheet (filter, by hand)
    sep_line: bool = False  # a CSV whose first line is Excel's "sep=" hint

    def add_issue(self, row: int, issue: CellIssue) -> None:
        """Record ``issue`` against data row ``row``."""
        self.issues.setdefault(row, []).append(issue)


def check_limits(path: Path, rows: int, width: int) -> None:
    """Stop reading once a table outgrows what batchgen handles in memory."""
    if rows > MAX_DATA_ROWS:
        raise ManifestError(
            path,
            f"has more than {MAX_DATA_ROWS:,} data rows: split it into several manifests",
        )
    if rows * width > MAX_CELLS:
        raise ManifestError(
            path,
            f"is too large: {width:,} columns by {rows:,}+ rows is more than "
            f"{MAX_CELLS:,} cells; delete unused columns or split the file",
        )
