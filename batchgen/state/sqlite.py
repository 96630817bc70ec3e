"""What every part of the SQLite store shares: the connection, the clock, transactions, and
the rule that ``sqlite3`` exceptions never leave the store (they become :class:`StateError`).

The store (:class:`batchgen.state.store.StateStore`) is built from parts that each own one
concern (transitions, queries, run records, origins); they all derive from :class:`SqliteBase`.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from batchgen.errors import DiskFullError, StateError
from batchgen.state.job_columns import iso

__all__ = ["SqliteBase", "describe", "translating"]

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
    DiskFullError (exit 7) when the disk is full."""

    @functools.wraps(method)
    def wrapper(self: B, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise DiskFullError(
                    f"the disk holding {self.path.parent} is full: the state could not be "
                    "saved. Free some space there and run the same command again",
                    path=self.path.parent,
                ) from exc
            raise StateError(describe(self.path, exc)) from exc

    return wrapper


class SqliteBase:
    """One state file's connection (autocommit: ``isolation_level=None``) and clock."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, clock: Callable[[], dt.datetime]
    ) -> None:
        self.path = path
        self._conn = conn
        self._clock = clock

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
