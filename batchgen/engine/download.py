"""Resumable, checked, atomic video downloads, and the run's download stage.

A video goes to ``videos/<row key>_<n>.mp4.part`` first. A later attempt resumes it with a
``Range`` request; the length is checked against ``Content-Length`` (or ``Content-Range``),
the file is fsynced and only then renamed to its final name, so a finished name always means a
whole file. File names come from the row key, never from the URL.

:class:`DownloadStage` is the part of a run that takes completed rows: a bounded queue, a few
workers, link refresh through the API when the CDN says a link expired, and the row's final
DOWNLOADED or DOWNLOAD_FAILED committed to its state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from batchgen.atomic import fsync_dir
from batchgen.config import Settings
from batchgen.engine.manifest_run import ManifestRun
from batchgen.engine.retry import backoff_delay
from batchgen.errors import DownloadError
from batchgen.models import Job, JobStatus, TaskState, TaskStatus
from batchgen.state.store import Attempt

__all__ = ["CHUNK", "DownloadStage", "Downloaded", "download", "video_name"]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXPIRED = frozenset({401, 403, 404, 410})


def video_name(key: str, index: int) -> str:
    """A safe file name for video ``index`` (from 1) of the row ``key``."""
    safe = _UNSAFE.sub("_", key).strip("._") or "row"
    return f"{safe[:120]}_{index}.mp4"


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A finished download."""

    path: Path
    size: int


class ExpiredLinkError(DownloadError):
    """The CDN no longer serves this URL (403/404/410): ask the API for fresh links."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    read_timeout: float = 60.0,
) -> Downloaded:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); returns the verified size."""
    part = dest.with_name(dest.name + ".part")
    offset = _size(part)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=read_timeout)
    try:
        async with session.get(url, headers=headers, timeout=timeout) as response:
            expected = await _stream(response, part, offset, url)
    except aiohttp.ClientPayloadError as exc:
        raise DownloadError(
            f"download of {url} was cut short ({exc}); it resumes on the next attempt"
        ) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadError(f"download of {url} failed: {exc or type(exc).__name__}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot write {part}: {exc.strerror}") from exc
    return _finish(part, dest, expected, url)


async def _stream(response: aiohttp.ClientResponse, part: Path, offset: int, url: str) -> int:
    """Write the body to ``part``; returns the full length the server announced (or -1)."""
    if response.status in _EXPIRED:
        raise ExpiredLinkError(f"the video link has expired or is gone (HTTP {response.status})")
    if response.status == 416 and offset:
        return _total_from_range(response.headers.get("Content-Range"), default=offset)
    if response.status not in (200, 206):
        raise DownloadError(f"download of {url} answered HTTP {response.status}")
    resumed = response.status == 206 and offset > 0
    expected = _expected_total(response, offset if resumed else 0)
    with open(part, "ab" if resumed else "wb") as out:
        async for chunk in response.content.iter_chunked(CHUNK):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return expected


def _expected_total(response: aiohttp.ClientResponse, offset: int) -> int:
    total = _total_from_range(response.headers.get("Content-Range"), default=-1)
    if total >= 0:
        return total
    length = response.content_length
    return offset + length if length is not None else -1


def _total_from_range(value: str | None, *, default: int) -> int:
    # "bytes 100-199/5000" or "bytes */5000"
    if value and "/" in value:
        total = value.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return default


def _finish(part: Path, dest: Path, expected: int, url: str) -> Downloaded:
    size = part.stat().st_size
    if expected >= 0 and size != expected:
        if size > expected:
            part.unlink()  # garbage: start over next time
        raise DownloadError(
            f"download of {url} was cut short: got {size} of {expected} bytes; "
            "it resumes on the next attempt"
        )
    if size == 0:
        part.unlink()
        raise DownloadError(f"download of {url} was empty")
    os.replace(part, dest)
    fsync_dir(dest.parent)
    return Downloaded(dest, size)


class DownloadStage:
    """Completed rows in, verified files out; one per run, shared by its manifests."""

    def __init__(
        self,
        cdn: aiohttp.ClientSession,
        settings: Settings,
        *,
        rng: random.Random,
        fresh_status: Callable[[str], Awaitable[TaskStatus | None]],
        stopping: Callable[[], bool],
    ) -> None:
        self.cdn = cdn
        self.settings = settings
        self.rng = rng
        self._fresh_status = fresh_status
        self._stopping = stopping
        self._queue: asyncio.Queue[tuple[ManifestRun, Job] | None] = asyncio.Queue(
            maxsize=max(4, settings.download_concurrency * 4)
        )
        self._queued: set[tuple[int, str]] = set()

    async def feed(self, runs: Iterable[ManifestRun]) -> None:
        """Queue the rows an earlier run completed but did not download."""
        for run in runs:
            for job in run.store.iter_jobs((JobStatus.COMPLETED,)):
                if self._stopping():
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
                if not self._stopping():
                    await self._download_job(run, job)
            finally:
                self._queued.discard((id(run), job.key))

    async def _download_job(self, run: ManifestRun, job: Job) -> None:
        folder = run.out_dir / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        urls, files, sizes = list(job.video_urls), [], []
        for index in range(1, len(urls) + 1):
            dest = folder / video_name(job.key, index)
            try:
                size = await self._fetch(run, job, urls, index, dest)
            except DownloadError as exc:
                run.store.transition(
                    job.key,
                    JobStatus.DOWNLOAD_FAILED,
                    error_kind="download",
                    error_message=str(exc),
                    attempt=Attempt("download", "failed", str(exc)),
                )
                log.warning("%s: row %d: %s", run.name, job.row, exc)
                return
            files.append(dest.relative_to(run.out_dir).as_posix())
            sizes.append(size)
        run.store.transition(
            job.key,
            JobStatus.DOWNLOADED,
            files=tuple(files),
            file_sizes=tuple(sizes),
            # a vendor's note beside a completed task stays; a download error is cleared
            **({} if job.error_kind == "note" else {"error_kind": None, "error_message": None}),
        )
        run.counters.downloaded += 1

    async def _fetch(
        self, run: ManifestRun, job: Job, urls: list[str], index: int, dest: Path
    ) -> int:
        if dest.exists():  # finished by an earlier run: only whole files get their name
            return dest.stat().st_size
        policy, refreshed, failures = self.settings.retry, False, 0
        part = dest.with_name(dest.name + ".part")
        while True:
            had = _size(part)
            try:
                done = await download(
                    self.cdn,
                    urls[index - 1],
                    dest,
                    read_timeout=self.settings.timeouts.download_read,
                )
                return done.size
            except ExpiredLinkError:
                if refreshed or not await self._refresh_urls(run, job, urls):
                    raise
                refreshed = True
            except DownloadError:
                # A cut that still added bytes is progress, not a failure: the file is
                # finite, so a connection that keeps dropping still ends the download.
                failures = failures if _size(part) > had else failures + 1
                if failures >= policy.max_attempts or self._stopping():
                    raise
                await asyncio.sleep(backoff_delay(max(failures, 1), policy, rng=self.rng))

    async def _refresh_urls(self, run: ManifestRun, job: Job, urls: list[str]) -> bool:
        """Ask the API again for the task: its answer may carry fresh links."""
        status = await self._fresh_status(job.task_id) if job.task_id else None
        if status is None or status.state is not TaskState.COMPLETED:
            return False
        if len(status.urls) != len(urls):
            return False
        urls[:] = status.urls
        run.store.transition(job.key, JobStatus.COMPLETED, video_urls=status.urls)
        return True
