"""Issue 23 item 4, the store: a busy state waits (with a message, bounded), then gives up
with StateBusyError; exit 2 is never the code of a run that sent. Whole runs:
``tests/e2e/test_state_busy.py``."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchgen.app.outcome import ended_by
from batchgen.errors import ExitCode, StateBusyError, StateError
from batchgen.state.protocol import BusyWait
from batchgen.state.store import StateStore


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program's open write transaction on the state (a viewer's unsaved edit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


# ---------------------------------------------------------------- the store
def test_a_store_waits_for_a_write_lock_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    said: list[str] = []
    told = threading.Event()

    def notice(text: str) -> None:
        said.append(text)
        told.set()

    with StateStore.open(path) as store:
        store.wait_while_busy(BusyWait(time_left=lambda: 60.0, notice=notice, per_try=0.05))
        with write_lock(path) as viewer:
            # the viewer gives up its edit once the run has said it waits, not before
            def let_go() -> None:
                if told.wait(30):
                    viewer.rollback()

            releaser = threading.Thread(target=let_go)
            releaser.start()
            store.set_meta("k", "v")  # blocks until the viewer lets go
            releaser.join()
        assert store.get_meta("k") == "v"
    assert "is busy: another program holds a write lock" in said[0] and str(path) in said[0]
    assert "is free again" in said[1]


def test_a_store_gives_up_when_the_wait_is_over(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    left = iter([5.0, 5.0, 0.0])  # the deadline comes during the third try
    said: list[str] = []
    with StateStore.open(path) as store, write_lock(path):
        store.wait_while_busy(
            BusyWait(time_left=lambda: next(left), notice=said.append, per_try=0.01)
        )
        with pytest.raises(StateBusyError) as caught:
            store.set_meta("k", "v")
    assert caught.value.exit_code == ExitCode.LOCKED
    assert str(path) in str(caught.value) and "nothing is lost" in str(caught.value)
    assert len(said) == 1  # one message for the whole wait


def test_without_a_wait_a_busy_state_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore.open(path) as store, write_lock(path):
        store._set_timeout(0.01)
        with pytest.raises(StateError, match="busy"):
            store.set_meta("k", "v")


def test_exit_2_is_never_the_code_of_a_run_that_sent() -> None:
    busy = StateBusyError("busy")
    assert ended_by(busy, sent=True) == ExitCode.STOPPED_EARLY
    assert ended_by(busy, sent=False) == ExitCode.LOCKED
    assert ended_by(StateError("damaged"), sent=True) == ExitCode.ATTENTION
    assert ended_by(StateError("damaged"), sent=False) == ExitCode.USAGE
