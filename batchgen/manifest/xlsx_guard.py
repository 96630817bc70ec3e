"""Checks on an .xlsx file before openpyxl parses it: the container, its unpacked size, and
a shared-strings table larger than the sheets could use (a "strings bomb").

Each failure is one :class:`~batchgen.errors.ManifestError` sentence saying what to do.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from batchgen.errors import ManifestError
from batchgen.manifest.model import MAX_UNCOMPRESSED_BYTES
from batchgen.manifest.table import OLE2_SIGNATURE, ZIP_SIGNATURES

__all__ = ["check_container", "check_shared_strings"]

_ENCRYPTED_MARK = "EncryptionInfo".encode("utf-16-le")
#: The fewest bytes of sheet XML one reference to a shared string takes
#: (``<c r="A1" t="s"><v>0</v></c>``): a table with more strings than the sheets could
#: reference is padding, or a bomb.
_BYTES_PER_REFERENCE = 24
#: Shared-strings tables smaller than this are never worth counting.
_COUNT_ABOVE_BYTES = 8 * 1024 * 1024
_SI = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s>/]")


def check_container(path: Path) -> None:
    """ManifestError unless ``path`` is a zip holding a workbook within the size limits."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if head.startswith(OLE2_SIGNATURE):
        raise ManifestError(path, _ole2_message(path))
    if not head.startswith(ZIP_SIGNATURES):
        raise ManifestError(path, _not_zip_message(path))
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ManifestError(path, "is damaged: it is not a readable .xlsx (zip) file") from exc
    names = {m.filename for m in members}
    if "[Content_Types].xml" not in names:
        raise ManifestError(path, "is a zip file but not an Excel workbook")
    _check_unpacked_size(path, members)
    with zipfile.ZipFile(path) as archive:
        check_shared_strings(path, archive)


def _check_unpacked_size(path: Path, members: list[zipfile.ZipInfo]) -> None:
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        limit = MAX_UNCOMPRESSED_BYTES // (1024 * 1024)
        raise ManifestError(
            path,
            f"expands to {total / 1024**2:,.0f} MB when unpacked (limit {limit:,} MB): "
            "too large for a manifest, or a zip bomb",
        )


def _ole2_message(path: Path) -> str:
    # Excel wraps a password-protected .xlsx in an OLE2 file holding an EncryptionInfo
    # stream; an OLE2 file without one is an old .xls saved under a new name.
    try:
        with path.open("rb") as handle:
            data = handle.read(32 * 1024 * 1024)
    except OSError:
        data = b""
    if _ENCRYPTED_MARK in data:
        return (
            "is password-protected: open it in Excel, remove the password "
            "(File > Info > Protect Workbook) and save it without one"
        )
    return "is an old Excel 97-2003 workbook (.xls) under an .xlsx name: save it as .xlsx"


def _not_zip_message(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            sample = handle.read(4096)
        text = sample.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return "is not an Excel workbook (damaged, or another kind of file renamed to .xlsx)"
    if "\x00" in text or not text.strip():
        return "is not an Excel workbook (damaged, or another kind of file renamed to .xlsx)"
    return "is a text file, not an Excel workbook: if it is CSV, rename it to .csv"


def check_shared_strings(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a shared-strings table with more strings than the sheets could reference.

    Counts ``<si>`` elements by streaming the part (no string is built), stopping as soon as
    the count passes the sheets' uncompressed size divided by the smallest reference. Raises
    ManifestError naming the file.
    """
    members = archive.infolist()
    tables = [m for m in members if m.filename.lower().endswith("sharedstrings.xml")]
    sheets = sum(m.file_size for m in members if m.filename.lower().startswith("xl/worksheets/"))
    allowed = sheets // _BYTES_PER_REFERENCE + 1_000
    for table in tables:
        if table.file_size >= _COUNT_ABOVE_BYTES:
            try:
                _count_strings(path, archive, table, allowed)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                raise ManifestError(path, "is damaged: its shared strings cannot be read") from exc


def _count_strings(
    path: Path, archive: zipfile.ZipFile, table: zipfile.ZipInfo, allowed: int
) -> None:
    count, tail = 0, b""
    with archive.open(table) as handle:
        while chunk := handle.read(1 << 20):
            data = tail + chunk
            count += len(_SI.findall(data))
            tail = data[-8:]
            count -= len(_SI.findall(tail))  # counted again with the next chunk
            if count > allowed:
                raise ManifestError(
                    path,
                    f"holds more than {allowed:,} shared strings, more than its sheets "
                    "could use: the file is damaged or hostile (re-save it in Excel, or "
                    "export it as CSV)",
                )
