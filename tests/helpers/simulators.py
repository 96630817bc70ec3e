"""The simulator as test fixtures: a real simulator on a local port, fast enough for unit tests.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``):

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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from batchgen.config import DEMO_TOKEN, TIERS
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
