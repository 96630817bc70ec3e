"""Syncs of downloads off the event loop and grouped (``engine/downloads/syncs.py``)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from batchgen.engine.downloads.syncs import SyncGroup

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40


# ---------------------------------------------------------------- SyncGroup
async def test_renames_asked_together_share_one_trip_and_one_sync_per_folder(
    tmp_path: Path,
) -> None:
    synced: list[Path] = []
    syncs = SyncGroup(sync_folder=synced.append)
    a, b = tmp_path / "a", tmp_path / "b"
    await asyncio.gather(*(syncs.folder(folder) for folder in (a, a, a, b, a)))
    assert sorted(synced) == [a, b] and syncs.batches == 1


async def test_a_sync_asked_during_a_batch_waits_for_the_next_one(tmp_path: Path) -> None:
    gates = [threading.Event(), threading.Event()]
    started = threading.Event()
    synced: list[Path] = []

    def sync(folder: Path) -> None:
        synced.append(folder)
        started.set()
        gates[len(synced) - 1].wait(30)  # each batch is held until the test lets it go

    syncs = SyncGroup(sync_folder=sync)
    first = asyncio.ensure_future(syncs.folder(tmp_path))
    await asyncio.to_thread(started.wait, 30)  # the first batch is running now
    second = asyncio.ensure_future(syncs.folder(tmp_path))  # its rename came after it began
    await asyncio.sleep(0)
    gates[0].set()
    await first
    assert not second.done()  # the batch that was running when it asked does not count
    gates[1].set()
    await second
    assert synced == [tmp_path, tmp_path] and syncs.batches == 2


async def test_files_are_fsynced_in_a_worker_thread_each_with_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = os.fsync
    bad: set[int] = set()

    def watching(fd: int) -> None:
        threads.append(threading.current_thread().name)
        if os.fstat(fd).st_ino in bad:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", watching)
    syncs = SyncGroup()
    handles = [(tmp_path / f"v{i}.part").open("wb") for i in range(3)]
    try:
        for handle in handles:
            handle.write(VIDEO)
            handle.flush()
        bad.add(os.fstat(handles[1].fileno()).st_ino)
        results = await asyncio.gather(
            *(syncs.file(h.fileno()) for h in handles), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], OSError)  # that file's download fails, not the others
        assert all(not h.closed and os.fstat(h.fileno()) for h in handles)  # still open
    finally:
        for handle in handles:
            handle.close()
    assert len(threads) == 3 and threading.main_thread().name not in threads
    assert syncs.batches == 1
