"""A local picture host for tests of reference pictures (registered by ``tests/conftest.py``).

* ``pictures``: a started ``PictureServer`` on a loopback port; ``server.files[path] =
  Picture(...)`` says what a path answers, ``server.url(path)`` its address, ``server.hits``
  counts requests.
* ``PNG``, ``JPEG``, ``WEBP``, ``HEIC`` and ``HTML``: bodies to serve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp.web
import pytest

#: First bytes of real picture files (what ``filetype`` recognises), padded to a few KB.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(5000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(5000)
WEBP = b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(5000)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(5000)
HTML = b"<!DOCTYPE html><html><body>Sign in to see this picture</body></html>"


@dataclass
class Picture:
    """What the ``pictures`` server answers at one path."""

    body: bytes = PNG
    content_type: str = "image/png"
    status: int = 200
    ranges: bool = True  # honour ``Range`` with a 206 (else the whole body, streamed)
    size: int | None = None  # the length a 206's Content-Range states (default: the body's)
    location: str | None = None  # a redirect's target


class PictureServer:
    """A local picture host: ``server.files[path] = Picture(...)``, then ``server.url(path)``;
    ``server.hits[path]`` counts the requests each path received."""

    def __init__(self) -> None:
        self.files: dict[str, Picture] = {}
        self.hits: dict[str, int] = {}
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        from aiohttp import web

        path = request.path.lstrip("/")
        self.hits[path] = self.hits.get(path, 0) + 1
        pic = self.files.get(path)
        if pic is None:
            return web.Response(status=404, text="not found")
        if pic.location is not None:
            return web.Response(status=302, headers={"Location": pic.location})
        if pic.status != 200:
            return web.Response(status=pic.status, body=pic.body, content_type=pic.content_type)
        wanted = request.headers.get("Range", "")
        if pic.ranges and wanted.startswith("bytes=0-"):
            end = min(int(wanted[8:]), len(pic.body) - 1)
            total = pic.size if pic.size is not None else len(pic.body)
            headers = {"Content-Range": f"bytes 0-{end}/{total}", "Content-Type": pic.content_type}
            return web.Response(status=206, body=pic.body[: end + 1], headers=headers)
        response = web.StreamResponse(headers={"Content-Type": pic.content_type})
        await response.prepare(request)  # no length: chunked
        for start in range(0, len(pic.body), 64 * 1024):
            await response.write(pic.body[start : start + 64 * 1024])
        await response.write_eof()
        return response


@pytest.fixture
async def pictures() -> AsyncIterator[PictureServer]:
    """A started :class:`PictureServer` on a loopback port (plain http)."""
    from aiohttp import web

    server = PictureServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()
