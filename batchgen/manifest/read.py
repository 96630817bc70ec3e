"""Turn a manifest file into a raw table: header, numbered rows of cell values, cell issues.

Nothing here judges the values (that is :mod:`batchgen.manifest.row_checks`); this module only
finds the header, keeps the row numbers the user sees, and turns every way a file can be
unreadable into one :class:`~batchgen.errors.ManifestError` sentence.

CSV is read with the standard library's ``csv`` module rather than pandas: it keeps every
cell as the exact text of the file (no NA or number inference whatever the pandas version),
it counts records exactly (so row numbers match what Excel shows even with blank lines and
multi-line quoted cells), and it keeps repeated header names as written.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from batchgen.errors import ManifestError
from batchgen.manifest.columns import (
    HEADER_SEARCH_ROWS,
    has_prompt_column,
    map_columns,
    missing_prompt_message,
)
from batchgen.manifest.model import MAX_FILE_BYTES
from batchgen.manifest.table import (
    OLE2_SIGNATURE,
    ZIP_SIGNATURES,
    CellIssue,
    RawTable,
    check_limits,
)
from batchgen.paths import name_problem

__all__ = ["read_table"]

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def read_table(path: Path, *, sheet: str | None = None, include_hidden: bool = False) -> RawTable:
    """Read ``path`` (.csv, .tsv, .xlsx, .xlsm) into a :class:`RawTable` (possibly without
    data rows). ``include_hidden`` lets the default sheet choice fall back to hidden sheets.

    Raises ManifestError, and nothing else, when the file cannot be used at all.
    """
    suffix = path.suffix.lower()
    _check_file(path, suffix)
    if suffix in (".xlsx", ".xlsm"):
        # Imported here so CSV-only use never pays for openpyxl's import.
        from batchgen.manifest.xlsx import read_xlsx

        return read_xlsx(path, sheet=sheet, include_hidden=include_hidden)
    return _read_csv(path, suffix)


#: Spreadsheets batchgen cannot read, and what to do; a folder's listing includes them so
#: that each is reported rather than silently left out.
OTHER_FORMATS = {
    ".xls": "is an old Excel 97-2003 workbook (.xls): save it as .xlsx or CSV UTF-8",
    ".ods": "is an OpenDocument spreadsheet: save it as .xlsx or CSV UTF-8",
    ".fods": "is a flat OpenDocument spreadsheet: save it as .xlsx or CSV UTF-8",
    ".numbers": "is a Numbers spreadsheet: export it as .xlsx or CSV (File > Export To)",
    ".xlsb": "is a binary Excel workbook (.xlsb): save it as .xlsx or CSV UTF-8",
}
_OTHER_FORMATS = OTHER_FORMATS


def _check_file(path: Path, suffix: str) -> None:
    """ManifestError unless ``path`` is a regular, readable spreadsheet file of a usable size
    whose name batchgen can store (nothing of its content is read or shown before that)."""
    if not path.exists() and not path.is_symlink():
        raise ManifestError(path, "does not exist (no file or folder of that name)")
    if suffix in _OTHER_FORMATS:
        raise ManifestError(path, _OTHER_FORMATS[suffix])
    if suffix not in (".csv", ".tsv", ".xlsx", ".xlsm"):
        raise ManifestError(path, "is not a manifest: use a .csv, .tsv, .xlsx or .xlsm file")
    problem = name_problem(path)
    if problem is not None:
        raise ManifestError(path, problem)
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise ManifestError(path, "does not exist") from exc
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ManifestError(path, "is a folder, not a manifest file")
    if not stat.S_ISREG(info.st_mode):
        raise ManifestError(
            path, f"is {_kind(info.st_mode)}, not a file: batchgen reads only spreadsheet files"
        )
    _check_link(path)
    if info.st_size == 0:
        raise ManifestError(path, "is empty")
    if info.st_size > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise ManifestError(path, f"is larger than {limit} MB: split it into several manifests")
    if not os.access(path, os.R_OK):
        raise ManifestError(path, "cannot be read: permission denied")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_link(path: Path) -> None:
    """A symbolic link must lead to a spreadsheet: a link named ``briefs.csv`` to a system
    file (``/etc/shadow``) is refused before a byte of it is read."""
    target = path.resolve()
    if target.suffix.lower() not in (".csv", ".tsv", ".xlsx", ".xlsm"):
        raise ManifestError(
            path,
            f"is a link to {target}, which is not a spreadsheet (its name does not end in .csv, "
            ".tsv, .xlsx or .xlsm): batchgen does not read it",
        )


def read_bytes(path: Path) -> bytes:
    """The file's content; OSError becomes ManifestError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror or exc}") from exc


# --- CSV ------------------------------------------------------------------------------------


def _read_csv(path: Path, suffix: str) -> RawTable:
    data = read_bytes(path)
    _reject_binary(path, data)
    text, note = decode_text(path, data)
    # Excel reads a first line "sep=;" as the delimiter and hides it: row numbers start
    # after it, so it is dropped before counting.
    hint = _SEP_LINE.match(text)
    if hint is not None:
        text = text[hint.end() :]
    with _big_fields():
        forced = hint.group(1) if hint is not None else None
        delimiter, header_index, header = _choose_delimiter(path, text, suffix, forced)
        try:
            table = _parse_csv(path, text, delimiter, header_index, header, strict=True)
        except _LenientRetry:
            # Excel itself accepts stray quotes such as "abc"def; so do we, the same way.
            table = _parse_csv(path, text, delimiter, header_index, header, strict=False)
    if note:
        table.notes.append(note)
    return table


def _reject_binary(path: Path, data: bytes) -> None:
    if data.startswith(ZIP_SIGNATURES):
        raise ManifestError(
            path, "is an Excel workbook (or another zip file), not CSV text: rename it to .xlsx"
        )
    if data.startswith(OLE2_SIGNATURE):
        raise ManifestError(
            path,
            "is an old-format Excel workbook or a password-protected file, not CSV text: "
            "save it as CSV UTF-8",
        )
    if data.startswith(b"%PDF"):
        raise ManifestError(path, "is a PDF document, not CSV text")


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(path: Path, data: bytes) -> tuple[str, str | None]:
    """Decode CSV bytes: a BOM decides; else strict UTF-8, then Windows-1252 (with a note).

    Never guesses silently: an undecodable file is a ManifestError.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(path, data, encoding), None
    if b"\x00" in data[:4096]:
        return _decode_bomless_utf16(path, data), None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            path,
            "is neither UTF-8 nor Windows-1252 text (byte "
            f"0x{data[exc.start]:02x} at offset {exc.start}): save it as CSV UTF-8",
        ) from exc
    return text, (
        "the file is not UTF-8, so it was read as Windows-1252; if accented letters look "
        "wrong in the results, save the manifest as CSV UTF-8"
    )


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.removesuffix("-sig").upper()
        raise ManifestError(
            path,
            f"starts with a {name} byte-order mark but is not valid {name} "
            f"(bad bytes at offset {exc.start}): save it again as CSV UTF-8",
        ) from exc
    if "\x00" in text:
        raise ManifestError(path, "contains NUL characters: it is not a text (CSV) file")
    return text


def _decode_bomless_utf16(path: Path, data: bytes) -> str:
    # Text with a NUL in every other byte is UTF-16 without a byte-order mark; anything
    # else holding NULs is binary.
    head = data[:4096]
    even_nuls, odd_nuls = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    if odd_nuls > 0.9 * half and even_nuls == 0:
        return _decode(path, data, "utf-16-le")
    if even_nuls > 0.9 * half and odd_nuls == 0:
        return _decode(path, data, "utf-16-be")
    raise ManifestError(path, "contains binary data (NUL bytes): it is not a text (CSV) file")


@contextlib.contextmanager
def _big_fields() -> Iterator[None]:
    # The csv module refuses fields over 128 KiB; a long prompt must become a row problem
    # ("too long"), not an unreadable file.
    previous = csv.field_size_limit(MAX_FILE_BYTES)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _records(text: str, delimiter: str, *, strict: bool) -> Iterator[list[str]]:
    """The records of ``text``."""
    return csv.reader(_lines(text), delimiter=delimiter, strict=strict)


def _lines(text: str) -> Iterator[str]:
    """``text`` line by line, line ends kept, without copying the whole text.

    (``io.StringIO`` would hold a second, up to four times larger, copy of a big file.)
    A text with bare CRs (old Mac files, stray CRs) goes through StringIO, which splits
    lines at a bare CR too, as spreadsheet programs do.
    """
    if text.count("\r") != text.count("\r\n"):
        yield from io.StringIO(text, newline="")
        return
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end == -1:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _find_header(text: str, delimiter: str) -> tuple[int, list[str]] | None:
    """(record index, cells) of the first record, among the first non-empty ones, that has
    a prompt column."""
    seen = 0
    try:
        for index, record in enumerate(_records(text, delimiter, strict=False)):
            if not any(cell.strip() for cell in record):
                continue
            if has_prompt_column(record):
                return index, record
            seen += 1
            if seen >= HEADER_SEARCH_ROWS:
                break
    except csv.Error:
        return None
    return None


_SEP_LINE = re.compile(r"sep=(.)[ \t]*(?:\r\n|\n|\r|$)", re.IGNORECASE)


def _choose_delimiter(
    path: Path, text: str, suffix: str, forced: str | None = None
) -> tuple[str, int, list[str]]:
    """The delimiter whose header names a prompt column.

    On a tie (a one-column "prompt" header reads the same with any delimiter) the widest
    header wins, then the delimiter that splits the first data rows into exactly the
    header's width, then the usual one for the suffix.
    """
    order = ["\t", ",", ";"] if suffix == ".tsv" else [",", ";", "\t"]
    if forced is not None:
        hit = _find_header(text, forced)
        if hit is not None:
            return forced, *hit
    found = [(d, _find_header(text, d)) for d in order]
    usable = [(d, hit) for d, hit in found if hit is not None]
    if not usable:
        raise ManifestError(path, missing_prompt_message(_first_record(text, order)))
    widest = max(len(hit[1]) for _, hit in usable)
    usable = [(d, hit) for d, hit in usable if len(hit[1]) == widest]
    if len(usable) > 1:
        fits = {d: _rows_fitting(text, d, hit[0], widest) for d, hit in usable}
        usable.sort(key=lambda item: -fits[item[0]])  # stable: keeps the suffix's order
    delimiter, (index, header) = usable[0]
    return delimiter, index, header


def _rows_fitting(text: str, delimiter: str, header_index: int, width: int) -> int:
    """How many of the first 50 data records split into exactly ``width`` cells."""
    fitting = 0
    try:
        for index, record in enumerate(_records(text, delimiter, strict=False)):
            if index > header_index + 50:
                break
            fitting += index > header_index and len(record) == width
    except csv.Error:
        pass
    return fitting


def _first_record(text: str, order: list[str]) -> list[str]:
    best: list[str] = []
    for delimiter in order:
        try:
            record = next(
                (r for r in _records(text, delimiter, strict=False) if any(c.strip() for c in r)),
                [],
            )
        except csv.Error:
            continue
        if len(record) > len(best):
            best = record
    return best


class _LenientRetry(Exception):
    """Strict parsing met a stray quote; parse again the way Excel does."""


def _parse_csv(
    path: Path, text: str, delimiter: str, header_index: int, header: list[str], *, strict: bool
) -> RawTable:
    columns = map_columns(header)
    if isinstance(columns, str):
        raise ManifestError(path, columns)
    table = RawTable(header=list(header), columns=columns, header_row=header_index + 1, rows=[])
    width = len(header)
    reader = csv.reader(_lines(text), delimiter=delimiter, strict=strict)
    start_line = 1
    try:
        for index, record in enumerate(reader):
            if index > header_index and any(cell.strip() for cell in record):
                _add_csv_row(table, index + 1, record, width, delimiter)
                check_limits(path, len(table.rows), width)
            start_line = reader.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ManifestError(
                path,
                f"has a quoted value starting on line {start_line} that is never closed "
                '(a stray " character?): close the quotes or remove the stray "',
            ) from exc
        if strict:
            raise _LenientRetry from exc
        raise ManifestError(path, f"is not valid CSV near line {start_line}: {exc}") from exc
    check_limits(path, len(table.rows), width)
    return table


def _add_csv_row(
    table: RawTable, number: int, record: list[str], width: int, delimiter: str
) -> None:
    if len(record) > width:
        extra = [cell for cell in record[width:] if cell.strip()]
        if extra:
            # Nearly always an unquoted delimiter inside a value, which shifts every
            # later cell of the row: sending such a row would send the wrong request.
            name = _DELIMITERS[delimiter]
            table.add_issue(
                number,
                CellIssue(
                    "extra_cells",
                    None,
                    f"has {len(record)} cells but the header has {width}: a value probably "
                    f"holds a {name} without quotes; put that value in double quotes",
                ),
            )
        record = record[:width]
    elif len(record) < width:
        record = record + [""] * (width - len(record))
    table.rows.append((number, record))
