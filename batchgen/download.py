"""Resumable, checked, atomic video downloads.

A video goes to ``videos/<row key>_<n>.mp4.part`` first. A later attempt resumes it with a
``Range`` request; the length is checked against ``Content-Length`` (or ``Content-Range``),
the file is fsynced and only then renamed to its final name, so a finished name always means a
whole file. File names come from the row key, never from the URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from batchgen.atomic import fsync_dir
from batchgen.errors import DownloadError

__all__ = ["CHUNK", "Downloaded", "download", "video_name"]

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


async def download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    read_timeout: float = 60.0,
) -> Downloaded:
    """Fetch ``url`` into ``dest`` (resuming ``dest.part``); returns the verified size."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
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
