"""The simulator's HTTP server: the vendor API, its CDN, fault injection and the stats endpoint.

Order of work for an API request (``POST /v1/generate``, ``GET /v1/status``):

1. no or unknown bearer token: 401, counted against no token;
2. a 429 storm in progress, or the rate window full: 429 (nothing else happens, no task);
3. the request is *admitted* and gets the next api ordinal; the api faults are decided;
4. the strongest answering fault replaces the answer (see ``API_FAULT_PRECEDENCE``), after
   the ``slow`` delay if that fired too; ``refuse`` closes the listening socket for a while;
5. otherwise the request is validated (400) and acted on.

``refuse`` answers its request normally, with ``Connection: close``, and closes the listening
socket at once; ``refuse_duration`` seconds later it listens again on the same port. In between,
new connections are refused by the kernel (ECONNREFUSED); open keep-alive connections live on.
It needs the listener that ``start`` opens, so it does nothing for an app run by other means.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from batchgen.simulator.config import (
    API_FAULT_PRECEDENCE,
    API_FAULTS,
    FILE_FAULTS,
    SUBMIT_FAULTS,
    TASK_FAULTS,
    SimConfig,
)
from batchgen.simulator.files import (
    VIDEO_CONTENT_TYPE,
    RangeNotSatisfiable,
    expired_response,
    login_page,
    parse_range,
    unsized_cut,
    video_bytes,
    video_etag,
)
from batchgen.simulator.limits import TokenGate, Verdict, make_window, rate_headers
from batchgen.simulator.stats import PeakWindow, SimStats, TaskRecord, token_label
from batchgen.simulator.tasks import Fate, draw_record, status_data, status_of, validate_generate

__all__ = ["Simulator"]

Headers = dict[str, str]
Answer = Callable[[web.Request, "_Account", Headers], Awaitable[web.StreamResponse]]

_ACCESS_LOG = logging.getLogger("batchgen.simulator.access")
_SHUTDOWN_GRACE = 0.25  # seconds in-flight requests get when the simulator stops
_SERVER_ERROR = {"code": 500, "message": "Internal server error", "error": "SERVER_ERROR"}
_HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class _NeverSent(web.Response):
    """What a handler returns after resetting the connection: aiohttp tries to send it, finds
    the transport gone, and gives up quietly. Its type keeps it out of the counters."""


class _Account:
    """One accepted token's rate state."""

    __slots__ = ("gate", "label", "peak", "token")

    def __init__(self, token: str, config: SimConfig) -> None:
        self.token = token
        self.label = token_label(token)
        self.gate = TokenGate(make_window(config.window_kind, config.rpm, config.window))
        self.peak = PeakWindow(config.window)


class Simulator:
    """A faithful fake of the GrokImagine API on a real local port.

    ``clock`` replaces the event loop's clock for task lifecycles and rate windows (tests use
    it to step time); ``access_log`` turns on aiohttp's per-request log (off: it is slow).
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: Callable[[], float] | None = None,
        access_log: bool = False,
    ) -> None:
        self.config = config
        self.stats = SimStats(tick=config.window / 60)
        self.url = ""
        self._clock = clock
        self._access_log = access_log
        self._rng = random.Random(config.seed)
        self._accounts = {token: _Account(token, config) for token in config.tokens}
        self._owners: dict[str, str] = {}  # task id -> the token that created it
        self._ordinals = dict.fromkeys(("api", "submit", "task", "file", "html", "expired"), 0)
        self._active = {
            kind: [(name, config.fault(name)) for name in names if config.fault(name).active]
            for kind, names in (
                ("api", API_FAULTS),
                ("submit", SUBMIT_FAULTS),
                ("task", TASK_FAULTS),
                ("file", FILE_FAULTS),
            )
        }
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self.app = self._build_app()

    # ----------------------------------------------------------------- lifecycle

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/generate", self._generate)
        app.router.add_get("/v1/status", self._status)
        app.router.add_get(r"/files/{task_id}/{n:\d+}.mp4", self._file)
        app.router.add_get("/_sim/stats", self._stats_json)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port); returns the base URL, also in ``url``."""
        self._runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=_ACCESS_LOG if self._access_log else None,
            shutdown_timeout=_SHUTDOWN_GRACE,
        )
        await self._runner.setup()
        self._host = host
        self._listener = await self._listen(port)
        self._port = self._listener.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self._port}"
        return self.url

    async def _listen(self, port: int) -> asyncio.Server:
        assert self._runner is not None and self._runner.server is not None
        return await asyncio.get_running_loop().create_server(
            self._runner.server, self._host, port, reuse_address=True, backlog=1024
        )

    async def stop(self) -> None:
        """Stop listening, close every connection, forget the port. Idempotent."""
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
            self._relisten = None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- outages

    def _refuse_for_a_while(self) -> None:
        """Close the listening socket now; listen again after ``refuse_duration``."""
        if self._listener is None:  # already refusing, or not started by ``start``
            return
        self._listener.close()
        self._listener = None
        self.stats.refused_windows += 1
        self._relisten = asyncio.create_task(self._listen_again())

    async def _listen_again(self) -> None:
        await asyncio.sleep(self.config.refuse_duration)
        while self._listener is None:
            try:
                self._listener = await self._listen(self._port)
            except OSError:  # the port is briefly in use by someone else: keep trying
                await asyncio.sleep(0.01)
        self._relisten = None

    # ----------------------------------------------------------------- helpers

    def now(self) -> float:
        """The simulator's clock: the injected one, or the running event loop's."""
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    def _fired(self, kind: str) -> list[str]:
        """Advance ``kind``'s ordinal and list the faults of that kind that fire on it."""
        active = self._active[kind]
        ordinal = self._ordinals[kind] = self._ordinals[kind] + 1
        if not active:
            return []
        rng = self._rng
        return [name for name, fault in active if fault.fires(ordinal, rng)]

    def _mark(self, name: str) -> None:
        self.stats.faults[name] += 1

    def _counted(self, response: web.StreamResponse) -> web.StreamResponse:
        """Count ``response`` by status, unless it was never sent. (Counting here rather than
        in an ``on_response_prepare`` signal is measurably cheaper per request.)"""
        if not isinstance(response, _NeverSent):
            self.stats.responses[response.status] += 1
        return response

    def _account(self, request: web.Request) -> _Account | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self._accounts.get(token.strip())

    def _drop(self, request: web.Request) -> web.StreamResponse:
        """Reset the connection (RST, not FIN) without answering."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return _NeverSent()

    # ----------------------------------------------------------------- API

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return self._counted(await self._api(request, "generate", self._answer_generate))

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return self._counted(await self._api(request, "status", self._answer_status))

    async def _api(self, request: web.Request, endpoint: str, answer: Answer) -> web.StreamResponse:
        self.stats.requests[endpoint] += 1
        account = self._account(request)
        if account is None:
            return self._unauthorized(request)
        now = self.now()
        self.stats.arrival(endpoint, now)
        self.stats.max_window[account.label] = account.peak.add(now)
        verdict = account.gate.admit(now)
        if not verdict.allowed:
            return self._rate_limited(verdict)
        fired = self._fired("api")
        if fired:
            return await self._faulty(request, account, verdict, fired, answer)
        return await answer(request, account, verdict.headers())

    async def _faulty(
        self,
        request: web.Request,
        account: _Account,
        verdict: Verdict,
        fired: list[str],
        answer: Answer,
    ) -> web.StreamResponse:
        """Answer an admitted request on which at least one api fault fired."""
        winner = next((name for name in API_FAULT_PRECEDENCE if name in fired), None)
        if winner == "storm":  # a storm answers before anything else happens
            self._mark("storm")
            self.stats.storms += 1
            return self._rate_limited(
                account.gate.start_storm(self.now(), self.config.storm_duration)
            )
        if "refuse" in fired:
            self._mark("refuse")
            self._refuse_for_a_while()
        if winner == "drop_before":
            self._mark(winner)
            self.stats.dropped_before += 1
            return self._drop(request)
        if "slow" in fired:
            self._mark("slow")
            await asyncio.sleep(self.config.slow_delay)
        headers = verdict.headers()
        response: web.StreamResponse
        if winner:
            response = self._server_fault(winner, headers)
        else:
            response = await answer(request, account, headers)
        if "refuse" in fired:
            response.force_close()
        return response

    def _server_fault(self, winner: str, headers: Headers) -> web.Response:
        """The answer of a failing server, for the faults that need no request processing."""
        self._mark(winner)
        if winner == "server_error":
            return _json(500, _SERVER_ERROR, headers)
        if winner == "body_error":
            return _json(200, _SERVER_ERROR, headers)
        # html_body: alternately a gateway's 502 page and the same page with a 200
        self._ordinals["html"] += 1
        status = 502 if self._ordinals["html"] % 2 else 200
        return web.Response(
            status=status, text=_HTML_PAGE, content_type="text/html", headers=headers
        )

    def _unauthorized(self, request: web.Request) -> web.Response:
        self.stats.unauthorized += 1
        missing = "Authorization" not in request.headers
        message = "Unauthorized: missing bearer token" if missing else "Unauthorized: invalid token"
        headers = rate_headers(self.config.rpm, self.config.window)
        return _error(401, message, "UNAUTHORIZED", headers)

    def _rate_limited(self, verdict: Verdict) -> web.Response:
        self.stats.rate_limited += 1
        return _error(429, "Rate limit exceeded", "RATE_LIMITED", verdict.headers())

    async def _answer_generate(
        self, request: web.Request, account: _Account, headers: Headers
    ) -> web.StreamResponse:
        checked = validate_generate(await request.read())
        if isinstance(checked, str):
            return _error(400, checked, "INVALID_REQUEST", headers)
        ambiguous = bool(self._fired("submit"))
        record = self._create_task(checked, account)
        if ambiguous:
            self._mark("ambiguous")
            record.ambiguous = True
            self.stats.ambiguous_prompts.append(record.prompt)
            return self._drop(request)
        data = {"task_id": record.task_id}
        return _json(200, {"code": 200, "message": "success", "data": data}, headers)

    def _create_task(self, request: dict[str, Any], account: _Account) -> TaskRecord:
        fired = self._fired("task")
        for name in fired:
            self._mark(name)
        fate = Fate(
            permanent="task_permanent" in fired,
            transient="task_transient" in fired,
            unknown_status="unknown_status" in fired,
        )
        task_id = self._new_task_id()
        record = draw_record(
            task_id=task_id,
            request=request,
            now=self.now(),
            fate=fate,
            config=self.config,
            rng=self._rng,
        )
        stats = self.stats
        stats.tasks[task_id] = record
        stats.tasks_created += 1
        stats.credits_charged += record.credits
        stats.tasks_by_prompt[record.prompt] += 1
        self._owners[task_id] = account.token
        return record

    def _new_task_id(self) -> str:
        # Not drawn from the seeded generator: a restarted simulator with the same seed must
        # not hand out ids that a client's state still holds from the previous instance.
        while True:
            task_id = f"task_{secrets.randbelow(10**12):012d}"
            if task_id not in self._owners:
                return task_id

    async def _answer_status(
        self, request: web.Request, account: _Account, headers: Headers
    ) -> web.StreamResponse:
        task_id = request.query.get("task_id", "").strip()
        if not task_id:
            message = "Invalid request: The task_id parameter is required"
            return _error(400, message, "INVALID_REQUEST", headers)
        record = self.stats.tasks.get(task_id)
        if record is None or self._owners[task_id] != account.token:
            return _error(400, "Invalid request: Unknown task_id", "INVALID_REQUEST", headers)
        status = status_of(record, self.now(), self.config.queued_fraction)
        data = status_data(record, status, f"{request.scheme}://{request.host}")
        return _json(200, {"code": 200, "message": "success", "data": data}, headers)

    # ----------------------------------------------------------------- CDN

    async def _file(self, request: web.Request) -> web.StreamResponse:
        return self._counted(await self._serve_file(request))

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests["files"] += 1
        record = self._video_record(request)
        if record is None:
            return web.Response(status=404, text="Not found", content_type="text/plain")
        if request.method == "HEAD":  # faults are for downloads only
            return _video_response(request, video_bytes())
        ttl = self.config.link_ttl
        if ttl is not None and self.now() > record.finished + ttl:
            return expired_response(1)
        fired = self._fired("file")
        if "expired" in fired:
            self._mark("expired")
            self._ordinals["expired"] += 1
            return expired_response(self._ordinals["expired"])
        if "truncated" in fired:
            self._mark("truncated")
            return await self._truncated(request)
        if "wrong_type" in fired:
            self._mark("wrong_type")
            return login_page()
        if "unsized_cut" in fired:
            self._mark("unsized_cut")
            full = _video_response(request, video_bytes())
            return await unsized_cut(request, full, self.config.truncate_fraction)
        return _video_response(request, video_bytes())

    def _video_record(self, request: web.Request) -> TaskRecord | None:
        """The completed task a video URL points at, if it names an existing video."""
        record = self.stats.tasks.get(request.match_info["task_id"])
        if record is None or self.now() < record.finished or record.final_status != "completed":
            return None
        return record if 1 <= int(request.match_info["n"]) <= record.videos else None

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        """Send the headers of the full answer, part of the body, then close the connection."""
        full = _video_response(request, video_bytes())
        body = full.body
        assert isinstance(body, bytes)
        response = web.StreamResponse(status=full.status, headers=full.headers)
        response.content_length = len(body)
        response.force_close()
        await response.prepare(request)
        await response.write(body[: int(len(body) * self.config.truncate_fraction)])
        if request.transport is not None:
            request.transport.close()  # FIN after the partial body: the client sees a short read
        return response

    # ----------------------------------------------------------------- observability

    async def _stats_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_json(with_tasks=request.query.get("tasks") != "0"))


def _video_response(request: web.Request, body: bytes) -> web.Response:
    """200 with the whole video, or 206/416 for a ``Range`` request (``If-Range`` honoured)."""
    size = len(body)
    headers = {"Accept-Ranges": "bytes", "ETag": video_etag()}
    if_range = request.headers.get("If-Range")
    wanted = request.headers.get("Range") if if_range in (None, video_etag()) else None
    try:
        span = parse_range(wanted, size)
    except RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return web.Response(status=416, headers=headers)
    if span is None:
        return web.Response(body=body, content_type=VIDEO_CONTENT_TYPE, headers=headers)
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    part = body[start : end + 1]
    return web.Response(status=206, body=part, content_type=VIDEO_CONTENT_TYPE, headers=headers)


def _json(status: int, payload: dict[str, Any], headers: Headers) -> web.Response:
    """A JSON answer; ``headers`` (a fresh dict from the caller) becomes the response's."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    # Content-Type goes in with the other headers: cheaper than aiohttp's content_type=.
    headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=body, headers=headers)


def _error(status: int, message: str, error: str, headers: Headers) -> web.Response:
    return _json(status, {"code": status, "message": message, "error": error}, headers)
