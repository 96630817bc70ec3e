"""A misbehaving GrokImagine look-alike for the test suite: one *mode* per kind of fault; and
``HostileGateway``, a misbehaving gateway in front of the simulator (either dialect).

Modelled on public bug reports of APIs behind gateways and CDNs. It listens on 127.0.0.1 only,
keeps its own truth (which tasks it created and charged, ``paid``), and misbehaves exactly as
told: each POST takes the next mode from ``post`` (then ``default_post``), each status request
the next from ``status`` (then ``default_status``). A task is done on its first poll.

POST modes (each creates and charges a task unless it says otherwise):
``ok``; ``bom`` (UTF-8 byte-order mark before the JSON); ``bom16`` (UTF-16 with its mark);
``truncated`` (a 200 whose body is cut short); ``html200`` (a 200 with an HTML page);
``gateway502`` / ``gateway504`` (a gateway's HTML page); ``code500_id`` (200 with
``"code": 500`` beside a task id); ``json500`` (the vendor's JSON 500, nothing said about the
task); ``ratelimit`` (429, nothing created; ``retry_after`` / ``reset`` header values);
``busy503`` (503 with Retry-After, nothing created); ``reject`` (vendor JSON 400, nothing
created); ``trickle`` (the answer trickles one byte every ``trickle_every`` s).

Status modes: ``ok``; ``running`` (not done yet); ``bom``; ``vanish`` (a 503, then the host
stops listening); ``unknown_task`` (vendor JSON 400 "Unknown task_id"); ``not_found`` (vendor
JSON 404 "Task not found"); ``ratelimit``; ``busy503``; ``trickle``; ``huge`` (an answer over
1 MB); ``completed_message`` (completed, URL and an error message); ``completed_empty``
(completed without URLs); ``lone_url`` (one URL string, not a list); ``many_urls`` (3,000
URLs); ``field:<name>=<json>`` (one field of ``data`` replaced, e.g. ``field:response=5``);
``drop:<name>`` (the field left out); ``header:<name>=<value>`` (an extra header on an
otherwise good answer, e.g. ``header:X-RateLimit-Remaining=inf``).

``await vendor.go_away()`` stops listening (a dead host mid-run); ``await vendor.come_back()``
listens again on the same port.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import json
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from batchgen.simulator.files import VIDEO_CONTENT_TYPE, video_bytes

__all__ = ["HostileGateway", "HostileVendor", "Task"]

PRICE = 40


@dataclass
class Task:
    """A task the vendor created (and charged)."""

    task_id: str
    prompt: str
    polls: int = 0


@dataclass
class HostileVendor:
    """See the module docstring. ``url`` is valid between ``start()`` and ``stop()``."""

    token: str
    post: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    default_post: str = "ok"
    default_status: str = "ok"
    retry_after: str | None = None  # the Retry-After of ``ratelimit`` / ``busy503``
    reset: str | None = None  # the X-RateLimit-Reset of ``ratelimit``
    date: str | None = None  # the Date header of ``ratelimit`` (None: aiohttp's, the real time)
    reject_message: str = "Invalid request: bad prompt"  # the message of ``reject``
    trickle_every: float = 5.0
    video_mode: str = "ok"  # "trickle": every video trickles one byte every trickle_every s
    tasks: dict[str, Task] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=lambda: {"generate": 0, "status": 0})
    notices: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to /notify

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.polled = asyncio.Event()  # set by the first status request
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._port = 0

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """The base URL (loopback)."""
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> HostileVendor:
        app = web.Application()
        app.router.add_post("/v1/generate", self._generate)
        app.router.add_get("/v1/status", self._status)
        app.router.add_get("/videos/{name}", self._video)
        app.router.add_post("/notify", self._notify)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await self.come_back()
        return self

    async def come_back(self) -> None:
        """Listen (again) on the same port."""
        assert self._runner is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()

    async def go_away(self) -> None:
        """Stop listening and drop every open connection: the host is gone."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        server = self._runner.server if self._runner is not None else None
        for handler in server.connections if server is not None else []:
            handler.force_close()

    async def stop(self) -> None:
        await self.go_away()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HostileVendor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- truth
    @property
    def paid(self) -> dict[str, int]:
        """Tasks charged per prompt."""
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.prompt] = counts.get(task.prompt, 0) + 1
        return counts

    @property
    def charged(self) -> int:
        """Credits the vendor really charged."""
        return PRICE * len(self.tasks)

    # ---------------------------------------------------------------- handlers
    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    @staticmethod
    def _next(queue: list[str], default: str) -> str:
        return queue.pop(0) if queue else default

    def _create(self, body: dict[str, Any]) -> Task:
        task = Task(f"task_{next(self._ids):06d}", str(body.get("prompt")))
        self.tasks[task.task_id] = task
        return task

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        self.requests["generate"] += 1
        if not self._authorised(request):
            return _json(401, {"code": 401, "message": "Unauthorized"})
        mode = self._next(self.post, self.default_post)
        refusal = self._refusal(mode)
        if refusal is not None:
            return refusal
        body = await request.json()
        task = self._create(body)
        envelope = {"code": 200, "message": "success", "data": {"task_id": task.task_id}}
        return await self._answer(request, mode, envelope)

    def _refusal(self, mode: str) -> web.Response | None:
        """The modes that create nothing."""
        if mode == "ratelimit":
            headers = {k: v for k, v in self._pause_headers().items() if v is not None}
            return _json(429, {"code": 429, "message": "Rate limit exceeded"}, headers)
        if mode == "busy503":
            headers = {"Retry-After": self.retry_after or "1"}
            return web.Response(status=503, text="<html>busy</html>", headers=headers)
        if mode == "reject":
            return _json(400, {"code": 400, "message": self.reject_message})
        return None

    def _pause_headers(self) -> dict[str, str | None]:
        return {"Retry-After": self.retry_after, "X-RateLimit-Reset": self.reset, "Date": self.date}

    async def _answer(
        self, request: web.Request, mode: str, envelope: dict[str, Any]
    ) -> web.StreamResponse:
        """A created task's answer, mangled as ``mode`` says."""
        data = json.dumps(envelope).encode()
        if mode == "bom":
            return _raw(200, codecs.BOM_UTF8 + data)
        if mode == "bom16":
            return _raw(200, codecs.BOM_UTF16_LE + json.dumps(envelope).encode("utf-16-le"))
        if mode == "truncated":
            return await _cut(request, data)
        if mode == "html200":
            return web.Response(status=200, text=_PAGE, content_type="text/html")
        if mode in ("gateway502", "gateway504"):
            return web.Response(status=int(mode[-3:]), text=_PAGE, content_type="text/html")
        if mode == "code500_id":
            envelope = {**envelope, "code": 500, "message": "internal error"}
            return _json(200, envelope)
        if mode == "json500":
            return _json(500, {"code": 500, "message": "Internal server error"})
        if mode == "trickle":
            return await _trickle(request, data, self.trickle_every)
        return _raw(200, data)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        self.requests["status"] += 1
        self.polled.set()
        if not self._authorised(request):
            return _json(401, {"code": 401, "message": "Unauthorized"})
        mode = self._next(self.status, self.default_status)
        task = self.tasks.get(request.query.get("task_id", ""))
        refusal = self._status_refusal(mode, task)
        if refusal is not None:
            return refusal
        assert task is not None
        task.polls += 1
        data = self._task_data(task, request)
        headers: dict[str, str] = {}
        if mode.startswith("header:"):
            name, _, value = mode.removeprefix("header:").partition("=")
            headers[name] = value
        data = _mangle(mode, data, request)
        envelope = json.dumps({"code": 200, "message": "success", "data": data}).encode()
        if mode == "bom":
            return _raw(200, codecs.BOM_UTF8 + envelope)
        if mode == "trickle":
            return await _trickle(request, envelope, self.trickle_every)
        if mode == "huge":
            padded = {"code": 200, "data": data, "padding": "x" * 1_100_000}
            return _raw(200, json.dumps(padded).encode())
        return _raw(200, envelope, headers)

    def _status_refusal(self, mode: str, task: Task | None) -> web.Response | None:
        if mode == "vanish":  # the host goes away with this request
            self._vanish = asyncio.ensure_future(self.go_away())
            return _json(503, {"code": 503, "message": "shutting down"})
        if mode == "unknown_task" or task is None:
            return _json(400, {"code": 400, "message": "Invalid request: Unknown task_id"})
        if mode == "not_found":
            return _json(404, {"code": 404, "message": "Task not found", "error": "NOT_FOUND"})
        if mode in ("ratelimit", "busy503"):
            return self._refusal(mode)
        return None

    def _task_data(self, task: Task, request: web.Request) -> dict[str, Any]:
        base = f"{request.scheme}://{request.host}"
        return {
            "consumed_credits": PRICE,
            "created_at": "2026-11-30T01:00:00Z",
            "status": "completed",
            "task_id": task.task_id,
            "error_message": None,
            "request": {"mode": "fun", "prompt": task.prompt, "ratio": "1:1"},
            "response": [f"{base}/videos/{task.task_id}.mp4"],
        }

    async def _notify(self, request: web.Request) -> web.StreamResponse:
        self.notices.append(await request.json())
        return web.Response(text="ok")

    async def _video(self, request: web.Request) -> web.StreamResponse:
        if self.video_mode == "trickle":
            response = web.StreamResponse(headers={"Content-Type": VIDEO_CONTENT_TYPE})
            response.content_length = len(video_bytes())
            await response.prepare(request)
            try:
                for byte in _bytes(video_bytes()):
                    await response.write(byte)
                    await asyncio.sleep(self.trickle_every)
            except ConnectionError:
                pass
            return response
        return web.Response(body=video_bytes(), content_type=VIDEO_CONTENT_TYPE)


def _mangle(mode: str, data: dict[str, Any], request: web.Request) -> dict[str, Any]:
    if mode == "completed_message":
        return {**data, "error_message": "Network error, please try again later."}
    if mode == "completed_empty":
        return {**data, "response": []}
    if mode == "running":
        return {**data, "status": "processing", "response": []}
    if mode == "lone_url":
        return {**data, "response": data["response"][0]}
    if mode == "many_urls":
        base = f"{request.scheme}://{request.host}/videos"
        return {**data, "response": [f"{base}/v{i}.mp4" for i in range(3000)]}
    if mode.startswith("field:"):
        name, _, value = mode.removeprefix("field:").partition("=")
        return {**data, name: json.loads(value)}
    if mode.startswith("drop:"):
        return {k: v for k, v in data.items() if k != mode.removeprefix("drop:")}
    return data


_PAGE = "<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return _raw(status, json.dumps(body).encode(), headers)


def _raw(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )


async def _cut(request: web.Request, data: bytes) -> web.StreamResponse:
    """Promise the whole body, send half, then drop the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[: len(data) // 2])
    transport = request.transport
    if transport is not None:
        transport.close()
    return response


async def _trickle(request: web.Request, data: bytes, every: float) -> web.StreamResponse:
    """One byte every ``every`` seconds (a body that never seems to end)."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    try:
        for byte in _bytes(data):
            await response.write(byte)
            await asyncio.sleep(every)
    except ConnectionError:  # the client gave up, as it should
        pass
    return response


def _bytes(data: bytes) -> Iterable[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


# ==================================================================== a gateway in front
#: The API routes a gateway forwards, in both of the simulator's dialects (the reseller's and
#: xAI's); video downloads go to the simulator's CDN directly, as a vendor's links do.
_API_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/generate"),
    ("GET", "/v1/status"),
    ("POST", "/v1/videos/generations"),
    ("GET", "/v1/videos/{request_id}"),
    ("POST", "/v1/files"),
)
#: An upstream answer to a POST that created a task: the reseller's ``task_id``, xAI's
#: ``request_id``.
_CREATED = re.compile(rb'"(task_id|request_id)"')
#: The modes that replace the answer to a POST that created a task, drawn in this order.
_CREATED_MODES = ("gateway504", "gateway502", "html200", "truncated", "trickle")
#: Answers with a readable JSON body worth mangling: 200, and xAI's 202 for a pending video.
_READABLE = (200, 202)
#: The largest request body forwarded (xAI's picture upload limit).
_FORWARDED_BODY = 50_000_000


@dataclass
class HostileGateway:
    """A misbehaving gateway in front of a real upstream (the simulator), for the chaos suite;
    it speaks whichever dialect the upstream does.

    Every API request is forwarded; then, drawn with ``rates`` (probabilities per request):
    ``bom`` prefixes a good JSON answer (200, or xAI's 202) with a UTF-8 byte-order mark;
    ``html200``, ``truncated``, ``gateway502``, ``gateway504`` and ``trickle`` replace the
    answer to a POST *that created a task* (the upstream's own 200 with a task or request id)
    with an unreadable one;
    ``trickle_status`` trickles a status answer; ``outage`` closes the gateway for
    ``outage_duration`` seconds after answering. ``force`` names modes applied at their first
    chance whatever the draw. ``mangled`` lists the prompts whose created task's answer was
    replaced (their rows must end ``unknown``, never paid twice silently).
    """

    upstream: str
    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    outage_duration: float = 0.5
    trickle_every: float = 0.05
    mangled: list[str] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    #: modes applied at their first chance whatever the draw (in this order when several
    #: compete for one answer), so that a run too short for ``rates`` still meets each
    force: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        import random

        self._rng = random.Random(self.seed)
        self._unforced = list(self.force)
        self._front = HostileVendor(token="")
        self._session: Any = None
        self._outage: asyncio.Future[None] | None = None

    @property
    def url(self) -> str:
        return self._front.url

    async def start(self) -> HostileGateway:
        import aiohttp

        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=_FORWARDED_BODY)
        for method, path in _API_ROUTES:
            app.router.add_route(method, path, self._forward)
        front = self._front
        front._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await front._runner.setup()
        await front.come_back()
        return self

    async def stop(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
        await self._front.stop()
        if self._session is not None:
            await self._session.close()

    def _forced(self, *modes: str) -> str | None:
        """The first of ``modes`` still to be forced, if any (then counted as applied)."""
        mode = next((m for m in self._unforced if m in modes), None)
        if mode is not None:
            self._unforced.remove(mode)
            self.applied[mode] = self.applied.get(mode, 0) + 1
        return mode

    def _draw(self, *modes: str) -> str | None:
        for mode in modes:
            if self._rng.random() < self.rates.get(mode, 0.0):
                self.applied[mode] = self.applied.get(mode, 0) + 1
                return mode
        return None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        import aiohttp

        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as upstream:
                data = await upstream.read()
                status = upstream.status
                passed = {
                    k: v for k, v in upstream.headers.items() if k.lower().startswith("x-rate")
                }
                if "Retry-After" in upstream.headers:
                    passed["Retry-After"] = upstream.headers["Retry-After"]
        except aiohttp.ClientError:  # the upstream refused or dropped it: a gateway's 502
            return web.Response(status=502, text=_PAGE, content_type="text/html")
        response = await self._mangle(request, status, data, body, passed)
        if (self._forced("outage") or self._draw("outage")) and self._outage is None:
            self._outage = asyncio.ensure_future(self._close_for_a_while())
        return response

    async def _mangle(
        self, request: web.Request, status: int, data: bytes, sent: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        created = request.method == "POST" and status == 200 and _CREATED.search(data) is not None
        mode = (self._forced(*_CREATED_MODES) if created else None) or self._draw(*_CREATED_MODES)
        if created and mode is not None:
            if mode != "trickle":  # a trickle that ends in time is a whole answer
                self.mangled.append(str(json.loads(sent).get("prompt")))
            if mode == "truncated":
                return await _cut(request, data)
            if mode == "trickle":
                return await _trickle(request, data, self.trickle_every)
            code = 200 if mode == "html200" else int(mode[-3:])
            return web.Response(status=code, text=_PAGE, content_type="text/html")
        readable = status in _READABLE
        polled = readable and request.method == "GET"
        if polled and (self._forced("trickle_status") or self._draw("trickle_status")):
            return await _trickle(request, data, self.trickle_every)
        if readable and (self._forced("bom") or self._draw("bom")):
            data = codecs.BOM_UTF8 + data
        return _raw(status, data, headers)

    async def _close_for_a_while(self) -> None:
        await asyncio.sleep(0)  # let the answer that drew it go out first
        await self._front.go_away()
        await asyncio.sleep(self.outage_duration)
        await self._front.come_back()
        self._outage = None
