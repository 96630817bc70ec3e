"""Issue 23, item 9: ``results.xlsx`` is measured before its decisions are read back: one far
larger than its state could have made (or a shared-strings bomb) is not read, with a warning
naming the file and the limit; one batchgen could have written is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
from helpers.workbooks import NS, inline_rows, workbook_with

from batchgen.output.review import read_decisions, results_cell_limit


def test_a_results_workbook_far_larger_than_its_state_is_not_read(tmp_path: Path) -> None:
    known = {"id:r0", "id:r1", "id:r2"}
    limit = results_cell_limit(len(known))
    header = (
        '<row r="1"><c t="inlineStr"><is><t>key</t></is></c>'
        '<c t="inlineStr"><is><t>decision</t></is></c></row>'
    )
    path = workbook_with(
        tmp_path / "results.xlsx", inline_rows(2, limit // 20 + 10, 20), header=header
    )
    found = read_decisions(path, known)
    assert found.decisions == {} and found.refused is not None
    assert found.refused.startswith(f"{path}: ")
    assert f"not read: it holds more than {limit:,} cells with a value" in found.refused


def test_a_results_workbook_with_a_strings_bomb_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["key", "decision"])
    book.save(path)
    with zipfile.ZipFile(path) as source:
        parts = {i.filename: source.read(i.filename) for i in source.infolist()}
    parts["xl/sharedStrings.xml"] = (
        f'<sst xmlns="{NS}">'.encode() + b"<si><t>a</t></si>" * 600_000 + b"</sst>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    found = read_decisions(path, {"id:r0"})
    assert found.refused is not None and "shared strings" in found.refused


def test_a_results_workbook_batchgen_could_have_written_is_read(tmp_path: Path) -> None:
    path = tmp_path / "results.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Results"
    book.active.append(["key", "prompt", *[f"col{i}" for i in range(40)], "decision"])
    book.active.append(["id:r0", "a cat", *range(40), "approve"])
    book.save(path)
    assert read_decisions(path, {"id:r0"}).decisions == {"id:r0": "approve"}
