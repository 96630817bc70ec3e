"""The records a manifest is read into, the reader's limits, and safe display of cell values.

Public names are re-exported by :mod:`batchgen.manifest.load`; import them from there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.models import JobSpec

__all__ = [
    "MAX_CELLS",
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_DATA_ROWS",
    "MAX_FILE_BYTES",
    "MAX_ID_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_UNCOMPRESSED_BYTES",
    "MAX_URL_CHARS",
    "MAX_XLSX_CELLS",
    "RESULT_COLUMNS_RESERVED",
    "Manifest",
    "ManifestRow",
    "Problem",
    "as_text",
    "safe",
    "show",
]

#: Longest prompt accepted, in characters after surrounding whitespace is removed.
MAX_PROMPT_CHARS = 4_000
#: Longest id accepted, in characters.
MAX_ID_CHARS = 200
#: Longest image URL accepted, in characters (the de facto limit of browsers and CDNs).
MAX_URL_CHARS = 2_048
#: Data rows per manifest (8,000,000 credits); larger batches belong in several files.
MAX_DATA_ROWS = 200_000
#: Columns per manifest: Excel's own maximum.
MAX_COLUMNS = 16_384
#: Columns batchgen adds to the user's in the results sheet (``output.results.RESULT_COLUMNS``
#: holds 16, ``output.review.REVIEW_COLUMNS`` 5; a test keeps this at least as large): a
#: manifest wider than MAX_COLUMNS minus these could be paid for and then never get a
#: results sheet.
RESULT_COLUMNS_RESERVED = 24
#: Characters a spreadsheet cell holds (Excel's limit).
MAX_CELL_CHARS = 32_767
#: Data rows times header width: bounds memory whatever the shape of the sheet.
MAX_CELLS = 20_000_000
#: Size of the manifest file on disk.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Sum of the uncompressed parts of an .xlsx: the guard against zip bombs.
MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
#: Cells holding something (a value, a formula, an inline string) in a whole .xlsx manifest,
#: counted before it is parsed (``batchgen.xlsx_bounds``): ten columns of the largest
#: manifest, and about a minute of reading (``benchmarks/bench_sheets.py``). Formatting-only
#: cells are free; a CSV is bounded by MAX_CELLS alone.
MAX_XLSX_CELLS = 10 * MAX_DATA_ROWS


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a manifest, a row of it, or one cell.

    ``message`` says what is wrong and what would be accepted; values inside it are already
    shortened and made safe to print (see :func:`show`). ``row`` is the row number as the
    user sees it in the spreadsheet (header = row 1) or None for the whole file.
    """

    path: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = [self.path]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {show(self.column)}")
        return f"{', '.join(where)}: {self.message}"  # the log's level says "warning"

    @property
    def is_error(self) -> bool:
        """True for an error (the row is not sent), False for a warning."""
        return self.severity == "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestRow:
    """One data row of a manifest, valid or not.

    ``user`` holds every column of the manifest (request columns too) under its original
    header name, in the original order, with the original value: ``str`` from a CSV, the
    cell's Python value from an .xlsx (the link target for a hyperlink cell, the cached
    result for a formula cell). ``spec`` is None when the row has at least one error.
    """

    row: int
    key: str
    user: dict[str, Any]
    spec: JobSpec | None
    prompt: str
    problems: tuple[Problem, ...] = ()
    skipped: str | None = None  # why the row is not sent although it may be valid (hidden)
    template: str | None = None  # the prompt template ``spec.prompt`` was filled from
    price: int | None = None  # what ``spec`` is expected to cost, in the provider's unit

    @property
    def valid(self) -> bool:
        """True when the row will be sent."""
        return self.spec is not None and self.skipped is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """A manifest file, read and validated.

    ``columns`` are the header names in order (a repeated user column gets " (2)" appended,
    a data column without a header is called "column F"); they are the keys of every row's
    ``user`` dict. ``problems`` holds every error and warning: file-wide ones first, then by
    row.
    """

    path: Path
    sheet: str | None
    columns: list[str]
    rows: list[ManifestRow]
    problems: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> list[JobSpec]:
        """The requests of the valid rows, in file order."""
        return [row.spec for row in self.rows if row.spec is not None and row.skipped is None]

    @property
    def invalid(self) -> list[ManifestRow]:
        """The rows that will not be sent because of an error."""
        return [row for row in self.rows if row.spec is None and row.skipped is None]

    @property
    def skipped(self) -> list[ManifestRow]:
        """The rows left out on purpose (hidden in the sheet), valid or not."""
        return [row for row in self.rows if row.skipped is not None]

    @property
    def warnings(self) -> list[Problem]:
        """Problems that do not stop a row (duplicates, encoding fallback...)."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def errors(self) -> list[Problem]:
        """Problems that stop a row."""
        return [p for p in self.problems if p.severity == "error"]


# C0 and C1 controls, DEL, and the bidirectional overrides that can make a terminal show
# text in a different order than it is stored ("Trojan source").
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def show(value: object, limit: int = 60) -> str:
    """``value`` quoted for a message: control characters escaped, cut to ``limit`` chars."""
    return "'" + safe(value, limit) + "'"


def safe(value: object, limit: int = 200) -> str:
    """``value`` as text that is safe to print: control characters escaped, cut to ``limit``."""
    text = as_text(value)
    cut = len(text) > limit
    # Cut before escaping (a 1 MB prompt is not escaped whole), and again after, since an
    # escape makes one character six.
    text = _UNSAFE.sub(_escape, text[:limit])
    if cut or len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def as_text(value: object) -> str:
    """A cell value as the text a person would see typed in the cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def display_path(path: Path) -> str:
    """How a manifest's path appears in messages: as the user gave it."""
    return str(path)
