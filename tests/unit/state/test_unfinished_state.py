"""A first run killed while it makes its state never sends the next night to a second folder.

Seen in the chaos suite: a ``kill -9`` between the state's schema and the line that records its
manifest left ``outputs/briefs/state.sqlite`` naming no manifest; every later run passed it by
and paid for the manifest under ``outputs/briefs-csv``, while ``outputs/briefs`` looked empty.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from helpers.records import StubRow

from batchgen.errors import StateConflictError, StateError
from batchgen.models import JobSpec
from batchgen.state import store as store_module
from batchgen.state.location import (
    manifest_identity,
    owner_of,
    state_path_for,
    unfinished,
)
from batchgen.state.store import StateStore


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "briefs.csv"
    path.write_text("prompt\nA fox\n", encoding="utf-8")
    return path


def _empty_file(state: Path) -> None:
    state.touch()  # killed right after the file was created


def _wal_header_only(state: Path) -> None:
    with closing(sqlite3.connect(state)) as conn:  # killed after the journal mode was set
        conn.execute("PRAGMA journal_mode = WAL")


def _schema_without_owner(state: Path) -> None:
    StateStore.open(state).close()  # as versions before this fix could leave it


@pytest.mark.parametrize("leftover", [_empty_file, _wal_header_only, _schema_without_owner])
def test_a_state_left_unfinished_is_taken_up_by_its_folder(
    tmp_path: Path, manifest: Path, leftover: object
) -> None:
    state = tmp_path / "outputs" / "briefs" / "state.sqlite"
    state.parent.mkdir(parents=True)
    leftover(state)  # type: ignore[operator]
    assert unfinished(state)
    assert state_path_for(tmp_path / "outputs", manifest) == state
    with StateStore.open(state, manifest=manifest) as store:
        assert store.get_meta("manifest_path") == manifest_identity(manifest)


def test_a_state_with_rows_or_foreign_tables_is_never_taken_up(
    tmp_path: Path, manifest: Path
) -> None:
    out = tmp_path / "outputs"
    with_rows = out / "briefs" / "state.sqlite"
    with StateStore.open(with_rows) as store:  # no owner, but it holds a row: not a leftover
        spec = JobSpec(key="k1", row=2, prompt="A fox", mode="fun", ratio="1:1")
        store.sync_manifest(["prompt"], [StubRow(2, "k1", {"prompt": "A fox"}, spec, "A fox")])
    assert not unfinished(with_rows)
    assert state_path_for(out, manifest) == out / "briefs-csv" / "state.sqlite"

    foreign = tmp_path / "elsewhere" / "briefs" / "state.sqlite"
    foreign.parent.mkdir(parents=True)
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    assert not unfinished(foreign)
    assert state_path_for(tmp_path / "elsewhere", manifest).parent.name == "briefs-csv"


def test_a_new_state_records_its_manifest_with_its_schema(
    tmp_path: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner goes in with the first migration: a kill after it leaves an owned state."""
    broken = [store_module.MIGRATIONS[0], "SELECT no_such_function();"]
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    state = tmp_path / "outputs" / "briefs" / "state.sqlite"
    with pytest.raises(StateError):  # the second migration fails, as a kill would stop it
        StateStore.open(state, manifest=manifest)
    assert owner_of(state) == manifest_identity(manifest)
    assert not unfinished(state)


def test_a_state_of_another_manifest_on_disk_is_never_shared(
    tmp_path: Path, manifest: Path
) -> None:
    """Two first runs of same-named manifests meeting on one new file: the second refuses."""
    state = tmp_path / "outputs" / "briefs" / "state.sqlite"
    StateStore.open(state, manifest=manifest).close()
    other = tmp_path / "briefs.xlsx"
    other.write_bytes(b"")
    with pytest.raises(StateConflictError, match=r"briefs\.csv"):
        StateStore.open(state, manifest=other)
    # a manifest that moved (its recorded path is gone) keeps its state, as before
    moved = tmp_path / "moved" / "briefs.csv"
    moved.parent.mkdir()
    manifest.rename(moved)
    with StateStore.open(state, manifest=moved) as store:
        assert store.get_meta("manifest_path") == manifest_identity(tmp_path / "briefs.csv")


def _killed_inside_a_transaction(state: Path, table: str) -> None:
    """A child process creates ``table`` and fills it, then dies before its commit: the file
    keeps a hot rollback journal (seen in the chaos suite: a 4,096-byte state.sqlite beside
    state.sqlite-journal), which a read-only connection cannot read."""
    pid = os.fork()
    if pid == 0:  # the child: as a killed run, no commit, no cleanup
        conn = sqlite3.connect(state, isolation_level=None)
        conn.execute("PRAGMA cache_size = 1")  # spill pages to the file before the commit
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"CREATE TABLE {table} (key TEXT, value TEXT)")
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?)", [("k", "x" * 500)] * 200)
        os._exit(0)
    os.waitpid(pid, 0)
    assert Path(f"{state}-journal").exists()


def test_a_state_killed_inside_its_first_transaction_is_taken_up(
    tmp_path: Path, manifest: Path
) -> None:
    state = tmp_path / "outputs" / "briefs" / "state.sqlite"
    state.parent.mkdir(parents=True)
    _killed_inside_a_transaction(state, "meta")
    assert state_path_for(tmp_path / "outputs", manifest) == state
    with StateStore.open(state, manifest=manifest) as store:
        assert store.get_meta("manifest_path") == manifest_identity(manifest)


def test_an_owned_state_with_a_hot_journal_is_still_known_as_its_own(
    tmp_path: Path, manifest: Path
) -> None:
    """The variant: a state with its owner, then a transaction killed before WAL took over
    (any rollback journal left hot): it is still this manifest's, never passed by."""
    state = tmp_path / "outputs" / "briefs" / "state.sqlite"
    state.parent.mkdir(parents=True)
    with closing(sqlite3.connect(state)) as conn, conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('manifest_path', ?)", (manifest_identity(manifest),))
    _killed_inside_a_transaction(state, "filler")
    assert owner_of(state) == manifest_identity(manifest)
    assert state_path_for(tmp_path / "outputs", manifest) == state
