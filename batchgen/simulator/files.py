"""The simulator's CDN: serves one tiny, real, playable MP4 for every video URL.

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
    response.force_close()
    await response.prepare(request)
    await response.write(body[: int(len(body) * fraction)])
    await response.write_eof()
    return response
