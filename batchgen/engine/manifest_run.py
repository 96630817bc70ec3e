"""One manifest taking part in a run, and what happened to it in this run."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from batchgen.engine.commit_group import CommitGroup
from batchgen.models import Job
from batchgen.state.protocol import Store

__all__ = ["Counters", "ManifestRun", "VideoFiles"]


class VideoFiles(Protocol):
    """Where a manifest's videos go (``batchgen.output.naming.FileNames`` is the one used)."""

    def claim(self, job: Job, index: int) -> str:
        """Path of video ``index`` (from 1) relative to the output folder, POSIX form, owned
        by no other row; raises DownloadError when every candidate is another row's."""
        ...

    def describe(self, job: Job, index: int, path: str, size: int) -> None:
        """Record a verified video (its sidecar) just before it takes its final name."""
        ...


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
    credits: int = 0  # charged (billing units): tasks finished this run
    possible: int = 0  # possibly charged (billing units): submits whose outcome is unknown
    retried: int = 0
    #: the largest ratio of a task's charge to its row's price met this run (1.0: none above
    #: it); the budget counts tasks in flight and the next submits at their price times this
    drift: float = 1.0

    def counting(self, name: str, credits: int = 0) -> Callable[[], None]:
        """A hook adding one to counter ``name`` (and ``credits``), for a group commit's
        ``on_made``: the counters then change when the state does."""

        def count() -> None:
            setattr(self, name, getattr(self, name) + 1)
            self.credits += credits

        return count


@dataclass(eq=False)
class ManifestRun:
    """One manifest taking part in the run."""

    name: str
    store: Store
    out_dir: Path
    counters: Counters = field(default_factory=Counters)
    cursor: int = 0  # highest row number already handed to a submitter
    buffer: deque[Job] = field(default_factory=deque)
    retry: deque[tuple[float, Job]] = field(default_factory=deque)  # (not before, job)
    exhausted: bool = False
    files: VideoFiles | None = None  # None: hashed names, no sidecars (library use)
    #: told (row, None) right after a submit's intent is committed, before its POST leaves,
    #: and (row, task id) right after its task id is; must not raise (the per-user record of
    #: generated requests, see ``app/copies.py``, which writes what it was told at each
    #: ``commits.after_commit``)
    on_generated: Callable[[Job, str | None], None] | None = None
    #: the rows of this manifest that move together share one commit (engine/commit_group)
    commits: CommitGroup = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.commits = CommitGroup(self.store)
