"""Issue 23, item 11: derived scratch state rebuilds itself; a nonsense Redis is one line.

Seen: a corrupt or truncated ``window-*.sqlite`` (the shared window, documented as deletable)
made every run exit 2 until a person deleted it; a Redis answering garbage ended the run with
an ``AttributeError`` traceback. The kind: a damaged window file is set aside and made again
with a warning (garbage, truncated, damaged while open; an empty file is simply a new one);
a ``--limiter`` that does not answer as Redis does is one line, exit 2, nothing sent.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import FakeClock
from hostile_vendor import HostileVendor
from redis_server import RedisServer, redis_server_or_skip

from batchgen import paths
from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.engine.pacing.window_redis import RedisWindow, parse_verdict
from batchgen.engine.pacing.window_sqlite import LocalWindow, local_window_path
from batchgen.errors import ExitCode, UsageError
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


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": damaged_truncated,
    "garbage": damaged_garbage,
}


# ---------------------------------------------------------------- the window file
async def use(window: LocalWindow) -> int:
    await window.start(usable=10, window=60.0)
    try:
        return (await window.acquire(usable=10, window=60.0, want=0.0, after=None)).granted
    finally:
        await window.close()


@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_a_damaged_window_file_is_set_aside_and_made_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "window-abc.sqlite"
    DAMAGE[damage](path)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        assert await use(LocalWindow(path, clock=FakeClock())) == 1
    assert (tmp_path / "window-abc.sqlite.damaged").exists()
    assert "was damaged" in caplog.text and "set aside" in caplog.text
    assert await use(LocalWindow(path, clock=FakeClock())) == 1  # and it stays usable


async def test_an_empty_window_file_is_simply_a_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "window-abc.sqlite"
    empty(path)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        assert await use(LocalWindow(path, clock=FakeClock())) == 1
    assert caplog.text == "" and not (tmp_path / "window-abc.sqlite.damaged").exists()


async def test_a_window_file_damaged_while_open_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "window-abc.sqlite"
    window = LocalWindow(path, clock=FakeClock())
    await window.start(usable=10, window=60.0)
    try:
        for suffix in ("", "-wal", "-shm"):  # another program writes over all of it
            target = path.with_name(path.name + suffix)
            if target.exists():
                target.write_bytes(b"\xff" * 8192)
        verdict = await window.acquire(usable=10, window=60.0, want=0.0, after=None)
        assert verdict.granted == 1
    finally:
        await window.close()
    assert (tmp_path / "window-abc.sqlite.damaged").exists()


def test_a_window_folder_that_cannot_be_written_is_still_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-folder"
    folder.write_text("a file where the folder should be")
    with pytest.raises(UsageError, match="cannot open the shared rate-limit window"):
        LocalWindow(folder / "window-abc.sqlite", clock=FakeClock())


# ---------------------------------------------------------------- a whole run (the seen case)
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


# ---------------------------------------------------------------- Redis
def test_the_scripts_reply_is_parsed_not_trusted() -> None:
    assert parse_verdict([1, 5, 0, b"0"], 1).granted == 1
    assert parse_verdict([9, 5, 0, b"2.5"], 2).granted == 2  # never more than asked for
    for reply in (b"OK", 5, [1, 2], [b"x", 1, 2, b"0"], [1, 2, 3, b"nan"], [-1, 0, 0, b"0"]):
        with pytest.raises(ValueError):
            parse_verdict(reply, 1)


class FakeRedis:
    """A TCP server that answers every command with ``answer`` (not Redis)."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                writer.write(self.answer)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()


GARBAGE = {
    "ok_to_everything": b"+OK\r\n",  # the seen case: AttributeError in the client
    "a_number": b":5\r\n",
    "a_short_array": b"*2\r\n:1\r\n:2\r\n",
    "not_resp": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}


@pytest.mark.parametrize("answer", list(GARBAGE))
async def test_a_redis_answering_nonsense_is_one_usage_error(answer: str) -> None:
    async with FakeRedis(GARBAGE[answer]) as fake:
        window = RedisWindow(fake.url, "d" * 16, clock=FakeClock())
        try:
            with pytest.raises(UsageError) as caught:
                await asyncio.wait_for(window.start(usable=10, window=60.0), 30)
        finally:
            await window.close()
    message = str(caught.value)
    assert "\n" not in message and "127.0.0.1" in message


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


@pytest.fixture(scope="module")
def redis() -> RedisServer:
    return redis_server_or_skip()


async def test_a_real_redis_still_grants(redis: RedisServer) -> None:
    window = RedisWindow(redis.url, os.urandom(8).hex(), clock=FakeClock())
    try:
        await window.start(usable=10, window=60.0)
        verdict = await window.acquire(usable=10, window=60.0, want=0.0, after=None, count=3)
        assert verdict.granted == 3 and verdict.used == 0
    finally:
        await window.close()


async def test_a_real_redis_whose_keys_hold_nonsense_is_one_usage_error(redis: RedisServer) -> None:
    import redis.asyncio as aioredis

    digest = os.urandom(8).hex()
    client = aioredis.Redis.from_url(redis.url)
    try:
        await client.set(f"batchgen:window:{digest}:seen", "not a hash")
    finally:
        await client.aclose()
    window = RedisWindow(redis.url, digest, clock=FakeClock())
    try:
        with pytest.raises(UsageError, match="WRONGTYPE"):
            await window.start(usable=10, window=60.0)
    finally:
        await window.close()
