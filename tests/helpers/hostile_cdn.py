"""A misbehaving CDN for download tests: one path per kind of bad answer, on 127.0.0.1 only.

``url(mode, name)`` gives ``http://127.0.0.1:<port>/<mode>/<name>``; each mode is modelled on
a public bug report or a common proxy/CDN failure:

==================  ==========================================================================
ok                  the video, ``Content-Length``, ``Range`` honoured
named               a valid MP4 that ends in a ``free`` box holding ``name`` (tells files apart)
gzip deflate br     the video encoded although ``identity`` was asked, encoded length stated
gzip-cut            gzip, encoded length stated, connection closed at half
unsized-half        no ``Content-Length``, no chunking, cut at half, ``Range`` ignored
unsized-then-range  the same cut first; a ``Range`` request gets a proper 206
unsized-whole       no length, the whole MP4 (its boxes prove it whole)
webm-unsized        a small WebM, no length, cut at half; a ``Range`` request gets a proper 206
cached-half         a CDN cache's half copy: 200, ``Content-Length`` of the half (matching it)
cached-half-once    the half copy for the first request of a name, the whole video after
no-moov             ftyp, free and mdat with a matching length, but no ``moov`` box
box-past-end        the whole video whose ``mdat`` header claims 4 KiB more than the file holds
index-past-end      ``mdat`` "to the end of the file" (size 0), cut short: only the index tells
html-login          200 ``text/html`` "Login required"
html-as-video       the same page labelled ``video/mp4``
json text           an error as ``application/json`` / ``text/plain``
png                 a PNG image labelled ``video/mp4``
huge                ``Content-Length`` of 10 GB, then a trickle
endless             chunked, an MP4 header then zeros, until the client hangs up (bounded)
busy429 busy503     429 / 503 with ``Retry-After: 20`` for the first ``busy`` requests
redirect-private    302 to a 10.x address; ``redirect-loop`` redirects to itself
==================  ==========================================================================
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import brotli
from aiohttp import web

from batchgen.simulator.files import (
    CloseDelimited,
    ranged_response,
    send_then_close,
    send_unsized,
    video_bytes,
)

HUGE = 10 * 1024**3
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64


def _ebml(ident: int, payload: bytes) -> bytes:
    """One EBML element: its id, its size as an 8-byte variable-length integer, its data."""
    size = (1 << 56) | len(payload)
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + size.to_bytes(8, "big") + payload


def webm_video() -> bytes:
    """A structurally whole WebM file (EBML header, a Segment of Info, Tracks, Cluster)."""
    header = _ebml(0x1A45DFA3, _ebml(0x4282, b"webm"))
    segment = _ebml(
        0x18538067,
        _ebml(0x1549A966, b"\x00" * 16) + _ebml(0x1654AE6B, b"\x00" * 32)
        + _ebml(0x1F43B675, bytes(range(256)) * 8),
    )  # fmt: skip
    return header + segment


WEBM = webm_video()
LOGIN = "<!DOCTYPE html><html><body><h1>Login required</h1></body></html>"


def named_video(name: str) -> bytes:
    """The tiny MP4 plus a ``free`` box naming ``name``: still a whole, valid MP4."""
    payload = name.encode()
    return video_bytes() + struct.pack(">I4s", 8 + len(payload), b"free") + payload


@dataclass
class HostileCdn:
    """Start with ``await cdn.start()``; ``seen`` counts requests per mode."""

    busy: int = 2
    retry_after: str = "20"
    seen: Counter[str] = field(default_factory=Counter)
    headers: list[dict[str, str]] = field(default_factory=list)
    base: str = ""
    _runner: web.AppRunner | None = None

    def url(self, mode: str, name: str = "v.mp4") -> str:
        return f"{self.base}/{mode}/{name}"

    async def start(self) -> HostileCdn:
        app = web.Application()
        app.router.add_get("/{mode}/{name}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        mode = request.match_info["mode"]
        self.seen[mode] += 1
        self.headers.append(dict(request.headers))
        handler = getattr(self, "_" + mode.replace("-", "_"), None)
        if handler is None:
            return web.Response(status=404)
        response: web.StreamResponse = await handler(request)
        return response

    # ------------------------------------------------------------------ honest answers
    async def _ok(self, request: web.Request) -> web.Response:
        return ranged_response(request, video_bytes(), "video/mp4")

    async def _named(self, request: web.Request) -> web.Response:
        return ranged_response(request, named_video(request.match_info["name"]), "video/mp4")

    # ------------------------------------------------------------------ encodings
    async def _encoded(self, encoding: str, body: bytes) -> web.Response:
        headers = {"Content-Encoding": encoding}
        return web.Response(body=body, content_type="video/mp4", headers=headers)

    async def _gzip(self, request: web.Request) -> web.Response:
        return await self._encoded("gzip", gzip.compress(video_bytes()))

    async def _deflate(self, request: web.Request) -> web.Response:
        return await self._encoded("deflate", zlib.compress(video_bytes()))

    async def _br(self, request: web.Request) -> web.Response:
        return await self._encoded("br", brotli.compress(video_bytes()))

    async def _gzip_cut(self, request: web.Request) -> web.StreamResponse:
        body = gzip.compress(video_bytes())
        response = web.StreamResponse(headers={"Content-Encoding": "gzip"})
        response.content_type = "video/mp4"
        response.content_length = len(body)
        return await send_then_close(request, response, body[: len(body) // 2])

    # ------------------------------------------------------------------ no length
    async def _unsized_half(self, request: web.Request) -> web.StreamResponse:
        video = video_bytes()
        return await _unsized(request, video[: len(video) // 2])

    async def _unsized_then_range(self, request: web.Request) -> web.StreamResponse:
        if "Range" in request.headers:
            return ranged_response(request, video_bytes(), "video/mp4")
        return await self._unsized_half(request)

    async def _unsized_whole(self, request: web.Request) -> web.StreamResponse:
        return await _unsized(request, video_bytes())

    async def _webm_unsized(self, request: web.Request) -> web.StreamResponse:
        if "Range" in request.headers:
            return ranged_response(request, WEBM, "video/webm")
        return await _unsized(request, WEBM[: len(WEBM) // 2])

    # ------------------------------------------------------------------ lengths that match
    async def _cached_half(self, request: web.Request) -> web.Response:
        video = video_bytes()
        return ranged_response(request, video[: len(video) // 2], "video/mp4")

    async def _cached_half_once(self, request: web.Request) -> web.Response:
        if self.seen["cached-half-once"] == 1:
            return await self._cached_half(request)
        return await self._ok(request)

    async def _no_moov(self, request: web.Request) -> web.Response:
        video = video_bytes()
        body = video[:32] + video[video.index(b"moov") - 4 + 844 :]  # ftyp + free + mdat
        return ranged_response(request, body, "video/mp4")

    async def _box_past_end(self, request: web.Request) -> web.Response:
        video = bytearray(video_bytes())
        at = video.index(b"mdat") - 4
        size = struct.unpack_from(">I", video, at)[0]
        struct.pack_into(">I", video, at, size + 4096)
        return ranged_response(request, bytes(video), "video/mp4")

    async def _index_past_end(self, request: web.Request) -> web.Response:
        video = bytearray(video_bytes())
        struct.pack_into(">I", video, video.index(b"mdat") - 4, 0)  # "to the end of the file"
        return ranged_response(request, bytes(video[:-100]), "video/mp4")

    # ------------------------------------------------------------------ not a video
    async def _html_login(self, request: web.Request) -> web.Response:
        return web.Response(text=LOGIN, content_type="text/html")

    async def _html_as_video(self, request: web.Request) -> web.Response:
        return web.Response(body=LOGIN.encode(), content_type="video/mp4")

    async def _json(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"error": "AccessDenied", "message": "Request has expired"}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text="Service temporarily unavailable", content_type="text/plain")

    async def _png(self, request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="video/mp4")

    # ------------------------------------------------------------------ no limits
    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = HUGE
        return await send_then_close(request, response, video_bytes())

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(video_bytes()[:64])
        zeros = b"\x00" * 65536
        for _ in range(4096):  # at most 256 MiB, in case a client never stops
            try:
                await response.write(zeros)
            except (ConnectionError, RuntimeError):
                break
        return response

    # ------------------------------------------------------------------ busy, redirects
    async def _busy(self, request: web.Request, status: int) -> web.Response:
        if self.seen[request.match_info["mode"]] <= self.busy:
            headers = {"Retry-After": self.retry_after}
            return web.Response(status=status, text="slow down", headers=headers)
        return ranged_response(request, video_bytes(), "video/mp4")

    async def _busy429(self, request: web.Request) -> web.Response:
        return await self._busy(request, 429)

    async def _busy503(self, request: web.Request) -> web.Response:
        return await self._busy(request, 503)

    async def _redirect_private(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.255.255.1/internal/v.mp4")

    async def _redirect_loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url))


async def _unsized(request: web.Request, body: bytes) -> web.StreamResponse:
    """``body`` as video/mp4 with neither length nor chunking, then a close."""
    return await send_unsized(request, CloseDelimited(headers={"Content-Type": "video/mp4"}), body)
