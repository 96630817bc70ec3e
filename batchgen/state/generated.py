"""The per-user record of what was generated, across every manifest's state.

One SQLite file, ``generated.sqlite`` in :func:`batchgen.paths.user_state_dir` beside the
registry, with one line per generated request: its identity (``manifest.values.request_key``:
prompt, mode, ratio, images and any later request field, normalised), the state it was made
in, the manifest that state belongs to, the row's key and row number, the task id and when it
was made. A state alone only knows its own rows; this record is what lets a copy of a
manifest (``briefs (1).csv``), a rename (``briefs-final.csv``), a hard link or a file of the
same content be recognised before it pays for rows made under another path.

It is derived data: every run writes its state's generated rows into it before sending
anything and at its end, and each task the moment its id is committed, so a deleted or damaged
record is rebuilt as manifests run again (a damaged file is set aside as ``.damaged``). It
holds no token and no prompt text: request identities are hashes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from batchgen.models import JobStatus
from batchgen.paths import user_state_dir

__all__ = ["GENERATED", "RECORD_FILE", "Generation", "GenerationRecord", "still_generated"]

RECORD_FILE = "generated.sqlite"

log = logging.getLogger("batchgen")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generated (
    request TEXT NOT NULL, state TEXT NOT NULL, manifest TEXT NOT NULL, key TEXT NOT NULL,
    row INTEGER NOT NULL, task_id TEXT, at TEXT,
    PRIMARY KEY (request, state, key));
CREATE INDEX IF NOT EXISTS generated_by_state ON generated (state);
CREATE TABLE IF NOT EXISTS synced (state TEXT PRIMARY KEY, through TEXT NOT NULL);
"""
_UPSERT = (
    "INSERT INTO generated (request, state, manifest, key, row, task_id, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request, state, key) DO UPDATE SET "
    "manifest = excluded.manifest, row = excluded.row, "
    "task_id = coalesce(excluded.task_id, task_id), at = coalesce(excluded.at, at)"
)
_CHUNK = 500  # identities per lookup (SQLite's limit on parameters is far above)


@dataclass(frozen=True, slots=True)
class Generation:
    """One generated request: where (state file, manifest path: resolved, as text), which row
    (key, row number as Excel shows it), and its task id and time (UTC) when known."""

    request: str
    state: str
    manifest: str
    key: str
    row: int
    task_id: str | None = None
    at: dt.datetime | None = None


class GenerationRecord:
    """The record in ``directory`` (default: per-user); :meth:`close` when done. No method
    raises: a record that cannot be opened or read is treated as empty, with one warning, as
    it only adds a guard on top of each state's own."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or user_state_dir()
        self.path = self.directory / RECORD_FILE
        self._warned = False
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection | None]:
        """The connection inside one committed transaction; None when the record is unusable."""
        try:
            if self._conn is None:
                self._conn = self._open()
        except (OSError, sqlite3.Error) as exc:
            self._unusable(exc)
            yield None
            return
        try:
            with self._conn:
                yield self._conn
        except sqlite3.Error as exc:
            self._unusable(exc)

    def _open(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink():
            raise OSError(f"{self.path} is a symbolic link; batchgen does not write through it")
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # derived data, rebuilt from the states: no fsync per commit
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                self._set_aside()
                return self._open()
            raise
        return conn

    def _set_aside(self) -> None:
        damaged = self.path.with_name(self.path.name + ".damaged")
        log.warning("%s is damaged: set aside as %s; it is rebuilt as runs go", self.path, damaged)
        self.path.replace(damaged)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _unusable(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "the record of generated requests (%s) cannot be used (%s): copies of a "
                "manifest are only checked against its own state this run",
                self.path,
                exc,
            )

    def add(self, generations: Iterable[Generation]) -> None:
        """Record ``generations`` (a known task id or time is never replaced by None)."""
        rows = [
            (g.request, g.state, g.manifest, g.key, g.row, g.task_id, _iso(g.at))
            for g in generations
        ]
        if not rows:
            return
        with self._connect() as conn:
            if conn is not None:
                conn.executemany(_UPSERT, rows)

    def find(self, requests: Collection[str], *, other_than: str | None) -> list[Generation]:
        """Every generation of one of ``requests`` recorded for a state other than
        ``other_than`` (a state file path as text; None: every state)."""
        found: list[Generation] = []
        wanted = list(dict.fromkeys(requests))
        with self._connect() as conn:
            if conn is None:
                return []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = (
                    "SELECT request, state, manifest, key, row, task_id, at FROM generated "
                    f"WHERE request IN ({marks}) AND state IS NOT ? ORDER BY at, row"
                )
                for request, state, manifest, key, row, task_id, at in conn.execute(
                    sql, (*chunk, other_than)
                ):
                    found.append(
                        Generation(request, state, manifest, key, row, task_id, _parse(at))
                    )
        return found

    def synced_through(self, state: str) -> str | None:
        """The ``updated_at`` of the newest row of ``state`` recorded so far (ISO text)."""
        with self._connect() as conn:
            if conn is None:
                return None
            row = conn.execute("SELECT through FROM synced WHERE state = ?", (state,)).fetchone()
        return None if row is None else str(row[0])

    def mark_synced(self, state: str, through: str) -> None:
        """Remember that ``state``'s rows updated up to ``through`` are recorded."""
        with self._connect() as conn:
            if conn is not None:
                conn.execute(
                    "INSERT INTO synced (state, through) VALUES (?, ?) ON CONFLICT (state) "
                    "DO UPDATE SET through = max(through, excluded.through)",
                    (state, through),
                )


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _parse(text: str | None) -> dt.datetime | None:
    try:
        return None if text is None else dt.datetime.fromisoformat(text)
    except ValueError:
        return None


#: The statuses of a row whose task was created or may have been (as ``generated_requests``).
GENERATED = (
    JobStatus.SUBMITTING,
    JobStatus.SUBMITTED,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.DOWNLOADED,
    JobStatus.DOWNLOAD_FAILED,
    JobStatus.UNKNOWN,
)


def still_generated(state: Path, keys: Collection[str]) -> set[str] | None:
    """Which of ``keys`` the state file at ``state`` holds as generated (read-only); None when
    the file is gone or unreadable (then the record is all there is to go by)."""
    if not state.is_file():
        return None
    marks = ",".join("?" * len(GENERATED))
    found: set[str] = set()
    wanted = list(keys)
    try:
        uri = f"{state.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                sql = (
                    f"SELECT key FROM jobs WHERE status IN ({marks}) "
                    f"AND key IN ({','.join('?' * len(chunk))})"
                )
                found.update(r[0] for r in conn.execute(sql, (*GENERATED, *chunk)))
    except sqlite3.Error:
        return None
    return found
