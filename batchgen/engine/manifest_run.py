"""One manifest taking part in a run, and what happened to it in this run."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from batchgen.models import Job
from batchgen.state.store import StateStore

__all__ = ["Counters", "ManifestRun"]


@dataclass
class Counters:
    """What happened in this run, for progress lines and the summary."""

    submitted: int = 0
    completed: int = 0
    downloaded: int = 0
    failed: int = 0
    rejected: int = 0
    unknown: int = 0
    lost: int = 0  # tasks the vendor said it does not know
    credits: int = 0  # charged: tasks finished this run, never below 40 each
    possible: int = 0  # possibly charged: submits of this run whose outcome is unknown
    retried: int = 0


@dataclass(eq=False)
class ManifestRun:
    """One manifest taking part in the run."""

    name: str
    store: StateStore
    out_dir: Path
    counters: Counters = field(default_factory=Counters)
    cursor: int = 0  # highest row number already handed to a submitter
    buffer: deque[Job] = field(default_factory=deque)
    retry: deque[tuple[float, Job]] = field(default_factory=deque)  # (not before, job)
    exhausted: bool = False
