"""``python -m batchgen`` as a subprocess against an in-process simulator, and what tests ask of
its outputs.

* ``Cli(cwd, sim, token=TOKEN, provider=None)``: ``await cli.run("run", "briefs.csv")`` gives
  a ``Result`` (exit code, stdout, stderr); ``await cli.start(...)`` gives the process. ``run``
  gets a fast first poll; ``provider="xai"`` talks to an xAI simulator (its variables, and
  ``--provider xai``); ``cli.point_at(url)`` sends later commands' API calls elsewhere.
* ``SIM_DEFAULTS``: simulator options that accept ``TOKEN`` (a test module that uses ``make_sim``
  with them re-exports the name: ``from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS``).
* ``write_manifest``, ``store_of``, ``nonzero``, ``paid_per_prompt``, ``kill_at``,
  ``wait_for``, ``assert_token_absent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from batchgen.models import JobStatus
from batchgen.providers.catalog import provider_named
from batchgen.simulator import Simulator
from batchgen.simulator.files import video_bytes
from batchgen.state.store import StateStore

TOKEN = "sk-cli-test-s3cret-value"
VIDEO_SIZE = len(video_bytes())
#: The commands that take ``--provider``.
_WITH_PROVIDER = ("run", "validate", "template", "demo", "simulate")

SIM_DEFAULTS: dict[str, Any] = {
    "tokens": frozenset({TOKEN}),
    "time_scale": 0.01,
    "latency_median": 20.0,  # 0.2 s once scaled
    "seed": 11,
    "rpm": 100_000,
}


def write_manifest(path: Path, n: int, *, extra: list[list[str]] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio", "campaign"])
        for i in range(n):
            writer.writerow([f"r{i}", f"{path.stem} prompt {i}", "fun", "1:1", "spring"])
        for row in extra or []:
            writer.writerow(row)
    return path


class Server(Protocol):
    """What ``Cli`` needs of the fake it points batchgen at: its address."""

    @property
    def url(self) -> str: ...


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Cli:
    """Runs ``python -m batchgen`` in ``cwd`` with the token in the environment.

    ``provider`` (a name in ``batchgen.providers.catalog``; None: the default, named nowhere)
    picks the token and address variables, and is passed as ``--provider`` to the commands
    that take it.
    """

    def __init__(
        self, cwd: Path, sim: Server, token: str = TOKEN, *, provider: str | None = None
    ) -> None:
        info = provider_named(provider)
        self.cwd = cwd
        self.sim = sim
        self.provider = provider
        self._url_env = info.base_url_env
        self.env = {
            **os.environ,
            info.token_env: token,
            info.base_url_env: sim.url,
            "PYTHONUNBUFFERED": "1",
        }

    def point_at(self, url: str) -> None:
        """Send the API calls of later commands to ``url`` (e.g. a gateway in front)."""
        self.env[self._url_env] = url

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        fast = ("--first-poll", "0.05s") if args and args[0] == "run" else ()
        named = self.provider is not None and args and args[0] in _WITH_PROVIDER
        chosen = ("--provider", str(self.provider)) if named else ()
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "batchgen",
            *args,
            *chosen,
            *fast,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run(self, *args: str, limit: float = 60) -> Result:
        proc = await self.start(*args)
        out, err = await asyncio.wait_for(proc.communicate(), limit)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())


def store_of(tmp_path: Path, name: str) -> StateStore:
    return StateStore.open(tmp_path / "outputs" / name / "state.sqlite")


def nonzero(counts: dict[JobStatus, int]) -> dict[JobStatus, int]:
    return {status: n for status, n in counts.items() if n}


def paid_per_prompt(sim: Simulator) -> dict[str, int]:
    """Tasks the simulator billed, per prompt, in either dialect (the reseller bills
    ``credits``, xAI ``cost_ticks``; each leaves the other at 0)."""
    paid: dict[str, int] = {}
    for record in sim.stats.tasks.values():
        if record.credits or record.cost_ticks:
            paid[record.prompt] = paid.get(record.prompt, 0) + 1
    return paid


async def kill_at(proc: asyncio.subprocess.Process, instant: float) -> None:
    """SIGKILL ``proc`` ``instant`` seconds from now, unless it ended before; then reap it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), instant)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def wait_for(condition: Callable[[], bool], limit: float = 20.0) -> None:
    """Poll a condition (not a guess at timing): fail loudly if it never holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def assert_token_absent(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
