"""The shapes of the API's answers: JSON bodies, errors, a failing server's pages, a reset.

Pure builders with no simulator state; ``api`` decides which one a request gets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = [
    "Handler",
    "Headers",
    "NeverSent",
    "Route",
    "error_response",
    "json_response",
    "reset_connection",
    "server_fault_response",
]

Headers = dict[str, str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: One route of a dialect: (HTTP method, aiohttp path pattern, handler).
Route = tuple[str, str, Handler]

_SERVER_ERROR = {"code": 500, "message": "Internal server error", "error": "SERVER_ERROR"}
_HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class NeverSent(web.Response):
    """What a handler returns after resetting the connection: aiohttp tries to send it, finds
    the transport gone, and gives up quietly. Its type keeps it out of the counters."""


def reset_connection(request: web.Request) -> NeverSent:
    """Reset ``request``'s connection (RST, not FIN) without answering."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return NeverSent()


def json_response(status: int, payload: dict[str, Any], headers: Headers) -> web.Response:
    """A JSON answer; ``headers`` (a fresh dict from the caller) becomes the response's."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    # Content-Type goes in with the other headers: cheaper than aiohttp's content_type=.
    headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=body, headers=headers)


def error_response(status: int, message: str, error: str, headers: Headers) -> web.Response:
    """The contract's error body ``{"code", "message", "error"}`` with HTTP ``status``."""
    return json_response(status, {"code": status, "message": message, "error": error}, headers)


def server_fault_response(
    fault: str, headers: Headers, ordinal: int, error_body: dict[str, Any] | None = None
) -> web.Response:
    """A failing server's answer for ``server_error``, ``body_error`` or ``html_body``.

    ``error_body`` is the dialect's JSON body of a server error (default: the reseller's).
    ``html_body`` alternates by ``ordinal`` (its count, from 1): odd a gateway's 502 page,
    even the same page with a 200.
    """
    body = _SERVER_ERROR if error_body is None else error_body
    if fault == "server_error":
        return json_response(500, body, headers)
    if fault == "body_error":
        return json_response(200, body, headers)
    status = 502 if ordinal % 2 else 200
    return web.Response(status=status, text=_HTML_PAGE, content_type="text/html", headers=headers)
