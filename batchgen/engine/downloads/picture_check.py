"""Are the pictures a row will send fit for the vendor? Checked before anything is paid.

The vendor fetches a row's picture URLs itself, after the task is created and paid for: a
dead link, a login page, an HEIC photo or a 40 MB scan is a paid failure. So before a row is
sent (``run``) or planned (``validate``), every picture URL is fetched once per run, a few at
a time (:data:`CONCURRENCY`), with a ranged ``GET`` of its first bytes
(``Range: bytes=0-4095``; a server that ignores ``Range`` is read no further than the limit
needs), and must be:

* **https on a public address**: the rules of the video downloads
  (:mod:`batchgen.engine.downloads.addresses`: the same public-only resolver, so a host name
  that resolves to a private address is refused too, and every redirect is checked again).
  Plain ``http`` and non-public addresses are accepted only where private addresses are
  (the API itself on one, such as the simulator, or ``--allow-private-urls``): a vendor on
  the internet cannot reach this network, and its example and the maker's documentation
  name https;
* **reachable**, answering 200 or 206 (a 404, a 403 or a connection that fails is named);
* **an image of a kind the vendor takes, twice**: its ``Content-Type`` and its first bytes'
  signature (identified with the ``filetype`` library, so a PDF, an HEIC photo or an HTML
  page is named as such);
* **within the vendor's size**: the whole file's length from ``Content-Range`` or
  ``Content-Length``, else counted while reading (never past the limit).

:func:`check_pictures` returns what is wrong with each URL that fails, in words for a
person; a caller holds the rows that send it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import filetype
from yarl import URL

from batchgen.engine.downloads.addresses import PrivateAddressError, cdn_connector, host_is_private
from batchgen.engine.downloads.verify import sniff

__all__ = [
    "CONCURRENCY",
    "FORMATS",
    "PictureRules",
    "check_pictures",
    "is_web_url",
    "picture_problem",
]

#: Picture URLs fetched at once.
CONCURRENCY = 8
#: Bytes asked for (a signature needs at most 262).
HEAD_BYTES = 4096
#: Format name -> the ``Content-Type`` values that announce it.
FORMATS: dict[str, frozenset[str]] = {
    "JPEG": frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
    "PNG": frozenset({"image/png"}),
    "WebP": frozenset({"image/webp"}),
    "GIF": frozenset({"image/gif"}),
}
_SIGNATURE_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WebP": "image/webp",
    "GIF": "image/gif",
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RANGE_TOTAL = re.compile(r"bytes\s+\d+-\d+/(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class PictureRules:
    """What a vendor takes as a picture: ``formats`` (keys of :data:`FORMATS`) and at most
    ``max_bytes`` per file; ``allow_private`` lets loopback, private and plain-http URLs
    through (a vendor on this network: the simulator, a test). ``timeout``: seconds per URL."""

    formats: tuple[str, ...] = ("JPEG", "PNG", "WebP")
    max_bytes: int = 10 * 1024 * 1024
    allow_private: bool = False
    timeout: float = 20.0
    max_redirects: int = 5

    def names(self) -> str:
        """``JPEG, PNG or WebP``."""
        *first, last = self.formats
        return f"{', '.join(first)} or {last}" if first else last


def is_web_url(entry: str) -> bool:
    """Whether an ``images`` entry is a URL the vendor fetches (http or https); a local
    picture (a path, read and checked by the manifest reader) is not."""
    return entry[:8].lower().startswith(("http://", "https://"))


def picture_problem(url: str, rules: PictureRules) -> str | None:
    """What rules out ``url`` before any connection (scheme, host, address); None if nothing."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return "is not an http(s) URL with a host"
    private = host_is_private(url)
    if private and not rules.allow_private:
        return f"points at the non-public address {host}, which the vendor cannot reach"
    if scheme == "http" and not (private and rules.allow_private):
        return "is plain http; give its https address (the vendor fetches pictures over https)"
    return None


async def check_pictures(
    urls: Iterable[str], rules: PictureRules, *, concurrency: int = CONCURRENCY
) -> dict[str, str]:
    """``url -> what is wrong`` for every URL of ``urls`` that fails its check (each checked
    once, ``concurrency`` at a time); URLs that pass are absent. Never raises for a URL."""
    unique = list(dict.fromkeys(urls))
    found: dict[str, str] = {}
    pending = []
    for url in unique:
        problem = picture_problem(url, rules)
        if problem is not None:
            found[url] = problem
        else:
            pending.append(url)
    if not pending:
        return found
    gate = asyncio.Semaphore(concurrency)
    connector = cdn_connector(allow_private=rules.allow_private)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> None:
            async with gate:
                problem = await _fetch_problem(session, url, rules)
            if problem is not None:
                found[url] = problem

        await asyncio.gather(*(one(url) for url in pending))
    return found


async def _fetch_problem(
    session: aiohttp.ClientSession, url: str, rules: PictureRules
) -> str | None:
    try:
        async with asyncio.timeout(rules.timeout):
            return await _examine(session, url, rules)
    except TimeoutError:
        return f"did not answer within {rules.timeout:.0f} s"
    except aiohttp.ClientConnectorDNSError as exc:
        if isinstance(exc.os_error, PrivateAddressError):
            return f"cannot be used: {exc.os_error}"
        return f"could not be reached: the host name was not found ({exc.os_error or exc})"
    except aiohttp.ClientError as exc:
        return f"could not be reached: {exc or type(exc).__name__}"
    except OSError as exc:
        return f"could not be reached: {exc.strerror or exc}"


async def _examine(session: aiohttp.ClientSession, url: str, rules: PictureRules) -> str | None:
    headers = {"Range": f"bytes=0-{HEAD_BYTES - 1}", "Accept-Encoding": "identity"}
    for _ in range(rules.max_redirects + 1):
        async with session.get(
            url, headers=headers, allow_redirects=False, auto_decompress=False
        ) as response:
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                url = str(URL(url).join(URL(location)))
                problem = picture_problem(url, rules)
                if problem is not None:
                    return f"redirects to {url}, which {problem}"
                continue
            return await _judge(response, rules)
    return f"redirects more than {rules.max_redirects} times"


async def _judge(response: aiohttp.ClientResponse, rules: PictureRules) -> str | None:
    """What is wrong with one final answer (status, type, signature, size), or None."""
    if response.status not in (200, 206):
        reason = f" {response.reason}" if response.reason else ""
        return f"answered HTTP {response.status}{reason}"
    declared = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    head = await _read_head(response)
    size = _stated_size(response)
    if size is None and response.status == 200:  # no length given: count, never past the limit
        size = len(head)
        while size <= rules.max_bytes and (chunk := await response.content.read(64 * 1024)):
            size += len(chunk)
    accepted = {t for name in rules.formats for t in FORMATS[name]}
    if declared not in accepted:
        shown = declared or "no Content-Type"
        return f"is served as {shown}, not as a {rules.names()} image"
    kind = _signature(head)
    if kind not in {_SIGNATURE_MIME[name] for name in rules.formats}:
        what = f"a {kind} file" if kind else sniff(head) or "a video"
        return f"is served as {declared} but its bytes are {what}, not a {rules.names()} image"
    if size is not None and size > rules.max_bytes:
        return (
            f"is {_megabytes(size)}; the vendor takes pictures up to {_megabytes(rules.max_bytes)}"
        )
    return None


async def _read_head(response: aiohttp.ClientResponse) -> bytes:
    """The first :data:`HEAD_BYTES` of the body (fewer when it is shorter)."""
    head = b""
    while len(head) < HEAD_BYTES and (chunk := await response.content.read(HEAD_BYTES - len(head))):
        head += chunk
    return head


def _signature(head: bytes) -> str | None:
    """The MIME type ``head`` starts (``image/png``), or None when ``filetype`` knows none."""
    kind = filetype.guess(head)
    return None if kind is None else str(kind.mime)


def _stated_size(response: aiohttp.ClientResponse) -> int | None:
    """The whole file's length the answer states (``Content-Range`` of a 206, else
    ``Content-Length`` of a 200); None when it states none."""
    if response.status == 206:
        match = _RANGE_TOTAL.match(response.headers.get("Content-Range", ""))
        return int(match.group(1)) if match else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
