"""The job's fields are declared once (``JobSpec``/``Job``) and stored by name from that
declaration: every field has a column, reads and writes go by name, and a new request field
keeps existing identities."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from batchgen.manifest.values import request_key
from batchgen.models import REQUEST_FIELDS, Job, JobSpec, JobStatus
from batchgen.state.job_columns import (
    COLUMNS,
    JOB_COLUMNS,
    REQUEST_COLUMNS,
    columns_of,
    job_from,
)
from batchgen.state.rows import INCOMING_COLUMNS
from batchgen.state.schema import SYNC_SQL
from batchgen.state.store import StateStore

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _every_field_set() -> Job:
    """A Job whose every field differs from its default (so a swapped column shows)."""
    return Job(
        key="id:a",
        row=7,
        prompt="a red fox",
        mode="spicy",
        ratio="2:3",
        images=("https://x.test/1.png",),
        duration=10,
        resolution="720p",
        model="grok-imagine-video",
        image_digests=("ab" * 32,),
        user={"campaign": "spring", "when": dt.date(2026, 3, 1)},
        status=JobStatus.DOWNLOADED,
        in_manifest=False,
        task_id="t-1",
        attempts=3,
        consumed_credits=41,
        price=40,
        error_kind="note",
        error_message="done",
        video_urls=("https://cdn.test/v.mp4",),
        files=("a_1.mp4",),
        file_sizes=(123,),
        created_at=T0,
        submitted_at=T0 + dt.timedelta(seconds=1),
        completed_at=T0 + dt.timedelta(seconds=2),
        updated_at=T0 + dt.timedelta(seconds=3),
        request_now=JobSpec(key="id:a", row=7, prompt="a blue fox", mode="fun", ratio="1:1"),
    )


def test_the_example_job_sets_every_field() -> None:
    job, blank = _every_field_set(), Job(key="k", row=2, prompt="p", mode="fun", ratio="1:1")
    same = [
        f.name
        for f in dataclasses.fields(Job)
        if f.name not in ("key", "row", "prompt", "mode", "ratio")
        and getattr(job, f.name) == getattr(blank, f.name)
    ]
    assert not same, f"add a non-default value for {same} to _every_field_set"


def test_every_field_has_a_column_in_a_migrated_state(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite"):
        pass
    conn = sqlite3.connect(tmp_path / "state.sqlite")
    table = {name for _, name, *_ in conn.execute("PRAGMA table_info(jobs)")}
    declared = {c.name for c in COLUMNS}
    missing = declared - table
    assert not missing, f"a migration must add {sorted(missing)} (state/schema.MIGRATIONS)"
    assert [c.field for c in COLUMNS] == [f.name for f in dataclasses.fields(Job)]


def test_a_job_round_trips_through_its_columns_by_name() -> None:
    job = _every_field_set()
    stored = tuple(c.encode(getattr(job, c.field)) for c in COLUMNS)
    assert job_from(stored) == job


def test_a_job_round_trips_through_a_real_state(tmp_path: Path) -> None:
    job = _every_field_set()
    with StateStore.open(tmp_path / "state.sqlite") as store:
        values = [c.encode(getattr(job, c.field)) for c in COLUMNS]
        store._conn.execute(
            f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})", values
        )
        assert store.get("id:a") == job
        assert store.generated_requests() == [job.spec()]


def test_the_request_columns_follow_the_jobspec_declaration() -> None:
    assert [c.field for c in REQUEST_COLUMNS] == [f.name for f in REQUEST_FIELDS]
    assert [f.name for f in REQUEST_FIELDS] == [
        "prompt",
        "mode",
        "ratio",
        "images",
        "duration",
        "resolution",
        "model",
        "image_digests",
    ]
    names = [n for n, _ in INCOMING_COLUMNS]
    for c in REQUEST_COLUMNS:  # the sync compares and copies every request column
        assert c.name in names
        assert f"i.{c.name}" in SYNC_SQL["warnings"]
        assert f"{c.name} = i.{c.name}" in SYNC_SQL["refresh"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _JobWithSeed(Job):
    """What adding a ``seed`` to the request would declare."""

    seed: int = 0


def test_a_new_field_gets_its_column_and_blank_from_its_declaration() -> None:
    added = columns_of(_JobWithSeed)[-1]
    assert (added.field, added.name, added.sql_type, added.blank) == (
        "seed",
        "seed",
        "INTEGER",
        0,
    )
    assert added.decode(added.encode(8)) == 8


def test_a_field_without_a_storage_rule_is_named() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Odd(Job):
        weights: frozenset[int] = frozenset()

    with pytest.raises(TypeError, match=r"Job.weights: no storage rule"):
        columns_of(Odd)


def test_keys_of_existing_requests_are_unchanged() -> None:
    # Pinned (computed by the version before the field declaration): state files written by
    # earlier versions hold these keys.
    assert request_key("a red fox", "fun", "1:1", []) == "h:25e25b89b16522da"
    images = ("https://x.test/1.png",)
    assert request_key("a red fox", "fun", "1:1", images) == "h:67b4f2bea4b67aa5"
    spec = JobSpec(key="k", row=2, prompt="a  red\nfox", mode="fun", ratio="1:1")
    assert request_key(**spec.request()) == request_key("a red fox", "fun", "1:1", ())


def test_a_new_field_changes_a_key_only_when_set() -> None:
    base = request_key("a red fox", "fun", "1:1", ())
    assert request_key("a red fox", "fun", "1:1", (), duration=10) != base
    assert request_key("a red fox", "fun", "1:1", (), duration=10) != request_key(
        "a red fox", "fun", "1:1", (), duration=6
    )
    # JobSpec.request() leaves fields at their default out, so they never reach the key
    spec = JobSpec(key="k", row=2, prompt="p", mode="fun", ratio="1:1", images=())
    assert "images" not in spec.request()
