"""The reseller's dialect (``../shared/grokimagine-api.md``): ``POST /v1/generate`` and
``GET /v1/status``, their bodies and ``X-RateLimit-*`` headers, and the CDN's
``/files/{task_id}/{n}.mp4`` route.

The way in (token, rate window, api faults) is the ``Gateway``'s, shared with the xAI dialect;
this module says what the reseller answers. A generate that draws the ``ambiguous`` fault
creates its task, then resets the connection.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from batchgen.simulator.backend import Backend
from batchgen.simulator.cdn import Cdn
from batchgen.simulator.gateway import Gateway
from batchgen.simulator.limits import Account, Verdict, rate_headers
from batchgen.simulator.responses import (
    Headers,
    Route,
    error_response,
    json_response,
    reset_connection,
    server_fault_response,
)
from batchgen.simulator.tasks import Fate, status_data, status_of, validate_generate

__all__ = ["VendorApi"]


class VendorApi:
    """The reseller's routes and answers (a ``Dialect`` for its ``Gateway``).

    ``on_refuse`` is called when the ``refuse`` fault fires.
    """

    def __init__(self, backend: Backend, *, on_refuse: Callable[[], None]) -> None:
        self._config = backend.config
        self._stats = backend.stats
        self._faults = backend.faults
        self._tasks = backend.tasks
        self._clock = backend.clock
        self._gateway = Gateway(backend, self, on_refuse=on_refuse)

    def routes(self, cdn: Cdn) -> list[Route]:
        """Every route of this dialect: the two API calls and the CDN's video links."""
        return [
            ("POST", "/v1/generate", self.generate),
            ("GET", "/v1/status", self.status),
            ("GET", r"/files/{task_id}/{n:\d+}.mp4", cdn.serve),
        ]

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/generate``."""
        return await self._gateway.handle(request, "generate", self._answer_generate)

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/status?task_id=``."""
        return await self._gateway.handle(request, "status", self._answer_status)

    # ----------------------------------------------------------------- the Dialect

    def refusal(self, request: web.Request) -> web.Response:
        """401, saying whether the token was missing or not accepted."""
        missing = "Authorization" not in request.headers
        message = "Unauthorized: missing bearer token" if missing else "Unauthorized: invalid token"
        limit, window = self._config.rate_limit
        return error_response(401, message, "UNAUTHORIZED", rate_headers(limit, window))

    def admitted_headers(self, verdict: Verdict) -> Headers:
        """``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``."""
        return verdict.headers()

    def rate_limited(self, verdict: Verdict) -> web.Response:
        """429 with the contract's error body and the rate headers."""
        return error_response(429, "Rate limit exceeded", "RATE_LIMITED", verdict.headers())

    def server_fault(self, fault: str, headers: Headers, ordinal: int) -> web.Response:
        """The reseller's failing-server answers (see ``responses.server_fault_response``)."""
        return server_fault_response(fault, headers, ordinal)

    # ----------------------------------------------------------------- answers

    async def _answer_generate(
        self, request: web.Request, account: Account, headers: Headers
    ) -> web.StreamResponse:
        checked = validate_generate(await request.read())
        if isinstance(checked, str):
            return error_response(400, checked, "INVALID_REQUEST", headers)
        faults = self._faults
        ambiguous = bool(faults.fire("submit"))
        fired = faults.fire("task")
        for name in fired:
            faults.mark(name)
        record = self._tasks.create(checked, account.token, self._clock(), Fate.of(fired))
        if ambiguous:
            faults.mark("ambiguous")
            record.ambiguous = True
            self._stats.ambiguous_prompts.append(record.prompt)
            return reset_connection(request)
        data = {"task_id": record.task_id}
        return json_response(200, {"code": 200, "message": "success", "data": data}, headers)

    async def _answer_status(
        self, request: web.Request, account: Account, headers: Headers
    ) -> web.StreamResponse:
        task_id = request.query.get("task_id", "").strip()
        if not task_id:
            message = "Invalid request: The task_id parameter is required"
            return error_response(400, message, "INVALID_REQUEST", headers)
        record = self._tasks.owned(task_id, account.token)
        if record is None:
            message = "Invalid request: Unknown task_id"
            return error_response(400, message, "INVALID_REQUEST", headers)
        status = status_of(record, self._clock(), self._config.queued_fraction)
        data = status_data(record, status, f"{request.scheme}://{request.host}")
        return json_response(200, {"code": 200, "message": "success", "data": data}, headers)
