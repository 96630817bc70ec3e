"""The throttle's arithmetic and pauses (injected clock), and downloads against the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from batchgen.engine.downloads.fetch import DownloadPolicy, download
from batchgen.engine.pacing.throttle import Throttle, usable_limit
from batchgen.errors import DownloadError
from batchgen.providers.grokimagine import DEFAULT_RESET, RateInfo
from batchgen.simulator import Fault, SimConfig, Simulator
from batchgen.simulator.files import video_bytes
from batchgen.simulator.stats import max_in_window

LOCAL = DownloadPolicy(allow_private=True)  # the simulator's CDN is on loopback


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("limit", [1, 7, 100, 1000, 5000, 123_456])
@pytest.mark.parametrize("margin", [0.0, 0.01, 0.05])
def test_the_usable_limit_keeps_the_margin(limit: int, margin: float) -> None:
    usable = usable_limit(limit, margin)
    assert 1 <= usable <= max(1, limit * (1 - margin))


async def test_a_whole_window_may_go_at_once() -> None:
    # No time passes on the throttle's clock: all 20 of the window's requests still get in
    # together. (A leaky bucket small enough never to pass the limit lets one in, then the
    # next a little later, and this would time out.)
    throttle = Throttle(20, window=60.0, margin=0.0, clock=Clock())
    all_in = asyncio.Event()

    async def request() -> None:
        async with throttle.slot():
            if throttle.in_flight == 20:
                all_in.set()
            await all_in.wait()

    await asyncio.wait_for(asyncio.gather(*(request() for _ in range(20))), 5)


async def test_no_window_ever_holds_more_than_the_limit() -> None:
    window, limit = 0.2, 20
    throttle = Throttle(limit, window=window, margin=0.0)
    loop = asyncio.get_running_loop()
    entered: list[float] = []

    async def request() -> None:
        async with throttle.slot():
            entered.append(loop.time())
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(request() for _ in range(3 * limit))), 10)
    assert len(entered) == 3 * limit
    assert max_in_window(entered, window) <= limit  # the throttle's own clock


def test_a_pause_extends_but_never_shortens() -> None:
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    throttle.pause_for(30)
    assert throttle.resume_at == 130
    throttle.pause_for(5)
    assert throttle.resume_at == 130
    clock.now = 120
    throttle.pause_for(20)
    assert throttle.resume_at == 140 and throttle.pauses == 1


def test_server_feedback_sets_the_shared_deadline() -> None:
    clock = Clock()
    throttle = Throttle(100, clock=clock)
    throttle.observe(RateInfo(remaining=5, reset_after=40), 200)
    assert throttle.resume_at == 0  # budget left: no pause
    throttle.observe(RateInfo(remaining=0, reset_after=12), 200)
    assert throttle.resume_at == 112
    throttle.observe(RateInfo(remaining=None, reset_after=None), 429)  # 429 with no hint
    assert throttle.resume_at == 100 + DEFAULT_RESET
    throttle.observe(RateInfo(remaining=0, reset_after=3, retry_after=90), 429)
    assert throttle.resume_at == 190


async def test_every_request_waits_for_a_pause() -> None:
    throttle = Throttle(100_000, window=1.0)
    loop = asyncio.get_running_loop()
    throttle.pause_for(0.3)
    start = loop.time()
    entered: list[float] = []

    async def request() -> None:
        async with throttle.slot():
            entered.append(loop.time() - start)

    await asyncio.gather(*(request() for _ in range(5)))
    assert min(entered) >= 0.29


async def _drained(throttle: Throttle) -> Throttle:
    async with throttle.slot():  # the bucket is now full: the next request has to wait
        return throttle


async def test_waiting_requests_go_earliest_deadline_first() -> None:
    throttle = await _drained(Throttle(1, window=0.02, margin=0.0))  # one request per 20 ms
    order: list[float] = []

    async def request(deadline: float) -> None:
        async with throttle.slot(deadline=deadline):
            order.append(deadline)

    await asyncio.gather(*(request(d) for d in (9.0, 1.0, 3.0, 2.0)))
    # The first to arrive found the gate free and waits for the window (no one is pre-empted);
    # the rest queue behind it and go by deadline, not by arrival.
    assert order == [9.0, 1.0, 2.0, 3.0]


async def test_a_cancelled_waiter_never_blocks_the_queue() -> None:
    throttle = await _drained(Throttle(1, window=0.02, margin=0.0))
    order: list[str] = []

    async def request(name: str, deadline: float) -> None:
        async with throttle.slot(deadline=deadline):
            order.append(name)

    at_limiter = asyncio.create_task(request("at the limiter", 1.0))
    queued = asyncio.create_task(request("queued", 2.0))
    last = asyncio.create_task(request("last", 3.0))
    await asyncio.sleep(0)  # one turn of the loop: all three are now waiting
    assert throttle.waiting == 3
    at_limiter.cancel()
    queued.cancel()
    await asyncio.wait_for(last, 5)
    assert order == ["last"] and throttle.waiting == 0
    assert at_limiter.cancelled() and queued.cancelled()


# ---------------------------------------------------------------- downloads
async def _video_url(sim: Simulator) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer demo-token"}) as s:
        body = {"mode": "fun", "prompt": "p", "ratio": "1:1"}
        async with s.post(f"{sim.url}/v1/generate", json=body) as r:
            task_id = (await r.json())["data"]["task_id"]
        while True:
            async with s.get(f"{sim.url}/v1/status", params={"task_id": task_id}) as r:
                data = (await r.json())["data"]
            if data["status"] == "completed":
                return str(data["response"][0])
            await asyncio.sleep(0.01)


async def test_a_cut_download_keeps_its_part_and_resumes_with_range(tmp_path: Path) -> None:
    async with Simulator(SimConfig(time_scale=0.001, seed=3, truncated=Fault(at={1}))) as sim:
        url = await _video_url(sim)
        dest = tmp_path / "v_1.mp4"
        async with aiohttp.ClientSession() as cdn:
            with pytest.raises(DownloadError, match="cut short"):
                await download(cdn, url, dest, policy=LOCAL)
            part = tmp_path / "v_1.mp4.part"
            assert not dest.exists() and 0 < part.stat().st_size < len(video_bytes())
            done = await download(cdn, url, dest, policy=LOCAL)
    assert done.size == len(video_bytes())
    assert dest.read_bytes() == video_bytes()  # the resumed bytes line up exactly
    assert not part.exists()


async def test_an_expired_link_is_reported_as_such(tmp_path: Path) -> None:
    from batchgen.engine.downloads.fetch import ExpiredLinkError

    async with Simulator(SimConfig(time_scale=0.001, seed=3, expired=Fault(at={1}))) as sim:
        url = await _video_url(sim)
        async with aiohttp.ClientSession() as cdn:
            with pytest.raises(ExpiredLinkError):
                await download(cdn, url, tmp_path / "v.mp4", policy=LOCAL)
            await download(cdn, url, tmp_path / "v.mp4", policy=LOCAL)
    assert (tmp_path / "v.mp4").read_bytes() == video_bytes()
