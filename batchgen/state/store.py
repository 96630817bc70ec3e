"""The state store: one SQLite file per manifest, the single source of truth of a run.

Everything the dispatcher learns is committed here before it acts on it, so a process killed
at any instant resumes from the file alone. The rules that make that true:

- WAL journal. Every commit survives the process being killed. Commits that money depends
  on (a submit's intent, its task id, and everything outside the dispatch) use
  ``synchronous=FULL`` and also survive a power cut; the rest (:data:`REDOABLE`: a poll's or
  a download's outcome) use ``NORMAL``, which skips the fsync: a power cut can only lose them
  to the next FULL commit, and losing one costs a repeated poll or download, never credits.
- One writer (the dispatcher, on the event loop). Every transition is one guarded
  ``UPDATE ... WHERE key=? AND status IN (...)`` in autocommit mode, so it is its own committed
  transaction and costs one fsync. Zero rows changed raises :class:`TransitionError`.
- The status machine is the :data:`ALLOWED` table (target -> allowed sources) plus the
  :data:`REQUEUE` edges, which only the bulk ``requeue_*`` helpers take, on the user's word.
  ``invalid`` is set and cleared only by :meth:`StateStore.sync_manifest`.
- The schema is versioned by :data:`MIGRATIONS`; ``PRAGMA user_version`` holds the number applied.
- A run holds an ``flock`` on ``state.lock`` beside the database; the kernel drops it when the
  process dies, even by SIGKILL, so a lock is never stale.
- ``sqlite3`` exceptions never leave this module: they become :class:`StateError`.
- A row's history (the ``attempts`` table) is written in the same transaction as the
  transition it explains (``transition(..., attempt=...)``): one commit, and never one
  without the other.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import os
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from batchgen.errors import (
    DiskFullError,
    LockHeldError,
    StateConflictError,
    StateError,
    TransitionError,
)
from batchgen.models import USD_PER_CREDIT, Job, JobStatus, RunInfo
from batchgen.state.location import STATE_FILE, state_path_for
from batchgen.state.origins import OriginRecords
from batchgen.state.rows import (
    FIELDS,
    RowLike,
    dicts,
    incoming,
    iso,
    job_from,
    parse_ts,
    qmarks,
)
from batchgen.state.schema import (
    ALLOWED,
    ATTEMPT_SQL,
    CHANGED,
    FRESH,
    INTERRUPTED,
    JOB_COLUMNS,
    MIGRATIONS,
    NOW_INVALID,
    REDOABLE,
    REQUEUE,
    SPEND_SQL,
    SYNC_SQL,
    Attempt,
)

__all__ = [
    "ALLOWED",
    "MIGRATIONS",
    "REDOABLE",
    "REQUEUE",
    "STATE_FILE",
    "Attempt",
    "RowLike",
    "Spend",
    "StateStore",
    "SyncReport",
    "state_path_for",
]

S = JobStatus
BUSY_TIMEOUT = 10.0  # seconds; another process opening this state may briefly write (migrate)

_FIRST = (-(2**63), "")  # keyset cursor before every row
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Spend:
    """Credits, by how sure we are they were charged (see the README).

    ``charged``: tasks that finished (the vendor's figure when plausible, never below 40 a
    task), including earlier tasks of requeued rows; ``committed``: tasks created, or being
    created, and not finished (40 each); ``possible``: submits whose outcome is unknown (40
    each, also those of rows since sent again).
    """

    charged: int = 0
    committed: int = 0
    possible: int = 0

    @property
    def total(self) -> int:
        """Everything that may have been charged: what a budget counts."""
        return self.charged + self.committed + self.possible

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.charged + other.charged,
            self.committed + other.committed,
            self.possible + other.possible,
        )

    def fields(self) -> dict[str, int]:
        """The three figures under the names the completion notice uses."""
        return {
            "credits_charged": self.charged,
            "credits_committed": self.committed,
            "credits_possibly_charged": self.possible,
        }

    def describe(self) -> str:
        """``credits charged 80, committed in flight 40, possibly charged 40 (~$1.60 at most)``."""
        usd = self.total * USD_PER_CREDIT
        return (
            f"credits charged {self.charged}, committed in flight {self.committed}, "
            f"possibly charged {self.possible} (~${usd:,.2f} at most)"
        )


@dataclass(slots=True)
class SyncReport:
    """What a manifest sync changed. ``deleted`` counts every state row absent from the manifest."""

    new: int = 0
    updated: int = 0
    deleted: int = 0
    warnings: list[str] = field(default_factory=list)


def _describe(path: Path, exc: sqlite3.Error) -> str:
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


def _translating(
    method: Callable[Concatenate[StateStore, P], R],
) -> Callable[Concatenate[StateStore, P], R]:
    """Turn sqlite3 errors raised by a store method into StateError naming the file."""

    @functools.wraps(method)
    def wrapper(self: StateStore, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise DiskFullError(
                    f"the disk holding {self.path.parent} is full: the state could not be "
                    "saved. Free some space there and run the same command again",
                    path=self.path.parent,
                ) from exc
            raise StateError(_describe(self.path, exc)) from exc

    return wrapper


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script (a trigger's ``;`` stays inside it)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""


class StateStore(OriginRecords):
    """The SQLite state of one manifest. Open with :meth:`open`; use from one thread."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, clock: Callable[[], dt.datetime]
    ) -> None:
        self.path = path
        self._conn = conn
        self._clock = clock
        self._lock_fd: int | None = None

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def open(
        cls,
        path: Path,
        *,
        manifest: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> StateStore:
        """Open (creating and migrating if needed) the state at ``path``.

        ``manifest``, when given, is recorded as the folder's owner (meta ``manifest_path``)
        the first time, which :func:`state_path_for` consults. ``clock`` returns aware
        datetimes; tests and simulated runs inject one.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state file {path}: {exc}") from exc
        store = cls(path, conn, clock or (lambda: dt.datetime.now(dt.UTC)))
        try:
            store._setup(manifest)
        except BaseException:
            store.close()
            raise
        return store

    @_translating
    def _setup(self, manifest: Path | None) -> None:
        for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute("PRAGMA temp_store = MEMORY")  # the sync's scratch table
        self._migrate()
        if manifest is not None and self.get_meta("manifest_path") is None:
            self.set_meta("manifest_path", str(Path(manifest).resolve()))

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self._version()
        if version > len(MIGRATIONS):
            raise StateError(
                f"{self.path} was made by a newer batchgen (schema {version}; this one knows "
                f"up to {len(MIGRATIONS)}). Upgrade batchgen to continue this manifest."
            )
        if version == 0 and self._conn.execute("SELECT 1 FROM sqlite_master").fetchone():
            raise StateError(
                f"{self.path} is an SQLite file but not a batchgen state file; "
                "choose another --out folder or move the file aside."
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # re-read inside the write lock: another process may have just migrated
            with self._transaction() as c:
                if self._version() < number:
                    for statement in _statements(script):
                        c.execute(statement)
                    c.execute(f"PRAGMA user_version = {number}")

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

    def close(self) -> None:
        """Release the run lock (if held) and close the database. Safe to call twice."""
        self.release_lock()
        self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _now(self) -> str:
        return iso(self._clock())

    # ---------------------------------------------------------------- run lock
    @property
    def lock_path(self) -> Path:
        """The lock file beside the database (``state.lock``)."""
        return self.path.with_suffix(".lock")

    def acquire_lock(self) -> None:
        """Take the run lock or raise LockHeldError naming the holder's pid."""
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"cannot create the lock file {self.lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            label = self.get_meta("manifest_path") or str(self.path.parent)
            if holder == str(os.getpid()):
                raise LockHeldError(
                    f"{label} is being run by this same batchgen process: its output folder "
                    f"{self.path.parent} is shared by two manifests of this run; give them "
                    "different names or --out folders"
                ) from None
            raise LockHeldError(
                f"{label} is being run by another batchgen process (pid {holder}); "
                "wait for it to finish, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def release_lock(self) -> None:
        """Give the run lock back; the file stays (deleting it would race a new holder)."""
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    # ---------------------------------------------------------------- metadata
    @_translating
    def set_meta(self, key: str, value: str) -> None:
        """Store one metadata value (committed)."""
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @_translating
    def get_meta(self, key: str) -> str | None:
        """One metadata value, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def columns(self) -> list[str]:
        """The manifest's header as of the last sync."""
        return list(json.loads(self.get_meta("columns") or "[]"))

    # ---------------------------------------------------------------- manifest sync
    @_translating
    def sync_manifest(self, columns: list[str], rows: Iterable[RowLike]) -> SyncReport:
        """Bring the state in line with the manifest, in one transaction (see module docs)."""
        now, report = self._now(), SyncReport()
        self._conn.execute(SYNC_SQL["temp"])
        with self._transaction() as c:
            c.execute("DELETE FROM incoming")
            c.executemany("INSERT INTO incoming VALUES (?,?,?,?,?,?,?,?,?,?)", incoming(rows))
            report.warnings = [self._sync_warning(*r) for r in c.execute(SYNC_SQL["warnings"])]
            report.updated = c.execute(SYNC_SQL["refresh"], (now,)).rowcount
            report.updated += c.execute(SYNC_SQL["relabel"], (now,)).rowcount
            c.execute(SYNC_SQL["gone"], (now,))
            report.new = c.execute(SYNC_SQL["insert"], (now,)).rowcount
            sql = "SELECT count(*) FROM jobs WHERE in_manifest = 0"
            report.deleted = c.execute(sql).fetchone()[0]
            self.set_meta("columns", json.dumps(columns, ensure_ascii=False))
            c.execute("DELETE FROM incoming")
        return report

    @staticmethod
    def _sync_warning(row: int, key: str, status: str, why: str | None) -> str:
        key = key.removeprefix("id:")  # "row 2 (id spring-01)", as the user typed the id
        if status == S.INVALID:
            return NOW_INVALID.format(row=row, key=key, why=why)
        return CHANGED.format(row=row, key=key)

    # ---------------------------------------------------------------- transitions
    @_translating
    def transition(
        self,
        key: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        attempt: Attempt | None = None,
        **fields: Any,
    ) -> None:
        """Move one row to ``to`` and set ``fields``, committed; TransitionError if refused.

        ``attempt`` is appended to the row's history in the same transaction (one commit).

        ``expect`` narrows the allowed sources (it may not widen them). Automatic: to
        SUBMITTING adds one to ``attempts`` and back to PENDING (the POST created nothing)
        takes it away again, so ``attempts`` counts the submits that created, or may have
        created, a task: the ones a retry limit should count. To SUBMITTED sets
        ``submitted_at`` to now; to COMPLETED/FAILED/REJECTED sets ``completed_at`` to now
        unless it is already set.
        Nothing is cleared unless the caller passes the field (e.g. ``error_kind=None``).
        """
        to = JobStatus(to)
        sources = self._sources(to, expect)
        unknown = sorted(fields.keys() - FIELDS.keys())
        if unknown:
            raise TypeError(f"transition() got unknown fields: {', '.join(unknown)}")
        now = self._now()
        values = {"status": to.value, "updated_at": now}
        values |= {name: FIELDS[name](value) for name, value in fields.items()}
        sets = [f"{name} = ?" for name in values]
        params: list[Any] = list(values.values())
        if to is S.SUBMITTING:
            sets.append("attempts = attempts + 1")
        if to is S.PENDING:
            sets.append("attempts = max(attempts - 1, 0)")
        if to is S.SUBMITTED and "submitted_at" not in fields:
            sets.append("submitted_at = ?")
            params.append(now)
        if to in (S.COMPLETED, S.FAILED, S.REJECTED) and "completed_at" not in fields:
            sets.append("completed_at = COALESCE(completed_at, ?)")  # a re-download keeps it
            params.append(now)
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE key = ? AND status IN "
        sql += f"({qmarks(len(sources))})"
        with self._durability(full=to not in REDOABLE):
            if attempt is None:
                changed = self._conn.execute(sql, [*params, key, *sources]).rowcount
            else:
                with self._transaction() as c:
                    changed = c.execute(sql, [*params, key, *sources]).rowcount
                    if changed:
                        c.execute(ATTEMPT_SQL, (key, now, *attempt.cleaned()))
        if changed == 0:
            raise TransitionError(self._refusal(key, to, sources))

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

    @staticmethod
    def _sources(to: JobStatus, expect: Collection[JobStatus] | None) -> list[str]:
        allowed = ALLOWED[to]
        if expect is None:
            return sorted(allowed)
        wanted = {JobStatus(s) for s in expect}
        if not wanted <= allowed:
            bad = ", ".join(sorted(wanted - allowed))
            raise ValueError(f"{to} may not follow {bad}; see batchgen.state.store.ALLOWED")
        return sorted(wanted)

    def _refusal(self, key: str, to: JobStatus, sources: list[str]) -> str:
        found = self._conn.execute("SELECT status FROM jobs WHERE key = ?", (key,)).fetchone()
        if found is None:
            return f"cannot move row {key!r} to {to}: there is no such row in {self.path}"
        allowed = ", ".join(sources) or "nothing (only a manifest sync sets it)"
        return f"cannot move row {key!r} to {to}: it is {found[0]}; {to} may follow {allowed}"

    # ---------------------------------------------------------------- start-of-run recovery
    @_translating
    def recover_interrupted(self) -> int:
        """SUBMITTING rows (their process died mid-POST) become UNKNOWN; returns how many."""
        assert S.SUBMITTING in ALLOWED[S.UNKNOWN]
        now = self._now()
        with self._transaction() as c:
            c.execute(
                "INSERT INTO attempts (key, at, kind, outcome, message, task_id) SELECT key, ?, "
                "'submit', 'interrupted', ?, NULL FROM jobs WHERE status = 'submitting'",
                (now, INTERRUPTED),
            )
            moved = c.execute(
                "UPDATE jobs SET status = 'unknown', error_kind = 'ambiguous', "
                "error_message = ?, updated_at = ? WHERE status = 'submitting'",
                (INTERRUPTED, now),
            ).rowcount
        return int(moved)

    @_translating
    def requeue_unknown(self) -> int:
        """UNKNOWN and LOST -> PENDING (``--resubmit-unknown``: the user accepts paying twice)."""
        with self._transaction():
            return self._requeue(S.UNKNOWN, "") + self._requeue(S.LOST, "")

    @_translating
    def requeue_failed(self, *, include_permanent: bool, max_attempts: int) -> int:
        """Transient failures with attempts left -> PENDING; with ``include_permanent``
        (``--retry-failed``) every other FAILED and REJECTED row too, attempts reset to 0."""
        transient = "AND error_kind = 'transient' AND attempts < ?"
        with self._transaction():
            moved = self._requeue(S.FAILED, transient, max_attempts)
            if include_permanent:
                moved += self._requeue(S.FAILED, "", fresh=", attempts = 0")
                moved += self._requeue(S.REJECTED, "", fresh=", attempts = 0")
        return moved

    @_translating
    def retry_transient(self, key: str, max_attempts: int) -> bool:
        """This row, if FAILED transiently with attempts left, -> PENDING (an in-run retry)."""
        where = "AND error_kind = 'transient' AND attempts < ? AND key = ?"
        return self._requeue(S.FAILED, where, max_attempts, key) == 1

    def _requeue(self, source: JobStatus, where: str, *args: Any, fresh: str = "") -> int:
        """Bulk REQUEUE edge; rows deleted from the manifest are left alone (they would cost)."""
        assert source in REQUEUE[S.PENDING]
        sql = f"UPDATE jobs SET {FRESH}{fresh} WHERE status = ? AND in_manifest = 1 {where}"
        return int(self._conn.execute(sql, (self._now(), source.value, *args)).rowcount)

    @_translating
    def requeue_downloads(self) -> int:
        """DOWNLOAD_FAILED -> COMPLETED: the URLs are kept, so the next run only downloads."""
        assert S.DOWNLOAD_FAILED in ALLOWED[S.COMPLETED]
        sql = "UPDATE jobs SET status = 'completed', updated_at = ? WHERE status = ?"
        return int(self._conn.execute(sql, (self._now(), S.DOWNLOAD_FAILED.value)).rowcount)

    # ---------------------------------------------------------------- queries
    @_translating
    def get(self, key: str) -> Job:
        """The row with this key; StateError if there is none."""
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?"
        found = self._conn.execute(sql, (key,)).fetchone()
        if found is None:
            raise StateError(f"{self.path}: no row with key {key!r}")
        return job_from(found)

    def iter_jobs(
        self,
        statuses: Collection[JobStatus] | None = None,
        *,
        in_manifest_only: bool = False,
        batch: int = 1000,
    ) -> Iterator[Job]:
        """Rows in the manifest by row number, then deleted rows by row; ``batch`` at a time."""
        where, params = "", []
        if statuses is not None:
            params = sorted({JobStatus(s).value for s in statuses})
            # unary + keeps the planner on the (in_manifest, row) index that the pages follow
            where = f"AND +status IN ({qmarks(len(params))})"
        for flag in (1,) if in_manifest_only else (1, 0):
            cursor = _FIRST
            while page := self._page(where, [flag, *params, *cursor, batch]):
                yield from map(job_from, page)
                cursor = (page[-1][1], page[-1][0])

    @_translating
    def _page(self, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE in_manifest = ? {where} "
            "AND (row_num, key) > (?, ?) ORDER BY row_num, key LIMIT ?"
        )
        return self._conn.execute(sql, params).fetchall()

    @_translating
    def next_pending(self, limit: int, *, after_row: int = 0) -> list[Job]:
        """Up to ``limit`` in-manifest PENDING rows with row > ``after_row``, by row."""
        # +in_manifest: walk the (status, row) index; on a resumed run most rows are done
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND +in_manifest = 1 "
            "AND row_num > ? ORDER BY row_num, key LIMIT ?"
        )
        return [job_from(r) for r in self._conn.execute(sql, (after_row, limit))]

    @_translating
    def counts(self, *, in_manifest_only: bool = False) -> dict[JobStatus, int]:
        """Rows per status; every status is present, zero when empty."""
        where = "WHERE in_manifest = 1" if in_manifest_only else ""
        sql = f"SELECT status, count(*) FROM jobs {where} GROUP BY status"
        result = dict.fromkeys(JobStatus, 0)
        result.update({JobStatus(s): n for s, n in self._conn.execute(sql)})
        return result

    @_translating
    def fingerprint(self) -> str:
        """Changes whenever any row or the manifest's columns change (cheap: one scan)."""
        count, latest = self._conn.execute("SELECT COUNT(*), MAX(updated_at) FROM jobs").fetchone()
        return f"{count}|{latest}|{self.get_meta('columns')}"

    @_translating
    def spend(self) -> Spend:
        """Credits charged / committed to tasks in flight / possibly charged (unknown)."""
        charged, committed, possible = self._conn.execute(SPEND_SQL).fetchone()
        return Spend(int(charged), int(committed), int(possible))

    def credits_consumed(self) -> int:
        """Credits charged for every task this state ever finished, requeued ones included
        (never below 40 a task)."""
        return self.spend().charged

    @_translating
    def bind_base_url(self, base_url: str, *, rebind: bool = False) -> None:
        """Record the API base URL this state's tasks belong to; refuse another one.

        Raises StateConflictError (exit 2) when the state has sent a submit to another URL,
        unless ``rebind`` (``--rebind-base-url``) moves it to ``base_url``. A state that never
        sent a submit anywhere (say, its first run had a mistyped URL and could not connect)
        holds no task id to lose, so it simply moves to ``base_url``.
        """
        known = self.get_meta("base_url")
        if known is None or known == base_url or rebind or not self._ever_submitted():
            self.set_meta("base_url", base_url)
            return
        raise StateConflictError(
            f"{self.path} was made against the API at {known}; this run would use {base_url}, "
            "where its task ids mean nothing. Use --base-url " + known + ", or "
            "--rebind-base-url if this is the same service at a new address"
        )

    def _ever_submitted(self) -> bool:
        """Whether any row of this state ever had a submit that may have reached an API."""
        sql = (
            "SELECT 1 FROM jobs WHERE task_id IS NOT NULL OR submitted_at IS NOT NULL "
            "OR status IN (?, ?) OR earlier_credits > 0 OR earlier_possible > 0 LIMIT 1"
        )
        found = self._conn.execute(sql, (S.SUBMITTING.value, S.UNKNOWN.value)).fetchone()
        return found is not None

    @_translating
    def latency_samples(self, limit: int = 2000) -> list[float]:
        """Seconds from submission to completion of finished tasks, most recent first."""
        sql = (
            "SELECT submitted_at, completed_at FROM jobs WHERE status IN (?, ?) "
            "AND submitted_at IS NOT NULL AND completed_at IS NOT NULL "
            "ORDER BY completed_at DESC LIMIT ?"
        )
        rows = self._conn.execute(sql, (S.COMPLETED.value, S.DOWNLOADED.value, limit))
        spans = (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a) for a, b in rows)
        return [s.total_seconds() for s in spans if s >= dt.timedelta(0)]

    @_translating
    def done_keys(self) -> set[str]:
        """Keys of rows whose videos are all on disk."""
        sql = "SELECT key FROM jobs WHERE status = ?"
        return {r[0] for r in self._conn.execute(sql, (S.DOWNLOADED.value,))}

    @_translating
    def generated_requests(self) -> list[tuple[str, int, str, str, str, tuple[str, ...]]]:
        """``(key, row, prompt, mode, ratio, images)`` of every row whose task was created or
        may have been (submitted and after, ``unknown``): read-only, for the check that a
        row about to be sent is not one already paid for under another key."""
        sql = (
            "SELECT key, row_num, prompt, mode, ratio, images FROM jobs WHERE status IN "
            "('submitted', 'running', 'completed', 'downloaded', 'download_failed', 'unknown')"
        )
        return [
            (k, r, p, m, a, tuple(json.loads(i))) for k, r, p, m, a, i in self._conn.execute(sql)
        ]

    @_translating
    def attempts(self, key: str | None = None) -> list[dict[str, Any]]:
        """Attempt history (of one row, or all), oldest first; ``at`` is a datetime."""
        sql = "SELECT id, key, at, kind, outcome, message, task_id FROM attempts"
        one = key is not None
        rows = self._conn.execute(
            sql + (" WHERE key = ?" if one else "") + " ORDER BY id", (key,) if one else ()
        )
        return [a | {"at": parse_ts(a["at"])} for a in dicts(rows)]

    # ---------------------------------------------------------------- runs
    @_translating
    def start_run(self, *, command: str, version: str) -> int:
        """Record the start of a run; returns its id."""
        sql = "INSERT INTO runs (started_at, command, version) VALUES (?, ?, ?)"
        run_id = self._conn.execute(sql, (self._now(), command, version)).lastrowid
        assert run_id is not None
        return run_id

    @_translating
    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        exit_code: int,
        requests: int,
        rate_limited: int,
        credits: int,
    ) -> None:
        """Record how a run ended."""
        sql = (
            "UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, requests = ?, "
            "rate_limited = ?, credits = ? WHERE run_id = ?"
        )
        params = (self._now(), outcome, exit_code, requests, rate_limited, credits, run_id)
        if self._conn.execute(sql, params).rowcount == 0:
            raise StateError(f"{self.path}: no run {run_id}")

    @_translating
    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        rows = dicts(self._conn.execute("SELECT * FROM runs ORDER BY run_id"))
        return [
            RunInfo(**r | {n: parse_ts(r[n]) for n in ("started_at", "ended_at")}) for r in rows
        ]

    def last_run(self) -> RunInfo | None:
        """The most recent run, or None."""
        runs = self.runs()
        return runs[-1] if runs else None

    def integrity_ok(self) -> bool:
        """True when ``PRAGMA integrity_check`` finds nothing wrong."""
        try:
            return self._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        except sqlite3.Error:
            return False
