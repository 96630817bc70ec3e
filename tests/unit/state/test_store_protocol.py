"""The store seam: the engine and the outputs see the state only through ``Store``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from helpers.paths import REPO

from batchgen.state.protocol import ManifestStore, Store
from batchgen.state.store import StateStore

ROOT = REPO / "batchgen"


def _members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def test_the_sqlite_store_has_every_member_of_the_protocol_with_the_same_parameters(
    tmp_path: Path,
) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert store.path == tmp_path / "state.db"  # the one attribute of the protocol
    finally:
        store.close()
    for name in _members(Store) | _members(ManifestStore):
        assert hasattr(store, name), f"StateStore lacks {name}"
        wanted = getattr(ManifestStore if name in vars(ManifestStore) else Store, name)
        if isinstance(wanted, property):
            continue
        theirs = inspect.signature(getattr(StateStore, name))
        ours = inspect.signature(wanted)
        assert list(theirs.parameters) == list(ours.parameters), name


def _store_calls(package: str) -> list[tuple[str, str]]:
    """``(file, name)`` of every ``store.<name>`` in ``batchgen/<package>``; fails on any
    mention of the SQLite class."""
    calls = []
    for path in sorted((ROOT / package).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id != "StateStore", f"{package}/{path.name} names StateStore"
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute | ast.Name)
                and (getattr(node.value, "attr", None) or getattr(node.value, "id", "")) == "store"
                and path.name != "latency_store.py"  # its ``store`` is the latency file
            ):
                calls.append((path.name, node.attr))
    return calls


@pytest.mark.parametrize("package", ["engine", "output"])
def test_engine_and_outputs_use_only_the_protocol_of_the_store(package: str) -> None:
    """Every ``store.<name>`` the engine and the outputs call is in ``Store``, and none of
    them names the SQLite class."""
    calls = _store_calls(package)
    assert calls, "the check found no store calls: has the variable been renamed?"
    for name, attr in calls:
        assert attr in _members(Store), f"{name} calls store.{attr}"


def test_the_commands_use_only_the_manifest_store_protocol() -> None:
    """``app/`` opens states through ``open_store`` and calls only ``ManifestStore``: a
    second backend needs no edit there."""
    allowed = _members(Store) | _members(ManifestStore)
    calls = _store_calls("app")
    assert calls
    for name, attr in calls:
        assert attr in allowed, f"app/{name} calls store.{attr}"


def test_error_kinds_are_stored_as_the_plain_strings_older_state_files_hold() -> None:
    from batchgen.engine.retry import PERMANENT, TRANSIENT, task_error_kind
    from batchgen.models import ErrorKind

    assert [k.value for k in ErrorKind] == [
        "transient",
        "permanent",
        "gone",
        "note",
        "download",
        "ambiguous",
        "invalid",
        "skipped",
    ]
    assert task_error_kind("Network error") is TRANSIENT is ErrorKind.TRANSIENT
    assert task_error_kind("content policy") is PERMANENT
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (kind TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (ErrorKind.GONE,))
    assert conn.execute("SELECT kind, typeof(kind) FROM t").fetchone() == ("gone", "text")
    assert ErrorKind("gone") is ErrorKind.GONE  # an old row's string reads back
