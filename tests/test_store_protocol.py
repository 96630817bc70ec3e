"""The store seam: the engine and the outputs see the state only through ``Store``."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from batchgen.state.protocol import Store
from batchgen.state.store import StateStore

ROOT = Path(__file__).parents[1] / "batchgen"


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
    for name in _members(Store):
        assert hasattr(store, name), f"StateStore lacks {name}"
        wanted = getattr(Store, name)
        if isinstance(wanted, property):
            continue
        theirs = inspect.signature(getattr(StateStore, name))
        ours = inspect.signature(wanted)
        assert list(theirs.parameters) == list(ours.parameters), name


def test_engine_and_outputs_use_only_the_protocol_of_the_store() -> None:
    """Every ``store.<name>`` the engine and the outputs call is in the protocol, and none of
    them names the SQLite class."""
    allowed = _members(Store)
    for package in ("engine", "output"):
        for path in sorted((ROOT / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Name):
                    assert node.id != "StateStore", f"{path.name} names StateStore"
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Attribute | ast.Name)
                    and (getattr(node.value, "attr", None) or getattr(node.value, "id", ""))
                    == "store"
                    and path.name != "latency_store.py"  # its ``store`` is the latency file
                ):
                    assert node.attr in allowed, f"{path.name} calls store.{node.attr}"


def test_error_kinds_are_stored_as_the_plain_strings_older_state_files_hold() -> None:
    from batchgen.engine.retry import PERMANENT, TRANSIENT, task_error_kind
    from batchgen.models import ErrorKind

    assert [k.value for k in ErrorKind] == ["transient", "permanent", "gone", "note", "download"]
    assert task_error_kind("Network error") is TRANSIENT is ErrorKind.TRANSIENT
    assert task_error_kind("content policy") is PERMANENT
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (kind TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (ErrorKind.GONE,))
    assert conn.execute("SELECT kind, typeof(kind) FROM t").fetchone() == ("gone", "text")
    assert ErrorKind("gone") is ErrorKind.GONE  # an old row's string reads back
