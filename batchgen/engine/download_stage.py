"""The run's download stage: completed rows in, verified files out.

A bounded queue and a few workers. Per video: a path that no other row owns (the manifest's
``VideoFiles``), the download itself (:func:`batchgen.engine.downloads.fetch.download`), then the
row's DOWNLOADED or DOWNLOAD_FAILED committed to its state (after the video and its folder
were synced; the folder syncs of downloads finishing together are one, see
:mod:`batchgen.engine.downloads.syncs`). Retries:

* a cut that added bytes is progress, not a failure; other failures count up to
  ``attempt_limit(Step.DOWNLOAD, ...)`` (``RetryPolicy.max_attempts``) with backoff;
* an expired link, or a body that is not a video, asks the API for fresh links once (a body
  that is still not a video then counts as a failure);
* a CDN's ``Retry-After`` (429/503) is honoured, but never past the run's deadline and never
  longer than ``MAX_CDN_WAIT``: then the row is left for the next run;
* a refused URL or an over-limit body fails the row at once;
* a video path that is a symbolic link, or whose folder leads out of the output folder, fails
  the row at once with a message naming it (nothing is written through a link);
* a full disk leaves the row as it is (its ``.part`` kept) and stops the run
  (``on_disk_full``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from batchgen.atomic import LinkRefusedError, check_inside, refuse_link
from batchgen.config import Settings
from batchgen.engine.downloads.addresses import host_is_private
from batchgen.engine.downloads.container import video_problem
from batchgen.engine.downloads.fetch import (
    DEFAULT_MAX_VIDEO_BYTES,
    CdnBusyError,
    DownloadPolicy,
    ExpiredLinkError,
    NotVideoError,
    RefusedError,
    download,
)
from batchgen.engine.downloads.syncs import SyncGroup
from batchgen.engine.downloads.verify import sniff
from batchgen.engine.manifest_run import ManifestRun, VideoFiles
from batchgen.engine.outcomes import FINAL_MESSAGES
from batchgen.engine.retry import Step, attempt_limit, backoff_delay
from batchgen.errors import DiskFullError, DownloadError
from batchgen.models import (
    AttemptKind,
    AttemptOutcome,
    ErrorKind,
    Job,
    JobStatus,
    TaskState,
    TaskStatus,
)
from batchgen.state.schema import Attempt

__all__ = ["MAX_CDN_WAIT", "DownloadStage", "HashedFiles", "policy_for"]

log = logging.getLogger(__name__)

MAX_CDN_WAIT = 600.0  # seconds one Retry-After may hold a download


def policy_for(settings: Settings) -> DownloadPolicy:
    """The download limits of a run: private addresses only for a private API or the option."""
    return DownloadPolicy(
        max_bytes=settings.downloads.max_video_size or DEFAULT_MAX_VIDEO_BYTES,
        allow_private=settings.downloads.allow_private_urls
        or host_is_private(settings.api.base_url),
        read_timeout=settings.api.timeouts.download_read,
    )


class HashedFiles:
    """``videos/row-<16 hex of the key's SHA-256>_<n>.mp4``, no sidecars: for callers of the
    engine that pass no ``VideoFiles`` (``batchgen run`` always passes one)."""

    def claim(self, job: Job, index: int) -> str:
        digest = hashlib.sha256(job.key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"videos/row-{digest}_{index}.mp4"

    def describe(self, job: Job, index: int, path: str, size: int) -> None:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _inside(dest: Path, out_dir: Path) -> None:
    """RefusedError naming ``dest`` when it is a link or its folder leads out of ``out_dir``."""
    try:
        check_inside(dest, out_dir)
        refuse_link(dest)
    except LinkRefusedError as exc:
        raise RefusedError(str(exc)) from exc


def _finished(dest: Path) -> int | None:
    """The size of a whole video an earlier run finished at ``dest`` (None: there is none).

    A file there that is not a whole video by its structure (an older version kept a CDN's
    cut copy, or the file was damaged since) is deleted, so the row downloads it again."""
    try:
        with dest.open("rb") as handle:
            head = handle.read(64)
        if sniff(head) is None and (problem := video_problem(dest)) is None:
            return dest.stat().st_size
    except (FileNotFoundError, IsADirectoryError):
        return None
    if sniff(head) is None:
        log.warning("%s is not a whole video (%s): it is downloaded again", dest, problem)
        dest.unlink()
    return None


class DownloadStage:
    """Completed rows in, verified files out; one per run, shared by its manifests.

    ``time_left()`` is the seconds until the run's deadline (None: no deadline), which no
    wait may pass;
    ``on_disk_full`` is told once the disk is full, and should stop the run.
    """

    def __init__(
        self,
        cdn: aiohttp.ClientSession,
        settings: Settings,
        *,
        rng: random.Random,
        fresh_status: Callable[[str], Awaitable[TaskStatus | None]],
        stopping: Callable[[], bool],
        time_left: Callable[[], float | None] = lambda: None,
        on_disk_full: Callable[[DiskFullError], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.cdn = cdn
        self.settings = settings
        self.policy = policy_for(settings)
        self.rng = rng
        self._fresh_status = fresh_status
        self._stopping = stopping
        self._time_left = time_left
        self._on_disk_full = on_disk_full
        self._sleep = sleep
        self.disk_full: DiskFullError | None = None
        self._queue: asyncio.Queue[tuple[ManifestRun, Job] | None] = asyncio.Queue(
            maxsize=max(4, settings.downloads.download_concurrency * 4)
        )
        self._queued: set[tuple[int, str]] = set()
        #: the downloads finishing together share their syncs (one thread trip a batch)
        self.syncs = SyncGroup()

    async def feed(self, runs: Iterable[ManifestRun]) -> None:
        """Queue the rows an earlier run completed but did not download."""
        for run in runs:
            for job in run.store.iter_jobs((JobStatus.COMPLETED,)):
                if self._stopping() or self.disk_full:
                    return
                await self.put(run, job)

    async def put(self, run: ManifestRun, job: Job) -> None:
        """Queue one completed row (waits while the queue is full)."""
        # A row can arrive twice (the start-up feed pages through the state while polls
        # complete rows): the set keeps one download per row.
        if (id(run), job.key) not in self._queued:
            self._queued.add((id(run), job.key))
            await self._queue.put((run, job))

    async def close(self, workers: int) -> None:
        """Tell ``workers`` workers that nothing more will come."""
        for _ in range(workers):
            await self._queue.put(None)

    async def worker(self) -> None:
        """Download queued rows until :meth:`close`."""
        while (item := await self._queue.get()) is not None:
            run, job = item
            try:
                if not self._stopping() and self.disk_full is None:
                    await self._download_job(run, job)
            except DiskFullError as exc:
                self._disk_is_full(exc)
            finally:
                self._queued.discard((id(run), job.key))

    def _disk_is_full(self, exc: DiskFullError) -> None:
        if self.disk_full is None:
            self.disk_full = exc
            log.error("%s", exc)
            if self._on_disk_full is not None:
                self._on_disk_full(exc)

    async def _download_job(self, run: ManifestRun, job: Job) -> None:
        names: VideoFiles = run.files or HashedFiles()
        urls, files, sizes = list(job.video_urls), [], []
        for index in range(1, len(urls) + 1):
            try:
                rel = names.claim(job, index)
                dest = run.out_dir / rel
                _inside(dest, run.out_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                size = await self._fetch(run, job, urls, index, dest, rel)
            except _TaskExpired as exc:
                self._expired(run, job, exc.status)
                return
            except DownloadError as exc:
                self._failed(run, job, exc)
                return
            files.append(rel)
            sizes.append(size)
        fields: dict[str, Any] = {"files": tuple(files), "file_sizes": tuple(sizes)}
        if job.error_kind != ErrorKind.NOTE:  # a vendor's note beside a completed task
            fields |= {"error_kind": None, "error_message": None}  # stays; an error goes
        on_made = run.counters.counting("downloaded")
        await run.commits.move(job.key, JobStatus.DOWNLOADED, on_made=on_made, **fields)

    @staticmethod
    def _expired(run: ManifestRun, job: Job, status: TaskStatus) -> None:
        """Asked again for fresh links, the vendor says the task expired: final, said so."""
        message = FINAL_MESSAGES[JobStatus.EXPIRED].format(task=job.task_id, word=status.status)
        run.store.transition(
            job.key,
            JobStatus.EXPIRED,
            error_kind=ErrorKind.PERMANENT,
            error_message=f"its video links expired before they were fetched, and {message}",
            attempt=Attempt(AttemptKind.DOWNLOAD, AttemptOutcome.FAILED, message),
        )
        log.warning(
            "%s: row %d: the task expired before its videos were fetched", run.name, job.row
        )

    @staticmethod
    def _failed(run: ManifestRun, job: Job, exc: DownloadError) -> None:
        run.store.transition(
            job.key,
            JobStatus.DOWNLOAD_FAILED,
            error_kind=ErrorKind.DOWNLOAD,
            error_message=str(exc),
            attempt=Attempt(AttemptKind.DOWNLOAD, AttemptOutcome.FAILED, str(exc)),
        )
        log.warning("%s: row %d: %s", run.name, job.row, exc)

    async def _fetch(
        self, run: ManifestRun, job: Job, urls: list[str], index: int, dest: Path, rel: str
    ) -> int:
        names: VideoFiles = run.files or HashedFiles()
        if (size := _finished(dest)) is not None:  # finished by an earlier run
            names.describe(job, index, rel, size)
            return size
        refreshed, failures = False, 0
        part = dest.with_name(dest.name + ".part")
        while True:
            had = _size(part)
            try:
                done = await download(
                    self.cdn,
                    urls[index - 1],
                    dest,
                    policy=self.policy,
                    before_rename=lambda n: names.describe(job, index, rel, n),
                    syncs=self.syncs,
                )
                return done.size
            except (ExpiredLinkError, NotVideoError) as exc:
                # a login page often means the link wants a fresh signature, like a 403
                if not refreshed and await self._refresh_urls(run, job, urls):
                    refreshed = True
                    continue
                if isinstance(exc, ExpiredLinkError):
                    raise
                failures = await self._failure(exc, failures + 1)
            except RefusedError:
                raise
            except DownloadError as exc:
                # A cut that still added bytes is progress, not a failure: the file is
                # finite, so a connection that keeps dropping still ends the download.
                failures = await self._failure(exc, failures + (_size(part) <= had))

    async def _failure(self, exc: DownloadError, failures: int) -> int:
        """Re-raise ``exc`` after the last attempt (or on a stop); else pause; the count."""
        if failures >= attempt_limit(Step.DOWNLOAD, self.settings.limits.retry) or self._stopping():
            raise exc
        await self._pause(exc, failures)
        return failures

    async def _pause(self, exc: DownloadError, failures: int) -> None:
        """Back off before the next try; a CDN's Retry-After counts, within the deadline."""
        delay = backoff_delay(max(failures, 1), self.settings.limits.retry, rng=self.rng)
        hint = exc.retry_after if isinstance(exc, CdnBusyError) else None
        if hint is not None:
            if hint > MAX_CDN_WAIT:
                raise DownloadError(
                    f"{exc}: longer than batchgen waits ({MAX_CDN_WAIT:.0f} s); a re-run tries "
                    "again"
                ) from exc
            delay = max(delay, hint)
        left = self._time_left()
        if left is not None and delay > left:
            raise DownloadError(
                f"{exc}; waiting {delay:.0f} s would pass the run's deadline: a re-run continues"
            ) from exc
        await self._sleep(delay)

    async def _refresh_urls(self, run: ManifestRun, job: Job, urls: list[str]) -> bool:
        """Ask the API again for the task: its answer may carry fresh links."""
        status = await self._fresh_status(job.task_id) if job.task_id else None
        if status is not None and status.state is TaskState.EXPIRED:
            raise _TaskExpired(status)
        if status is None or status.state is not TaskState.COMPLETED:
            return False
        if len(status.urls) != len(urls):
            return False
        urls[:] = status.urls
        run.store.transition(job.key, JobStatus.COMPLETED, video_urls=status.urls)
        return True


class _TaskExpired(DownloadError):
    """A fresh status call for expired links answered that the task itself expired."""

    def __init__(self, status: TaskStatus) -> None:
        super().__init__(f"task {status.task_id} expired")
        self.status = status
