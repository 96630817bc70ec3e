"""Issue 25, item 2: rows (of the sheet) and takes (videos) are counted apart everywhere.

A sheet of 2 rows where each asks for 3 takes (``--variants 3``) and one row more with one
take: the Summary sheet, ``status`` (text and ``--json``), the run's log line and the
end-of-run notice all say 3 rows and 7 takes; ``status`` after a killed run says so without
``(exit None)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest
from helpers.hostile_vendor import HostileVendor
from helpers.records import write_briefs

from batchgen.app.run import run_batch
from batchgen.app.status import status_report
from batchgen.cli import parse_args, settings_from_args
from batchgen.errors import ExitCode
from batchgen.providers.grokimagine import Token
from batchgen.state.store import StateStore

TOKEN = "sk-rows-and-takes"


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


def _manifest(path: Path) -> Path:
    """Rows 2-3 leave ``variants`` empty (3 takes with ``--variants 3``); row 4 asks for 1."""
    write_briefs(path, 2)
    text = path.read_text(encoding="utf-8").splitlines()
    lines = [text[0] + ",variants", *(line + "," for line in text[1:]), "r9,one take,fun,1:1,1"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_a_sheet_of_3_rows_and_7_takes_says_so_everywhere(
    tmp_path: Path,
    vendor: HostileVendor,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = _manifest(tmp_path / "m.csv")
    out = tmp_path / "out"
    ns = parse_args(
        [
            "run", str(manifest), "--out", str(out), "--variants", "3", "--first-poll", "0.01s",
            "--no-progress", "--notify-url", f"{vendor.url}/notify",
        ]
    )  # fmt: skip
    settings = settings_from_args(ns, base_url=vendor.url)
    caplog.set_level(logging.INFO, logger="batchgen")
    code = await run_batch(ns.manifests, settings, Token(TOKEN), command="t", install_signals=False)
    assert code == ExitCode.OK and len(vendor.tasks) == 7
    # the log line and the notice
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("m.csv: 3"))
    assert line.startswith("m.csv: 3 rows, 7 takes (downloaded 7); this run: submitted 7")
    (notice,) = vendor.notices
    assert notice["rows"] == 3 and notice["takes"] == 7 and "3 rows, 7 takes" in notice["text"]
    # the Summary sheet
    book = openpyxl.load_workbook(out / "m" / "results.xlsx", read_only=True)
    figures = {label: value for label, value in book["Summary"].iter_rows(values_only=True)}
    book.close()
    assert figures["Rows in the manifest"] == 3
    assert figures["Takes (videos asked for: a row may ask for several)"] == 7
    assert figures["Takes done"] == 7 and figures["  downloaded"] == 7
    # status, text and JSON
    text, code = status_report([manifest], settings_from_args(parse_args(["status", "x"])))
    assert code == ExitCode.OK
    assert text.splitlines()[0].startswith("m.csv: 3 rows, 7 takes (")
    assert "  takes by status:" in text
    as_json, _ = status_report(
        [manifest], settings_from_args(parse_args(["status", "x"])), as_json=True
    )
    entry = json.loads(as_json)["manifests"][0]
    assert (entry["rows"], entry["takes"], entry["counts"]["downloaded"]) == (3, 7, 7)


def test_status_after_a_killed_run_says_it_did_not_finish_without_exit_none(
    tmp_path: Path,
) -> None:
    manifest = write_briefs(tmp_path / "m.csv", 1)
    out = tmp_path / "out"
    with StateStore.open(out / "m" / "state.sqlite", manifest=manifest) as store:
        store.start_run(command="batchgen run m.csv", version="1")  # then kill -9: no end
    settings = settings_from_args(parse_args(["status", "x", "--out", str(out)]))
    text, _ = status_report([manifest], settings)
    last = next(line for line in text.splitlines() if "last run" in line)
    assert last.endswith(": did not finish (killed or still running)"), last
    assert "None" not in text
    entry = json.loads(status_report([manifest], settings, as_json=True)[0])["manifests"][0]
    assert entry["last_run"]["exit_code"] is None  # JSON keeps its null
