"""The vendor API: ``POST /v1/generate`` and ``GET /v1/status``, from bearer token to answer.

Order of work for an API request:

1. no or unknown bearer token: 401, counted against no token;
2. a 429 storm in progress, or the rate window full: 429 (nothing else happens, no task);
3. the request is *admitted* and gets the next api ordinal; the api faults are decided;
4. the strongest answering fault replaces the answer (see ``API_FAULT_PRECEDENCE``), after
   the ``slow`` delay if that fired too; ``refuse`` starts an outage (see ``server``);
5. otherwise the request is validated (400) and acted on.

A generate that draws the ``ambiguous`` fault creates its task, then resets the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from batchgen.simulator.backend import Backend
from batchgen.simulator.limits import Account, Verdict, rate_headers
from batchgen.simulator.responses import (
    Headers,
    error_response,
    json_response,
    reset_connection,
    server_fault_response,
)
from batchgen.simulator.sim_config import API_FAULT_PRECEDENCE
from batchgen.simulator.tasks import Fate, status_data, status_of, validate_generate

__all__ = ["VendorApi"]

Answer = Callable[[web.Request, Account, Headers], Awaitable[web.StreamResponse]]


class VendorApi:
    """The two API routes' handlers, with every accepted token's rate state.

    ``on_refuse`` is called when the ``refuse`` fault fires.
    """

    def __init__(self, backend: Backend, *, on_refuse: Callable[[], None]) -> None:
        config = backend.config
        self._config = config
        self._stats = backend.stats
        self._faults = backend.faults
        self._tasks = backend.tasks
        self._clock = backend.clock
        self._on_refuse = on_refuse
        self._accounts = {
            token: Account(token, kind=config.window_kind, limit=config.rpm, window=config.window)
            for token in config.tokens
        }

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/generate``."""
        return await self._api(request, "generate", self._answer_generate)

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/status?task_id=``."""
        return await self._api(request, "status", self._answer_status)

    async def _api(self, request: web.Request, endpoint: str, answer: Answer) -> web.StreamResponse:
        stats = self._stats
        stats.requests[endpoint] += 1
        account = self._account(request)
        if account is None:
            return self._unauthorized(request)
        now = self._clock()
        stats.arrival(endpoint, now)
        stats.max_window[account.label] = account.peak.add(now)
        verdict = account.gate.admit(now)
        if not verdict.allowed:
            return self._rate_limited(verdict)
        fired = self._faults.fire("api")
        if fired:
            return await self._faulty(request, account, verdict, fired, answer)
        return await answer(request, account, verdict.headers())

    def _account(self, request: web.Request) -> Account | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._accounts.get(token.strip())

    async def _faulty(
        self,
        request: web.Request,
        account: Account,
        verdict: Verdict,
        fired: list[str],
        answer: Answer,
    ) -> web.StreamResponse:
        """Answer an admitted request on which at least one api fault fired."""
        faults, stats = self._faults, self._stats
        winner = next((name for name in API_FAULT_PRECEDENCE if name in fired), None)
        if winner == "storm":  # a storm answers before anything else happens
            faults.mark("storm")
            stats.storms += 1
            duration = self._config.storm_duration
            return self._rate_limited(account.gate.start_storm(self._clock(), duration))
        if "refuse" in fired:
            faults.mark("refuse")
            self._on_refuse()
        if winner == "drop_before":
            faults.mark(winner)
            stats.dropped_before += 1
            return reset_connection(request)
        if "slow" in fired:
            faults.mark("slow")
            await asyncio.sleep(self._config.slow_delay)
        headers = verdict.headers()
        response: web.StreamResponse
        if winner:
            faults.mark(winner)
            ordinal = faults.alternate("html") if winner == "html_body" else 0
            response = server_fault_response(winner, headers, ordinal)
        else:
            response = await answer(request, account, headers)
        if "refuse" in fired:
            response.force_close()
        return response

    def _unauthorized(self, request: web.Request) -> web.Response:
        self._stats.unauthorized += 1
        missing = "Authorization" not in request.headers
        message = "Unauthorized: missing bearer token" if missing else "Unauthorized: invalid token"
        headers = rate_headers(self._config.rpm, self._config.window)
        return error_response(401, message, "UNAUTHORIZED", headers)

    def _rate_limited(self, verdict: Verdict) -> web.Response:
        self._stats.rate_limited += 1
        return error_response(429, "Rate limit exceeded", "RATE_LIMITED", verdict.headers())

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
