"""Shared fixtures: a real simulator on a local port, fast enough for unit tests.

* ``fast_sim_config``: the ``SimConfig`` the ``simulator`` fixture uses; derive your own with
  ``dataclasses.replace(fast_sim_config, rpm=3, server_error=Fault(at={1}))``.
* ``simulator_factory``: ``sim = await simulator_factory(config, clock=...)`` starts one more
  simulator (``config`` defaults to ``fast_sim_config``); all are stopped at teardown.
* ``simulator``: a started simulator with ``fast_sim_config``; talk to ``simulator.url`` with
  the bearer token ``DEMO_TOKEN``.
* ``http``: a plain ``aiohttp.ClientSession``, closed at teardown.
* ``fake_clock``: a ``FakeClock`` to inject as ``clock=`` so a test steps simulated time.
* ``sim_client``: ``client = sim_client(sim)`` gives a ``SimClient``, raw HTTP calls to the
  simulator returning ``Reply`` records (status, headers, body), for tests of the fake itself.
* ``xai_sim_config``: the fast ``SimConfig(provider="xai", ...)`` of the ``xai_simulator``
  fixture (100 requests per second per team, so tests are not paced by the limit unless they
  lower ``rps``); ``xai_simulator``: a started xAI simulator; ``xai_client``:
  ``client = xai_client(sim)`` gives an ``XaiClient`` (raw calls in xAI's dialect).
* ``make_sim``: ``sim = await make_sim(**options)`` starts a simulator with
  ``SimConfig(**(SIM_DEFAULTS | options))``, ``SIM_DEFAULTS`` being the test module's own dict.
* ``write_briefs(path, n)``: a CSV manifest of ``n`` numbered rows with ids.
* ``finished_run(run_id, started_at, seconds, command, **counts)``: a ``RunInfo``.
* ``pictures``: a local picture host (``PictureServer``; ``Picture`` says what a path
  answers; ``PNG``, ``JPEG``, ``WEBP``, ``HEIC`` and ``HTML`` are bodies to serve).
* ``StubRow``: a stand-in for ``batchgen.manifest.load.ManifestRow`` (a valid row unless its
  ``spec`` is None).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import aiohttp.web
import pytest
from multidict import CIMultiDictProxy

from batchgen.config import DEMO_TOKEN, TIERS
from batchgen.models import JobSpec, RunInfo
from batchgen.simulator import SimConfig, Simulator

#: Tasks take about 20 ms (10-60 ms), plenty of budget, reproducible draws.
FAST_SIM_CONFIG = SimConfig(
    tokens=frozenset({DEMO_TOKEN}),
    rpm=TIERS["enterprise"],
    latency_median=2.0,
    latency_sigma=0.3,
    time_scale=0.01,
    seed=1234,
    slow_delay=0.2,
    storm_duration=0.3,
    refuse_duration=0.2,
)

#: The xAI dialect, as fast: requests take about 20 ms, 100 requests per second per team.
FAST_XAI_SIM_CONFIG = SimConfig(
    provider="xai",
    tokens=frozenset({DEMO_TOKEN}),
    rps=100,
    latency_median=2.0,
    latency_sigma=0.3,
    time_scale=0.01,
    seed=1234,
    slow_delay=0.2,
    storm_duration=0.3,
    refuse_duration=0.2,
)


@pytest.fixture(autouse=True)
def _user_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own per-user state directory (``BATCHGEN_HOME``), never ``~``."""
    home = tmp_path_factory.mktemp("batchgen-home")
    monkeypatch.setenv("BATCHGEN_HOME", str(home))
    return home


class SimulatorFactory(Protocol):
    """The type of the ``simulator_factory`` fixture."""

    def __call__(self, config: SimConfig | None = None, **kwargs: Any) -> Awaitable[Simulator]: ...


class FakeClock:
    """A clock that moves only when told: ``clock.advance(seconds)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


MakeSim = Callable[..., Awaitable[Simulator]]


@pytest.fixture
def make_sim(simulator_factory: SimulatorFactory, request: pytest.FixtureRequest) -> MakeSim:
    """Starts simulators with the test module's ``SIM_DEFAULTS`` and ``options`` on top."""
    defaults: dict[str, Any] = request.module.SIM_DEFAULTS

    async def make(**options: Any) -> Simulator:
        return await simulator_factory(SimConfig(**(defaults | options)))

    return make


@dataclass(frozen=True)
class StubRow:
    """A stand-in for ``batchgen.manifest.load.ManifestRow``."""

    row: int
    key: str
    user: dict[str, Any]
    spec: JobSpec | None
    prompt: str
    problems: tuple[Any, ...] = ()
    skipped: str | None = None  # a row hidden in the sheet


def finished_run(
    run_id: int, started_at: dt.datetime, seconds: float, command: str, **counts: int
) -> RunInfo:
    """A ``RunInfo`` of a run that took ``seconds``; ``counts``: requests, rate_limited,
    credits."""
    return RunInfo(
        run_id=run_id,
        started_at=started_at,
        ended_at=started_at + dt.timedelta(seconds=seconds),
        command=command,
        **counts,
    )


def write_briefs(path: Path, n: int) -> Path:
    """A CSV manifest of ``n`` rows (``id`` r0.., ``prompt`` "<stem> prompt i", fun, 1:1)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows([f"r{i}", f"{path.stem} prompt {i}", "fun", "1:1"] for i in range(n))
    return path


@pytest.fixture
def fast_sim_config() -> SimConfig:
    """The configuration of the ``simulator`` fixture."""
    return FAST_SIM_CONFIG


@pytest.fixture
async def simulator_factory() -> AsyncIterator[SimulatorFactory]:
    """Start simulators on demand; every one is stopped at teardown."""
    started: list[Simulator] = []

    async def start(config: SimConfig | None = None, **kwargs: Any) -> Simulator:
        sim = Simulator(config or FAST_SIM_CONFIG, **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in reversed(started):
        await sim.stop()


@pytest.fixture
async def simulator(simulator_factory: SimulatorFactory) -> Simulator:
    """A started simulator with ``FAST_SIM_CONFIG``."""
    return await simulator_factory()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to a simulator directly."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fake_clock() -> FakeClock:
    """A manual clock for ``Simulator(..., clock=fake_clock)``."""
    return FakeClock()


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, fully read."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class SimClient:
    """Raw calls to a simulator's API, with ``DEMO_TOKEN`` unless told otherwise."""

    def __init__(self, session: aiohttp.ClientSession, sim: Simulator) -> None:
        self.session = session
        self.sim = sim

    @staticmethod
    def auth(token: object = DEMO_TOKEN) -> dict[str, str]:
        """The Authorization header for ``token`` (none for ``None``)."""
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Reply:
        """Any request; the whole body is read before returning."""
        async with self.session.request(method, url, headers=headers, **kwargs) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def generate(
        self, body: object = None, *, raw: bytes | None = None, token: object = DEMO_TOKEN
    ) -> Reply:
        """``POST /v1/generate`` with ``body`` as JSON (or ``raw`` bytes as they are)."""
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.auth(token)}
        return await self.request("POST", f"{self.sim.url}/v1/generate", headers=headers, data=data)

    async def submit(self, prompt: str = "a red fox in the snow", **extra: Any) -> str:
        """A valid generate request; returns the task id (fails the test otherwise)."""
        reply = await self.generate({"mode": "fun", "prompt": prompt, "ratio": "1:1", **extra})
        assert reply.status == 200, reply.body
        task_id = reply.json()["data"]["task_id"]
        assert isinstance(task_id, str)
        return task_id

    async def status(self, task_id: str | None, *, token: object = DEMO_TOKEN) -> Reply:
        """``GET /v1/status?task_id=...`` (no query at all for ``None``)."""
        params = {} if task_id is None else {"task_id": task_id}
        url = f"{self.sim.url}/v1/status"
        return await self.request("GET", url, headers=self.auth(token), params=params)

    async def wait_done(self, task_id: str) -> dict[str, Any]:
        """Poll (every 5 ms, for at most 3 s) until the task is completed or failed; returns
        its ``data``."""
        async with asyncio.timeout(3.0):
            while True:
                data: dict[str, Any] = (await self.status(task_id)).json()["data"]
                if data["status"] in ("completed", "failed"):
                    return data
                await asyncio.sleep(0.005)


@pytest.fixture
def sim_client(http: aiohttp.ClientSession) -> Callable[[Simulator], SimClient]:
    """``sim_client(sim)``: a ``SimClient`` for ``sim`` over the ``http`` session."""
    return lambda sim: SimClient(http, sim)


class XaiClient(SimClient):
    """Raw calls to a simulator speaking xAI's dialect, with ``DEMO_TOKEN`` unless told
    otherwise."""

    async def create(
        self,
        body: object = None,
        *,
        raw: bytes | None = None,
        token: object = DEMO_TOKEN,
        content_type: str | None = "application/json",
    ) -> Reply:
        """``POST /v1/videos/generations`` with ``body`` as JSON (or ``raw`` bytes)."""
        data = raw if raw is not None else json.dumps(body).encode()
        headers = self.auth(token)
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = f"{self.sim.url}/v1/videos/generations"
        return await self.request("POST", url, headers=headers, data=data)

    async def start(self, prompt: str = "a red fox in the snow", **extra: Any) -> str:
        """A valid create (grok-imagine-video); returns the request id (fails the test
        otherwise)."""
        reply = await self.create({"model": "grok-imagine-video", "prompt": prompt, **extra})
        assert reply.status == 200, reply.body
        request_id = reply.json()["request_id"]
        assert isinstance(request_id, str)
        return request_id

    async def video(self, request_id: str, *, token: object = DEMO_TOKEN) -> Reply:
        """``GET /v1/videos/{request_id}``."""
        url = f"{self.sim.url}/v1/videos/{request_id}"
        return await self.request("GET", url, headers=self.auth(token))

    async def upload(
        self,
        content: bytes,
        *,
        filename: str = "in.png",
        fields: Mapping[str, str] | None = None,
        after: Mapping[str, str] | None = None,
        token: object = DEMO_TOKEN,
    ) -> Reply:
        """``POST /v1/files``: the ``fields`` parts, then ``file``, then the ``after`` parts."""
        form = aiohttp.FormData()
        for name, value in (fields or {}).items():
            form.add_field(name, value)
        form.add_field("file", content, filename=filename, content_type="image/png")
        for name, value in (after or {}).items():
            form.add_field(name, value)
        url = f"{self.sim.url}/v1/files"
        return await self.request("POST", url, headers=self.auth(token), data=form)

    async def wait_final(self, request_id: str) -> dict[str, Any]:
        """Poll (every 5 ms, for at most 3 s) until the request is no longer pending;
        returns its body."""
        async with asyncio.timeout(3.0):
            while True:
                reply = await self.video(request_id)
                if reply.status == 200:
                    body: dict[str, Any] = reply.json()
                    if body["status"] in ("done", "failed", "expired"):
                        return body
                await asyncio.sleep(0.005)


@pytest.fixture
def xai_sim_config() -> SimConfig:
    """The configuration of the ``xai_simulator`` fixture."""
    return FAST_XAI_SIM_CONFIG


@pytest.fixture
async def xai_simulator(simulator_factory: SimulatorFactory) -> Simulator:
    """A started simulator speaking xAI's dialect, with ``FAST_XAI_SIM_CONFIG``."""
    return await simulator_factory(FAST_XAI_SIM_CONFIG)


@pytest.fixture
def xai_client(http: aiohttp.ClientSession) -> Callable[[Simulator], XaiClient]:
    """``xai_client(sim)``: an ``XaiClient`` for ``sim`` over the ``http`` session."""
    return lambda sim: XaiClient(http, sim)


# ---------------------------------------------------------------- token hygiene, suite-wide
#: The API tokens the batchgen tests hand to the client. None of them may appear in anything
#: the suite wrote (state files, logs, results sheets, galleries, videos) under pytest's
#: temporary folder; the check runs once, after the last test.
SECRET_TOKENS: tuple[str, ...] = (
    "sk-test-5ecret-t0ken",
    "sk-dispatch-test",
    "sk-cli-test-s3cret-value",
    "sk-wrong",
    "wrong-token-value",
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test token leaked into a file the suite wrote."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    leaks = [str(path) for path in _files(base) if _leaks(path)]
    if leaks:
        print("\nAPI token found in files written by the suite:\n  " + "\n  ".join(leaks))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]


def _leaks(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(token.encode() in data for token in SECRET_TOKENS)


# --- pictures ------------------------------------------------------------------------------

#: First bytes of real picture files (what ``filetype`` recognises), padded to a few KB.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(5000)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(5000)
WEBP = b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(5000)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(5000)
HTML = b"<!DOCTYPE html><html><body>Sign in to see this picture</body></html>"


@dataclass
class Picture:
    """What the ``pictures`` server answers at one path."""

    body: bytes = PNG
    content_type: str = "image/png"
    status: int = 200
    ranges: bool = True  # honour ``Range`` with a 206 (else the whole body, streamed)
    size: int | None = None  # the length a 206's Content-Range states (default: the body's)
    location: str | None = None  # a redirect's target


class PictureServer:
    """A local picture host: ``server.files[path] = Picture(...)``, then ``server.url(path)``;
    ``server.hits[path]`` counts the requests each path received."""

    def __init__(self) -> None:
        self.files: dict[str, Picture] = {}
        self.hits: dict[str, int] = {}
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        from aiohttp import web

        path = request.path.lstrip("/")
        self.hits[path] = self.hits.get(path, 0) + 1
        pic = self.files.get(path)
        if pic is None:
            return web.Response(status=404, text="not found")
        if pic.location is not None:
            return web.Response(status=302, headers={"Location": pic.location})
        if pic.status != 200:
            return web.Response(status=pic.status, body=pic.body, content_type=pic.content_type)
        wanted = request.headers.get("Range", "")
        if pic.ranges and wanted.startswith("bytes=0-"):
            end = min(int(wanted[8:]), len(pic.body) - 1)
            total = pic.size if pic.size is not None else len(pic.body)
            headers = {"Content-Range": f"bytes 0-{end}/{total}", "Content-Type": pic.content_type}
            return web.Response(status=206, body=pic.body[: end + 1], headers=headers)
        response = web.StreamResponse(headers={"Content-Type": pic.content_type})
        await response.prepare(request)  # no length: chunked
        for start in range(0, len(pic.body), 64 * 1024):
            await response.write(pic.body[start : start + 64 * 1024])
        await response.write_eof()
        return response


@pytest.fixture
async def pictures() -> AsyncIterator[PictureServer]:
    """A started :class:`PictureServer` on a loopback port (plain http)."""
    from aiohttp import web

    server = PictureServer()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()
