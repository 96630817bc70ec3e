"""A TCP server that answers every command with the same bytes: not Redis, for the tests of a
``--limiter`` that answers nonsense. ``async with FakeRedis(b"+OK\\r\\n") as fake: fake.url``.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeRedis"]


class FakeRedis:
    """A TCP server that answers every command with ``answer`` (not Redis)."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                writer.write(self.answer)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()
