"""Two real ``batchgen run`` processes, one token, one simulator: one account window.

The simulator counts the token's busiest window itself (``peak_window``); each process alone
is told the whole limit, so without the shared window the two together would send up to
twice it. Once through the default per-host window (a SQLite file under ``BATCHGEN_HOME``),
once through a real ``redis-server`` (``--limiter redis://…``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from helpers.records import write_briefs
from helpers.redis_server import redis_server_or_skip
from helpers.simulators import SimulatorFactory

from batchgen.simulator import SimConfig, Simulator

TOKEN = "sk-shared-window-s3cret"
RPM = 30  # per 1-second window (the client's --rate-window 1): a whole run takes seconds
ROWS = 40


async def run_two(tmp_path: Path, url: str, *extra: str) -> list[tuple[int, str]]:
    """Start two runs at once (each its own manifest and output folder); their exit codes
    and stderr."""
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    procs = []
    for name in ("north", "south"):
        folder = tmp_path / name
        folder.mkdir()
        write_briefs(folder / f"{name}.csv", ROWS)
        argv = [sys.executable, "-m", "batchgen", "run", f"{name}.csv", "--base-url", url]
        argv += ["--rpm", str(RPM), "--rate-window", "1s", "--first-poll", "0.05s"]
        argv += ["--heartbeat", "0.3s", "--no-progress", "-v", *extra]
        procs.append(
            await asyncio.create_subprocess_exec(
                *argv, cwd=folder, env=env, stderr=asyncio.subprocess.PIPE
            )
        )
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 90)
    return [(p.returncode or 0, err.decode()) for p, (_, err) in zip(procs, outputs, strict=True)]


async def sim_for(factory: SimulatorFactory) -> Simulator:
    config = SimConfig(
        tokens=frozenset({TOKEN}),
        rpm=RPM,
        window=1.0,
        window_kind="sliding",
        time_scale=0.01,
        latency_median=20.0,  # 0.2 s
        seed=5,
    )
    return await factory(config)


@pytest.mark.parametrize("limiter", ["local", "redis"])
async def test_two_runs_with_one_token_stay_within_one_window(
    simulator_factory: SimulatorFactory, tmp_path: Path, limiter: str
) -> None:
    extra = ("--limiter", redis_server_or_skip().url) if limiter == "redis" else ()
    sim = await sim_for(simulator_factory)
    results = await run_two(tmp_path, sim.url, *extra)
    stats = sim.stats
    for code, err in results:
        assert code == 0, err
        assert TOKEN not in err
    assert stats.tasks_created == 2 * ROWS
    assert stats.rate_limited == 0
    assert stats.peak_window <= RPM
    # Both ran at the same time: the window was the account's, and each said so
    beats = [line for _, err in results for line in err.splitlines() if "shared window" in line]
    assert any("1 other process(es)" in line for line in beats), beats
    held = [line for _, err in results for line in err.splitlines() if "is full" in line]
    assert held, "no -v line said the shared window held a request back"


async def test_without_the_shared_window_two_runs_pass_the_limit(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    # The control: each process counts only its own requests (--limiter none)
    sim = await sim_for(simulator_factory)
    results = await run_two(tmp_path, sim.url, "--limiter", "none")
    stats = sim.stats
    assert all(code == 0 for code, _ in results)
    assert stats.peak_window > RPM or stats.rate_limited > 0


async def test_an_unreachable_redis_stops_the_run_before_anything_is_sent(
    simulator_factory: SimulatorFactory, tmp_path: Path
) -> None:
    sim = await sim_for(simulator_factory)
    write_briefs(tmp_path / "m.csv", 3)
    # the configuration file's key, with a password that must show nowhere
    (tmp_path / "batchgen.toml").write_text('limiter = "redis://:hunter2@127.0.0.1:1/0"\n')
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "batchgen", "run", "m.csv", "--base-url", sim.url]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "shared rate-limit window (redis 127.0.0.1:1/0)" in err.decode()
    assert "hunter2" not in err.decode() and TOKEN not in err.decode()
    assert sum(sim.stats.requests.values()) == 0


def test_a_limiter_that_is_not_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from batchgen.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["run", str(tmp_path / "m.csv"), "--limiter", "memcached://x"])
    assert stop.value.code == 2
    assert "'memcached://x' is not a limiter" in capsys.readouterr().err


def test_the_command_line_kept_in_the_state_hides_a_redis_password() -> None:
    from batchgen.cli.main import _command_line

    line = _command_line(["run", "m.csv", "--limiter", "redis://:hunter2@10.0.0.5:6379/0"])
    assert "hunter2" not in line and "redis://***@10.0.0.5:6379/0" in line
