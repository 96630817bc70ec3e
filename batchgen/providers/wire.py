"""HTTP plumbing for the API client: bounded reading of one answer, and the send mark.

An answer is read incrementally up to a byte limit (a larger one is refused, not buffered);
a body cut short or over the limit is marked incomplete, so the caller never mistakes half an
answer for a whole one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from batchgen.providers.answers import body_code, body_message, decode_json, is_vendor_json, preview
from batchgen.providers.base import SendMark
from batchgen.providers.ratelimit import RateInfo, parse_rate_headers

__all__ = [
    "CHUNK",
    "NoAnswer",
    "NotSent",
    "Reply",
    "detail",
    "headers_sent",
    "read_reply",
    "reason",
]

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: status and headers arrived; ``complete`` says whether the whole body did."""

    status: int
    raw: bytes
    complete: bool
    over_limit: bool
    body: Any  # the JSON value, or None when the body was not (all) JSON
    rate: RateInfo
    problem: str | None = None  # why the body is incomplete

    @property
    def vendor_json(self) -> bool:
        return self.complete and is_vendor_json(self.body)

    @property
    def code(self) -> int | None:
        return body_code(self.body) if self.complete else None

    @property
    def message(self) -> str:
        return body_message(self.body, self.raw)


class NotSent(Exception):
    """The connection never carried the request."""


class NoAnswer(Exception):
    """The request left and no status line came back."""


async def read_reply(response: aiohttp.ClientResponse, limit: int) -> Reply:
    """Read at most ``limit`` bytes of an answer (the whole body, or why not: cut, too big)."""
    rate = parse_rate_headers(response.headers)
    chunks: list[bytes] = []
    size, problem, over = 0, None, False
    declared = response.content_length
    if declared is not None and declared > limit:
        problem = f"the answer is {declared} bytes, over the {limit}-byte limit"
        over = True
    else:
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    problem = f"the answer is over the {limit}-byte limit"
                    over = True
                    break
                chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = f"the answer was cut off: {reason(exc)}"
    raw = b"".join(chunks)
    complete = problem is None
    body = decode_json(raw, response.charset) if complete else None
    return Reply(response.status, raw, complete, over, body, rate, problem)


async def headers_sent(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    mark = getattr(context, "trace_request_ctx", None)
    if isinstance(mark, SendMark):
        mark.sent = True


def detail(reply: Reply) -> str:
    if reply.problem:
        return f" and {reply.problem}"
    if reply.body is None:
        return f" with a body that is not JSON: {preview(reply.raw)}"
    return f": {reply.message}"


def reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return "no complete answer within the time limit"
    return str(exc) or type(exc).__name__
