"""Issue 23, item 11: derived scratch state rebuilds itself; a nonsense Redis is one line.

A damaged window file (garbage, truncated, damaged while open) is set aside and made again
with a warning; an empty file is simply a new one. A ``--limiter`` answering what no Redis
answers (a fake socket) is one ``UsageError``; a real ``redis-server`` still grants, and one
whose keys hold nonsense is one ``UsageError`` too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.fake_redis import FakeRedis
from helpers.redis_server import RedisServer, redis_server_or_skip
from helpers.simulators import FakeClock

from batchgen.engine.pacing.window_redis import RedisWindow, parse_verdict
from batchgen.engine.pacing.window_sqlite import LocalWindow
from batchgen.errors import UsageError


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


def test_the_scripts_reply_is_parsed_not_trusted() -> None:
    assert parse_verdict([1, 5, 0, b"0"], 1).granted == 1
    assert parse_verdict([9, 5, 0, b"2.5"], 2).granted == 2  # never more than asked for
    for reply in (b"OK", 5, [1, 2], [b"x", 1, 2, b"0"], [1, 2, 3, b"nan"], [-1, 0, 0, b"0"]):
        with pytest.raises(ValueError):
            parse_verdict(reply, 1)


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
