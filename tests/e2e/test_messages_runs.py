"""What people read when a real ``batchgen run`` subprocess talks: -v's explanations, the exit
code a SIGTERM leaves. (The messages' units are in unit/app/test_messages.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.cli_runner import TOKEN, write_manifest
from helpers.simulators import SimulatorFactory

from batchgen.cli import main
from batchgen.simulator import SimConfig
from batchgen.state.store import StateStore


async def _batchgen(tmp_path: Path, url: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": TOKEN, "GROKIMAGINE_BASE_URL": url}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", *args, "--first-poll", "0.05s",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def _sim(**options: Any) -> SimConfig:
    base: dict[str, Any] = {"tokens": frozenset({TOKEN}), "time_scale": 0.01, "seed": 3}
    return SimConfig(**(base | options))


async def test_verbose_explains_waits_and_decisions_without_the_token(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    sim = await simulator_factory(_sim(latency_median=20.0))
    write_manifest(tmp_path / "m.csv", 3)
    proc = await _batchgen(tmp_path, sim.url, "run", "m.csv", "-v", "--no-progress")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 0, text
    debug = [line for line in text.splitlines() if " DEBUG " in line]
    assert any("next status poll at" in line for line in debug), text
    assert any("m.csv: 3 new take(s), 3 to send" in line for line in debug)
    assert TOKEN not in text
    again = await _batchgen(tmp_path, sim.url, "run", "m.csv", "-v", "--no-progress")
    _, err = await asyncio.wait_for(again.communicate(), 60)
    assert "m.csv: 3 take(s) already downloaded: skipped, no request" in err.decode()
    quiet = await _batchgen(tmp_path, sim.url, "run", "m.csv", "--no-progress")
    _, err = await asyncio.wait_for(quiet.communicate(), 60)
    assert " DEBUG " not in err.decode()  # without -v: no debug lines


async def test_a_sigterm_is_recorded_as_exit_143(
    tmp_path: Path, simulator_factory: SimulatorFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = await simulator_factory(_sim(latency_median=50.0))
    write_manifest(tmp_path / "m.csv", 20)
    proc = await _batchgen(tmp_path, sim.url, "run", "m.csv", "--rpm", "600", "--no-progress")
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while sim.stats.tasks_created < 3:
        assert loop.time() < end, "no task was created"
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 143
    with StateStore.open(tmp_path / "outputs" / "m" / "state.sqlite") as store:
        last = store.last_run()
        assert last is not None and last.exit_code == 143
    book = openpyxl.load_workbook(tmp_path / "outputs" / "m" / "results.xlsx")
    assert [row[4].value for row in book["Runs"].iter_rows(min_row=2)] == [143]
    assert main(["status", str(tmp_path / "m.csv"), "--out", str(tmp_path / "outputs")]) == 1
    assert "(exit 143)" in capsys.readouterr().out
