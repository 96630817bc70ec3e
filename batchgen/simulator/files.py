"""The simulator's CDN pieces: one tiny, real, playable MP4 for every video URL, byte ranges,
and the shapes of the CDN's answers, good and bad (``cdn`` decides which one a request gets).

The video is package data, ``batchgen/data/tiny.mp4`` (about 2 KB: 1 s, 64x64, 10 fps, H.264
constrained baseline, yuv420p, no audio, ``moov`` first so a browser can start at once). It was
made once with Debian's ffmpeg::

    ffmpeg -f lavfi -i "testsrc=size=64x64:rate=10:duration=1" -c:v libx264 \
        -profile:v baseline -level 3.0 -pix_fmt yuv420p -crf 35 -an \
        -movflags +faststart batchgen/data/tiny.mp4
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources

from aiohttp import web

__all__ = [
    "VIDEO_CONTENT_TYPE",
    "ByteRange",
    "CloseDelimited",
    "RangeNotSatisfiable",
    "expired_response",
    "login_page",
    "parse_range",
    "ranged_response",
    "send_then_close",
    "send_unsized",
    "truncated_response",
    "unsized_cut",
    "video_bytes",
    "video_etag",
]

VIDEO_CONTENT_TYPE = "video/mp4"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

ByteRange = tuple[int, int]  # first and last byte offsets, inclusive


@cache
def video_bytes() -> bytes:
    """The MP4 every video URL serves (read once from package data)."""
    return resources.files("batchgen").joinpath("data", "tiny.mp4").read_bytes()


@cache
def video_etag() -> str:
    """A strong ETag for the video, so a resuming client can use ``If-Range``."""
    return '"' + hashlib.sha256(video_bytes()).hexdigest()[:16] + '"'


class RangeNotSatisfiable(ValueError):
    """A syntactically valid byte range that lies wholly outside the file."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for, clamped to ``size``.

    None means "send the whole file": no header, a malformed one, or several ranges (which
    RFC 9110 lets a server ignore). Raises ``RangeNotSatisfiable`` for a range past the end.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # suffix range: the last N bytes
        if not last or int(last) == 0:
            raise RangeNotSatisfiable(header)
        return max(size - int(last), 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiable(header)
    if end < start:
        return None  # RFC 9110: an invalid range is ignored
    return start, end


def ranged_response(
    request: web.Request,
    body: bytes,
    content_type: str = VIDEO_CONTENT_TYPE,
    *,
    etag: str | None = None,
) -> web.Response:
    """200 with the whole ``body``, or 206/416 for a ``Range`` request.

    With an ``etag`` the answer carries it and ``Accept-Ranges: bytes``, and a ``Range`` whose
    ``If-Range`` names another validator gets the whole body (RFC 9110 section 13.1.5);
    without one, ``If-Range`` is ignored.
    """
    size = len(body)
    headers = {"Accept-Ranges": "bytes", "ETag": etag} if etag is not None else {}
    if_range = request.headers.get("If-Range")
    honour = etag is None or if_range in (None, etag)
    try:
        span = parse_range(request.headers.get("Range") if honour else None, size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if span is None:
        return web.Response(body=body, content_type=content_type, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    part = body[start : end + 1]
    return web.Response(status=206, body=part, content_type=content_type, headers=headers)


async def truncated_response(
    request: web.Request, full: web.Response, fraction: float
) -> web.StreamResponse:
    """``full``'s status and headers (its length included), part of its body, then a FIN."""
    body = full.body
    assert isinstance(body, bytes)
    response = web.StreamResponse(status=full.status, headers=full.headers)
    response.content_length = len(body)
    return await send_then_close(request, response, body[: int(len(body) * fraction)])


async def send_then_close(
    request: web.Request, response: web.StreamResponse, part: bytes
) -> web.StreamResponse:
    """Send ``response``'s headers as they stand and ``part``, then close the connection (FIN):
    with a longer ``Content-Length`` the client sees a short read."""
    response.force_close()
    await response.prepare(request)
    await response.write(part)
    if request.transport is not None:
        request.transport.close()
    return response


def expired_response(ordinal: int) -> web.Response:
    """A CDN's answer to an expired link: alternately a 403 from a signed-URL store and a 410."""
    if ordinal % 2:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
            "<Message>Request has expired</Message></Error>"
        )
        return web.Response(status=403, text=body, content_type="application/xml")
    return web.Response(status=410, text="Gone: this link has expired", content_type="text/plain")


def login_page() -> web.Response:
    """A CDN or proxy that wants a login: 200, text/html, a page and no video."""
    body = (
        "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
        "<body>Login required</body></html>"
    )
    return web.Response(text=body, content_type="text/html")


class CloseDelimited(web.StreamResponse):
    """An answer with neither Content-Length nor chunking: its body ends when the connection
    closes (RFC 9112 section 6.3, rule 8), so a cut cannot be told from the end."""

    _length_check = False


async def unsized_cut(request: web.Request, full: web.Response, fraction: float) -> CloseDelimited:
    """``full``'s status and headers without its length, part of its body, then a close."""
    body = full.body
    assert isinstance(body, bytes)
    response = CloseDelimited(status=full.status, headers=full.headers)
    response.headers.pop("Content-Length", None)
    return await send_unsized(request, response, body[: int(len(body) * fraction)])


async def send_unsized(
    request: web.Request, response: CloseDelimited, body: bytes
) -> CloseDelimited:
    """Send ``response``'s headers as they stand and ``body``, then close the connection: the
    close is the body's only end."""
    response.force_close()
    await response.prepare(request)
    await response.write(body)
    await response.write_eof()
    return response
