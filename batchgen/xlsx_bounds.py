"""Bounds on an .xlsx workbook, checked on the zip before any spreadsheet reader parses it.

A workbook is a zip of XML parts, and XML compresses extremely well: 974 KB on disk held 8
million inline-string cells (validate busy past 4 minutes), 1.1 MB held 27 million shared
strings. Whatever library then reads the file (openpyxl, or another), its time grows with
the cells, so every workbook batchgen reads (a manifest, or ``results.xlsx`` read back for the
decisions a person typed) is first measured here, by streaming each part through zlib and
counting, never building a string per cell:

* the unpacked size of all parts;
* the shared-strings table: no more strings than the sheets could reference (one reference
  takes at least 24 bytes of sheet XML);
* the cells that hold something: a cell with a value, formula or inline string always has a
  closing tag (``</c>``, or ``</x:c>`` with a namespace prefix), while a cell that is only
  formatting (``<c r="A9" s="1"/>``, Excel writes millions of those) has none and is free.
  Every part is counted, whatever its name, because the workbook's relationships may point
  a sheet at any part.

Each check returns the problem as one sentence (None when the workbook is within bounds); the
caller names the file (``ManifestError`` for a manifest, a warning for the results).
"""

from __future__ import annotations

import re
import zipfile
import zlib

__all__ = ["cells_problem", "shared_strings_problem", "unpacked_problem", "workbook_problem"]

#: The fewest bytes of sheet XML one reference to a shared string takes
#: (``<c r="A1" t="s"><v>0</v></c>``): a table with more strings than the sheets could
#: reference is padding, or a bomb.
_BYTES_PER_REFERENCE = 24
#: Shared-strings tables smaller than this are never worth counting.
_COUNT_ABOVE_BYTES = 8 * 1024 * 1024
_SI = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s>/]")
_CELL_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?c\s*>")
_INLINE = b"inlineStr"
_CHUNK = 1 << 20
_TAIL = 64  # bytes kept between chunks: more than the longest closing tag counted
#: Errors zipfile and zlib raise on a damaged member.
READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError)


def workbook_problem(archive: zipfile.ZipFile, *, max_unpacked: int, max_cells: int) -> str | None:
    """The first bound ``archive`` breaks (unpacked bytes, shared strings, cells), or None.

    Raises the zip errors in ``READ_ERRORS`` for a damaged member.
    """
    members = archive.infolist()
    return (
        unpacked_problem(members, max_unpacked)
        or shared_strings_problem(archive)
        or cells_problem(archive, max_cells)
    )


def unpacked_problem(members: list[zipfile.ZipInfo], limit: int) -> str | None:
    """Why the parts' total unpacked size (as the zip declares it) is over ``limit`` bytes."""
    total = sum(m.file_size for m in members)
    if total <= limit:
        return None
    return (
        f"expands to {total / 1024**2:,.0f} MB when unpacked (limit {limit // 1024**2:,} MB): "
        "too large for a workbook batchgen reads, or a zip bomb"
    )


def shared_strings_problem(archive: zipfile.ZipFile) -> str | None:
    """Why the shared-strings table holds more strings than the sheets could reference.

    Counts ``<si>`` elements by streaming the part, stopping as soon as the count passes the
    sheets' uncompressed size divided by the smallest reference.
    """
    members = archive.infolist()
    tables = [m for m in members if m.filename.lower().endswith("sharedstrings.xml")]
    sheets = sum(m.file_size for m in members if m.filename.lower().startswith("xl/worksheets/"))
    allowed = sheets // _BYTES_PER_REFERENCE + 1_000
    for table in tables:
        if table.file_size >= _COUNT_ABOVE_BYTES and _count(archive, table, _SI, allowed) > allowed:
            return (
                f"holds more than {allowed:,} shared strings, more than its sheets could use: "
                "the file is damaged or hostile (re-save it in Excel, or export it as CSV)"
            )
    return None


def cells_problem(archive: zipfile.ZipFile, limit: int) -> str | None:
    """Why the workbook holds more than ``limit`` cells with something in them (all parts)."""
    counted, inline = 0, 0
    for member in archive.infolist():
        if member.is_dir() or member.filename.lower().endswith("sharedstrings.xml"):
            continue
        found, strings = _count_cells(archive, member, limit - counted)
        counted += found
        inline += strings
        if counted > limit:
            kind = f", {min(inline, counted):,} of them inline strings" if inline else ""
            return (
                f"holds more than {limit:,} cells with a value (counted {counted:,} so far"
                f"{kind}), the limit for a workbook batchgen reads: the file is damaged or "
                "hostile, or too big (split it, or save the sheet as CSV)"
            )
    return None


def _count(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, pattern: re.Pattern[bytes], allowed: int
) -> int:
    """Occurrences of ``pattern`` in ``member``, streamed; stops once past ``allowed``."""
    count, tail = 0, b""
    with archive.open(member) as handle:
        while chunk := handle.read(_CHUNK):
            data = tail + chunk
            count += len(pattern.findall(data))
            tail = data[-_TAIL:]
            count -= len(pattern.findall(tail))  # counted again with the next chunk
            if count > allowed:
                break
    return count


def _count_cells(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, allowed: int
) -> tuple[int, int]:
    """(cells with content, inline-string marks) in ``member``; stops once past ``allowed``."""
    count, inline, tail = 0, 0, b""
    with archive.open(member) as handle:
        while chunk := handle.read(_CHUNK):
            data = tail + chunk
            count += len(_CELL_END.findall(data)) - len(_CELL_END.findall(tail))
            inline += data.count(_INLINE) - tail.count(_INLINE)
            tail = data[-_TAIL:]
            if count > allowed:
                break
    return count, inline
