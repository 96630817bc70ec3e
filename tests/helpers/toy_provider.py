"""A second video vendor, for tests only: another JSON shape and status vocabulary.

``POST /jobs`` -> ``{"id": ...}``; ``GET /jobs/{id}`` -> ``{"state": "WORKING"|"DONE"|"BROKEN",
"outputs": [...]}``; ``GET /files/{id}.mp4`` serves the video. It shares nothing with
GrokImagine's wire format (``/v1/generate``, ``task_id``, ``status``, ``video_urls``), so a run
that completes against it proves the engine speaks only the provider protocol.
"""

from __future__ import annotations

import itertools
import time
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from batchgen.errors import PermanentApiError, ProtocolError, TaskGoneError
from batchgen.models import JobSpec, TaskState, TaskStatus
from batchgen.providers.base import ApiHealth, SendMark
from batchgen.providers.grokimagine import ResponseHook

from .paths import REPO

VIDEO = (REPO / "batchgen" / "data" / "tiny.mp4").read_bytes()
STATES = {"WORKING": TaskState.WAITING, "DONE": TaskState.COMPLETED, "BROKEN": TaskState.FAILED}


class ToyServer:
    """The toy vendor on 127.0.0.1: each job answers WORKING once, then DONE (or BROKEN for a
    prompt containing ``break``)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.requests: list[str] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/jobs", self._create)
        app.router.add_get("/jobs/{id}", self._show)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _create(self, request: web.Request) -> web.Response:
        self.requests.append(f"POST {request.path}")
        body = await request.json()
        job_id = f"toy-{next(self._ids)}"
        self.jobs[job_id] = body
        self.polls[job_id] = 0
        return web.json_response({"id": job_id}, status=201)

    async def _show(self, request: web.Request) -> web.Response:
        self.requests.append(f"GET {request.path}")
        job_id = request.match_info["id"]
        if job_id not in self.jobs:
            return web.json_response({"problem": "no such job"}, status=404)
        self.polls[job_id] += 1
        if self.polls[job_id] < 2:
            return web.json_response({"state": "WORKING", "outputs": []})
        if "break" in self.jobs[job_id]["text"]:
            return web.json_response({"state": "BROKEN", "outputs": [], "why": "refused"})
        return web.json_response({"state": "DONE", "outputs": [f"{self.url}/files/{job_id}.mp4"]})

    async def _file(self, request: web.Request) -> web.Response:
        self.requests.append(f"GET {request.path}")
        return web.Response(body=VIDEO, content_type="video/mp4")


class ToyProvider:
    """The toy vendor behind :class:`batchgen.providers.base.Provider`."""

    def __init__(self, base_url: str, on_response: ResponseHook | None = None) -> None:
        self.base_url = base_url
        self.requests = 0
        self.rate_limited = 0
        self.token_accepted = False
        self.health = ApiHealth()
        self._on_response = on_response
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[-1]

    def clock(self) -> float:
        return time.monotonic()

    async def __aenter__(self) -> ToyProvider:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self._session is not None
        self.requests += 1
        async with self._session.request(method, self.base_url + path, json=body) as reply:
            data = await reply.json()
        self.token_accepted = True
        self.health.succeeded(self.clock())
        return reply.status, data

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        if mark is not None:
            mark.sent = True
        body = {"text": spec.prompt, "style": spec.mode, "aspect": spec.ratio}
        code, data = await self._call("POST", "/jobs", body)
        if code != 201 or not isinstance(data.get("id"), str):
            raise PermanentApiError(f"toy vendor refused the job: {code}")
        return str(data["id"])

    async def status(self, task_id: str) -> TaskStatus:
        code, data = await self._call("GET", f"/jobs/{task_id}")
        if code == 404:
            raise TaskGoneError(f"toy vendor does not know {task_id}")
        state = data.get("state")
        if state not in STATES:
            raise ProtocolError(f"toy vendor sent state {state!r}")
        return TaskStatus(
            task_id=task_id,
            status=state,
            state=STATES[state],
            consumed_credits=40 if state == "DONE" else 0,
            error_message=data.get("why"),
            urls=tuple(data.get("outputs", ())),
        )
