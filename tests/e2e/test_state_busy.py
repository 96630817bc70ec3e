"""Issue 23 item 4: a busy state waits, it does not die.

Seen: a SQLite viewer with an unsaved edit held a write lock on the state; the night died with
exit 2 after 10 s although six tasks had been paid (exit 2 means "nothing was sent"), its line
in the Runs sheet had no end and its log file was empty. Now the store waits (with a message,
bounded by the deadline), a run that had sent never exits 2, and the run's line is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli_runner import SIM_DEFAULTS, Cli, store_of, write_manifest
from helpers.simulators import MakeSim

from batchgen.errors import ExitCode

__all__ = ["SIM_DEFAULTS"]  # the make_sim fixture reads it


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's open write transaction on the state (a viewer's unsaved edit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


# ---------------------------------------------------------------- a run
async def _finish(proc: asyncio.subprocess.Process, seen: list[str]) -> tuple[int, str]:
    """The exit code and the rest of stderr; a run that does not end is made to dump its
    stacks (faulthandler, SIGABRT) into the failure message."""
    assert proc.stderr is not None
    try:
        rest = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
        return await asyncio.wait_for(proc.wait(), 10), rest
    except TimeoutError:
        proc.send_signal(signal.SIGABRT)
        rest = (await proc.stderr.read()).decode()
        raise AssertionError("the run did not end:\n" + "".join(seen) + rest) from None


async def _read_until(proc: asyncio.subprocess.Process, words: str, seen: list[str]) -> None:
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while True:
        try:
            line = (await asyncio.wait_for(proc.stderr.readline(), end - loop.time())).decode()
        except TimeoutError:
            proc.send_signal(signal.SIGABRT)
            line = (await proc.stderr.read()).decode()
            raise AssertionError(f"{words!r} never said:\n" + "".join(seen) + line) from None
        if not line:
            raise AssertionError(f"{words!r} never said:\n" + "".join(seen))
        seen.append(line)
        if words in line:
            return


def _submitted(state: Path) -> bool:
    if not state.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{state.as_uri()}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT count(*) FROM jobs WHERE task_id IS NOT NULL").fetchone()
    except sqlite3.Error:
        return False
    return bool(row[0])


async def _until_paid(proc: asyncio.subprocess.Process, state: Path) -> None:
    """Wait (on the state, not a guess at timing) until the run has paid for a task."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while not _submitted(state):
        assert proc.stderr is not None
        if proc.returncode is not None or loop.time() > end:
            raise AssertionError("no task was paid:\n" + (await proc.stderr.read()).decode())
        await asyncio.sleep(0.02)


@pytest.mark.e2e
async def test_a_run_waits_while_a_viewer_holds_the_state_and_finishes(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(latency_median=100.0)  # tasks of about a second
    write_manifest(tmp_path / "m.csv", 6)
    state = tmp_path / "outputs" / "m" / "state.sqlite"
    cli = Cli(tmp_path, sim)
    cli.env["PYTHONFAULTHANDLER"] = "1"
    proc = await cli.start("run", "m.csv")
    assert proc.stderr is not None
    seen: list[str] = []
    await _until_paid(proc, state)
    with write_lock(state):  # tasks were paid: the run must wait, not exit 2
        await _read_until(proc, "is busy: another program holds a write lock", seen)
    code, rest = await _finish(proc, seen)
    assert code == ExitCode.OK, "".join(seen) + rest
    assert "free again" in rest
    with store_of(tmp_path, "m") as store:
        last = store.runs()[-1]
        assert last.exit_code == ExitCode.OK and last.ended_at is not None
    (log,) = (tmp_path / "outputs" / "m" / "logs").glob("run-*.log")
    assert "is busy" in log.read_text(encoding="utf-8")


@pytest.mark.e2e
async def test_a_state_busy_past_the_deadline_stops_early_and_records_the_run(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(latency_median=100.0)
    write_manifest(tmp_path / "m.csv", 6)
    state = tmp_path / "outputs" / "m" / "state.sqlite"
    cli = Cli(tmp_path, sim)
    cli.env["PYTHONFAULTHANDLER"] = "1"
    proc = await cli.start("run", "m.csv", "--max-runtime", "2s", "--grace", "1s")
    assert proc.stderr is not None
    seen: list[str] = []
    await _until_paid(proc, state)
    with write_lock(state):  # held past the deadline; let go once the run has given up
        await _read_until(proc, "could wait no longer", seen)
    code, rest = await _finish(proc, seen)
    assert code == ExitCode.STOPPED_EARLY, "".join(seen) + rest
    assert "Traceback" not in rest
    with store_of(tmp_path, "m") as store:
        last = store.runs()[-1]
        assert last.exit_code == ExitCode.STOPPED_EARLY and last.ended_at is not None
    (log,) = (tmp_path / "outputs" / "m" / "logs").glob("run-*.log")
    assert "could wait no longer" in log.read_text(encoding="utf-8")
    # the next night recovers everything
    assert (await cli.run("run", "m.csv", "--resubmit-unknown")).code == ExitCode.OK
