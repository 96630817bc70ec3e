"""Stand-ins and small builders for records and manifests the tests share.

* ``StubRow``: a stand-in for ``batchgen.manifest.load.ManifestRow`` (a valid row unless its
  ``spec`` is None); ``make_rows(n)`` builds ``n`` valid ones.
* ``finished_run(run_id, started_at, seconds, command, **counts)``: a ``RunInfo``.
* ``write_briefs(path, n)``: a CSV manifest of ``n`` numbered rows with ids.
* ``CountingStore(store)``: a state that counts the rows its ``iter_jobs`` builds (for tests
  that count reads, never time them).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.models import Job, JobSpec, RunInfo
from batchgen.state.store import StateStore


@dataclass(frozen=True)
class StubRow:
    """A stand-in for ``batchgen.manifest.load.ManifestRow``."""

    row: int
    key: str
    user: dict[str, Any]
    spec: JobSpec | None
    prompt: str
    problems: tuple[Any, ...] = ()
    skipped: str | None = None  # a row hidden in the sheet
    price: int | None = 40  # a manifest row carries its price (the default provider's)


def finished_run(
    run_id: int,
    started_at: dt.datetime,
    seconds: float,
    command: str,
    *,
    requests: int = 0,
    rate_limited: int = 0,
    credits: int = 0,
) -> RunInfo:
    """A ``RunInfo`` of a run that took ``seconds``; ``counts``: requests, rate_limited,
    credits."""
    return RunInfo(
        run_id=run_id,
        started_at=started_at,
        ended_at=started_at + dt.timedelta(seconds=seconds),
        command=command,
        requests=requests,
        rate_limited=rate_limited,
        credits=credits,
    )


def write_briefs(path: Path, n: int) -> Path:
    """A CSV manifest of ``n`` rows (``id`` r0.., ``prompt`` "<stem> prompt i", fun, 1:1)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows([f"r{i}", f"{path.stem} prompt {i}", "fun", "1:1"] for i in range(n))
    return path


def make_rows(n: int, *, start: int = 0) -> list[StubRow]:
    """``n`` valid rows numbered from ``start`` (keys ``id:<i>``, spreadsheet rows from i + 2)."""
    rows = []
    for i in range(start, start + n):
        prompt = f"prompt number {i}"
        spec = JobSpec(key=f"id:{i}", row=i + 2, prompt=prompt, mode="fun", ratio="1:1")
        rows.append(StubRow(i + 2, spec.key, {"id": str(i), "prompt": prompt}, spec, prompt))
    return rows


class CountingStore:
    """A state that counts the rows its ``iter_jobs`` builds."""

    def __init__(self, store: StateStore) -> None:
        self.inner = store
        self.built = 0

    def iter_jobs(self, *args: Any, **kwargs: Any) -> Iterator[Job]:
        for job in self.inner.iter_jobs(*args, **kwargs):
            self.built += 1
            yield job

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
