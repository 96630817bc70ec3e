"""The library side of ``batchgen template``: a starter .xlsx whose columns are Text, so
``1:1`` typed in Excel or LibreOffice stays ``1:1``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from batchgen.errors import UsageError
from batchgen.models import MODES, RATIOS

__all__ = ["TEMPLATE_COLUMNS", "write_template"]


TEMPLATE_COLUMNS = ("id", "prompt", "mode", "ratio", "images", "campaign")
_TEMPLATE_WIDTHS = (14, 70, 10, 8, 45, 18)
_EXAMPLE_ROW = (
    "example-1",
    "Slow dolly shot across a sunlit kitchen counter: lemonade pours into a tall glass, "
    "condensation runs down the side, warm summer light",
    "normal",
    "2:3",
    "",
    "summer-launch",
)
_HELP = (
    "How to fill the Manifest sheet",
    "",
    "One row per video. Only prompt is required; add any columns of your own (owner, notes...):",
    "they are copied into the results next to each video.",
    "id: optional, unique per row; lets batchgen recognise the row when you edit the sheet.",
    "prompt: what the video shows, at most 4,000 characters.",
    f"mode: {', '.join(MODES)} (or leave empty and run with --default-mode).",
    f"ratio: {', '.join(RATIOS)} (or leave empty and run with --default-ratio).",
    "images: optional image URLs to animate (https://...), several separated by line breaks.",
    "The columns are formatted as Text so that 1:1 stays 1:1; keep them that way.",
    "Check the sheet with: batchgen validate <this file>",
)


def write_template(path: Path) -> None:
    """Write a starter manifest to ``path`` (.xlsx): Text columns, drop-downs for mode and
    ratio, one example row, and a help sheet.

    Refuses to overwrite an existing file (UsageError). The file appears complete or not
    at all: it is written to a temporary file beside it and then linked into place.
    """
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{path}: a template must be an .xlsx file")
    if path.exists():
        raise UsageError(f"{path} already exists; choose another name or delete it first")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a folder")
    _publish(path, _template_workbook())


def _template_workbook() -> Any:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Manifest"
    for index, width in enumerate(_TEMPLATE_WIDTHS):
        letter = chr(ord("A") + index)
        sheet.column_dimensions[letter].width = width
        sheet.column_dimensions[letter].number_format = "@"  # Text: 1:1 stays 1:1
    sheet.append(TEMPLATE_COLUMNS)
    sheet.append(_EXAMPLE_ROW)
    for row in sheet.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.number_format = "@"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for letter, values, label in (("C", MODES, "mode"), ("D", RATIOS, "ratio")):
        choices = DataValidation(
            type="list",
            formula1='"' + ",".join(values) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=f"Not a {label}",
            error=f"Choose one of: {', '.join(values)}",
            promptTitle=label,
            prompt=f"One of: {', '.join(values)}",
        )
        choices.add(f"{letter}2:{letter}1048576")
        sheet.add_data_validation(choices)
    help_sheet = workbook.create_sheet("Help")
    help_sheet.column_dimensions["A"].width = 100
    for line in _HELP:
        help_sheet.append([line])
    help_sheet["A1"].font = Font(bold=True)
    return workbook


def _publish(path: Path, workbook: Any) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        workbook.save(temp)
        with temp.open("rb") as written:
            os.fsync(written.fileno())
        _link_into_place(temp, path)
    except OSError as exc:
        raise UsageError(f"{path} could not be written: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def _link_into_place(temp: Path, path: Path) -> None:
    # A hard link fails if the name appeared meanwhile, so nothing is ever overwritten;
    # where links are not supported, fall back to a rename after one more check.
    try:
        os.link(temp, path)
    except FileExistsError as exc:
        raise UsageError(f"{path} already exists; choose another name or delete it first") from exc
    except OSError:
        if path.exists():
            raise UsageError(
                f"{path} already exists; choose another name or delete it first"
            ) from None
        os.replace(temp, path)
