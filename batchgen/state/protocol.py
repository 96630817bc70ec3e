"""The store seam: what the rest of batchgen needs of a manifest's state.

:class:`Store` lists exactly the methods ``engine/*`` and ``output/*`` call; :class:`ManifestStore`
adds what the commands in ``app/`` call (open, lock, sync with the manifest, requeue, record
runs and reviews). Both are typed against these protocols, never the SQLite class, and open a
state only through :func:`batchgen.state.factory.open_store`. So a second store (Postgres, a
server) is one new module implementing :class:`ManifestStore` plus one line in ``open_store``.
:class:`batchgen.state.store.StateStore` is the one implementation today.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from batchgen.models import Job, JobSpec, JobStatus, RunInfo
from batchgen.state.rows import RowLike, SyncReport
from batchgen.state.schema import Attempt, Move
from batchgen.state.spend import Spend

__all__ = ["BusyWait", "ManifestStore", "Store"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BusyWait:
    """How long a store waits for another program's write lock on its file, and who is told.

    ``time_left()``: seconds the wait may still last (the run's deadline plus its grace, or
    the outage timeout without one); at or below 0 the store gives up with StateBusyError.
    ``notice(text)``: told when a wait starts and when it ends. ``gave_up(error)``: told,
    before the error is raised, when the store gives up (whichever task met it, the run can
    stop as a whole). ``per_try``: seconds the store itself waits before each check (the
    first message comes after that long).
    """

    time_left: Callable[[], float]
    notice: Callable[[str], None]
    gave_up: Callable[[Exception], None] | None = None
    per_try: float = 2.0


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

    def transition_many(self, moves: Sequence[Move]) -> list[str | None]: ...

    def retry_transient(self, key: str, max_attempts: int) -> bool: ...

    def get(self, key: str) -> Job: ...

    def iter_jobs(
        self,
        statuses: Collection[JobStatus] | None = None,
        *,
        in_manifest_only: bool = False,
        updated_since: dt.datetime | None = None,
        batch: int = 1000,
    ) -> Iterator[Job]: ...

    def next_pending(self, limit: int, *, after_row: int = 0) -> list[Job]: ...

    def counts(self, *, in_manifest_only: bool = False) -> dict[JobStatus, int]: ...

    def row_count(self, *, in_manifest_only: bool = False) -> int: ...

    def fingerprint(self) -> str: ...

    def spend(self) -> Spend: ...

    def latency_samples(self, limit: int = 2000) -> list[float]: ...

    def columns(self) -> list[str]: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def runs(self) -> list[RunInfo]: ...

    def origins(self) -> dict[str, tuple[str | None, str | None]]: ...

    def decisions(self) -> dict[str, str]: ...


class ManifestStore(Store, Protocol):
    """A manifest's state as the commands use it (see ``StateStore`` for each method)."""

    def close(self) -> None: ...
    def acquire_lock(self) -> None: ...
    def release_lock(self) -> None: ...
    def bind_base_url(self, base_url: str, *, rebind: bool = False) -> None: ...
    def wait_while_busy(self, busy: BusyWait | None) -> None: ...
    def bind_provider(
        self,
        provider: str,
        *,
        unit: str,
        floor: bool,
        price_of: Callable[[JobSpec], int],
        legacy: str,
    ) -> None: ...
    def fill_prices(self, price_of: Callable[[JobSpec], int]) -> None: ...
    def sync_manifest(self, columns: list[str], rows: Iterable[RowLike]) -> SyncReport: ...
    def recover_interrupted(self) -> int: ...
    def requeue_unknown(self) -> int: ...
    def requeue_failed(self, *, include_permanent: bool, max_attempts: int) -> int: ...
    def requeue_downloads(self) -> int: ...
    def hold(self, held: Mapping[str, str]) -> int: ...
    def generated_requests(self) -> list[JobSpec]: ...
    def done_keys(self) -> set[str]: ...
    def attempts(self, key: str | None = None) -> list[dict[str, Any]]: ...
    def start_run(self, *, command: str, version: str) -> int: ...
    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        exit_code: int,
        requests: int,
        rate_limited: int,
        credits: int,
    ) -> None: ...
    def last_run(self) -> RunInfo | None: ...
    def record_templates(self, templates: Mapping[str, str]) -> None: ...
    def add_regeneration(self, key: str, replaces: str) -> None: ...
    def regenerated(self) -> set[str]: ...
    def kept_keys(self) -> list[str]: ...
    def record_decisions(self, decisions: Mapping[str, str | None]) -> int: ...
    def task_log(self) -> list[dict[str, Any]]: ...
    def __enter__(self) -> ManifestStore: ...
    def __exit__(self, *exc_info: object) -> None: ...
