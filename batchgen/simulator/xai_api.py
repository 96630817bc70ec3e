"""xAI's dialect (``../shared/xai-video-api.md``): ``POST /v1/videos/generations``,
``GET /v1/videos/{request_id}``, ``POST /v1/files``, and the CDN's
``/xai-vidgen-bucket/xai-video-{request_id}.mp4`` links.

The way in (key, rate window, api faults) is the ``Gateway``'s, shared with the reseller; this
module says what xAI answers:

* errors are the flat body seen from api.x.ai, ``{"code": <gRPC phrase>, "error": <text>}``;
* a missing or garbled ``Authorization`` header is 401; a well-formed key that is not accepted
  is **400** "Incorrect API key provided: xa***yz", the key masked as xAI masks it (its first
  and last two characters, only when it is long enough that they say little);
* no rate-limit header is documented: admitted answers carry none, a 429 only ``Retry-After``
  when ``SimConfig.retry_after`` asks for it. The limit is ``rps`` per second per team, and
  the status ``GET`` and uploads count against it (the contract does not say; counting them is
  the strict choice);
* a create needs ``Content-Type: application/json`` and a body (else 415); then see
  ``xai_requests`` for 422 / 400 / 404. A create that draws ``ambiguous`` makes its request,
  then resets the connection.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable

from aiohttp import web

from batchgen.simulator.backend import Backend
from batchgen.simulator.cdn import Cdn
from batchgen.simulator.gateway import Gateway
from batchgen.simulator.limits import Account, Verdict
from batchgen.simulator.responses import (
    Headers,
    Route,
    json_response,
    reset_connection,
    server_fault_response,
)
from batchgen.simulator.xai_requests import Rejection, parse_create
from batchgen.simulator.xai_uploads import FileStore, read_upload
from batchgen.simulator.xai_videos import draw_video, video_path, video_status

__all__ = ["INVALID_ARGUMENT", "XaiApi", "mask_key", "xai_error"]

#: The gRPC status phrases of the flat error bodies.
INVALID_ARGUMENT = "Client specified an invalid argument"
_UNAUTHENTICATED = "The request does not have valid authentication credentials"
_NOT_FOUND = "Some requested entity was not found"
_EXHAUSTED = "Some resource has been exhausted"
_INTERNAL = "Internal error"
_SERVER_ERROR = {
    "code": _INTERNAL,
    "error": "The service encountered an internal error. Please retry your request.",
}
#: What a well-formed key looks like: one run of visible ASCII characters.
_KEY = re.compile(r"[\x21-\x7e]+", re.ASCII)
_SHOWN_FROM = 10  # keys at least this long show their first and last two characters


def xai_error(status: int, code: str, message: str, headers: Headers | None = None) -> web.Response:
    """A flat xAI error answer ``{"code", "error"}`` with HTTP ``status``."""
    return json_response(status, {"code": code, "error": message}, headers or {})


def mask_key(key: str) -> str:
    """``key`` as xAI shows it in an error: ``xa***yz``, or ``***`` for a short key."""
    if len(key) < _SHOWN_FROM:
        return "***"
    return f"{key[:2]}***{key[-2:]}"


class XaiApi:
    """xAI's routes and answers (a ``Dialect`` for its ``Gateway``).

    ``on_refuse`` is called when the ``refuse`` fault fires.
    """

    def __init__(self, backend: Backend, *, on_refuse: Callable[[], None]) -> None:
        self._backend = backend
        self._config = backend.config
        self._files = FileStore()
        self._gateway = Gateway(backend, self, on_refuse=on_refuse)

    def routes(self, cdn: Cdn) -> list[Route]:
        """Every route of this dialect."""
        return [
            ("POST", "/v1/videos/generations", self.create),
            ("GET", "/v1/videos/{request_id}", self.status),
            ("POST", "/v1/files", self.upload),
            ("GET", video_path("{task_id}"), cdn.serve),
        ]

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/videos/generations``."""
        return await self._gateway.handle(request, "generate", self._answer_create)

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/videos/{request_id}``."""
        return await self._gateway.handle(request, "status", self._answer_status)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/files``."""
        return await self._gateway.handle(request, "upload", self._answer_upload)

    # ----------------------------------------------------------------- the Dialect

    def refusal(self, request: web.Request) -> web.Response:
        """401 without a well-formed bearer key; 400 "Incorrect API key" for a wrong one."""
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not _KEY.fullmatch(key):
            return xai_error(
                401,
                _UNAUTHENTICATED,
                "No or an invalid authentication header was provided on the request.",
            )
        return xai_error(
            400,
            INVALID_ARGUMENT,
            f"Incorrect API key provided: {mask_key(key)}. "
            "You can obtain an API key from https://console.x.ai.",
        )

    def admitted_headers(self, verdict: Verdict) -> Headers:
        """None: xAI documents no rate-limit header."""
        return {}

    def rate_limited(self, verdict: Verdict) -> web.Response:
        """429 with the flat body; ``Retry-After`` (whole seconds) only if configured."""
        headers: Headers = {}
        if self._config.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(verdict.reset)))
        limit, _ = self._config.rate_limit
        message = (
            f"Too many requests: your team is limited to {limit} request(s) per second "
            "for this model. Please slow down."
        )
        return xai_error(429, _EXHAUSTED, message, headers)

    def server_fault(self, fault: str, headers: Headers, ordinal: int) -> web.Response:
        """A failing server: a 500 with the flat body, that body under 200, or HTML pages."""
        return server_fault_response(fault, headers, ordinal, _SERVER_ERROR)

    # ----------------------------------------------------------------- answers

    def _rejected(self, rejection: Rejection, headers: Headers) -> web.Response:
        code = _NOT_FOUND if rejection.status == 404 else INVALID_ARGUMENT
        return xai_error(rejection.status, code, rejection.message, headers)

    async def _answer_create(
        self, request: web.Request, account: Account, headers: Headers
    ) -> web.StreamResponse:
        raw = await request.read()
        if request.content_type != "application/json" or not raw:
            message = "Unsupported media type: send JSON with Content-Type: application/json."
            return xai_error(415, INVALID_ARGUMENT, message, headers)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return xai_error(422, INVALID_ARGUMENT, "The body is not valid JSON.", headers)
        backend = self._backend
        now = backend.clock()
        owner = account.token
        checked = parse_create(body, lambda file_id: self._files.problem(file_id, owner, now))
        if isinstance(checked, Rejection):
            return self._rejected(checked, headers)
        faults = backend.faults
        ambiguous = bool(faults.fire("submit"))
        fired = faults.fire("task")
        for name in fired:
            faults.mark(name)
        task_id = self._new_request_id()
        record = draw_video(
            checked, task_id=task_id, now=now, fired=fired, config=self._config, rng=backend.rng
        )
        backend.tasks.add(record, account.token)
        if ambiguous:
            faults.mark("ambiguous")
            record.ambiguous = True
            backend.stats.ambiguous_prompts.append(record.prompt)
            return reset_connection(request)
        return json_response(200, {"request_id": task_id}, headers)

    def _new_request_id(self) -> str:
        # Random, not seeded: a restarted simulator must not reuse ids a client still holds.
        while True:
            request_id = str(uuid.uuid4())
            if not self._backend.tasks.taken(request_id):
                return request_id

    async def _answer_status(
        self, request: web.Request, account: Account, headers: Headers
    ) -> web.StreamResponse:
        backend = self._backend
        record = backend.tasks.owned(request.match_info["request_id"], account.token)
        if record is None:
            message = "No deferred video could be found with the given request_id."
            return xai_error(404, _NOT_FOUND, message, headers)
        base_url = f"{request.scheme}://{request.host}"
        status, body = video_status(record, backend.clock(), base_url)
        return json_response(status, body, headers)

    async def _answer_upload(
        self, request: web.Request, account: Account, headers: Headers
    ) -> web.StreamResponse:
        backend = self._backend
        stored = await read_upload(
            request, owner=account.token, now=backend.clock(), limit=self._config.upload_max_bytes
        )
        if isinstance(stored, Rejection):
            response = self._rejected(stored, headers)
            if stored.status == 413:  # the rest of the body was not read
                response.force_close()
            return response
        self._files.add(stored)
        backend.stats.uploads += 1
        return json_response(200, stored.answer(), headers)
