"""A real ``redis-server`` for the tests, on a free loopback port (no mock stands in for it).

``redis_server_or_skip()`` starts one per test session (stopped at exit) and skips the test
only when no ``redis-server`` program can be found (``.ci/run`` installs Debian's package).
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

__all__ = ["RedisServer", "redis_server_or_skip"]


@dataclass
class RedisServer:
    """A running server: ``url`` is ``redis://127.0.0.1:PORT/0``."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_server: RedisServer | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start(program: str) -> RedisServer:
    port = _free_port()
    folder = tempfile.mkdtemp(prefix="batchgen-redis-")
    argv = [program, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    argv += ["no", "--dir", folder, "--protected-mode", "yes"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(process, port)
    deadline = time.monotonic() + 20
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    return server


def redis_server_or_skip() -> RedisServer:
    """The session's Redis server (started on first use)."""
    global _server
    program = shutil.which("redis-server")
    if program is None:
        pytest.skip("redis-server not found (apt-get install redis-server)")
    if _server is None or _server.process.poll() is not None:
        _server = _start(program)
        atexit.register(_server.stop)
    return _server
