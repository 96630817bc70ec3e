"""What every part of the SQLite store shares: the connection, the clock, transactions, and
the rule that ``sqlite3`` exceptions never leave the store (they become :class:`StateError`).

The store (:class:`batchgen.state.store.StateStore`) is built from parts that each own one
concern (transitions, queries, run records, origins); they all derive from :class:`SqliteBase`.

A busy state waits, it does not die: while another program holds a write lock on the file
(a SQLite viewer with an unsaved edit, a backup tool), a store given a
:class:`~batchgen.state.protocol.BusyWait` retries the call, says so once, and gives up
only when the wait's bound (the run's deadline) has passed, with
:class:`~batchgen.errors.StateBusyError`. Retrying a whole call is safe: a busy statement
changed nothing (a write transaction takes its lock at ``BEGIN IMMEDIATE``, and a failing
one is rolled back). While it waits, the process is blocked in SQLite, so a signal is acted
on when the wait ends.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, NoReturn, ParamSpec, TypeVar

from batchgen.errors import DiskFullError, StateBusyError, StateError
from batchgen.state.job_columns import iso
from batchgen.state.protocol import BusyWait

__all__ = ["BUSY_TIMEOUT", "SqliteBase", "describe", "translating"]

BUSY_TIMEOUT = 10.0  # seconds; another process opening this state may briefly write (migrate)
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound="SqliteBase")


def describe(path: Path, exc: sqlite3.Error) -> str:
    """A message that names the file and says what to do."""
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
        return (
            f"{path} is damaged or is not a batchgen state file ({text}). Restore it from a "
            "backup, or move it aside to start this manifest afresh (rows already submitted "
            "would then be submitted, and paid for, again)."
        )
    if "locked" in text or "busy" in text:
        return f"{path} is busy ({text}); another process is writing to it. Try again shortly."
    return f"{path}: {text}"


def translating(method: Callable[Concatenate[B, P], R]) -> Callable[Concatenate[B, P], R]:
    """Turn sqlite3 errors raised by a store method into StateError naming the file, or
    DiskFullError (exit 7) when the disk is full; with a :class:`BusyWait`, a busy file is
    waited for (the call is made again) until its bound, then StateBusyError."""

    @functools.wraps(method)
    def wrapper(self: B, *args: P.args, **kwargs: P.kwargs) -> R:
        waited: float | None = None
        while True:
            try:
                result = method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                if not _busy(exc) or self._busy is None:
                    _translate(self, exc)
                waited = self._still_busy(exc, waited)
                continue
            if waited is not None:
                self._free_again(waited)
            return result

    return wrapper


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF in _BUSY_CODES) or "database is locked" in str(exc)


def _translate(self: SqliteBase, exc: sqlite3.Error) -> NoReturn:
    """Raise ``exc`` as DiskFullError or StateError."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        raise DiskFullError(
            f"the disk holding {self.path.parent} is full: the state could not be "
            "saved. Free some space there and run the same command again",
            path=self.path.parent,
        ) from exc
    raise StateError(describe(self.path, exc)) from exc


class SqliteBase:
    """One state file's connection (autocommit: ``isolation_level=None``) and clock."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, clock: Callable[[], dt.datetime]
    ) -> None:
        self.path = path
        self._conn = conn
        self._clock = clock
        self._busy: BusyWait | None = None

    def wait_while_busy(self, busy: BusyWait | None) -> None:
        """Wait (see :class:`BusyWait`) rather than fail while another program holds a write
        lock on the file; None: fail after ``BUSY_TIMEOUT`` with StateError, as by default."""
        self._busy = busy
        self._set_timeout(busy.per_try if busy is not None else BUSY_TIMEOUT)

    def _set_timeout(self, seconds: float) -> None:
        self._conn.execute(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")

    def _still_busy(self, exc: sqlite3.Error, waited: float | None) -> float:
        """After a busy answer: when the wait began; StateBusyError once its bound passed."""
        busy = self._busy
        assert busy is not None
        now = time.monotonic()
        left = busy.time_left()
        if left <= 0:
            self._set_timeout(0.001)  # given up: the calls that follow fail at once
            error = StateBusyError(
                f"{self.path} stayed busy: another program holds a write lock on it (a SQLite "
                "viewer with unsaved changes?) and the run could wait no longer; close that "
                "program (or save its changes) and run again: nothing is lost"
            )
            if busy.gave_up is not None:
                busy.gave_up(error)
            raise error from exc
        if waited is None:
            busy.notice(
                f"{self.path} is busy: another program holds a write lock on it (a SQLite "
                f"viewer with unsaved changes?); waiting for it, at most {left:.0f} s (the "
                "run's deadline). Close that program, or save or undo its changes"
            )
            waited = now - busy.per_try
        self._set_timeout(min(busy.per_try, left))
        return waited

    def _free_again(self, since: float) -> None:
        assert self._busy is not None
        self._set_timeout(self._busy.per_try)
        self._busy.notice(
            f"{self.path} is free again after {time.monotonic() - since:.0f} s; continuing"
        )

    def _now(self) -> str:
        return iso(self._clock())

    @translating
    def set_meta(self, key: str, value: str) -> None:
        """Store one metadata value (committed)."""
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @translating
    def get_meta(self, key: str) -> str | None:
        """One metadata value, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A multi-statement write transaction; single statements autocommit instead."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _durability(self, *, full: bool) -> Iterator[None]:
        """Commit without an fsync inside (``full=False``); FULL is restored after."""
        if full:
            yield
            return
        self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA synchronous = FULL")
