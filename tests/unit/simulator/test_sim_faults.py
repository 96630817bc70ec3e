"""Every fault of the simulator, each fired by its deterministic ``at`` schedule."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.simulator import (
    PERMANENT_MESSAGES,
    TRANSIENT_MESSAGES,
    UNKNOWN_STATUSES,
    Fault,
    SimConfig,
    Simulator,
)
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, Reply, SimClient, SimulatorFactory

Client = Callable[[Simulator], "SimClient"]
VALID = {"mode": "fun", "prompt": "a red fox in the snow", "ratio": "1:1"}


async def faulty(
    factory: SimulatorFactory, base: SimConfig, clock: FakeClock | None = None, **faults: Any
) -> Simulator:
    """A simulator with ``base`` plus the given fields (usually faults)."""
    config = dataclasses.replace(base, **faults)
    return await (factory(config, clock=clock) if clock else factory(config))


def assert_rate_headers(reply: Reply) -> None:
    assert reply.headers["X-RateLimit-Remaining"].isdigit()
    assert reply.headers["X-RateLimit-Reset"].isdigit()


async def fresh_post(sim: Simulator, body: object = VALID) -> aiohttp.ClientResponse:
    """One POST on a new connection (no pooled connection for aiohttp to silently retry)."""
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{sim.url}/v1/generate", json=body, headers=headers)
        await resp.read()
        return resp


# ---------------------------------------------------------------- answers replaced


async def test_server_error_is_a_500_and_creates_no_task(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, server_error=Fault(at={1, 3}))
    client = sim_client(sim)
    first = await client.generate(VALID)
    assert first.status == 500
    assert first.json() == {
        "code": 500,
        "message": "Internal server error",
        "error": "SERVER_ERROR",
    }
    assert_rate_headers(first)
    assert (await client.generate(VALID)).status == 200
    assert (await client.status("task_x")).status == 500  # api ordinals span both endpoints
    assert sim.stats.tasks_created == 1
    assert sim.stats.faults["server_error"] == 2
    assert sim.stats.responses[500] == 2


async def test_body_error_is_a_200_whose_body_says_500(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, body_error=Fault(at={1}))
    reply = await sim_client(sim).generate(VALID)
    assert reply.status == 200
    assert reply.json()["code"] == 500 and reply.json()["error"] == "SERVER_ERROR"
    assert_rate_headers(reply)
    assert sim.stats.tasks_created == 0


async def test_html_body_alternates_502_and_200(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, html_body=Fault(at={1, 2}))
    client = sim_client(sim)
    replies = [await client.generate(VALID), await client.status("task_x")]
    assert [r.status for r in replies] == [502, 200]
    for reply in replies:
        assert reply.headers["Content-Type"].startswith("text/html")
        assert reply.body.startswith(b"<html>")
        assert_rate_headers(reply)
    assert sim.stats.tasks_created == 0


async def test_slow_answers_after_the_delay(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, slow=Fault(at={1}), slow_delay=0.2)
    client = sim_client(sim)
    started = time.monotonic()
    reply = await client.generate(VALID)
    assert time.monotonic() - started >= 0.2
    assert reply.status == 200
    started = time.monotonic()
    await client.generate(VALID)
    assert time.monotonic() - started < 0.2
    assert sim.stats.faults["slow"] == 1


async def test_a_slow_500_is_slow_and_a_500(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory,
        fast_sim_config,
        slow=Fault(at={1}),
        server_error=Fault(at={1}),
        slow_delay=0.05,
    )
    started = time.monotonic()
    assert (await sim_client(sim).generate(VALID)).status == 500
    assert time.monotonic() - started >= 0.05


# ---------------------------------------------------------------- 429 storms


async def test_storm_answers_429_to_the_token_for_a_while(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(
        simulator_factory,
        fast_sim_config,
        fake_clock,
        storm=Fault(at={2}),
        server_error=Fault(at={2}),  # the storm wins: it answers before anything else
        storm_duration=5.0,
    )
    client = sim_client(sim)
    assert (await client.generate(VALID)).status == 200
    replies = [await client.generate(VALID)]
    fake_clock.advance(4.5)
    replies.append(await client.generate(VALID))
    for reply in replies:
        assert reply.status == 429
        assert reply.json()["error"] == "RATE_LIMITED"
        assert reply.headers["X-RateLimit-Remaining"] == "0"
    assert [r.headers["X-RateLimit-Reset"] for r in replies] == ["5", "1"]
    fake_clock.advance(0.5)
    assert (await client.generate(VALID)).status == 200
    assert sim.stats.storms == 1 and sim.stats.rate_limited == 2
    assert sim.stats.tasks_created == 2
    assert sim.stats.faults == {"storm": 1}


# ---------------------------------------------------------------- broken connections


async def test_drop_before_resets_the_connection_and_does_nothing(
    simulator_factory: SimulatorFactory, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, drop_before=Fault(at={1}))
    with pytest.raises(aiohttp.ClientConnectionError):
        await fresh_post(sim)
    assert sim.stats.tasks_created == 0
    assert sim.stats.dropped_before == 1
    assert sim.stats.responses == {}
    assert (await fresh_post(sim)).status == 200


async def test_ambiguous_creates_the_task_then_drops_the_connection(
    simulator_factory: SimulatorFactory, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, ambiguous=Fault(at={2}))
    assert (await fresh_post(sim, {**VALID, "prompt": "one"})).status == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        await fresh_post(sim, {**VALID, "prompt": "two"})
    assert sim.stats.tasks_created == 2
    assert sim.stats.credits_charged == 80
    assert sim.stats.ambiguous_prompts == ["two"]
    assert [r.ambiguous for r in sim.stats.tasks.values()] == [False, True]
    assert sim.stats.responses == {200: 1}


async def test_ambiguous_counts_only_requests_that_create_a_task(
    simulator_factory: SimulatorFactory, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, ambiguous=Fault(at={1}))
    assert (await fresh_post(sim, {"prompt": ""})).status == 400
    with pytest.raises(aiohttp.ClientConnectionError):
        await fresh_post(sim)
    assert sim.stats.ambiguous_prompts == [VALID["prompt"]]


async def test_refuse_closes_the_port_for_a_while(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory, fast_sim_config, refuse=Fault(at={2}), refuse_duration=0.2
    )
    client = sim_client(sim)
    assert (await client.generate(VALID)).status == 200
    answered = await client.generate(VALID)  # answered in full, then the port closes
    assert answered.status == 200 and answered.headers["Connection"] == "close"
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await fresh_post(sim)
    assert isinstance(caught.value.os_error, ConnectionRefusedError)
    assert caught.value.os_error.errno == errno.ECONNREFUSED
    assert sim.stats.refused_windows == 1 and sim.stats.tasks_created == 2
    async with asyncio.timeout(2):  # back on the same port after refuse_duration
        while True:
            try:
                assert (await fresh_post(sim)).status == 200
                break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.02)
    assert sim.stats.refused_windows == 1


async def test_stop_during_a_refuse_outage(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, refuse=Fault(at={1}))
    assert (await sim_client(sim).generate(VALID)).status == 200
    await sim.stop()
    assert sim.stats.refused_windows == 1


# ---------------------------------------------------------------- task outcomes


async def test_task_faults_end_tasks_failed_with_documented_messages(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(
        simulator_factory,
        fast_sim_config,
        fake_clock,
        task_transient=Fault(at={1, 3}),
        task_permanent=Fault(at={2, 3}),  # permanent wins over transient
    )
    client = sim_client(sim)
    task_ids = [await client.submit(f"p{n}") for n in range(4)]
    fake_clock.advance(60)
    data = [(await client.status(task_id)).json()["data"] for task_id in task_ids]
    assert [d["status"] for d in data] == ["failed", "failed", "failed", "completed"]
    assert data[0]["error_message"] in TRANSIENT_MESSAGES
    assert data[1]["error_message"] in PERMANENT_MESSAGES
    assert data[2]["error_message"] in PERMANENT_MESSAGES
    for failed in data[:3]:
        assert failed["consumed_credits"] == 0 and failed["response"] == []
    assert data[3]["error_message"] is None
    assert sim.stats.credits_charged == 40
    assert [r.final_status for r in sim.stats.tasks.values()] == [d["status"] for d in data]


async def test_failing_tasks_look_normal_until_they_end(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, task_permanent=Fault(at={1}))
    client = sim_client(sim)
    data = (await client.status(await client.submit())).json()["data"]
    assert data["status"] == "queued" and data["error_message"] is None


async def test_all_documented_messages_occur(
    simulator_factory: SimulatorFactory, fast_sim_config: SimConfig, sim_client: Client
) -> None:
    sim = await faulty(
        simulator_factory,
        fast_sim_config,
        task_transient=Fault(rate=0.5),
        task_permanent=Fault(rate=0.5),
        seed=3,
    )
    client = sim_client(sim)
    for n in range(40):
        await client.submit(f"p{n}")
    messages = {r.error_message for r in sim.stats.tasks.values()}
    assert messages == {None, *TRANSIENT_MESSAGES, *PERMANENT_MESSAGES}


async def test_unknown_status_is_reported_until_the_task_ends(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, unknown_status=Fault(at={1}))
    client = sim_client(sim)
    odd, normal = await client.submit("odd"), await client.submit("normal")
    first = (await client.status(odd)).json()["data"]["status"]
    assert first in UNKNOWN_STATUSES
    assert (await client.status(normal)).json()["data"]["status"] == "queued"
    fake_clock.advance(sim.stats.tasks[odd].latency * 0.9)
    assert (await client.status(odd)).json()["data"]["status"] == first
    fake_clock.advance(60)
    assert (await client.status(odd)).json()["data"]["status"] == "completed"


# ---------------------------------------------------------------- downloads


async def _completed_url(sim: Simulator, client: SimClient, clock: FakeClock) -> str:
    task_id = await client.submit()
    clock.advance(60)
    url = (await client.status(task_id)).json()["data"]["response"][0]
    assert isinstance(url, str)
    return url


async def test_truncated_download_sends_the_full_length_but_less_data(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, truncated=Fault(at={1}))
    client = sim_client(sim)
    url = await _completed_url(sim, client, fake_clock)
    received = bytearray()
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_length == len(video_bytes())
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in resp.content.iter_any():
                received += chunk
    assert 0 < len(received) < len(video_bytes())
    assert bytes(received) == video_bytes()[: len(received)]
    assert (await client.request("GET", url)).body == video_bytes()  # only the 1st is cut


async def test_truncated_range_download(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, truncated=Fault(at={1}))
    url = await _completed_url(sim, sim_client(sim), fake_clock)
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Range": "bytes=100-"}) as resp,
    ):
        assert resp.status == 206
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_expired_links_answer_403_then_410(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, expired=Fault(at={1, 2}))
    client = sim_client(sim)
    url = await _completed_url(sim, client, fake_clock)
    statuses = [(await client.request("GET", url)).status for _ in range(3)]
    assert statuses == [403, 410, 200]
    assert sim.stats.faults["expired"] == 2


async def test_links_expire_after_their_ttl(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(simulator_factory, fast_sim_config, fake_clock, link_ttl=30.0)
    client = sim_client(sim)
    task_id = await client.submit()
    finished = sim.stats.tasks[task_id].finished
    fake_clock.now = finished + 1
    url = (await client.status(task_id)).json()["data"]["response"][0]
    assert (await client.request("GET", url)).status == 200
    fake_clock.now = finished + 30.5
    expired = await client.request("GET", url)
    assert expired.status == 403
    assert b"expired" in expired.body


# ---------------------------------------------------------------- random rates


async def test_random_faults_keep_the_counters_consistent(
    simulator_factory: SimulatorFactory, fast_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory,
        fast_sim_config,
        seed=5,
        drop_before=Fault(rate=0.2),
        ambiguous=Fault(rate=0.2),
        server_error=Fault(rate=0.1),
        body_error=Fault(rate=0.1),
        html_body=Fault(rate=0.1),
    )
    outcomes = []
    for n in range(40):
        try:
            resp = await fresh_post(sim, {**VALID, "prompt": f"p{n}"})
            outcomes.append(resp.status)
        except aiohttp.ClientConnectionError:
            outcomes.append(0)
    stats = sim.stats
    assert stats.requests["generate"] == 40
    assert stats.dropped_before + len(stats.ambiguous_prompts) == outcomes.count(0)
    assert sum(stats.responses.values()) == 40 - outcomes.count(0)
    created_ok = stats.tasks_created - len(stats.ambiguous_prompts)
    assert created_ok == sum(1 for r in stats.tasks.values() if not r.ambiguous)
    assert stats.faults["drop_before"] == stats.dropped_before > 0
    assert stats.faults["ambiguous"] == len(stats.ambiguous_prompts) > 0
