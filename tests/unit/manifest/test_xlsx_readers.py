"""The fast .xlsx reader (calamine, ``manifest/xlsx_fast.py``) gives openpyxl's answers.

Each workbook here is read through ``read_manifest``; this folder's ``conftest`` reads every
workbook the fast reader takes a second time with openpyxl and fails on any difference. These
tests add which workbooks the fast reader must take (odd but common: titles, blank columns,
hidden rows, links, merges, dates, shared strings) and which it must hand to openpyxl
(formulas, error cells, zero-padded ids, a cell far away, cells without references): those it
would read differently, or could not read at all (a far cell makes calamine abort).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from openpyxl.worksheet.hyperlink import Hyperlink

from batchgen.config import ManifestSettings
from batchgen.manifest.load import read_manifest
from batchgen.manifest.xlsx import read_xlsx

HEADER = ["id", "prompt", "mode", "ratio", "images", "owner"]


def save(path: Path, rows: list[list[Any]], edit: Callable[[Any], None] | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Briefs"
    for row in rows:
        sheet.append(row)
    if edit is not None:
        edit(book)
    book.save(path)
    return path


def patch_sheet(
    path: Path, edit: Callable[[str], str], member: str = "xl/worksheets/sheet1.xml"
) -> Path:
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts[member] = edit(parts[member].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_a_sheet_as_people_lay_it_out_is_read_fast(
    tmp_path: Path, both_xlsx_readers: list[Path]
) -> None:
    when = dt.datetime(2026, 3, 1, 9, 30)
    rows: list[list[Any]] = [
        [None, "Spring campaign briefs"],  # a title, then a blank row, then the header
        [],
        [None, *HEADER],
        [None, "a", "cat", "fun", "1:1", "https://example.com/a.png", 7],
        [None, "b", "dog", "normal", "2:3", None, 2.5],
        [None, "c", "bird", "fun", "1:1", None, True],
        [None, "d", "fish", "fun", "1:1", None, when],
        [None, "e", "ant", "fun", "1:1", None, dt.date(2026, 3, 2)],
        [None, "f", "owl", "fun", "1:1", None, None, None, "note right of the header"],
        [None, "g", "Ünïcødé ✓ 猫", "fun", "1:1", None, "  padded  "],
    ]

    def edit(book: Any) -> None:
        sheet = book.active
        sheet.row_dimensions[5].hidden = True  # a row hidden by a filter
        sheet["F4"].hyperlink = Hyperlink(ref="F4", target="https://cdn.example.com/a.png")
        sheet["G6"].hyperlink = Hyperlink(ref="G6", location="'Briefs'!A1")  # internal
        sheet.merge_cells("B1:D1")
        book.create_sheet("Old").sheet_state = "hidden"

    path = save(tmp_path / "people.xlsx", rows, edit)
    manifest = read_manifest(path)
    assert both_xlsx_readers == [path]  # taken by the fast reader, and openpyxl agreed
    assert [r.row for r in manifest.valid] == [4, 6, 7, 8, 9, 10]  # 5 is hidden: held
    assert manifest.valid[0].images == ("https://cdn.example.com/a.png",)
    assert any("hidden sheet" in w.message for w in manifest.warnings)


def test_shared_strings_as_excel_writes_them_are_read_fast(
    tmp_path: Path, both_xlsx_readers: list[Path]
) -> None:
    path = tmp_path / "excel.xlsx"
    book = xlsxwriter.Workbook(str(path))  # shared strings, dates with their format
    sheet = book.add_worksheet("Manifest")
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for c, name in enumerate(HEADER):
        sheet.write_string(0, c, name)
    for r in range(1, 30):
        sheet.write_string(r, 0, f"row-{r}")
        sheet.write_string(r, 1, f"A slow dolly-in on product {r % 3}")  # repeated strings
        sheet.write_string(r, 2, "fun")
        sheet.write_string(r, 3, "1:1")
        sheet.write_datetime(r, 5, dt.datetime(2026, 1, r, 8, 0), stamp)
    sheet.write_url(5, 4, "https://cdn.example.com/x.png", string="the picture")
    sheet.set_row(7, None, None, {"hidden": True})
    book.close()
    manifest = read_manifest(path)
    assert both_xlsx_readers == [path] and len(manifest.valid) == 28  # row 8 is hidden
    assert manifest.valid[4].images == ("https://cdn.example.com/x.png",)


def test_the_named_and_the_active_sheet_are_chosen_as_openpyxl_does(
    tmp_path: Path, both_xlsx_readers: list[Path]
) -> None:
    def edit(book: Any) -> None:
        second = book.create_sheet("Second")
        second.append(HEADER)
        second.append(["z", "zebra", "fun", "1:1"])
        book.active = 1

    path = save(tmp_path / "two.xlsx", [HEADER, ["a", "cat", "fun", "1:1"]], edit)
    assert read_manifest(path).valid[0].prompt == "zebra"  # the active tab
    assert read_manifest(path, ManifestSettings(sheet=" briefs ")).valid[0].prompt == "cat"
    assert both_xlsx_readers == [path, path]


FORMULA = re.compile(r'<c r="F2"(?: [^>]*)?>.*?</c>')


@pytest.mark.parametrize(
    "case",
    ["formula", "error cell", "zero-padded ids", "a cell far away", "cells without reference"],
)
def test_what_the_fast_reader_cannot_reproduce_goes_to_openpyxl(
    tmp_path: Path, both_xlsx_readers: list[Path], case: str
) -> None:
    path = save(tmp_path / "odd.xlsx", [HEADER, ["a", "cat", "fun", "1:1", None, "x"]])
    if case == "formula":
        patch_sheet(
            path, lambda x: FORMULA.sub('<c r="F2" t="str"><f>"x"&amp;"y"</f><v>xy</v></c>', x)
        )
    elif case == "error cell":
        patch_sheet(path, lambda x: FORMULA.sub('<c r="F2" t="e"><v>#N/A</v></c>', x))
    elif case == "zero-padded ids":
        book = openpyxl.load_workbook(path)
        book.active["A2"].number_format = "0000"
        book.save(path)
    elif case == "a cell far away":  # calamine would ask for 550 GB and abort the process
        far = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far</t></is></c></row>'
        patch_sheet(path, lambda x: x.replace("</sheetData>", far + "</sheetData>"))
    else:
        patch_sheet(path, lambda x: x.replace('<c r="F2"', "<c"))
    read_manifest(path)
    assert both_xlsx_readers == []  # read by openpyxl alone
    assert read_xlsx(path, fast=False) is not None
