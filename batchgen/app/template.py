"""The library side of ``batchgen template``: a starter .xlsx whose columns are Text, so
``1:1`` typed in Excel or LibreOffice stays ``1:1``, with one sample row that is never sent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from batchgen.errors import UsageError
from batchgen.manifest.values import SAMPLE_ID, choices_text
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import ProviderInfo, RequestField

__all__ = ["TEMPLATE_COLUMNS", "template_columns", "write_template"]

_PROMPT = (
    "Slow dolly shot across a sunlit kitchen counter: lemonade pours into a tall glass, "
    "condensation runs down the side, warm summer light"
)
#: Sample values of the request fields (the first allowed value otherwise).
_SAMPLES = {"mode": "normal", "ratio": "2:3", "duration": "6", "resolution": "720p"}
_WIDTHS = {"id": 14, "prompt": 70, "images": 45, "campaign": 18}


def _fields(info: ProviderInfo) -> list[RequestField]:
    """The provider's request fields, in the order people fill them (ratio first)."""
    order = ("mode", "ratio", "duration", "resolution", "model")
    return sorted(info.fields, key=lambda f: order.index(f.name) if f.name in order else 9)


def template_columns(info: ProviderInfo = DEFAULT) -> tuple[str, ...]:
    """The starter manifest's columns for ``info``: id, prompt, its fields, images, campaign."""
    return ("id", "prompt", *(f.name for f in _fields(info)), "images", "campaign")


TEMPLATE_COLUMNS = template_columns(DEFAULT)


def _sample(field: RequestField) -> str:
    sample = _SAMPLES.get(field.name)
    if field.values and sample not in field.values:
        sample = str(field.default or field.values[0])
    return sample or str(field.default or "")


def _by_model(field: RequestField) -> str:
    """`; 1080p only with grok-imagine-video-1.5, ...` for values some models lack."""
    if not field.by_model:
        return ""
    only: dict[str, list[str]] = {}
    for value in field.values:
        models = [model for model, values in field.by_model.items() if value in values]
        if len(models) < len(field.by_model):
            only[value] = models
    return "".join(f"; {value} only with {' or '.join(models)}" for value, models in only.items())


def _help(info: ProviderInfo) -> tuple[str, ...]:
    lines = [
        f"How to fill the Manifest sheet (provider: {info.label}; run with --provider {info.name})",
        "",
        "One row per video. Only prompt is required; add any columns of your own (owner, "
        "notes...):",
        "they are copied into the results next to each video.",
        "id: optional, unique per row; lets batchgen recognise the row when you edit the sheet.",
        f"The sample row (id {SAMPLE_ID}) is never sent: replace it with your own rows.",
        "prompt: what the video shows, at most 4,000 characters.",
    ]
    for field in _fields(info):
        allowed = field.describe() if field.low is not None else choices_text(field.values)
        if field.default is not None:
            empty = f"leave empty for {field.default}{' s' if field.unit == 's' else ''}"
        else:
            empty = f"or leave empty and run with --default-{field.name}"
        lines.append(f"{field.name}: {allowed} ({empty}){_by_model(field)}.")
    if info.local_images is not None:
        lines.append(
            f"images: at most {info.images_max} picture per video, its first frame: a URL "
            "(https://...) or a JPEG, PNG or WebP file beside this sheet (e.g. pics/fox.png)."
        )
    else:
        lines.append(
            "images: optional image URLs to animate (https://...), several separated by "
            "line breaks."
        )
    lines += [
        "The columns are formatted as Text so that 1:1 stays 1:1; keep them that way.",
        "Check the sheet with: batchgen validate <this file>"
        + (f" --provider {info.name}" if info is not DEFAULT else ""),
    ]
    return tuple(lines)


def write_template(path: Path, *, provider: ProviderInfo = DEFAULT) -> None:
    """Write a starter manifest for ``provider`` to ``path`` (.xlsx): Text columns,
    drop-downs for the fields with a list of values, one example row, and a help sheet.

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
    _publish(path, _template_workbook(provider))


def _template_workbook(info: ProviderInfo) -> Any:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Manifest"
    columns = template_columns(info)
    for index, name in enumerate(columns):
        letter = chr(ord("A") + index)
        sheet.column_dimensions[letter].width = _WIDTHS.get(name, 12)
        sheet.column_dimensions[letter].number_format = "@"  # Text: 1:1 stays 1:1
    fields = {f.name: f for f in info.fields}
    sheet.append(columns)
    sheet.append(
        [
            SAMPLE_ID
            if name == "id"
            else _PROMPT
            if name == "prompt"
            else "summer-launch"
            if name == "campaign"
            else _sample(fields[name])
            if name in fields
            else ""
            for name in columns
        ]
    )
    for row in sheet.iter_rows(min_row=1, max_row=2):
        for cell in row:
            cell.number_format = "@"
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for index, name in enumerate(columns):
        field = fields.get(name)
        if field is None or not field.values:
            continue
        letter, values = chr(ord("A") + index), field.values
        choices = DataValidation(
            type="list",
            formula1='"' + ",".join(values) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=f"Not a {name}",
            error=f"Choose one of: {', '.join(values)}",
            promptTitle=name,
            prompt=f"One of: {', '.join(values)}",
        )
        choices.add(f"{letter}2:{letter}1048576")
        sheet.add_data_validation(choices)
    help_sheet = workbook.create_sheet("Help")
    help_sheet.column_dimensions["A"].width = 100
    for line in _help(info):
        help_sheet.append([line])
    help_sheet["A1"].font = Font(bold=True)
    return workbook


def _publish(path: Path, workbook: Any) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 less the umask: the mode any new file of the user gets (mkstemp's 0o600
        # would leave the template unreadable to the colleagues it is meant for).
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise UsageError(f"{path} could not be written: {exc.strerror or exc}") from exc
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
