"""The shared window of one host: a small SQLite file in the per-user state directory.

``window-<digest>.sqlite`` in ``batchgen.paths.user_state_dir()``, where the digest is
``paths.digest(base_url, token)``: every process of the user that talks to the same API with the
same token opens the same file, and the file's name reveals neither. Why SQLite rather than a
lock file and a hand-made format: its write transaction (``BEGIN IMMEDIATE``) is the cross-
process lock, crash-safe, and the rule of ``batchgen.engine.pacing.window`` is a handful of SQL
statements. The file is scratch: WAL mode, ``synchronous=OFF`` (a power cut can only lose the
last second of counts, which the window forgets within a minute anyway). Times in it are the
host's wall clock (``time.time()``), which every process of the host shares; rows dated
implausibly in the future (the clock was set back) are dropped.

Being scratch, the file rebuilds itself: one that SQLite finds damaged (not a database, a
failed ``quick_check`` on opening, "database disk image is malformed" later) is set aside as
``window-<digest>.sqlite.damaged`` (its ``-wal`` and ``-shm`` removed) and made again, with a
warning; the cost is at most one window of counts. Only another kind of failure (a full disk,
a folder that cannot be written) stops the run, as a one-line ``UsageError``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from batchgen.engine.pacing.window import KEEP, STALE, SharedWindow, Verdict, WindowRequest
from batchgen.errors import UsageError

__all__ = ["LocalWindow", "is_damage", "local_window_path"]

log = logging.getLogger(__name__)

#: SQLite's primary result codes that mean "this file is damaged": SQLITE_CORRUPT, SQLITE_NOTADB.
_DAMAGE_CODES = frozenset({11, 26})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    owner TEXT PRIMARY KEY,
    seen REAL NOT NULL,                 -- store time of its last exchange
    in_flight INTEGER NOT NULL DEFAULT 0,
    head REAL                           -- store-time deadline of its waiting request, or NULL
);
CREATE TABLE IF NOT EXISTS answered (at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS answered_at ON answered (at);
"""
_JOIN = (
    "INSERT INTO members (owner, seen) VALUES (?, ?) "
    "ON CONFLICT (owner) DO UPDATE SET seen = excluded.seen, in_flight = max(0, in_flight - ?)"
)
_AHEAD = (
    "SELECT count(*) FROM members WHERE owner != ? AND seen > ? AND head IS NOT NULL "
    "AND (head < ? OR (head = ? AND owner < ?))"
)


class _Damaged(Exception):
    """The window file failed SQLite's ``quick_check``."""


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database file is damaged (rather than busy, full, read-only)."""
    if isinstance(exc, _Damaged):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE_CODES
    )


def local_window_path(folder: Path, digest: str) -> Path:
    """Where the window of the API and token named by ``digest`` lives."""
    return folder / f"window-{digest}.sqlite"


class LocalWindow(SharedWindow):
    """``SharedWindow`` in a SQLite file (see the module docstring).

    ``clock``: the local clock offsets are measured on; ``store_clock``: the store's time base
    (the wall clock; tests inject both).
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float],
        store_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self.path = path
        self._now = store_clock
        self._purged = 0.0
        self._inode: int | None = None  # of the file opened, so only that one is set aside
        try:
            self._db = self._open()
        except (sqlite3.Error, _Damaged) as exc:
            if not is_damage(exc):
                raise UsageError(f"cannot open the shared rate-limit window {path}: {exc}") from exc
            self._db = self._rebuild(exc)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        with contextlib.suppress(OSError):
            self._inode = self.path.stat().st_ino
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise _Damaged(str(verdict))
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, exc: BaseException) -> sqlite3.Connection:
        """Set the damaged file aside, open a new one (UsageError if that fails too)."""
        aside = self.path.with_name(self.path.name + ".damaged")
        try:
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                os.replace(self.path, aside)  # not if another process did it first
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    self.path.with_name(self.path.name + suffix).unlink()
            db = self._open()
        except (OSError, sqlite3.Error, _Damaged) as again:
            raise UsageError(
                f"the shared rate-limit window {self.path} is damaged ({exc}) and cannot be "
                f"made again ({again}); delete it: it is scratch"
            ) from again
        log.warning(
            "the shared rate-limit window %s was damaged (%s): set aside as %s and started "
            "afresh (it holds only the last minute of requests)",
            self.path,
            exc,
            aside.name,
        )
        return db

    async def _exchange(self, request: WindowRequest) -> Verdict:
        try:
            return self._transaction(request)
        except sqlite3.Error as exc:
            if not is_damage(exc):
                raise UsageError(f"the shared rate-limit window {self.path} failed: {exc}") from exc
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = self._rebuild(exc)
        try:
            return self._transaction(request)
        except sqlite3.Error as exc:
            raise UsageError(f"the shared rate-limit window {self.path} failed: {exc}") from exc

    def _transaction(self, r: WindowRequest) -> Verdict:
        db, now, owner = self._db, self._now(), self.owner
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_JOIN, (owner, now, len(r.answered) + r.returned))
            if r.answered:
                db.executemany(
                    "INSERT INTO answered (at) VALUES (?)", [(now - a,) for a in r.answered]
                )
            if now - self._purged > 1.0:
                self._purge(now, max(r.window, KEEP))
            used = self._used(now, r.window)
            sharers = db.execute(
                "SELECT count(*) FROM members WHERE owner != ? AND seen > ?", (owner, now - STALE)
            ).fetchone()[0]
            granted = 0
            if r.want is not None:
                granted = self._decide(now, r, used)
            retry_in = self._retry_in(now, r.window) if not granted else 0.0
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return Verdict(granted, used, int(sharers), retry_in)

    def _purge(self, now: float, keep: float) -> None:
        self._purged = now
        db = self._db
        db.execute("DELETE FROM answered WHERE at <= ? OR at > ?", (now - keep, now + keep))
        db.execute("DELETE FROM members WHERE seen <= ? OR seen > ?", (now - keep, now + keep))

    def _used(self, now: float, window: float) -> int:
        (answered,) = self._db.execute(
            "SELECT count(*) FROM answered WHERE at > ?", (now - window,)
        ).fetchone()
        (flying,) = self._db.execute(
            "SELECT coalesce(sum(in_flight), 0) FROM members WHERE seen > ?", (now - window,)
        ).fetchone()
        return int(answered) + int(flying)

    def _decide(self, now: float, r: WindowRequest, used: int) -> int:
        assert r.want is not None
        db, owner, head = self._db, self.owner, now + r.want
        (ahead,) = db.execute(_AHEAD, (owner, now - STALE, head, head, owner)).fetchone()
        granted = max(0, min(r.count, r.usable - used - int(ahead)))
        if granted:
            after = None if r.after is None else now + r.after
            db.execute(
                "UPDATE members SET in_flight = in_flight + ?, head = ? WHERE owner = ?",
                (granted, after, owner),
            )
        else:
            db.execute("UPDATE members SET head = ? WHERE owner = ?", (head, owner))
        return granted

    def _retry_in(self, now: float, window: float) -> float:
        (oldest,) = self._db.execute(
            "SELECT min(at) FROM answered WHERE at > ?", (now - window,)
        ).fetchone()
        return 0.0 if oldest is None else max(0.0, oldest + window - now)

    async def _leave(self) -> None:
        self._db.execute("DELETE FROM members WHERE owner = ?", (self.owner,))

    async def close(self) -> None:
        """Leave the store and close the file."""
        await super().close()
        self._db.close()
