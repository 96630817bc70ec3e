"""Issue 23, item 11, the seen cases as runs: a corrupt or truncated ``window-*.sqlite`` made
every run exit 2 until a person deleted it (now the night runs); a Redis answering garbage
ended the run with an ``AttributeError`` traceback (now one line, exit 2, nothing sent).
"""

from __future__ import annotations

import asyncio
import csv
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from helpers.fake_redis import FakeRedis
from helpers.hostile_vendor import HostileVendor

from batchgen import paths
from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.engine.pacing.window_sqlite import local_window_path
from batchgen.errors import ExitCode
from batchgen.providers.grokimagine import Token

TOKEN = "sk-scratch-test"


def damaged_truncated(path: Path) -> None:
    """A real window file with many rows, cut in half (a copy interrupted, a full disk)."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE answered (at REAL NOT NULL)")
    db.executemany("INSERT INTO answered VALUES (?)", [(time.time(),)] * 20_000)
    db.commit()
    db.close()
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def damaged_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": damaged_truncated,
    "garbage": damaged_garbage,
}


def write_rows(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows([f"r{i}", f"scratch {i}", "fun", "1:1"] for i in range(n))


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


async def run(tmp_path: Path, vendor: HostileVendor, *args: str) -> int:
    ns = parse_args(
        ["run", str(tmp_path / "briefs.csv"), "--out", str(tmp_path / "outputs"), *args]
    )
    settings = settings_from_args(ns, base_url=vendor.url)
    return await run_batch(
        ns.manifests, settings, Token(TOKEN), command="test", install_signals=False
    )


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_damaged_window_file_no_longer_stops_every_night(
    tmp_path: Path, vendor: HostileVendor, damage: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    window = local_window_path(paths.user_state_dir(), paths.digest(vendor.url, TOKEN))
    DAMAGE[damage](window)
    assert await run(tmp_path, vendor, "--limiter", "local") == ExitCode.OK  # was: exit 2
    assert len(vendor.tasks) == 2
    assert window.with_name(window.name + ".damaged").exists()


GARBAGE = {
    "ok_to_everything": b"+OK\r\n",  # the seen case: AttributeError in the client
    "a_number": b":5\r\n",
    "a_short_array": b"*2\r\n:1\r\n:2\r\n",
    "not_resp": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}


@pytest.mark.e2e
async def test_the_seen_nonsense_redis_ends_the_run_with_one_line_and_nothing_sent(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    async with FakeRedis(GARBAGE["ok_to_everything"]) as fake:
        env = {**os.environ, "GROKIMAGINE_API_TOKEN": TOKEN, "GROKIMAGINE_BASE_URL": vendor.url}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "batchgen",
            "run",
            "briefs.csv",
            "--limiter",
            fake.url,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == ExitCode.USAGE, text
    assert "Traceback" not in text and "AttributeError" not in text.split("(")[0]
    assert [line for line in text.splitlines() if "error" in line] == text.strip().splitlines()[-1:]
    assert vendor.requests == {"generate": 0, "status": 0}
