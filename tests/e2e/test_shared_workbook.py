"""Issue 25, item 1: results.xlsx is a shared document.

Columns a person adds (and their values, matched by key) survive every rewrite, in their
place, with a line in the log; what batchgen owns is rewritten; a workbook that cannot be
matched row by row is kept aside under a dated name, never overwritten silently. A person
"edits" the workbook with openpyxl, as Excel would save it; rewrites are ``batchgen report``
and a second ``batchgen run`` against the ``simulator`` fixture.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.records import write_briefs

from batchgen.app.report import rebuild_reports
from batchgen.app.review_loop import absorb_review
from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN
from batchgen.errors import ExitCode
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator
from batchgen.state.store import StateStore


async def _run(manifest: Path, out: Path, url: str) -> None:
    ns = parse_args(["run", str(manifest), "--out", str(out), "--first-poll", "0.05s"])
    settings = settings_from_args(ns, base_url=url)
    code = await run_batch(
        ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )
    assert code == ExitCode.OK


def _report(manifest: Path, out: Path) -> None:
    rebuild_reports([manifest], settings_from_args(parse_args(["report", "x", "--out", str(out)])))


def _sheet(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(book["Results"].iter_rows(values_only=True))
    finally:
        book.close()
    header = [str(cell) if cell is not None else "" for cell in rows[0]]
    return header, [dict(zip(header, row, strict=False)) for row in rows[1:]]


def _edit(path: Path, column: str, after: str, values: dict[str, Any], *, reverse: bool) -> None:
    """Insert ``column`` right after ``after`` with ``values`` by key, as a person would in
    Excel; ``reverse`` sorts the rows the other way first (the reader matches by key)."""
    book = openpyxl.load_workbook(path)
    sheet = book["Results"]
    header = [cell.value for cell in sheet[1]]
    at = header.index(after) + 2  # 1-based, right of it
    key_at = header.index("Key")
    sheet.insert_cols(at)
    sheet.cell(1, at, column)
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2)]
    if reverse:
        rows.reverse()
        for r, values_of_row in enumerate(rows, start=2):
            for c, value in enumerate(values_of_row, start=1):
                sheet.cell(r, c, value)
    for r in range(2, sheet.max_row + 1):
        key = sheet.cell(r, key_at + 1 + (1 if at <= key_at + 1 else 0)).value
        if key in values:
            sheet.cell(r, at, values[key])
    book.save(path)


@pytest.fixture
async def night(tmp_path: Path, simulator: Simulator) -> tuple[Path, Path, Path]:
    """A manifest of 3 rows after its first night: (manifest, output folder, results.xlsx)."""
    manifest = write_briefs(tmp_path / "m.csv", 3)
    out = tmp_path / "out"
    await _run(manifest, out, simulator.url)
    return manifest, out, out / "m" / "results.xlsx"


async def test_a_notes_column_survives_report_and_the_next_night_in_its_place(
    night: tuple[Path, Path, Path], simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, out, xlsx = night
    notes = {"id:r0": "too dark", "id:r2": "client loves it"}
    _edit(xlsx, "Notes", "Decision", notes, reverse=True)
    caplog.set_level(logging.INFO, logger="batchgen")
    _report(manifest, out)
    header, rows = _sheet(xlsx)
    assert header[-1] == "Notes" and header[-2] == "Decision"  # where the person put it
    assert {row["Key"]: row["Notes"] for row in rows} == {**notes, "id:r1": None}
    assert [row["Row"] for row in rows] == [2, 3, 4]  # batchgen's order is back
    lines = [r.getMessage() for r in caplog.records]
    kept = "m.csv: results.xlsx rewritten, keeping the column(s) a person added: Notes (2 values)"
    assert kept in lines
    assert any(line.startswith("m.csv: read the column(s) a person added") for line in lines)
    # a second night (a new row too) rewrites the workbook again: the notes are still there
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("r3,m prompt 3,fun,1:1\n")
    await _run(manifest, out, simulator.url)
    header, rows = _sheet(xlsx)
    assert header[-1] == "Notes"
    assert {row["Key"]: row["Notes"] for row in rows} == {**notes, "id:r1": None, "id:r3": None}


async def test_a_column_in_the_middle_keeps_its_place_and_its_types(
    night: tuple[Path, Path, Path],
) -> None:
    manifest, out, xlsx = night
    when = dt.datetime(2025, 6, 2, 9, 30)
    _edit(xlsx, "Shot on", "prompt", {"id:r0": when, "id:r1": 3.5}, reverse=False)
    _report(manifest, out)
    _report(manifest, out)  # a rewrite of an unedited workbook keeps them too (from the state)
    header, rows = _sheet(xlsx)
    assert header[header.index("prompt") + 1] == "Shot on"
    by_key = {row["Key"]: row["Shot on"] for row in rows}
    assert by_key == {"id:r0": when, "id:r1": 3.5, "id:r2": None}
    assert header.count("Decision") == 1 and "Video 1" in header  # ours, once each


async def test_a_column_the_person_deleted_stays_deleted(night: tuple[Path, Path, Path]) -> None:
    manifest, out, xlsx = night
    _edit(xlsx, "Notes", "Decision", {"id:r0": "x"}, reverse=False)
    _report(manifest, out)
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    sheet.delete_cols([c.value for c in sheet[1]].index("Notes") + 1)
    book.save(xlsx)
    _report(manifest, out)
    assert "Notes" not in _sheet(xlsx)[0]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("keyless", "row 5 has values in a column you added but no key"),
        ("twice", "appears twice"),
        ("unknown", "is not a job of this manifest"),
    ],
)
async def test_a_workbook_that_cannot_be_matched_is_kept_aside_not_overwritten(
    night: tuple[Path, Path, Path],
    caplog: pytest.LogCaptureFixture,
    damage: str,
    why: str,
) -> None:
    manifest, out, xlsx = night
    _edit(xlsx, "Notes", "Decision", {"id:r0": "keep me"}, reverse=False)
    _report(manifest, out)  # read once: the state has the note
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    if damage == "keyless":  # a total line at the bottom, typed by hand
        sheet.cell(5, header.index("Notes") + 1, "3 videos, 1 approved")
    elif damage == "twice":
        sheet.cell(3, header.index("Key") + 1, "id:r0")
    else:
        sheet.cell(3, header.index("Key") + 1, "id:someone-elses")
    sheet.cell(2, header.index("Notes") + 1, "typed after")
    book.save(xlsx)
    edited = xlsx.read_bytes()
    caplog.set_level(logging.WARNING, logger="batchgen")
    _report(manifest, out)
    (aside,) = sorted(xlsx.parent.glob("results-kept-*.xlsx"))
    assert aside.read_bytes() == edited  # what the person typed is safe, as they saved it
    warning = next(r.getMessage() for r in caplog.records if "kept aside" in r.getMessage())
    assert why in warning and aside.name in warning
    # the rewrite keeps what the state had (the note read before), not the unmatched edit
    notes = {row["Key"]: row["Notes"] for row in _sheet(xlsx)[1]}
    assert notes["id:r0"] == "keep me"


async def test_a_sheet_the_person_added_keeps_the_workbook_aside(
    night: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    manifest, out, xlsx = night
    _edit(xlsx, "Notes", "Decision", {"id:r1": "ok"}, reverse=False)
    book = openpyxl.load_workbook(xlsx)
    book.create_sheet("Client feedback")["A1"] = "call on Monday"
    book.save(xlsx)
    caplog.set_level(logging.WARNING, logger="batchgen")
    _report(manifest, out)
    (aside,) = xlsx.parent.glob("results-kept-*.xlsx")
    assert "Client feedback" in openpyxl.load_workbook(aside, read_only=True).sheetnames
    assert any("'Client feedback'" in r.getMessage() for r in caplog.records)
    assert {row["Key"]: row["Notes"] for row in _sheet(xlsx)[1]}["id:r1"] == "ok"


@pytest.mark.parametrize("damage", ["keyless", "twice"])
async def test_a_workbook_that_cannot_be_read_is_said_at_every_run_until_fixed(
    night: tuple[Path, Path, Path], caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    """A new user's trial: a regenerate typed in a workbook that could not be matched was
    warned about once; the next run, with the decision still showing, said nothing."""
    manifest, out, xlsx = night
    _edit(xlsx, "Notes", "Decision", {"id:r0": "redo"}, reverse=False)
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    sheet.cell(2, header.index("Decision") + 1, "regenerate")
    if damage == "keyless":  # a total line typed under the rows
        sheet.cell(5, header.index("Notes") + 1, "1 to redo")
    else:
        sheet.cell(3, header.index("Key") + 1, sheet.cell(2, header.index("Key") + 1).value)
    book.save(xlsx)
    caplog.set_level(logging.WARNING, logger="batchgen")
    with StateStore.open(out / "m" / "state.sqlite") as store:
        for _ in range(3):  # three nights with nothing else changed: said each time
            assert absorb_review(store, out / "m") == 0
        assert "regenerate" not in store.decisions().values()  # not acted on: not read
    said = [
        r.getMessage() for r in caplog.records if "decisions and notes not read" in r.getMessage()
    ]
    assert len(said) == 3 and "kept aside" in said[0] and "still" in said[2]
    assert len(list(xlsx.parent.glob("results-kept-*.xlsx"))) == 1  # one copy per edit
    _report(manifest, out)  # a rewrite replaces it (the copy keeps what was typed): quiet
    caplog.clear()
    with StateStore.open(out / "m" / "state.sqlite") as store:
        absorb_review(store, out / "m")
    assert not [r for r in caplog.records if "not read" in r.getMessage()]
