"""One video download: resumable, bounded, verified, atomic.

A video goes to ``<name>.mp4.part`` first; a later attempt resumes it with ``Range``. Before a
file takes its final name it must be proven whole and a video:

* **Encoding**: ``Accept-Encoding: identity`` is asked and bodies are read as sent. A body
  sent encoded anyway (gzip, deflate, br) is decoded here, its length checked on the encoded
  bytes (what ``Content-Length`` counts) and its end proven by the encoding's own trailer; an
  encoded answer is never resumed (its ranges do not line up with decoded bytes).
* **Length**: checked against ``Content-Range``'s total or ``Content-Length`` when stated;
  a body without either is kept as ``.part`` and continued with ``Range: bytes=<size>-``
  while its structure does not prove it whole.
* **Structure, every time**: whatever the headers say, the file must prove itself whole (MP4
  boxes that add up, ``moov`` present, the media its index describes inside the file; or a
  Matroska Segment that ends where the file does; see
  :mod:`batchgen.engine.downloads.container`). A CDN cache that serves half a file with a
  matching ``Content-Length`` is caught here: that ``.part`` is deleted and the next attempt
  fetches the file again from its start. It is never accepted unproven.
* **A video**: a ``Content-Type`` that is a web page, JSON, XML, text or an image is refused,
  and so is a body whose first bytes are not an MP4 or WebM file (HTML, JSON, PNG...).
* **Limits**: at most ``DownloadPolicy.max_bytes`` per video (``--max-video-size``, default
  4 GiB), refused up front when announced and cut off when an endless body passes it; at most
  ``max_redirects`` redirects, each one checked; http(s) and public addresses only (see
  :mod:`batchgen.engine.downloads.addresses`).
* **Disk full**: see :mod:`batchgen.engine.downloads.disk`; the ``.part`` is kept.
* **Links**: a ``.part`` or video path that is a symbolic link is refused (RefusedError
  naming it), and the ``.part`` is opened with ``O_NOFOLLOW``: nothing is written through a
  link planted in the output folder.

The file is fsynced, ``before_rename`` runs (the sidecar), then ``os.replace`` gives it its
name: a finished name always means a whole, verified video; then its folder is synced before
``download`` returns. A run passes its :class:`~batchgen.engine.downloads.syncs.SyncGroup`,
which makes both syncs in a worker thread, grouped with those of the downloads finishing at
the same time. Names come from the caller, never from the URL.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from batchgen.atomic import LinkRefusedError, fsync_dir, open_own, refuse_link
from batchgen.engine.downloads.addresses import PrivateAddressError, check_url
from batchgen.engine.downloads.container import video_problem
from batchgen.engine.downloads.disk import NO_SPACE, check_space, disk_full, human_size
from batchgen.engine.downloads.syncs import SyncGroup
from batchgen.engine.downloads.verify import (
    Decoder,
    EncodingError,
    content_type_problem,
    excerpt,
    sniff,
)
from batchgen.errors import DownloadError
from batchgen.providers.ratelimit import retry_after_of
from batchgen.text import clean_text

__all__ = [
    "CHUNK",
    "DEFAULT_MAX_VIDEO_BYTES",
    "CdnBusyError",
    "DownloadPolicy",
    "Downloaded",
    "ExpiredLinkError",
    "NotVideoError",
    "RefusedError",
    "download",
]

CHUNK = 256 * 1024
DEFAULT_MAX_VIDEO_BYTES = 4 * 1024**3
_EXPIRED = frozenset({401, 403, 404, 410})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEAD = 64  # bytes sniffed before anything is written


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadPolicy:
    """Limits of one download. ``max_bytes``: per video; ``read_timeout``: seconds."""

    max_bytes: int = DEFAULT_MAX_VIDEO_BYTES
    allow_private: bool = False
    read_timeout: float = 60.0
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A finished, verified download."""

    path: Path
    size: int


class ExpiredLinkError(DownloadError):
    """The CDN no longer serves this URL (401/403/404/410): ask the API for fresh links."""


class NotVideoError(DownloadError):
    """The CDN answered with something that is not a video (a login page, JSON, an image)."""


class RefusedError(DownloadError):
    """Not fetched or not kept on purpose: a URL batchgen may not fetch, a body over the limit."""


class CdnBusyError(DownloadError):
    """429/503 (or any error with ``Retry-After``): ``retry_after`` seconds, when given."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Received:
    """What one answer brought: the totals it promised and what proves the file whole."""

    total: int = -1  # the whole file's length, when the answer stated it
    raw_expected: int = -1  # encoded bytes promised (Content-Length of an encoded body)
    raw_got: int = 0
    decoder: Decoder | None = None


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
    policy: DownloadPolicy | None = None,
    before_rename: Callable[[int], None] | None = None,
    syncs: SyncGroup | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); returns the verified size once
    the file and its new name are durable (synced through ``syncs``; without it, at once on
    this thread).

    Raises ExpiredLinkError, NotVideoError, RefusedError, CdnBusyError or DownloadError (all
    with a message naming the host and what it sent), and DiskFullError.
    """
    policy = policy or DownloadPolicy()
    check_url(url, allow_private=policy.allow_private)
    part = dest.with_name(dest.name + ".part")
    try:
        refuse_link(dest)
        refuse_link(part)
    except LinkRefusedError as exc:
        raise RefusedError(str(exc)) from exc
    offset = _size(part)
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        async with await _get(session, url, headers, policy) as response:
            got = await _receive(response, part, offset, url, policy, syncs)
        done = _finish(part, dest, got, url, before_rename)
    except aiohttp.ClientPayloadError as exc:
        raise DownloadError(f"download of {url} was cut short ({exc}); it resumes") from exc
    except aiohttp.ClientConnectorDNSError as exc:
        if isinstance(exc.os_error, PrivateAddressError):
            raise RefusedError(f"the video URL {url!r}: {exc.os_error}") from exc
        raise DownloadError(f"download of {url} failed: {exc}") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadError(f"download of {url} failed: {exc or type(exc).__name__}") from exc
    except EncodingError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url}: {exc}; it starts over") from exc
    except LinkRefusedError as exc:
        raise RefusedError(str(exc)) from exc
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise disk_full(part.parent, None) from exc
        raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from exc
    if syncs is None:
        fsync_dir(dest.parent)
    else:
        await syncs.folder(dest.parent)
    return done


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], policy: DownloadPolicy
) -> aiohttp.ClientResponse:
    """GET with redirects followed by hand, each target checked like the first URL."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=policy.read_timeout)
    for _ in range(policy.max_redirects + 1):
        response = await session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False, auto_decompress=False
        )
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response
        response.release()
        url = str(URL(url).join(URL(location)))
        check_url(url, allow_private=policy.allow_private)
    raise DownloadError(f"download of {url}: more than {policy.max_redirects} redirects")


def _status_problem(response: aiohttp.ClientResponse, url: str) -> DownloadError:
    status = response.status
    if status in _EXPIRED:
        return ExpiredLinkError(f"the video link has expired or is gone (HTTP {status})")
    hint = retry_after_of(response.headers)  # a date is read against the CDN's own Date
    hint = hint if hint is not None and math.isfinite(hint) else None
    if status in (429, 503) or (status >= 500 and hint is not None):
        wait = f", asking to wait {hint:.0f} s" if hint is not None else ""
        return CdnBusyError(f"the CDN answered HTTP {status}{wait} for {url}", retry_after=hint)
    return DownloadError(f"download of {url} answered HTTP {status}")


async def _receive(
    response: aiohttp.ClientResponse,
    part: Path,
    offset: int,
    url: str,
    policy: DownloadPolicy,
    syncs: SyncGroup | None,
) -> _Received:
    """Check the answer's head, then write its body to ``part``."""
    if response.status == 416 and offset:
        total = _total_from_range(response.headers.get("Content-Range"), default=-1)
        return _Received(total=total)  # proves the length when it names the size we have
    if response.status not in (200, 206):
        raise _status_problem(response, url)
    host = response.url.host
    if problem := content_type_problem(response.headers.get("Content-Type")):
        head = await response.content.read(200)
        raise NotVideoError(_not_video(host, problem, url, head))
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    resumed = response.status == 206 and offset > 0
    got = _Received()
    if encoding not in ("", "identity"):
        if response.status == 206:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{host} sent a {encoding}-encoded part of {url}; starting over")
        got.decoder = Decoder(encoding, limit=policy.max_bytes)
        got.raw_expected = response.content_length if response.content_length is not None else -1
    else:
        got.total = _expected_total(response, offset if resumed else 0)
    if got.total > policy.max_bytes:
        raise RefusedError(
            f"{host} announced {human_size(got.total)} for {url}, more than the "
            f"--max-video-size limit of {human_size(policy.max_bytes)}; it was not downloaded"
        )
    await _write_body(response, part, offset if resumed else 0, got, url, policy, syncs)
    return got


async def _write_body(
    response: aiohttp.ClientResponse,
    part: Path,
    start: int,
    got: _Received,
    url: str,
    policy: DownloadPolicy,
    syncs: SyncGroup | None,
) -> None:
    """Sniff the first bytes (decoded), then write everything to ``part``, within the limit,
    and fsync it."""
    check_space(part.parent, got.total - start if got.total >= 0 else None)
    pieces = _pieces(response, start, got, url, policy)
    head = b""
    try:
        if not start:  # nothing is written before the body shows it is a video
            async for piece in pieces:
                head += piece
                if len(head) >= _HEAD:
                    break
            if what := sniff(head):
                raise NotVideoError(_not_video(response.url.host, what, url, head))
        with open_own(part, append=bool(start)) as out:
            out.write(head)
            async for piece in pieces:
                out.write(piece)
            out.flush()
            if syncs is None:
                os.fsync(out.fileno())
            else:
                await syncs.file(out.fileno())
    except RefusedError:
        part.unlink(missing_ok=True)
        raise
    except aiohttp.ClientPayloadError:
        if got.decoder is not None:  # decoded bytes do not line up with encoded ranges
            part.unlink(missing_ok=True)
        raise
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise disk_full(part.parent, got.total - start if got.total >= 0 else None) from exc
        raise


async def _pieces(
    response: aiohttp.ClientResponse, start: int, got: _Received, url: str, policy: DownloadPolicy
) -> AsyncIterator[bytes]:
    """The body, decoded when it came encoded; RefusedError once the file passes the limit."""
    size = start
    async for chunk in response.content.iter_chunked(CHUNK):
        got.raw_got += len(chunk)
        for piece in got.decoder.feed(chunk) if got.decoder else (chunk,):
            size += len(piece)
            if size > policy.max_bytes:
                raise RefusedError(
                    f"{response.url.host} sent more than the --max-video-size limit "
                    f"of {human_size(policy.max_bytes)} for {url}; it was not kept"
                )
            yield piece


def _not_video(host: str | None, what: str, url: str, head: bytes) -> str:
    """The message for a body that is not a video, quoting it when it is text."""
    quoted = "" if what.startswith("unknown") else f': "{clean_text(excerpt(head), limit=120)}"'
    return f"{host} sent {what} instead of a video for {url}{quoted}"


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


def _finish(
    part: Path,
    dest: Path,
    got: _Received,
    url: str,
    before_rename: Callable[[int], None] | None,
) -> Downloaded:
    size = _size(part)
    _check_whole(part, size, got, url)
    with part.open("rb") as handle:
        head = handle.read(_HEAD)
    if what := sniff(head):
        part.unlink()
        raise NotVideoError(f"download of {url} is {what}, not a video; it was not kept")
    if problem := video_problem(part):
        _not_whole(part, got, url, problem)
    if before_rename is not None:
        before_rename(size)
    os.replace(part, dest)
    return Downloaded(dest, size)


def _check_whole(part: Path, size: int, got: _Received, url: str) -> None:
    """DownloadError unless the answer or the file itself proves ``part`` complete."""
    if size == 0:
        part.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} was empty")
    if got.decoder is not None:
        cut = got.raw_expected >= 0 and got.raw_got != got.raw_expected
        if cut or not got.decoder.finished:
            part.unlink()  # an encoded body cannot be resumed
            raise DownloadError(
                f"download of {url} was cut short ({got.decoder.encoding}-encoded, "
                f"{got.raw_got} bytes); it starts over"
            )
        return
    if got.total >= 0 and size != got.total:
        if size > got.total:
            part.unlink()  # garbage: start over next time
        raise DownloadError(
            f"download of {url} was cut short: got {size} of {got.total} bytes; it resumes"
        )


def _not_whole(part: Path, got: _Received, url: str, problem: str) -> None:
    """Raise DownloadError for a file whose structure is not whole. Without a stated length
    it may simply be cut: kept, the next attempt continues it with ``Range``. With a length
    (or an encoded body) that matched, the CDN sent a broken or cut copy as if it were whole:
    deleted, the next attempt fetches it again from the start."""
    size = _size(part)
    if got.total < 0 and got.decoder is None:
        raise DownloadError(
            f"download of {url} stated no length and the {size} bytes received do not prove a "
            f"whole video ({problem}); asking the CDN again"
        )
    part.unlink()
    raise DownloadError(
        f"download of {url} is not a whole video although the CDN sent it as complete "
        f"({size} bytes): {problem}; it is fetched again from the start"
    )
