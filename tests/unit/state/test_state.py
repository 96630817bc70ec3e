"""The state store against real SQLite files in tmp_path: schema, status machine, sync, lock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.records import StubRow as Row

from batchgen.errors import LockHeldError, StateError, TransitionError
from batchgen.models import AttemptKind, AttemptOutcome, JobSpec, JobStatus
from batchgen.state.store import (
    ALLOWED,
    MIGRATIONS,
    REDOABLE,
    REQUEUE,
    Attempt,
    StateStore,
    state_path_for,
)

S = JobStatus
T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Problem:
    text: str
    severity: str = "error"

    def __str__(self) -> str:
        return self.text


def row(
    n: int,
    key: str | None = None,
    *,
    prompt: str = "a cat",
    mode: str = "fun",
    images: tuple[str, ...] = (),
    user: dict[str, Any] | None = None,
    problems: tuple[Any, ...] = (),
) -> Row:
    key = key or f"k{n}"
    spec = None
    if not any(getattr(p, "severity", "error") == "error" for p in problems):
        spec = JobSpec(key=key, row=n, prompt=prompt, mode=mode, ratio="1:1", images=images)
    return Row(
        row=n, key=key, user=user or {"note": f"n{n}"}, spec=spec, prompt=prompt, problems=problems
    )


def invalid(n: int, key: str | None = None, why: str = "mode 'x' is not one of fun") -> Row:
    return row(n, key, problems=(Problem(why),))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "m" / "state.sqlite", clock=clock) as s:
        yield s


#: The legal path from pending to each status (invalid is reached by a sync instead).
PATHS: dict[JobStatus, list[JobStatus]] = {
    S.PENDING: [],
    S.SUBMITTING: [S.SUBMITTING],
    S.SUBMITTED: [S.SUBMITTING, S.SUBMITTED],
    S.RUNNING: [S.SUBMITTING, S.SUBMITTED, S.RUNNING],
    S.COMPLETED: [S.SUBMITTING, S.SUBMITTED, S.COMPLETED],
    S.DOWNLOADED: [S.SUBMITTING, S.SUBMITTED, S.COMPLETED, S.DOWNLOADED],
    S.FAILED: [S.SUBMITTING, S.SUBMITTED, S.FAILED],
    S.REJECTED: [S.SUBMITTING, S.REJECTED],
    S.UNKNOWN: [S.SUBMITTING, S.UNKNOWN],
    S.LOST: [S.SUBMITTING, S.SUBMITTED, S.LOST],
    S.DOWNLOAD_FAILED: [S.SUBMITTING, S.SUBMITTED, S.COMPLETED, S.DOWNLOAD_FAILED],
    S.EXPIRED: [S.SUBMITTING, S.SUBMITTED, S.EXPIRED],
    S.MODERATED: [S.SUBMITTING, S.SUBMITTED, S.MODERATED],
}


def put(store: StateStore, status: JobStatus, n: int = 2, **fields: Any) -> str:
    """Add row ``n`` to the store and walk it to ``status`` by legal transitions."""
    key = f"k{n}"
    if status is S.INVALID:
        store.sync_manifest(["prompt"], [*store_rows(store), invalid(n)])
        return key
    if status is S.SKIPPED:
        hidden = dataclasses.replace(row(n), skipped="hidden in the sheet")
        store.sync_manifest(["prompt"], [*store_rows(store), hidden])
        return key
    store.sync_manifest(["prompt"], [*store_rows(store), row(n)])
    for step in PATHS[status]:
        store.transition(key, step, **(fields if step is status else {}))
    return key


def store_rows(store: StateStore) -> list[Row]:
    """The store's in-manifest rows as manifest rows, so a sync keeps them."""
    return [
        row(j.row, j.key, prompt=j.prompt, user=j.user) for j in store.iter_jobs() if j.in_manifest
    ]


# ------------------------------------------------------------------------- schema and files
def test_fresh_store_is_migrated_with_durable_pragmas(store: StateStore) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.integrity_ok()


def test_reopen_keeps_rows_and_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.sqlite"
    with StateStore.open(path) as s:
        s.sync_manifest(["prompt"], [row(2)])
    with StateStore.open(path) as s:
        assert s.get("k2").prompt == "a cat"
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_later_migration_upgrades_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.open(path) as s:
        s.sync_manifest(["prompt"], [row(2)])
    monkeypatch.setattr("batchgen.state.store.MIGRATIONS", (*MIGRATIONS, "CREATE TABLE extra (x)"))
    with StateStore.open(path) as s:
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
        assert s._conn.execute("SELECT count(*) FROM extra").fetchone()[0] == 0
        assert s.get("k2").status is S.PENDING


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore.open(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="made by a newer batchgen"):
        StateStore.open(path)


@pytest.mark.parametrize("content", [b"garbage " * 200, b"SQLite format 3\x00" + b"\xff" * 300])
def test_corrupt_file_names_the_file_and_what_to_do(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(content)
    with pytest.raises(StateError, match="damaged") as info:
        StateStore.open(path)
    assert str(path) in str(info.value)
    assert "move it aside" in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StateError, match="not a batchgen state file"):
        StateStore.open(path)


def test_sqlite_errors_become_state_errors(store: StateStore) -> None:
    key = put(store, S.SUBMITTING)
    with pytest.raises(StateError) as info:  # sqlite cannot store an object: the whole
        store.transition(key, S.PENDING, attempt=Attempt("submit", object()))  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert store.get(key).status is S.SUBMITTING  # ... transaction rolled back
    store.close()
    with pytest.raises(StateError):
        store.get("k2")


def test_meta_and_columns(store: StateStore) -> None:
    assert store.get_meta("x") is None and store.columns() == []
    store.set_meta("x", "1")
    store.set_meta("x", "2")
    assert store.get_meta("x") == "2"
    store.sync_manifest(["prompt", "Notes ✓"], [])
    assert store.columns() == ["prompt", "Notes ✓"]


# ------------------------------------------------------------------------- status machine
def test_the_table_is_the_specified_machine() -> None:
    expected = {
        S.SUBMITTING: {S.PENDING},
        S.SUBMITTED: {S.SUBMITTING},
        S.RUNNING: {S.SUBMITTED, S.RUNNING},
        S.COMPLETED: {S.SUBMITTED, S.RUNNING, S.DOWNLOAD_FAILED, S.COMPLETED},
        S.DOWNLOADED: {S.COMPLETED},
        S.FAILED: {S.SUBMITTED, S.RUNNING, S.SUBMITTING, S.PENDING},
        S.REJECTED: {S.SUBMITTING},
        S.UNKNOWN: {S.SUBMITTING},
        S.LOST: {S.SUBMITTED, S.RUNNING},
        S.DOWNLOAD_FAILED: {S.COMPLETED},
        S.PENDING: {S.SUBMITTING},
        S.INVALID: set(),
        S.SKIPPED: set(),  # only sync_manifest decides (a row hidden in the sheet)
        S.EXPIRED: {S.SUBMITTED, S.RUNNING, S.COMPLETED, S.DOWNLOAD_FAILED},
        S.MODERATED: {S.SUBMITTED, S.RUNNING},
    }
    assert expected == ALLOWED
    requeued = {S.FAILED, S.REJECTED, S.UNKNOWN, S.LOST, S.EXPIRED, S.MODERATED}
    assert {S.PENDING: requeued} == REQUEUE


@pytest.mark.parametrize("source", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_every_transition_is_guarded(
    store: StateStore, source: JobStatus, target: JobStatus
) -> None:
    key = put(store, source)
    before = store.get(key)
    if source in ALLOWED[target]:
        store.transition(key, target)
        assert store.get(key).status is target
    else:
        with pytest.raises(TransitionError) as info:
            store.transition(key, target)
        assert store.get(key) == before
        message = str(info.value)
        assert key in message and str(target) in message and f"it is {source}" in message


def test_transition_of_a_missing_row(store: StateStore) -> None:
    with pytest.raises(TransitionError, match="no such row"):
        store.transition("ghost", S.SUBMITTING)


def test_expect_narrows_and_may_not_widen(store: StateStore) -> None:
    key = put(store, S.SUBMITTED)
    with pytest.raises(TransitionError):
        store.transition(key, S.COMPLETED, expect={S.RUNNING})
    with pytest.raises(ValueError, match="may not follow"):
        store.transition(key, S.PENDING, expect={S.SUBMITTED})
    store.transition(key, S.COMPLETED, expect=[S.SUBMITTED])


def test_unknown_fields_are_refused(store: StateStore) -> None:
    key = put(store, S.PENDING)
    with pytest.raises(TypeError, match="statuss"):
        store.transition(key, S.SUBMITTING, statuss="x")
    assert store.get(key).status is S.PENDING


def test_attempts_timestamps_and_fields(store: StateStore, clock: Clock) -> None:
    key = put(store, S.PENDING)
    assert store.get(key).created_at == T0
    store.transition(key, S.SUBMITTING)
    store.transition(key, S.PENDING, error_kind="transient", error_message="503")
    clock.advance(10)
    store.transition(key, S.SUBMITTING)
    job = store.get(key)
    # the 503 created nothing: only submits that created (or may have) a task count
    assert job.attempts == 1 and job.error_kind == "transient" and job.updated_at == clock.now
    store.transition(key, S.SUBMITTED, task_id="t-1", error_kind=None, error_message=None)
    job = store.get(key)
    assert (job.task_id, job.submitted_at, job.error_kind) == ("t-1", clock.now, None)
    clock.advance(61.5)
    urls = ("https://cdn/a.mp4", "https://cdn/b.mp4")
    store.transition(key, S.COMPLETED, video_urls=urls, consumed_credits=40)
    done_at = clock.now
    store.transition(key, S.DOWNLOAD_FAILED, error_kind="download", error_message="cut short")
    clock.advance(100)
    store.transition(key, S.COMPLETED)  # the retry keeps the first completion time
    store.transition(key, S.DOWNLOADED, files=("videos/k2_1.mp4",), file_sizes=(123,))
    job = store.get(key)
    assert job.completed_at == done_at and job.video_urls == urls
    assert (job.files, job.file_sizes, job.consumed_credits) == (("videos/k2_1.mp4",), (123,), 40)
    assert job.submitted_at is not None and job.submitted_at.tzinfo is not None
    assert store.latency_samples() == [61.5]


def test_explicit_timestamps_win(store: StateStore) -> None:
    key = put(store, S.SUBMITTING)
    at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    store.transition(key, S.SUBMITTED, submitted_at=at)
    store.transition(key, S.FAILED, completed_at=at + dt.timedelta(seconds=5))
    job = store.get(key)
    assert job.submitted_at == at and job.completed_at == at + dt.timedelta(seconds=5)
    assert job.submitted_at is not None and job.submitted_at.utcoffset() == dt.timedelta(0)


def test_attempts_are_recorded_with_their_transition(store: StateStore, clock: Clock) -> None:
    key = put(store, S.SUBMITTING)
    store.transition(
        key, S.PENDING, attempt=Attempt(AttemptKind.SUBMIT, AttemptOutcome.TRANSIENT, "HTTP 503")
    )
    clock.advance(1)
    store.transition(key, S.SUBMITTING)
    store.transition(
        key,
        S.SUBMITTED,
        task_id="t-9",
        attempt=Attempt(AttemptKind.SUBMIT, AttemptOutcome.OK, None, "t-9"),
    )
    history = store.attempts(key)
    assert [(a["outcome"], a["task_id"]) for a in history] == [("transient", None), ("ok", "t-9")]
    assert history[1]["at"] == clock.now and history[0]["message"] == "HTTP 503"
    assert store.attempts() == history and store.attempts("other") == []


def test_only_redoable_steps_skip_the_fsync(store: StateStore) -> None:
    key = put(store, S.PENDING)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    for step in PATHS[S.DOWNLOADED]:  # submitting, submitted, completed, downloaded
        store.transition(key, step)
    # (the task_log trigger makes SQLite trace the same UPDATE again: count each once)
    updates = [
        i
        for i, sql in enumerate(statements)
        if sql.startswith("UPDATE jobs") and statements[i - 1] != sql
    ]
    relaxed = [statements[i - 1] == "PRAGMA synchronous = NORMAL" for i in updates]
    assert relaxed == [False, False, True, True]  # a submit's intent and task id stay FULL
    assert statements[-1] == "PRAGMA synchronous = FULL"  # and FULL is the default again
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert store.get(key).status is S.DOWNLOADED
    assert REDOABLE.isdisjoint({S.SUBMITTING, S.SUBMITTED, S.PENDING, S.UNKNOWN})


def test_a_refused_transition_records_no_attempt(store: StateStore) -> None:
    key = put(store, S.DOWNLOADED)
    with pytest.raises(TransitionError):
        store.transition(
            key, S.SUBMITTED, attempt=Attempt(AttemptKind.SUBMIT, AttemptOutcome.OK, None, "t-1")
        )
    assert store.attempts(key) == []


# ------------------------------------------------------------------------- manifest sync
def test_sync_inserts_valid_and_invalid_rows(store: StateStore) -> None:
    warn = Problem("duplicate of row 3", severity="warning")
    rows = [row(2, images=("https://x/1.png",)), invalid(3), row(4, problems=(warn,))]
    report = store.sync_manifest(["prompt", "mode"], rows)
    assert (report.new, report.updated, report.deleted, report.warnings) == (3, 0, 0, [])
    assert store.get("k2").images == ("https://x/1.png",)
    bad = store.get("k3")
    assert (bad.status, bad.error_kind) == (S.INVALID, "invalid")
    assert bad.error_message == "mode 'x' is not one of fun"
    assert store.get("k4").status is S.PENDING


def test_invalid_message_joins_only_error_problems(store: StateStore) -> None:
    problems = (Problem("no prompt"), Problem("looks odd", "warning"), Problem("bad ratio"))
    store.sync_manifest(["prompt"], [row(2, problems=problems)])
    assert store.get("k2").error_message == "no prompt; bad ratio"


def test_resync_counts_only_real_changes(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(2), row(3)])
    assert store.sync_manifest(["prompt"], [row(2), row(3)]).updated == 0
    swapped = [row(2, "k3", user={"note": "n3"}), row(3, "k2", user={"note": "n2"})]
    report = store.sync_manifest(["prompt"], swapped)
    assert (report.new, report.updated, report.deleted) == (0, 2, 0)
    assert (store.get("k2").row, store.get("k3").row) == (3, 2)


def test_deleted_rows_are_kept_and_come_back(store: StateStore) -> None:
    put(store, S.SUBMITTED, 2)
    store.sync_manifest(["prompt"], [row(2), row(3)])
    report = store.sync_manifest(["prompt"], [row(3)])
    assert report.deleted == 1 and store.get("k2").in_manifest is False
    assert store.get("k2").status is S.SUBMITTED  # still tracked: its task may finish
    assert store.counts(in_manifest_only=True)[S.SUBMITTED] == 0
    assert store.sync_manifest(["prompt"], [row(3)]).deleted == 1
    report = store.sync_manifest(["prompt"], [row(2), row(3)])
    assert (report.updated, report.deleted) == (1, 0) and store.get("k2").in_manifest


def test_unsent_rows_follow_the_manifest(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(2), invalid(3)])
    report = store.sync_manifest(["prompt"], [invalid(2, why="no prompt"), row(3, mode="spicy")])
    assert report.updated == 2 and report.warnings == []
    now_bad, now_good = store.get("k2"), store.get("k3")
    assert (now_bad.status, now_bad.error_message) == (S.INVALID, "no prompt")
    assert (now_good.status, now_good.mode, now_good.error_kind) == (S.PENDING, "spicy", None)
    store.sync_manifest(["prompt"], [invalid(2, why="ratio missing")])
    assert store.get("k2").error_message == "ratio missing"


def test_a_submit_that_gave_up_on_server_errors_is_retried_by_the_next_run(
    store: StateStore,
) -> None:
    key = put(store, S.PENDING)
    for _ in range(3):  # three 503s: no task was created, nothing was paid
        store.transition(key, S.SUBMITTING)
        store.transition(key, S.PENDING, error_kind="transient", error_message="503")
    store.transition(key, S.FAILED, expect=(S.PENDING,), error_kind="transient")
    assert store.requeue_failed(include_permanent=False, max_attempts=3) == 1
    assert store.get(key).status is S.PENDING


def test_pending_rows_keep_their_retry_error_across_syncs(store: StateStore) -> None:
    key = put(store, S.SUBMITTING)
    store.transition(key, S.PENDING, error_kind="transient", error_message="503")
    store.sync_manifest(["prompt"], [row(2, prompt="a dog")])
    job = store.get(key)
    assert (job.prompt, job.error_kind, job.attempts) == ("a dog", "transient", 0)


def test_a_sent_row_keeps_its_request_and_warns(store: StateStore) -> None:
    key = put(store, S.COMPLETED)
    report = store.sync_manifest(["prompt"], [row(2, prompt="a dog", user={"note": "new"})])
    assert report.warnings == [
        "row 2: prompt was 'a cat' when its video was made, now 'a dog'; it keeps its "
        "video: to make a new take with the new values, mark it regenerate in results.xlsx "
        "(Decision) and run again (docs/edits.md)"
    ]
    job = store.get(key)
    assert (job.prompt, job.status, job.user) == ("a cat", S.COMPLETED, {"note": "new"})
    assert job.request_now is not None and job.request_now.prompt == "a dog"
    report = store.sync_manifest(["prompt"], [invalid(2, why="no mode")])
    assert report.warnings == ["row 2 (id k2) is now invalid (no mode); the earlier task stands."]
    assert store.get(key).status is S.COMPLETED


def test_a_repeated_key_is_refused_and_changes_nothing(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(2)])
    with pytest.raises(StateError, match="row 4: the id 'k3' appears more than once"):
        store.sync_manifest(["other"], [row(3), row(4, "k3"), row(5)])
    assert [j.key for j in store.iter_jobs()] == ["k2"] and store.columns() == ["prompt"]


def test_user_values_round_trip_with_their_types(store: StateStore) -> None:
    user = {
        "text": "0007",
        "int": 7,
        "float": 2.5,
        "bool": True,
        "none": None,
        "naive": dt.datetime(2024, 3, 1, 9, 30, 15, 250),
        "aware": dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "date": dt.date(2024, 3, 1),
        "time": dt.time(1, 1),
        "span": dt.timedelta(days=1, seconds=5, microseconds=7),
        "dollar": "$dt",
    }
    store.sync_manifest(["prompt", *user], [row(2, user=user)])
    back = store.get("k2").user
    assert back == user and list(back) == list(user)
    assert [type(v) for v in back.values()] == [type(v) for v in user.values()]


def test_numpy_scalars_are_stored_as_plain_values(store: StateStore) -> None:
    np = pytest.importorskip("numpy")
    store.sync_manifest(["n"], [row(2, user={"n": np.int64(5), "x": np.float64(0.5)})])
    assert store.get("k2").user == {"n": 5, "x": 0.5}


# ------------------------------------------------------------------------- queries
def test_iter_jobs_orders_and_pages(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(n) for n in (9, 2, 5, 7, 3)])
    store.sync_manifest(["prompt"], [row(2, "k9"), row(4, "k2"), row(6, "k5")])  # k7, k3 gone
    order = [(j.key, j.in_manifest) for j in store.iter_jobs(batch=2)]
    assert order == [("k9", True), ("k2", True), ("k5", True), ("k3", False), ("k7", False)]
    assert [j.key for j in store.iter_jobs(in_manifest_only=True, batch=1)] == ["k9", "k2", "k5"]
    store.transition("k2", S.SUBMITTING)
    store.transition("k3", S.SUBMITTING)
    picked = store.iter_jobs([S.SUBMITTING, S.UNKNOWN], batch=1)
    assert [j.key for j in picked] == ["k2", "k3"]
    assert list(store.iter_jobs([])) == []


def test_iter_jobs_breaks_ties_by_key(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(2, "a"), row(3, "b")])
    store.sync_manifest(["prompt"], [row(2, "c")])  # a and b both gone, both row 2..3
    store.sync_manifest(["prompt"], [row(3, "d")])  # c gone at row 2 too
    assert [j.key for j in store.iter_jobs(batch=1)] == ["d", "a", "c", "b"]


def test_next_pending(store: StateStore) -> None:
    store.sync_manifest(["prompt"], [row(n) for n in range(2, 9)] + [invalid(9)])
    store.transition("k3", S.SUBMITTING)
    store.sync_manifest(["prompt"], [row(n) for n in range(2, 8)] + [invalid(9)])  # k8 gone
    assert [j.key for j in store.next_pending(3)] == ["k2", "k4", "k5"]
    assert [j.key for j in store.next_pending(10, after_row=5)] == ["k6", "k7"]
    assert store.next_pending(10, after_row=7) == []


def test_counts_credits_and_done_keys(store: StateStore) -> None:
    put(store, S.DOWNLOADED, 2, files=("a.mp4",))
    put(store, S.FAILED, 3, consumed_credits=40, error_kind="transient")
    put(store, S.INVALID, 4)
    counts = store.counts()
    assert set(counts) == set(JobStatus) and sum(counts.values()) == 3
    assert (counts[S.DOWNLOADED], counts[S.FAILED], counts[S.INVALID]) == (1, 1, 1)
    assert store.done_keys() == {"k2"}
    assert store.credits_consumed() == 2 * 40  # the downloaded task reported 0: still 40


def test_latency_samples_most_recent_first(store: StateStore, clock: Clock) -> None:
    for n, latency in ((2, 30.0), (3, 90.0), (4, 45.0)):
        key = put(store, S.SUBMITTED, n)
        clock.advance(latency)
        store.transition(key, S.COMPLETED)
    put(store, S.FAILED, 5)
    assert store.latency_samples() == [45.0, 90.0, 30.0]
    assert store.latency_samples(limit=1) == [45.0]


# ------------------------------------------------------------------------- recovery
def test_recover_interrupted(store: StateStore) -> None:
    key = put(store, S.SUBMITTING)
    put(store, S.SUBMITTED, 3)
    assert store.recover_interrupted() == 1
    job = store.get(key)
    assert (job.status, job.error_kind) == (S.UNKNOWN, "ambiguous")
    assert job.error_message is not None and "--resubmit-unknown" in job.error_message
    assert [a["outcome"] for a in store.attempts(key)] == ["interrupted"]
    assert store.recover_interrupted() == 0


def test_requeue_unknown(store: StateStore) -> None:
    key = put(store, S.UNKNOWN, error_kind="ambiguous", error_message="dropped")
    assert store.requeue_unknown() == 1
    job = store.get(key)
    assert (job.status, job.error_kind, job.task_id, job.attempts) == (S.PENDING, None, None, 1)
    store.transition(key, S.SUBMITTING)
    assert store.get(key).attempts == 2


def test_requeue_failed(store: StateStore) -> None:
    retry = put(store, S.FAILED, 2, error_kind="transient", consumed_credits=40)
    spent = put(store, S.FAILED, 3, error_kind="transient")
    store._conn.execute("UPDATE jobs SET attempts = 5 WHERE key = ?", (spent,))
    perm = put(store, S.FAILED, 4, error_kind="permanent", error_message="content policy")
    rejected = put(store, S.REJECTED, 5, error_kind="permanent")
    assert store.requeue_failed(include_permanent=False, max_attempts=5) == 1
    job = store.get(retry)
    assert (job.status, job.attempts, job.consumed_credits) == (S.PENDING, 1, 0)
    # the requeued task's spend is remembered; every created task counts at least 40
    assert store.credits_consumed() == 3 * 40
    assert store.get(spent).status is S.FAILED and store.get(perm).status is S.FAILED
    assert store.requeue_failed(include_permanent=True, max_attempts=5) == 3
    for key in (spent, perm, rejected):
        job = store.get(key)
        assert (job.status, job.attempts, job.error_message) == (S.PENDING, 0, None)


def test_retry_transient_moves_one_row(store: StateStore) -> None:
    first = put(store, S.FAILED, 2, error_kind="transient", consumed_credits=40)
    other = put(store, S.FAILED, 3, error_kind="transient")
    perm = put(store, S.FAILED, 4, error_kind="permanent")
    assert store.retry_transient(first, max_attempts=2) is True
    assert store.get(first).status is S.PENDING and store.get(other).status is S.FAILED
    assert store.retry_transient(first, max_attempts=2) is False  # no longer failed
    assert store.retry_transient(perm, max_attempts=2) is False
    store.transition(first, S.SUBMITTING)  # attempt 2 of 2
    store.transition(first, S.FAILED, error_kind="transient")
    assert store.retry_transient(first, max_attempts=2) is False
    assert store.retry_transient(first, max_attempts=3) is True
    # three tasks were created (at least 40 each); the second failure of "first" was a
    # submit that created nothing (SUBMITTING -> FAILED)
    assert store.credits_consumed() == 3 * 40


def test_requeue_leaves_deleted_rows_alone(store: StateStore) -> None:
    put(store, S.UNKNOWN, 2)
    store.sync_manifest(["prompt"], [row(3)])
    assert store.requeue_unknown() == 0


def test_requeue_downloads_keeps_urls(store: StateStore) -> None:
    key = put(store, S.COMPLETED, video_urls=("https://cdn/v.mp4",))
    store.transition(key, S.DOWNLOAD_FAILED)
    assert store.requeue_downloads() == 1
    job = store.get(key)
    assert (job.status, job.video_urls) == (S.COMPLETED, ("https://cdn/v.mp4",))


def test_get_missing_row(store: StateStore) -> None:
    with pytest.raises(StateError, match="no row with key 'nope'"):
        store.get("nope")


# ------------------------------------------------------------------------- runs
def test_runs(store: StateStore, clock: Clock) -> None:
    assert store.runs() == [] and store.last_run() is None
    first = store.start_run(command="batchgen run m.csv", version="0.1.0")
    clock.advance(60)
    store.finish_run(
        first, outcome="complete", exit_code=0, requests=12, rate_limited=1, credits=80
    )
    second = store.start_run(command="batchgen run m.csv --retry-failed", version="0.1.0")
    runs = store.runs()
    assert [r.run_id for r in runs] == [first, second]
    assert (runs[0].started_at, runs[0].ended_at) == (T0, T0 + dt.timedelta(seconds=60))
    assert (runs[0].outcome, runs[0].requests, runs[0].rate_limited, runs[0].credits) == (
        "complete",
        12,
        1,
        80,
    )
    last = store.last_run()
    assert last is not None and last.run_id == second and last.ended_at is None
    with pytest.raises(StateError, match="no run 99"):
        store.finish_run(99, outcome="x", exit_code=1, requests=0, rate_limited=0, credits=0)


# ------------------------------------------------------------------------- the run lock
HOLDER = """
import sys
from pathlib import Path
from batchgen.state.store import StateStore
store = StateStore.open(Path(sys.argv[1]))
store.acquire_lock()
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        with StateStore.open(path) as store:
            with pytest.raises(
                LockHeldError, match=rf"another batchgen process \(pid {child.pid}\)"
            ):
                store.acquire_lock()
            child.kill()  # SIGKILL: no chance to clean up
            child.wait()
            store.acquire_lock()
            assert path.with_suffix(".lock").read_text().strip() == str(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_lock_between_stores_of_one_process(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.open(path, manifest=tmp_path / "briefs.csv") as a, StateStore.open(path) as b:
        a.acquire_lock()
        a.acquire_lock()  # idempotent for its holder
        with pytest.raises(LockHeldError, match=r"briefs\.csv is being run") as held:
            b.acquire_lock()
        # the holder is this very process: the message says so, not "another process"
        assert "this same batchgen process" in str(held.value)
        a.release_lock()
        b.acquire_lock()
    with StateStore.open(path) as c:  # closing b released it
        c.acquire_lock()


# ------------------------------------------------------------------------- folder naming
def test_state_path_for(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    csv, xlsx = tmp_path / "briefs.csv", tmp_path / "briefs.xlsx"
    csv.write_text("prompt\n")
    assert state_path_for(out, csv) == out / "briefs" / "state.sqlite"
    StateStore.open(state_path_for(out, csv), manifest=csv).close()
    assert state_path_for(out, csv) == out / "briefs" / "state.sqlite"
    assert state_path_for(out, xlsx) == out / "briefs-xlsx" / "state.sqlite"
    # another manifest of the same name, elsewhere, while the first still exists: its own
    other = state_path_for(out, tmp_path / "team-b" / "briefs.csv")
    assert other.parent.name.startswith("briefs-") and other.parent.name != "briefs-xlsx"
    # the first manifest moved (its old path is gone): it keeps its state
    csv.unlink()
    assert state_path_for(out, tmp_path / "moved" / "briefs.csv") == out / "briefs" / "state.sqlite"
    # a name that had to be cleaned up gets a hash of the original, so a b / a+b / a_b differ
    odd = state_path_for(out, tmp_path / "Q3 plan: v2 (final)!.csv")
    assert odd.parent.name.startswith("Q3_plan_v2_final-") and len(odd.parent.name) == 25
    names = {state_path_for(out, tmp_path / f"a{c}b.csv").parent.name for c in " +_"}
    assert len(names) == 3 and "a_b" in names
    assert state_path_for(out, tmp_path / "...csv").parent.name.startswith("manifest")
