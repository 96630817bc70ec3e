"""Issue 23, item 5: the header and total rows of Excel tables are not briefs.

Seen: a table's Total Row ("Total" in the prompt column) was sent as a brief, mode and ratio
taken from the defaults, for 40 credits. The kind: on a sheet where a table (ListObject)
holds the prompt column, its header and total rows are never data, whichever row the table
starts on and however many tables there are; a row outside every such table is warned about.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from openpyxl.worksheet.table import Table

from batchgen.cli.main import main
from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError
from batchgen.manifest.load import read_manifest
from batchgen.manifest.model import Manifest

HEADER = ["prompt", "mode", "ratio", "notes"]
Rows = dict[int, list[Any]]


def save(path: Path, rows: dict[int, list[Any]], tables: list[Table]) -> Path:
    """A workbook whose first sheet holds ``rows`` (row number -> values from column A)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Briefs"
    for number, values in rows.items():
        for column, value in enumerate(values, start=1):
            sheet.cell(row=number, column=column, value=value)
    for table in tables:
        sheet.add_table(table)
    book.save(path)
    return path


def read(path: Path) -> Manifest:
    return read_manifest(path, ManifestSettings(default_mode="fun", default_ratio="1:1"))


def prompts(manifest: Manifest) -> dict[int, str]:
    return {row.row: row.prompt for row in manifest.rows}


def warnings(manifest: Manifest) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for row in manifest.rows:
        for problem in row.problems:
            if problem.severity == "warning":
                found.setdefault(row.row, []).append(problem.message)
    return found


BRIEFS: Rows = {2: ["a red fox"], 3: ["a grey owl"], 4: ["a blue whale"]}


def test_the_seen_total_row_is_not_a_brief(tmp_path: Path) -> None:
    rows: Rows = {1: HEADER, **BRIEFS, 5: ["Total", None, None, 3]}
    path = save(
        tmp_path / "m.xlsx", rows, [Table(displayName="Briefs", ref="A1:D5", totalsRowCount=1)]
    )
    manifest = read(path)
    assert prompts(manifest) == {2: "a red fox", 3: "a grey owl", 4: "a blue whale"}
    notes = [p.message for p in manifest.problems if p.row is None]
    assert any("row(s) 5 are header or total rows" in note for note in notes)
    assert warnings(manifest) == {}


def test_validate_counts_the_briefs_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: Rows = {1: HEADER, **BRIEFS, 5: ["Total", None, None, 3]}
    save(tmp_path / "m.xlsx", rows, [Table(displayName="Briefs", ref="A1:D5", totalsRowCount=1)])
    code = main(
        ["validate", str(tmp_path / "m.xlsx"), "--default-mode", "fun", "--default-ratio", "1:1"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "3 generations" in out and "120 credits" in out


def test_a_table_whose_header_is_not_on_row_1(tmp_path: Path) -> None:
    rows: Rows = {
        1: ["Spring campaign"],
        3: HEADER,
        4: ["a red fox"],
        5: ["a grey owl"],
        6: ["Total", None, None, 2],
    }
    table = Table(displayName="Spring", ref="A3:D6", totalsRowCount=1)
    manifest = read(save(tmp_path / "m.xlsx", rows, [table]))
    assert prompts(manifest) == {4: "a red fox", 5: "a grey owl"}


def test_two_tables_neither_header_nor_total_rows_are_briefs(tmp_path: Path) -> None:
    rows: Rows = {
        1: HEADER,
        2: ["a red fox"],
        3: ["Total", None, None, 1],
        6: HEADER,  # the second table repeats the names: it would be sent as "prompt"
        7: ["a grey owl"],
        8: ["a blue whale"],
        9: ["Total", None, None, 2],
    }
    tables = [
        Table(displayName="Week1", ref="A1:D3", totalsRowCount=1),
        Table(displayName="Week2", ref="A6:D9", totalsRowCount=1),
    ]
    manifest = read(save(tmp_path / "m.xlsx", rows, tables))
    assert prompts(manifest) == {2: "a red fox", 7: "a grey owl", 8: "a blue whale"}
    assert warnings(manifest) == {}


def test_a_row_outside_the_table_is_warned_about(tmp_path: Path) -> None:
    rows: Rows = {1: HEADER, **BRIEFS, 7: ["typed under the table"]}
    manifest = read(save(tmp_path / "m.xlsx", rows, [Table(displayName="Briefs", ref="A1:D4")]))
    assert 7 in prompts(manifest)  # still read: most often a brief the table did not take in
    found = warnings(manifest)
    assert list(found) == [7] and "outside the Excel table 'Briefs' (A1:D4)" in found[7][0]


def test_a_table_beside_the_briefs_changes_nothing(tmp_path: Path) -> None:
    rows: Rows = {1: [*HEADER, None, "size", "price"], **BRIEFS}
    for number in (2, 3):
        rows[number] = [*rows[number], None, None, None, "S", 10]
    rows[4] = [*rows[4], None, None, None, "Total", 10]
    table = Table(displayName="Prices", ref="F1:G4", totalsRowCount=1)
    manifest = read(save(tmp_path / "m.xlsx", rows, [table]))
    assert sorted(prompts(manifest)) == [2, 3, 4] and warnings(manifest) == {}


@pytest.mark.filterwarnings("ignore:File may not be readable")  # openpyxl, on writing it
def test_a_table_without_a_header_row(tmp_path: Path) -> None:
    rows: Rows = {1: HEADER, **BRIEFS, 5: ["Total", None, None, 3]}
    path = save(
        tmp_path / "m.xlsx", rows, [Table(displayName="Data", ref="A2:D5", totalsRowCount=1)]
    )
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    name = next(n for n in parts if n.startswith("xl/tables/"))
    parts[name] = parts[name].replace(b'headerRowCount="1"', b'headerRowCount="0"', 1)
    with zipfile.ZipFile(path, "w") as target:
        for member, data in parts.items():
            target.writestr(member, data)
    assert prompts(read(path)) == {2: "a red fox", 3: "a grey owl", 4: "a blue whale"}


def test_a_damaged_table_part_is_one_clear_error(tmp_path: Path) -> None:
    rows: Rows = {1: HEADER, **BRIEFS}
    path = save(tmp_path / "m.xlsx", rows, [Table(displayName="Briefs", ref="A1:D4")])
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    name = next(n for n in parts if n.startswith("xl/tables/"))
    parts[name] = b"<table"
    with zipfile.ZipFile(path, "w") as target:
        for member, data in parts.items():
            target.writestr(member, data)
    with pytest.raises(ManifestError, match="table definitions cannot be read"):
        read(path)
