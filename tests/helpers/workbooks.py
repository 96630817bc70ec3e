"""Workbooks built part by part for the tests of bounded reads: a real workbook (openpyxl's
parts) whose first sheet holds rows streamed in, so a test can make millions of cells cheaply.

* ``workbook_with(path, body, header=HEAD)``: the workbook, ``body`` an iterator of XML bytes;
* ``inline_rows(first, rows, per_row, prefix="")``: rows of inline-string cells, as bytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl

__all__ = ["HEAD", "NS", "inline_rows", "workbook_with"]

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEAD = '<row r="1"><c r="A1" t="inlineStr"><is><t>prompt</t></is></c></row>'


def inline_rows(first: int, rows: int, per_row: int, prefix: str = "") -> Iterator[bytes]:
    """``rows`` rows of ``per_row`` inline-string cells each, from row ``first``."""
    c = f"{prefix}c"
    block: list[str] = []
    for number in range(first, first + rows):
        cells = "".join(
            f'<{c} t="inlineStr"><{prefix}is><{prefix}t>x</{prefix}t></{prefix}is></{c}>'
            for _ in range(per_row)
        )
        block.append(f'<{prefix}row r="{number}">{cells}</{prefix}row>')
        if len(block) == 2_000:
            yield "".join(block).encode()
            block.clear()
    yield "".join(block).encode()


def workbook_with(path: Path, body: Iterator[bytes], *, header: str = HEAD) -> Path:
    """A real workbook (openpyxl's parts) whose first sheet's ``<sheetData>`` is ``header``
    followed by the streamed ``body``."""
    base = path.with_suffix(".base.xlsx")
    book = openpyxl.Workbook()
    book.active.append(["prompt"])
    book.save(base)
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                new.writestr(info, old.read(info.filename))
                continue
            xml = old.read(info.filename).decode()
            start = xml.index("<sheetData")
            end = xml.index("</sheetData>") if "</sheetData>" in xml else None
            before = xml[:start] + "<sheetData>" + header
            after = "</sheetData>" + (xml[end + len("</sheetData>") :] if end else "</worksheet>")
            with new.open(info.filename, "w", force_zip64=True) as handle:
                handle.write(before.encode())
                for chunk in body:
                    handle.write(chunk)
                handle.write(after.encode())
    base.unlink()
    return path
