"""Reading .xlsx manifests: coerced ratios, hyperlinks, formulas, sheets, merges, empty rows."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.hyperlink import Hyperlink

from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError
from batchgen.manifest.load import read_manifest

HEADER = ["id", "prompt", "mode", "ratio", "images", "owner"]


def workbook(rows: list[list[Any]], *, title: str = "Briefs") -> Any:
    """A workbook whose only sheet holds ``rows``."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    return book


def patch_member(path: Path, member: str, edit: Callable[[str], str]) -> None:
    """Rewrite one XML part of an .xlsx in place (to add what openpyxl cannot write)."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts[member] = edit(parts[member].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


def cache_formula(xml: str, ref: str, value: str) -> str:
    """Give the formula in ``ref`` a saved text result, as Excel writes it."""
    pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>')
    new, count = pattern.subn(rf'<c r="{ref}" t="str"><f>\2</f><v>{value}</v>', xml)
    assert count == 1
    return new


def test_time_coerced_ratios_are_read_back(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        HEADER,
        [1, "a", "fun", dt.time(1, 1), None, "x"],
        [2, "b", "fun", dt.time(2, 3), None, "x"],
        [3, "c", "fun", dt.time(3, 2), None, "x"],
        [4, "d", "fun", dt.datetime(1899, 12, 30, 1, 1), None, "x"],
        [5, "e", "fun", dt.timedelta(hours=2, minutes=3), None, "x"],
        [6, "f", "fun", dt.time(16, 9), None, "x"],
        [7, "g", "fun", dt.datetime(2024, 2, 3), None, "x"],
        [8, "h", "fun", dt.date(2024, 3, 2), None, "x"],
    ]
    path = tmp_path / "m.xlsx"
    workbook(rows).save(path)
    manifest = read_manifest(path)
    assert [s.ratio for s in manifest.valid] == ["1:1", "2:3", "3:2", "1:1", "2:3"]
    messages = {p.row: p.message for p in manifest.errors}
    assert messages[7] == "'16:9' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1"
    assert "is a date" in messages[8] and "Format the ratio column as Text" in messages[8]
    assert "is a date" in messages[9]
    assert manifest.rows[0].user["ratio"] == dt.time(1, 1)  # the user's value, untouched


def test_values_keep_their_python_types(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    stamp = dt.datetime(2024, 5, 6, 7, 8)
    workbook([HEADER, [7, "cat", "FUN ", " 1:1", None, stamp], [7.5, 42, "fun", "1:1"]]).save(path)
    manifest = read_manifest(path)
    first, second = manifest.rows
    assert first.user == {
        "id": 7,
        "prompt": "cat",
        "mode": "FUN ",
        "ratio": " 1:1",
        "images": None,
        "owner": stamp,
    }
    assert first.key == "id:7" and second.key == "id:7.5"
    assert second.spec is not None and second.spec.prompt == "42"


def test_hyperlink_cells_give_their_target(tmp_path: Path) -> None:
    book = workbook(
        [
            HEADER,
            ["a", "cat", "fun", "1:1", "product shot", "Ana"],
            ["b", "dog", "fun", "1:1", "https://example.com/1.png\nhttps://example.com/2.png"],
        ]
    )
    sheet = book.active
    sheet["E2"].hyperlink = "https://example.com/cat.png"
    sheet["F2"].hyperlink = "mailto:ana@example.com"
    sheet["E3"].hyperlink = "https://example.com/1.png"  # Excel links only the first URL
    path = tmp_path / "m.xlsx"
    book.save(path)
    manifest = read_manifest(path)
    cat, dog = manifest.rows
    assert cat.spec is not None and cat.spec.images == ("https://example.com/cat.png",)
    assert cat.user["owner"] == "mailto:ana@example.com"
    assert dog.spec is not None
    assert dog.spec.images == ("https://example.com/1.png", "https://example.com/2.png")


def test_internal_hyperlink_keeps_the_text(tmp_path: Path) -> None:
    book = workbook([[*HEADER, "notes"], ["a", "cat", "fun", "1:1", None, "see notes", "see G"]])
    book.active["F2"].hyperlink = "#Notes!A1"
    book.active["G2"].hyperlink = Hyperlink(ref="G2", location="Notes!A1")
    path = tmp_path / "m.xlsx"
    book.save(path)
    user = read_manifest(path).rows[0].user
    assert (user["owner"], user["notes"]) == ("see notes", "see G")


def test_formula_cells_give_their_cached_result(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    rows: list[list[Any]] = [
        HEADER,
        ["a", '=CONCAT("A cat ","in the rain")', "fun", "1:1", None, '=UPPER("ana")'],
        ["b", '=CONCAT("A dog","")', "fun", "1:1", None, None],
        ["c", "=1/0", "fun", "1:1", None, None],
    ]
    workbook(rows).save(path)

    def edit(xml: str) -> str:
        xml = cache_formula(xml, "B2", "A cat in the rain")
        xml = cache_formula(xml, "F2", "ANA")
        pattern = r'<c r="B4"[^>]*><f>(.*?)</f><v\s*/>'
        return re.sub(pattern, r'<c r="B4" t="e"><f>\1</f><v>#DIV/0!</v>', xml)

    patch_member(path, "xl/worksheets/sheet1.xml", edit)
    manifest = read_manifest(path)
    first, second, third = manifest.rows
    assert first.spec is not None and first.spec.prompt == "A cat in the rain"
    assert first.user["owner"] == "ANA"
    assert second.spec is None
    assert "has no saved result" in second.problems[0].message
    assert len(second.problems) == 1  # not also "prompt is empty"
    assert third.spec is None and "#DIV/0!" in third.problems[0].message


def test_formula_without_result_outside_request_columns_is_a_file_warning(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    workbook([HEADER, ["a", "cat", "fun", "1:1", None, "=1+1"]]).save(path)
    manifest = read_manifest(path)
    assert manifest.rows[0].spec is not None
    (warning,) = manifest.warnings
    assert warning.row is None and "1 formula cells" in warning.message


def test_first_sheet_with_a_prompt_column_is_used(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    intro = book.active
    intro.title = "Instructions"
    intro.append(["Fill the Briefs sheet. Columns: prompt, mode, ratio."])
    data = book.create_sheet("Briefs")
    data.append(HEADER)
    data.append(["a", "cat", "fun", "1:1"])
    other = book.create_sheet("Archive")
    other.append(HEADER)
    other.append(["z", "old", "fun", "1:1"])
    path = tmp_path / "m.xlsx"
    book.save(path)
    manifest = read_manifest(path)
    assert manifest.sheet == "Briefs" and manifest.valid[0].prompt == "cat"
    assert read_manifest(path, ManifestSettings(sheet="archive")).valid[0].prompt == "old"
    with pytest.raises(ManifestError, match=r"has no sheet named 'Nope'.*'Instructions'"):
        read_manifest(path, ManifestSettings(sheet="Nope"))
    with pytest.raises(ManifestError, match="sheet 'Instructions' has no prompt column"):
        read_manifest(path, ManifestSettings(sheet="Instructions"))


def test_merged_cells_are_an_error_naming_the_range(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Q3 briefs"],
        HEADER,
        ["a", "cat", "fun", "1:1"],
        ["b", "shared prompt", "fun", "1:1"],
        ["c", None, "fun", "1:1"],
        ["d", None, "normal", "2:3"],
        ["e", "dog", "fun", "1:1"],
    ]
    book = workbook(rows)
    book.active.merge_cells("A1:F1")  # a title above the header is fine
    book.active.merge_cells("B4:B6")
    path = tmp_path / "m.xlsx"
    book.save(path)
    manifest = read_manifest(path)
    assert [s.row for s in manifest.valid] == [3, 7]
    bad = {p.row: p for p in manifest.errors}
    assert set(bad) == {4, 5, 6}
    assert str(bad[5]) == (
        f"{path}, row 5, column 'prompt': cells B4:B6 are merged; unmerge them and give every "
        "row its own value"
    )


def test_empty_rows_are_skipped_and_numbers_keep_counting(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        HEADER,
        ["a", "cat", "fun", "1:1"],
        [],
        [None, "  ", None],
        ["b", "dog", "fun", "1:1"],
    ]
    book = workbook(rows)
    book.active["C20"] = "   "
    book.active["A21"] = "c"
    book.active["B21"] = "bird"
    path = tmp_path / "m.xlsx"
    book.save(path)
    manifest = read_manifest(path, ManifestSettings(default_mode="normal", default_ratio="3:2"))
    assert [r.row for r in manifest.rows] == [2, 5, 21]
    assert manifest.valid[2].mode == "normal" and manifest.valid[2].ratio == "3:2"


def test_cells_right_of_the_header_are_ignored_with_a_warning(tmp_path: Path) -> None:
    book = workbook([["prompt", "mode", "ratio"], ["cat", "fun", "1:1", None, "stray note"]])
    path = tmp_path / "m.xlsx"
    book.save(path)
    manifest = read_manifest(path)
    assert manifest.columns == ["prompt", "mode", "ratio"]
    assert "E2" in manifest.warnings[0].message


def test_xlsm_is_read_like_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsm"
    workbook([HEADER, ["a", "cat", "fun", "1:1"]]).save(path)
    assert len(read_manifest(path).valid) == 1


def test_shared_strings_and_rich_text_from_excel(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    workbook([HEADER, ["a", "placeholder", "fun", "1:1"]]).save(path)
    # Excel stores text in a shared string table, rich text as runs: build that by hand.
    strings = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        'uniqueCount="1"><si><r><rPr><b/></rPr><t>A bold </t></r><r><t xml:space="preserve">'
        "cat</t></r></si></sst>"
    )
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet = sheet.replace(
        '<c r="B2" t="inlineStr"><is><t>placeholder</t></is></c>', '<c r="B2" t="s"><v>0</v></c>'
    )
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    parts["xl/sharedStrings.xml"] = strings.encode()
    types = (
        parts["[Content_Types].xml"]
        .decode()
        .replace(
            "</Types>",
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
    )
    parts["[Content_Types].xml"] = types.encode()
    rels = (
        parts["xl/_rels/workbook.xml.rels"]
        .decode()
        .replace(
            "</Relationships>",
            '<Relationship Id="rIdSS" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        )
    )
    parts["xl/_rels/workbook.xml.rels"] = rels.encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    assert read_manifest(path).valid[0].prompt == "A bold cat"
