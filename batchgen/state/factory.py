"""Where a manifest's state lives: the one place that picks the store implementation.

Today every state is an SQLite file (:class:`batchgen.state.store.StateStore`). A second
backend registers here, and nothing else in batchgen changes: the rest sees only
:class:`batchgen.state.protocol.ManifestStore`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from batchgen.state.protocol import BusyWait, ManifestStore
from batchgen.state.store import StateStore

__all__ = ["open_store"]


def open_store(
    path: Path,
    *,
    manifest: Path | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    busy: BusyWait | None = None,
) -> ManifestStore:
    """Open (creating and migrating if needed) the state at ``path``; ``manifest`` is recorded
    as its owner the first time; ``busy``: wait for another program's write lock (see
    ``BusyWait``). Raises StateError (exit 2) for a file that is not a usable state,
    StateBusyError (exit 4) when it stays busy, DiskFullError (exit 7) when it cannot be
    written."""
    return StateStore.open(path, manifest=manifest, clock=clock, busy=busy)
