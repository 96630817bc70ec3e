"""The way in to every API route, whatever the dialect: bearer token, rate window, api faults.

Order of work for an API request (both dialects):

1. no accepted bearer token: the dialect's refusal (the reseller's 401; xAI's 401, or 400 for a
   well-formed wrong key), counted against no account;
2. a 429 storm in progress, or the account's rate window full: the dialect's 429 (nothing else
   happens, no task);
3. the request is *admitted* and gets the next api ordinal; the api faults are decided;
4. the strongest answering fault replaces the answer (see ``API_FAULT_PRECEDENCE``), after
   the ``slow`` delay if that fired too; ``refuse`` starts an outage (see ``server``);
5. otherwise the dialect's own handler validates the request and acts on it.

What differs between dialects (bodies, headers) is asked of a ``Dialect``; the sequence above,
the stats it keeps and the faults' mechanics are written once, here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from batchgen.simulator.backend import Backend
from batchgen.simulator.limits import Account, Verdict, accounts
from batchgen.simulator.responses import Headers, reset_connection
from batchgen.simulator.sim_config import API_FAULT_PRECEDENCE

__all__ = ["Answer", "Dialect", "Gateway", "bearer_token"]

Answer = Callable[[web.Request, Account, Headers], Awaitable[web.StreamResponse]]


class Dialect(Protocol):
    """The answers whose shape depends on the vendor."""

    def refusal(self, request: web.Request) -> web.Response:
        """The answer to a request without an accepted bearer token."""
        ...

    def admitted_headers(self, verdict: Verdict) -> Headers:
        """The headers of any answer to an admitted request (a fresh dict)."""
        ...

    def rate_limited(self, verdict: Verdict) -> web.Response:
        """The 429 for a request the rate window (or a storm) refused."""
        ...

    def server_fault(self, fault: str, headers: Headers, ordinal: int) -> web.Response:
        """A failing server's answer for ``server_error``, ``body_error`` or ``html_body``
        (``ordinal``: that fault's count, from 1, for answers that take turns)."""
        ...


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None without one)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class Gateway:
    """Admits API requests for one dialect; ``on_refuse`` is called when ``refuse`` fires."""

    def __init__(
        self, backend: Backend, dialect: Dialect, *, on_refuse: Callable[[], None]
    ) -> None:
        config = backend.config
        limit, window = config.rate_limit
        self._backend = backend
        self._dialect = dialect
        self._on_refuse = on_refuse
        self._accounts = accounts(
            config.tokens, config.teams, kind=config.window_kind, limit=limit, window=window
        )

    async def handle(
        self, request: web.Request, endpoint: str, answer: Answer
    ) -> web.StreamResponse:
        """The answer to one API request to ``endpoint`` (the name the stats count it under)."""
        backend = self._backend
        stats, clock = backend.stats, backend.clock
        stats.requests[endpoint] += 1
        token = bearer_token(request)
        account = self._accounts.get(token) if token is not None else None
        if account is None:
            stats.unauthorized += 1
            return self._dialect.refusal(request)
        now = clock()
        stats.arrival(endpoint, now)
        peak = account.peak.add(now)
        for label in account.labels:
            stats.max_window[label] = peak
        verdict = account.gate.admit(now)
        if not verdict.allowed:
            return self._rate_limited(verdict)
        fired = backend.faults.fire("api")
        if fired:
            return await self._faulty(request, account, verdict, fired, answer)
        return await answer(request, account, self._dialect.admitted_headers(verdict))

    def _rate_limited(self, verdict: Verdict) -> web.Response:
        self._backend.stats.rate_limited += 1
        return self._dialect.rate_limited(verdict)

    async def _faulty(
        self,
        request: web.Request,
        account: Account,
        verdict: Verdict,
        fired: list[str],
        answer: Answer,
    ) -> web.StreamResponse:
        """Answer an admitted request on which at least one api fault fired."""
        backend = self._backend
        faults, stats, config = backend.faults, backend.stats, backend.config
        winner = next((name for name in API_FAULT_PRECEDENCE if name in fired), None)
        if winner == "storm":  # a storm answers before anything else happens
            faults.mark("storm")
            stats.storms += 1
            duration = config.storm_duration
            return self._rate_limited(account.gate.start_storm(backend.clock(), duration))
        if "refuse" in fired:
            faults.mark("refuse")
            self._on_refuse()
        if winner == "drop_before":
            faults.mark(winner)
            stats.dropped_before += 1
            return reset_connection(request)
        if "slow" in fired:
            faults.mark("slow")
            await asyncio.sleep(config.slow_delay)
        headers = self._dialect.admitted_headers(verdict)
        response: web.StreamResponse
        if winner:
            faults.mark(winner)
            ordinal = faults.alternate("html") if winner == "html_body" else 0
            response = self._dialect.server_fault(winner, headers, ordinal)
        else:
            response = await answer(request, account, headers)
        if "refuse" in fired:
            response.force_close()
        return response
