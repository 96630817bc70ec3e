"""Issue 23, item 9, the seen cases at their real size: an XLSX of 8 million inline-string cells
kept ``validate`` busy past 4 minutes; a 6-million-cell ``results.xlsx`` kept ``report`` busy
past 3 minutes. Both now end in seconds, with one line naming the file and the limit.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.records import write_briefs
from helpers.workbooks import inline_rows, workbook_with

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN
from batchgen.manifest.model import MAX_XLSX_CELLS
from batchgen.output.review import results_cell_limit
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator


def _batchgen(cwd: Path, *args: str, limit: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": DEMO_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "batchgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )


@pytest.mark.e2e
def test_the_seen_8_million_inline_string_cells_are_refused_in_seconds(tmp_path: Path) -> None:
    path = workbook_with(tmp_path / "bomb.xlsx", inline_rows(2, 400_000, 20))
    assert path.stat().st_size < 3 * 1024 * 1024  # a small file on disk
    started = time.monotonic()
    done = _batchgen(tmp_path, "validate", "bomb.xlsx", limit=60)  # was: past 4 minutes
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "bomb.xlsx" in said and f"{MAX_XLSX_CELLS:,} cells" in said
    assert "Traceback" not in said and time.monotonic() - started < 60


@pytest.mark.e2e
async def test_the_seen_6_million_cell_results_do_not_hold_report(
    tmp_path: Path, simulator: Simulator
) -> None:
    write_briefs(tmp_path / "briefs.csv", 3)
    ns = parse_args(["run", str(tmp_path / "briefs.csv"), "--out", str(tmp_path / "outputs")])
    settings = settings_from_args(ns, base_url=simulator.url)
    assert await run_batch(ns.manifests, settings, Token(DEMO_TOKEN), command="test") == 0
    results = tmp_path / "outputs" / "briefs" / "results.xlsx"
    header = (
        '<row r="1"><c t="inlineStr"><is><t>key</t></is></c>'
        '<c t="inlineStr"><is><t>decision</t></is></c></row>'
    )
    workbook_with(results.with_name("big.xlsx"), inline_rows(2, 300_000, 20), header=header)
    os.replace(results.with_name("big.xlsx"), results)
    done = await asyncio.to_thread(
        _batchgen, tmp_path, "report", "briefs.csv", "--out", "outputs", limit=60
    )  # was: past 3 minutes
    assert done.returncode == 0, done.stderr
    assert "not read: it holds more than" in done.stderr and "results.xlsx" in done.stderr
    assert f"{results_cell_limit(3):,}" in done.stderr
