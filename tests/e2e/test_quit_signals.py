"""A second signal exits at once, but the run's line in the state is written first."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import openpyxl
import pytest
from helpers.cli_runner import (
    SIM_DEFAULTS,
    Cli,
    paid_per_prompt,
    store_of,
    wait_for,
    write_manifest,
)
from helpers.simulators import MakeSim

from batchgen.models import JobStatus
from batchgen.simulator import Simulator

__all__ = ["SIM_DEFAULTS"]  # make_sim reads the module's defaults


async def _stopping(proc: asyncio.subprocess.Process) -> bytes:
    """Read stderr until the first signal was handled (the run is stopping)."""
    assert proc.stderr is not None
    seen = b""
    while b"received: no new submissions" not in seen:
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert line, seen.decode()
        seen += line
    return seen


def _paid(sim: Simulator) -> int:
    return sum(paid_per_prompt(sim).values())


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
    ids=["int-int", "term-int"],
)
async def test_a_second_signal_exits_at_once_with_the_run_recorded(
    make_sim: MakeSim, tmp_path: Path, first: int, second: int
) -> None:
    # tasks take 50 s: after the first signal the run waits on them (stop_timeout)
    sim = await make_sim(latency_median=50.0)
    write_manifest(tmp_path / "dbl.csv", 40)
    cli = Cli(tmp_path, sim)
    proc = await cli.start("run", "dbl.csv", "--rpm", "600")
    await wait_for(lambda: sim.stats.tasks_created >= 5)
    proc.send_signal(first)
    await _stopping(proc)
    proc.send_signal(second)
    await asyncio.wait_for(proc.wait(), 10)  # prompt: not after the 50 s tasks
    assert proc.stderr is not None
    said = (await proc.stderr.read()).decode()
    assert proc.returncode == 128 + second, said
    paid = _paid(sim)
    assert paid >= 5
    with store_of(tmp_path, "dbl") as store:
        run = store.runs()[-1]
        assert run.ended_at is not None, said
        assert run.exit_code == 128 + second
        counts = json.loads(store.get_meta(f"run_counts:{run.run_id}") or "{}")
        rows = store.counts()
    with_id = sum(rows.get(s, 0) for s in (JobStatus.SUBMITTED, JobStatus.RUNNING))
    assert counts["submitted"] == with_id >= 5
    # POSTs still in flight at the second signal: paid, not known to this run
    assert with_id <= paid <= with_id + rows.get(JobStatus.SUBMITTING, 0)
    status = await cli.run("status", "dbl.csv", "--json")
    assert f'"exit_code": {128 + second}' in status.stdout, status.stdout
    assert "did not finish" not in (await cli.run("status", "dbl.csv")).stdout
    # the Runs sheet, rebuilt by report, carries the run's counts
    report = await cli.run("report", "dbl.csv")
    assert report.code == 0, report.stderr
    sheet = openpyxl.load_workbook(tmp_path / "outputs" / "dbl" / "results.xlsx")["Runs"]
    rows_seen = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert any(128 + second in r and with_id in r for r in rows_seen[1:]), rows_seen
    again = await cli.run("run", "dbl.csv", "--rpm", "100000")
    assert set(paid_per_prompt(sim).values()) == {1}  # nothing paid twice
    assert again.code in (0, 1), again.stderr
