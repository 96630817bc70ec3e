"""The figures of a manifest's runs, for the Summary sheet and the gallery header."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from batchgen.models import NEEDS_ATTENTION, Job, JobStatus, RunInfo
from batchgen.output.cells import STATUS_TONE
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = ["Summary", "summarise"]


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The figures of a manifest's runs, for the Summary sheet and the gallery header.

    Rows and takes are counted apart: a row of the sheet asks for one take (video
    generation) or several (variants, regenerations). ``counts`` has every status (in
    ``JobStatus`` order, zeros included) over the takes of the rows still in the manifest;
    ``takes`` is their number, ``rows`` the number of rows they belong to, and ``deleted``
    the takes kept from earlier runs whose row left the manifest. ``videos`` counts the video
    files on disk of the takes in the manifest. ``started_at``/``ended_at``/
    ``duration_s``/``command`` describe the last run; ``credits``, ``requests`` and
    ``rate_limited`` (429s met) are totals over every run, ``runs`` every run oldest first.
    Money is in ``unit`` (the provider's: credits, or micro-dollars); ``usd`` is in dollars.
    """

    counts: dict[str, int]
    rows: int
    credits: int
    usd: float
    requests: int
    rate_limited: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    command: str
    version: str
    manifest: str
    deleted: int = 0
    committed: int = 0  # credits of tasks in flight (40 each)
    possible: int = 0  # credits possibly charged by submits of unknown outcome (40 each)
    videos: int = 0
    runs: tuple[RunInfo, ...] = field(default=())
    approved: int = 0  # downloaded jobs whose decision is approve
    credits_per_keeper: float | None = None  # every credit spent / approved videos
    unit: BillingUnit = CREDIT  # what ``credits``, ``committed`` and ``possible`` count

    @property
    def takes(self) -> int:
        """Takes of the rows in the manifest (every status)."""
        return sum(self.counts.values())

    @property
    def needs_attention(self) -> int:
        """How many takes in the manifest a person should look at."""
        return sum(n for status, n in self.counts.items() if status in NEEDS_ATTENTION)

    @property
    def failed(self) -> int:
        """Takes in the manifest that ended without their videos (invalid, refused, failed)."""
        return sum(n for status, n in self.counts.items() if STATUS_TONE[status] == "failed")


def summarise(
    jobs: Iterable[Job],
    runs: Sequence[RunInfo],
    *,
    manifest: str,
    version: str,
    unit: BillingUnit = CREDIT,
) -> Summary:
    """Count the takes per status and the rows they belong to; total the runs' requests, 429s
    and credits. ``jobs`` in any order, read once."""
    counts = {status.value: 0 for status in JobStatus}
    deleted = videos = 0
    rows: set[int] = set()
    for job in jobs:
        if job.in_manifest:
            counts[str(job.status)] = counts.get(str(job.status), 0) + 1
            videos += len(job.files)
            rows.add(job.row)
        else:
            deleted += 1
    ordered = tuple(sorted(runs, key=lambda run: run.run_id))
    last = ordered[-1] if ordered else None
    credits = sum(run.credits for run in runs)
    return Summary(
        counts=counts,
        rows=len(rows),
        deleted=deleted,
        videos=videos,
        credits=credits,
        usd=round(unit.usd(credits), 6),
        unit=unit,
        requests=sum(run.requests for run in runs),
        rate_limited=sum(run.rate_limited for run in runs),
        started_at=last.started_at if last else None,
        ended_at=last.ended_at if last else None,
        duration_s=_duration(last),
        command=last.command if last else "",
        version=version,
        manifest=manifest,
        runs=ordered,
    )


def _duration(run: RunInfo | None) -> float | None:
    if run is None or run.ended_at is None:
        return None
    return (run.ended_at - run.started_at).total_seconds()
