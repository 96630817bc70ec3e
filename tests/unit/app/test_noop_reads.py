"""A run that has nothing to do stays cheap (issue 26: a nightly cron over a finished
100,000-row manifest): the per-user record is brought up to date from the rows changed since
it was last told, never from every row again, and is not rewritten when nothing changed;
the picture check reads the pending rows only; the check for rows already generated under
another key reads the generated keys, and their requests only when some row is not one of
them. Counted, never timed: how many rows the state builds (``iter_jobs``), whether the
record's file was written, whether the requests were read."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from helpers.records import CountingStore, make_rows, write_briefs

from batchgen.app.copies import record_state
from batchgen.app.pictures import hold_bad_pictures
from batchgen.app.run import hold_generated
from batchgen.config import Settings
from batchgen.manifest.load import read_manifest
from batchgen.models import JobStatus
from batchgen.state.generated import Generation, GenerationRecord
from batchgen.state.store import StateStore

S = JobStatus


class Ticking:
    """A clock one second further at each reading (each commit gets its own moment)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def _sent(store: StateStore, key: str, task_id: str) -> None:
    store.transition(key, S.SUBMITTING)
    store.transition(key, S.SUBMITTED, task_id=task_id)


def _state(tmp_path: Path, n: int, *, sent: int) -> StateStore:
    """``n`` rows, the first ``sent`` of them submitted (one commit, one moment each)."""
    store = StateStore.open(tmp_path / "state.sqlite", clock=Ticking())
    store.sync_manifest(["id", "prompt"], make_rows(n))
    for i in range(sent):
        _sent(store, f"id:{i}", f"task_{i}")
    return store


class Writes:
    """Another connection to the record: its ``data_version`` moves whenever some other
    connection commits a change to the file, and only then."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.seen = self.version()

    def version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def since(self) -> bool:
        """Whether the file was written since this watcher opened it."""
        return self.version() != self.seen


def _task_ids(record: GenerationRecord) -> dict[str, str | None]:
    with contextlib.closing(sqlite3.connect(record.path)) as conn:
        return dict(conn.execute("SELECT key, task_id FROM generated"))


def test_a_second_record_pass_reads_only_the_rows_changed_since(tmp_path: Path) -> None:
    inner = _state(tmp_path, 40, sent=30)
    store, record = CountingStore(inner), GenerationRecord(tmp_path / "home")
    manifest = tmp_path / "briefs.csv"
    record_state(record, store, manifest)
    assert store.built == 30 and len(_task_ids(record)) == 30
    writes = Writes(record.path)

    store.built = 0
    record_state(record, store, manifest)  # nothing changed
    assert store.built == 1  # the row of the newest moment recorded, not all 30
    assert not writes.since()  # and the record was not rewritten

    # rows changed since are still read and recorded: a new task, a task that moved on
    _sent(inner, "id:35", "task_35")
    inner.transition("id:3", S.RUNNING)
    store.built = 0
    record_state(record, store, manifest)
    assert store.built == 3  # the last moment already recorded, then the two rows changed
    assert _task_ids(record)["id:35"] == "task_35" and len(_task_ids(record)) == 31
    assert writes.since()
    writes.conn.close()
    record.close()
    inner.close()


def test_rows_sharing_the_newest_moment_are_all_recorded(tmp_path: Path) -> None:
    # Variant: a commit group gives many rows one moment; the pass after a run that recorded
    # only some of them (killed in between) must still find the others.
    inner = _state(tmp_path, 10, sent=0)
    with contextlib.closing(sqlite3.connect(inner.path)) as db, db:
        db.execute(
            "UPDATE jobs SET status = 'submitted', task_id = 'task_' || row_num, "
            "updated_at = '2026-12-01T03:00:00.000000+00:00' WHERE row_num < 8"
        )
    record = GenerationRecord(tmp_path / "home")
    stamp = "2026-12-01T03:00:00.000000+00:00"
    record.mark_synced(str(inner.path.resolve()), stamp)  # as if told of row 2 alone
    record.add([Generation("r", str(inner.path.resolve()), "m", "id:0", 2, "task_2")])
    record_state(record, inner, tmp_path / "briefs.csv")
    assert sorted(_task_ids(record)) == [f"id:{i}" for i in range(6)]
    record.close()
    inner.close()


def test_the_picture_check_reads_only_pending_rows(tmp_path: Path) -> None:
    inner = _state(tmp_path, 12, sent=10)
    store = CountingStore(inner)
    held = asyncio.run(hold_bad_pictures([("briefs.csv", store)], Settings()))
    assert held == 0 and store.built == 2  # the two rows still pending, not all twelve
    inner.close()


class SpyStore(CountingStore):
    """Also notes whether the requests of the generated rows were read."""

    requests_read = 0

    def generated_requests(self) -> list[Any]:
        self.requests_read += 1
        return list(self.inner.generated_requests())


def test_a_finished_manifest_is_checked_against_the_generated_keys_alone(
    tmp_path: Path,
) -> None:
    manifest = read_manifest(write_briefs(tmp_path / "briefs.csv", 6))
    inner = StateStore.open(tmp_path / "state.sqlite", clock=Ticking())
    inner.sync_manifest(manifest.columns, manifest.rows)
    for i in range(6):
        _sent(inner, f"id:r{i}", f"task_{i}")
    store = SpyStore(inner)
    held, own = hold_generated(manifest, store, allow=False)
    assert held is manifest and own == {f"id:r{i}" for i in range(6)}
    assert store.requests_read == 0

    # Variant: the id of row 2 re-typed (its request was paid for under id:r0): read, held
    with (tmp_path / "briefs.csv").open("r+", encoding="utf-8") as handle:
        text = handle.read().replace("r0,", "r0-new,", 1)
        handle.seek(0)
        handle.write(text)
    edited = read_manifest(tmp_path / "briefs.csv")
    held, own = hold_generated(edited, store, allow=False)
    assert store.requests_read == 1
    assert [spec.key for spec in held.valid] == [f"id:r{i}" for i in range(1, 6)]
    assert any("already generated" in str(p) for p in held.problems)
    inner.close()
