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
  transaction and costs one fsync (:mod:`batchgen.state.transitions`).
- The status machine is the :data:`ALLOWED` table (target -> allowed sources) plus the
  :data:`REQUEUE` edges, which only the bulk ``requeue_*`` helpers take, on the user's word.
  ``invalid`` is set and cleared only by :meth:`StateStore.sync_manifest`, and set by
  ``hold`` for a pending row whose picture failed its check before anything was sent.
- The schema is versioned by :data:`MIGRATIONS`; ``PRAGMA user_version`` holds the number applied.
- A run holds an ``flock`` on ``state.lock`` beside the database (:mod:`batchgen.state.lock`).
- ``sqlite3`` exceptions never leave the store: they become :class:`StateError`
  (:mod:`batchgen.state.sqlite`).
- A Job's fields are stored by name, one column each, derived from the dataclass declaration
  (:mod:`batchgen.state.job_columns`).

The store is assembled from parts that each own one concern: :class:`Transitions`,
:class:`Queries`, :class:`RunRecords` and :class:`OriginRecords`; this module opens, migrates,
locks and syncs with the manifest.
- A row's history (the ``attempts`` table) is written in the same transaction as the
  transition it explains (``transition(..., attempt=...)``): one commit, and never one
  without the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from batchgen.errors import StateConflictError, StateError
from batchgen.models import JobSpec, JobStatus, request_changes
from batchgen.state.job_columns import load_spec, spec_columns, spec_from
from batchgen.state.location import STATE_FILE, manifest_identity, state_path_for
from batchgen.state.lock import RunLock
from batchgen.state.origins import OriginRecords
from batchgen.state.protocol import BusyWait, ManifestStore
from batchgen.state.queries import Queries
from batchgen.state.rows import RowLike, SyncReport, incoming
from batchgen.state.runs import RunRecords
from batchgen.state.schema import (
    ALLOWED,
    EVER_SUBMITTED_SQL,
    MIGRATIONS,
    NOW_INVALID,
    REDOABLE,
    REQUEUE,
    SYNC_SQL,
    Attempt,
    changed_note,
)
from batchgen.state.spend import Spend
from batchgen.state.sqlite import BUSY_TIMEOUT
from batchgen.state.sqlite import translating as _translating
from batchgen.state.transitions import Transitions

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


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script (a trigger's ``;`` stays inside it)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending
            pending = ""


def _other_file(recorded: Path, manifest: Path) -> bool:
    """True when ``recorded`` still exists and is not ``manifest`` under another name."""
    try:
        return recorded.exists() and not os.path.samefile(recorded, manifest)
    except OSError:
        return False  # the manifest vanished meanwhile: nothing to tell apart


class StateStore(Transitions, Queries, RunRecords, OriginRecords):
    """The SQLite state of one manifest. Open with :meth:`open`; use from one thread."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, clock: Callable[[], dt.datetime]
    ) -> None:
        super().__init__(path, conn, clock)
        label = lambda: self.get_meta("manifest_path") or str(self.path.parent)  # noqa: E731
        self._lock = RunLock(self.path.with_suffix(".lock"), label)

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def open(
        cls,
        path: Path,
        *,
        manifest: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        busy: BusyWait | None = None,
    ) -> StateStore:
        """Open (creating and migrating if needed) the state at ``path``.

        ``manifest``, when given, is recorded as the folder's owner (meta ``manifest_path``)
        the first time, which :func:`state_path_for` consults; a state another manifest
        (still on disk) owns raises StateConflictError (exit 2). ``clock`` returns aware
        datetimes; tests and simulated runs inject one. ``busy``: see ``wait_while_busy``.
        """
        path = Path(path)
        for own in (path, path.with_suffix(".lock"), Path(f"{path}-wal"), Path(f"{path}-shm")):
            if own.is_symlink():
                raise StateError(
                    f"{own} is a symbolic link: batchgen does not write its state through "
                    "links (one planted there would carry it elsewhere); remove it"
                )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state file {path}: {exc}") from exc
        store = cls(path, conn, clock or (lambda: dt.datetime.now(dt.UTC)))
        try:
            store.wait_while_busy(busy)
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
        owner = None if manifest is None else manifest_identity(manifest)
        self._migrate(owner)
        if owner is None:
            return
        recorded = self.get_meta("manifest_path")
        if recorded is None:
            self.set_meta("manifest_path", owner)
        elif recorded != owner and _other_file(Path(recorded), Path(owner)):
            # two first runs of same-named manifests met on one new file: never share it
            # (a hard link of the owner is the same file, and continues its state)
            raise StateConflictError(
                f"{self.path} is the state of {recorded}, not of {owner}; run again (each "
                "manifest gets a folder of its own) or give this one another --out"
            )

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, owner: str | None = None) -> None:
        """Bring the schema up to date, one transaction per migration. A new state records
        ``owner`` (its manifest's identity) in the transaction that makes its schema, so a
        kill can never leave a made state that names no manifest."""
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
                    if number == 1 and owner is not None:
                        self.set_meta("manifest_path", owner)
                    c.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        """Release the run lock (if held) and close the database. Safe to call twice."""
        self._lock.release()
        self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- run lock
    @property
    def lock_path(self) -> Path:
        """The lock file beside the database (``state.lock``)."""
        return self._lock.path

    def acquire_lock(self) -> None:
        """Take the run lock or raise LockHeldError naming the holder's pid."""
        self._lock.acquire()

    def release_lock(self) -> None:
        """Give the run lock back (the file stays)."""
        self._lock.release()

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
            c.executemany(SYNC_SQL["fill"], incoming(rows))
            said = (self._sync_warning(*r) for r in c.execute(SYNC_SQL["warnings"]))
            report.warnings = [warning for warning in said if warning]
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
    def _sync_warning(
        row: int, key: str, status: str, why: str | None, was: str, sent: str, now: str
    ) -> str | None:
        """What a person should know about a sent row the manifest changed: now invalid, or
        which fields were edited (None when only white space in a prompt was)."""
        if status == S.INVALID:
            return NOW_INVALID.format(row=row, key=key.removeprefix("id:"), why=why)
        sent_spec = load_spec(sent)
        changes = request_changes(sent_spec, load_spec(now)) if sent_spec else ()
        return changed_note(row, key, was, changes) if changes else None

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

    @_translating
    def bind_provider(
        self,
        provider: str,
        *,
        unit: str,
        floor: bool,
        price_of: Callable[[JobSpec], int],
        legacy: str,
    ) -> None:
        """Record the provider this state's tasks belong to, its billing unit and price rule;
        refuse another provider once a submit was sent.

        A state written before providers were recorded is ``legacy``'s. Rows that have no
        price yet (such a state's) are priced with ``price_of``. Raises StateConflictError
        (exit 2) when the state has sent a submit to another provider: its task ids mean
        nothing there, and its money is counted in that provider's unit.
        """
        known = self.get_meta("provider")
        if known is None and self._ever_submitted():
            known = legacy
        if known is not None and known != provider and self._ever_submitted():
            raise StateConflictError(
                f"{self.path} holds tasks made with the provider {known!r}; this run asks for "
                f"{provider!r}, where those task ids mean nothing. Run with --provider {known} "
                f"to continue it, or start a separate state for {provider!r}: --provider "
                f"{provider} --out ANOTHER_FOLDER --new-state"
            )
        self.set_meta("provider", provider)
        self.set_meta("billing_unit", unit)
        self.set_meta("price_floor", "1" if floor else "0")
        self._fill_prices(price_of)

    @_translating
    def fill_prices(self, price_of: Callable[[JobSpec], int]) -> None:
        """Price every row that has no price yet (a state older than prices per row, a row
        requeued with an edited request) with ``price_of``: in the state's billing unit."""
        self._fill_prices(price_of)

    def _fill_prices(self, price_of: Callable[[JobSpec], int]) -> None:
        sql = f"SELECT {spec_columns()} FROM jobs WHERE price IS NULL"
        rows = [spec_from(r) for r in self._conn.execute(sql)]
        if not rows:
            return
        with self._transaction() as c:
            c.executemany(
                "UPDATE jobs SET price = ? WHERE key = ?",
                ((price_of(spec), spec.key) for spec in rows),
            )
            c.execute(
                "UPDATE task_log SET price = (SELECT price FROM jobs WHERE jobs.key = "
                "task_log.key) WHERE price IS NULL"
            )

    def _ever_submitted(self) -> bool:
        """Whether any row of this state ever had a submit that may have reached an API."""
        return self._conn.execute(EVER_SUBMITTED_SQL).fetchone() is not None

    def integrity_ok(self) -> bool:
        """True when ``PRAGMA integrity_check`` finds nothing wrong."""
        try:
            return self._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        except sqlite3.Error:
            return False


def _sqlite_is_a_store(store: StateStore) -> ManifestStore:
    """Never called: mypy checks here that the SQLite store satisfies :class:`ManifestStore`."""
    return store
