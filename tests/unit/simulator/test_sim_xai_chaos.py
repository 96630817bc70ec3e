"""The chaos suite's machinery in xAI's terms (``tests/e2e/test_chaos_*.py``, ``[xai-*]``): the
CDN fault the other xAI fault tests leave out (``short_copy``), and the hostile gateway
(``helpers.hostile_vendor.HostileGateway``) in front of an xAI simulator."""

from __future__ import annotations

import codecs
import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from helpers.hostile_vendor import HostileGateway

from batchgen.config import DEMO_TOKEN
from batchgen.simulator import Fault, SimConfig, Simulator
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import SimulatorFactory, XaiClient

Client = Callable[[Simulator], "XaiClient"]
VALID = {"model": "grok-imagine-video", "prompt": "a red fox in the snow", "duration": 4}
AUTH = {"Authorization": f"Bearer {DEMO_TOKEN}"}


async def test_short_copy_serves_part_of_an_xai_video_as_if_whole(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    config = dataclasses.replace(xai_sim_config, short_copy=Fault(at={1}))
    sim = await simulator_factory(config)
    client = xai_client(sim)
    url = (await client.wait_final(await client.start()))["video"]["url"]
    cut, whole = await client.request("GET", url), await client.request("GET", url)
    assert cut.status == 200  # a length that matches the body: nothing tells it was cut
    assert int(cut.headers["Content-Length"]) == len(cut.body) < len(video_bytes())
    assert video_bytes().startswith(cut.body)
    assert whole.body == video_bytes()
    assert sim.stats.faults["short_copy"] == 1


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, str, bytes]:
    """One request through the gateway: status, content type and the raw body."""
    async with http.request(method, url, json=body, headers=AUTH) as resp:
        return resp.status, resp.content_type, await resp.read()


async def test_the_gateway_mangles_only_an_xai_create_that_made_a_request(
    xai_simulator: Simulator, http: aiohttp.ClientSession
) -> None:
    gateway = await HostileGateway(xai_simulator.url, rates={"html200": 1.0}).start()
    create = f"{gateway.url}/v1/videos/generations"
    try:
        made = await _call(http, "POST", create, VALID)
        refused = await _call(http, "POST", create, {"prompt": "no model"})
    finally:
        await gateway.stop()
    assert made[:2] == (200, "text/html")  # the request exists; its answer is a page
    assert refused[0] == 422 and json.loads(refused[2])["code"]  # nothing made: passed on
    assert gateway.mangled == [VALID["prompt"]]
    assert xai_simulator.stats.tasks_created == 1


async def test_forced_modes_come_first_and_once_then_only_the_draws(
    xai_simulator: Simulator, xai_client: Client, http: aiohttp.ClientSession
) -> None:
    request_id = await xai_client(xai_simulator).start()  # straight to the simulator
    forced = ("gateway502", "bom", "trickle_status")
    gateway = await HostileGateway(
        xai_simulator.url, rates={}, force=forced, trickle_every=0.001
    ).start()
    video = f"{gateway.url}/v1/videos/{request_id}"
    try:
        first = await _call(http, "POST", f"{gateway.url}/v1/videos/generations", VALID)
        polls = [await _call(http, "GET", video) for _ in range(3)]
    finally:
        await gateway.stop()
    assert first[0] == 502  # the first created request's answer took the first forced mode
    (trickled, marked, plain) = polls  # a pending 202 or a done 200: a readable answer
    assert all(status in (200, 202) for status, _, _ in polls)
    assert json.loads(trickled[2])["status"]  # slow, yet whole
    assert marked[2].startswith(codecs.BOM_UTF8)
    assert not plain[2].startswith(codecs.BOM_UTF8)  # every forced mode was used once
    assert gateway.applied == dict.fromkeys(forced, 1)
