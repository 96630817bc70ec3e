"""The store seam: what the engine and the outputs need of a run's state.

:class:`Store` lists exactly the methods ``engine/*`` and ``output/*`` call; they are typed
against it, not against the SQLite class, so a second store (in memory, a server) needs only
these. :class:`batchgen.state.store.StateStore` is the one implementation; the commands in
``app/`` (open, lock, sync with the manifest, record runs) still use it directly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Protocol

from batchgen.models import Job, JobStatus, RunInfo
from batchgen.state.store import Attempt, Spend, StateStore

__all__ = ["Store"]


class Store(Protocol):
    """One manifest's rows, their history and the run records (see ``StateStore`` for the
    meaning, errors and units of each method)."""

    @property
    def path(self) -> Path:
        """The state file; its parent is the manifest's output folder."""
        ...

    def transition(
        self,
        key: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        attempt: Attempt | None = None,
        **fields: Any,
    ) -> None: ...

    def retry_transient(self, key: str, max_attempts: int) -> bool: ...

    def get(self, key: str) -> Job: ...

    def iter_jobs(
        self,
        statuses: Collection[JobStatus] | None = None,
        *,
        in_manifest_only: bool = False,
        batch: int = 1000,
    ) -> Iterator[Job]: ...

    def next_pending(self, limit: int, *, after_row: int = 0) -> list[Job]: ...

    def counts(self, *, in_manifest_only: bool = False) -> dict[JobStatus, int]: ...

    def fingerprint(self) -> str: ...

    def spend(self) -> Spend: ...

    def latency_samples(self, limit: int = 2000) -> list[float]: ...

    def columns(self) -> list[str]: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def runs(self) -> list[RunInfo]: ...

    def origins(self) -> dict[str, tuple[str | None, str | None]]: ...

    def decisions(self) -> dict[str, str]: ...


def _sqlite_is_a_store(store: StateStore) -> Store:
    """Never called: mypy checks here that the SQLite store satisfies :class:`Store`."""
    return store
