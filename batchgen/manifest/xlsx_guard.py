"""Checks on an .xlsx file before any spreadsheet reader parses it: the container, then the
bounds of :mod:`batchgen.xlsx_bounds` (unpacked size, a shared-strings table larger than the
sheets could use, more cells with a value than :data:`~batchgen.manifest.model.MAX_XLSX_CELLS`).

Call :func:`check_container` first, whatever library then reads the workbook. Each failure is
one :class:`~batchgen.errors.ManifestError` sentence saying what to do.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from batchgen.errors import ManifestError
from batchgen.manifest.model import MAX_UNCOMPRESSED_BYTES, MAX_XLSX_CELLS
from batchgen.manifest.table import OLE2_SIGNATURE, ZIP_SIGNATURES
from batchgen.xlsx_bounds import READ_ERRORS, workbook_problem

__all__ = ["check_container"]

_ENCRYPTED_MARK = "EncryptionInfo".encode("utf-16-le")


def check_container(path: Path) -> None:
    """ManifestError unless ``path`` is a zip holding a workbook within the bounds."""
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
            if "[Content_Types].xml" not in archive.namelist():
                raise ManifestError(path, "is a zip file but not an Excel workbook")
            problem = workbook_problem(
                archive, max_unpacked=MAX_UNCOMPRESSED_BYTES, max_cells=MAX_XLSX_CELLS
            )
    except READ_ERRORS as exc:
        raise ManifestError(path, "is damaged: it is not a readable .xlsx (zip) file") from exc
    if problem is not None:
        raise ManifestError(path, problem)


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
