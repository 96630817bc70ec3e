"""Spreadsheets as a person edits them: write rows, read the results back, mark decisions.

* ``write_rows(path, rows, header=HEADER)``: a CSV manifest (the creative loop's columns by
  default).
* ``results_rows(out)``: ``results.csv`` of an output folder, as dicts.
* ``mark(xlsx, decisions, shuffle=False)``: fill ``results.xlsx``'s Decision column by key.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

HEADER = ["id", "prompt", "mode", "ratio", "product", "surface", "variants"]


def write_rows(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def results_rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def mark(xlsx: Path, decisions: dict[str, str], *, shuffle: bool = False) -> None:
    """Fill the Decision column by key, as a person would in Excel; optionally sort the rows
    in another order first, add a column of their own and overwrite other cells."""
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    key_at, decision_at = header.index("Key"), header.index("Decision")
    status_at, prompt_at = header.index("Status"), header.index("prompt")
    rows = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    if shuffle:
        rows.sort(key=lambda r: str(r[key_at]), reverse=True)
        header.append("my notes")
    for values in rows:
        values[decision_at] = decisions.get(str(values[key_at]), values[decision_at])
        if shuffle:
            values.append("looked at it")
            values[status_at], values[prompt_at] = "failed", '=HYPERLINK("x")'
    sheet.delete_rows(1, sheet.max_row)
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    book.save(xlsx)
