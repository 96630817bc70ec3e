"""Syncs of a run's downloads, off the event loop and grouped.

A video is fsynced before it takes its final name (a finished name always means a whole
video), and its folder is fsynced after the rename (the name survives a power cut) before the
row is committed as downloaded. Both used to run on the event loop, one by one: about 10 ms of
a shared disk per video during which no submit or poll could go out.

:class:`SyncGroup` is a group commit for those syncs: the files and folders asked while a
batch is being synced (in a worker thread, so the event loop goes on) make up the next batch,
which one trip to the thread syncs whole (each folder once). Each caller returns only once a
sync that *began after its call* has finished, and gets its own error: a file whose fsync
failed fails its own download only. With four downloads at once, a burst of videos into one
folder costs one thread trip and one folder sync per batch, not one each.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from batchgen.atomic import fsync_dir

__all__ = ["SyncGroup"]

_Item = tuple[int | Path, "asyncio.Future[None]"]


def _sync_batch(
    items: list[int | Path], sync_folder: Callable[[Path], None]
) -> list[Exception | None]:
    """fsync every file (an open descriptor, closed here) and folder of a batch, each folder
    once; the error of each item (None: synced)."""
    errors: list[Exception | None] = []
    folders: dict[Path, Exception | None] = {}
    for item in items:
        if isinstance(item, Path):
            if item not in folders:
                try:
                    sync_folder(item)
                    folders[item] = None
                except OSError as exc:
                    folders[item] = exc
            errors.append(folders[item])
            continue
        try:
            os.fsync(item)
            errors.append(None)
        except OSError as exc:
            errors.append(exc)
        finally:
            os.close(item)
    return errors


class SyncGroup:
    """Grouped fsyncs of files and folders (see the module's docstring); one per run.

    ``sync_folder`` makes one folder's renames durable (default
    :func:`batchgen.atomic.fsync_dir`); ``batches`` counts the trips to the worker thread.
    """

    def __init__(self, sync_folder: Callable[[Path], None] = fsync_dir) -> None:
        self._sync_folder = sync_folder
        self._asked: list[_Item] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0

    async def file(self, fd: int) -> None:
        """Return once the open file ``fd`` has been fsynced (it stays open); OSError as
        ``os.fsync`` raises it."""
        await self._ask(os.dup(fd))  # the batch closes its own duplicate

    async def folder(self, folder: Path) -> None:
        """Return once ``folder`` has been synced by a sync begun after this call."""
        await self._ask(Path(folder))

    async def _ask(self, item: int | Path) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._asked.append((item, done))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        await asyncio.shield(done)

    async def _drain(self) -> None:
        """Sync what was asked, batch after batch, until nobody waits."""
        try:
            while self._asked:
                batch, self._asked = self._asked, []
                try:
                    errors = await asyncio.to_thread(
                        _sync_batch, [item for item, _ in batch], self._sync_folder
                    )
                except asyncio.CancelledError:
                    for _, done in batch:
                        done.cancel()
                    raise
                self.batches += 1
                for (_, done), error in zip(batch, errors, strict=True):
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
                        done.exception()  # its caller raises it; a cancelled one is gone
        finally:
            self._drainer = None
            for item, done in self._asked:  # cancelled before their batch went
                if isinstance(item, int):
                    os.close(item)
                done.cancel()
            self._asked = []
