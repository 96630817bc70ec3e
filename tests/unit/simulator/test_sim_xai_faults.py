"""Every fault in xAI's dialect, each fired by its deterministic ``at`` schedule: the shared
ones with xAI's answers, and xAI's own (``task_expired``, ``moderated``, ``cost_mismatch``,
``pending_200``)."""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.simulator import (
    PERMANENT_ERRORS,
    TRANSIENT_ERRORS,
    XAI_UNKNOWN_STATUSES,
    Fault,
    SimConfig,
    Simulator,
)
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, SimulatorFactory, XaiClient

Client = Callable[[Simulator], "XaiClient"]
VALID = {"model": "grok-imagine-video", "prompt": "a red fox in the snow", "duration": 4}
TABLE = 4 * 500_000_000  # VALID's price


async def faulty(
    factory: SimulatorFactory, base: SimConfig, clock: FakeClock | None = None, **fields: Any
) -> Simulator:
    """An xAI simulator with ``base`` plus the given fields (usually faults)."""
    config = dataclasses.replace(base, **fields)
    return await (factory(config, clock=clock) if clock else factory(config))


async def fresh_create(sim: Simulator) -> aiohttp.ClientResponse:
    """One create on a new connection (no pooled connection for aiohttp to silently retry)."""
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    async with aiohttp.ClientSession() as session:
        url = f"{sim.url}/v1/videos/generations"
        resp = await session.post(url, json=VALID, headers=headers)
        await resp.read()
        return resp


# ---------------------------------------------------------------- answers replaced


async def test_server_error_is_a_flat_500_and_creates_nothing(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, server_error=Fault(at={1, 3}))
    client = xai_client(sim)
    first = await client.create(VALID)
    assert first.status == 500
    assert first.json()["code"] == "Internal error"
    assert set(first.json()) == {"code", "error"}
    request_id = (await client.create(VALID)).json()["request_id"]
    assert (await client.video(request_id)).status == 500  # api ordinals span every call
    assert sim.stats.tasks_created == 1
    assert sim.stats.faults["server_error"] == 2


async def test_body_error_is_a_200_without_a_request_id(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, body_error=Fault(at={1}))
    reply = await xai_client(sim).create(VALID)
    assert reply.status == 200
    assert "request_id" not in reply.json()
    assert reply.json()["code"] == "Internal error"
    assert sim.stats.tasks_created == 0


async def test_html_body_alternates_502_and_200(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, html_body=Fault(at={1, 2}))
    client = xai_client(sim)
    first, second = await client.create(VALID), await client.video("any")
    assert (first.status, second.status) == (502, 200)
    for reply in (first, second):
        assert reply.headers["Content-Type"].startswith("text/html")
        assert b"502 Bad Gateway" in reply.body
    assert sim.stats.tasks_created == 0


async def test_storm_answers_xais_429_for_a_while(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(
        simulator_factory, xai_sim_config, fake_clock, storm=Fault(at={1}), storm_duration=5.0
    )
    client = xai_client(sim)
    replies = [await client.create(VALID), await client.video("any")]
    fake_clock.advance(5.0)
    after = await client.create(VALID)
    assert [r.status for r in replies] == [429, 429]
    assert replies[0].json()["code"] == "Some resource has been exhausted"
    assert after.status == 200
    assert sim.stats.storms == 1 and sim.stats.rate_limited == 2
    assert sim.stats.tasks_created == 1


async def test_slow_answers_after_the_delay(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, slow=Fault(at={1}), slow_delay=0.2)
    client = xai_client(sim)
    started = time.monotonic()
    reply = await client.create(VALID)
    assert time.monotonic() - started >= 0.2
    assert reply.status == 200 and "request_id" in reply.json()
    assert sim.stats.faults["slow"] == 1


# ---------------------------------------------------------------- connections


async def test_drop_before_resets_and_creates_nothing(
    simulator_factory: SimulatorFactory, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, drop_before=Fault(at={1}))
    with pytest.raises(aiohttp.ClientError):
        await fresh_create(sim)
    assert sim.stats.tasks_created == 0 and sim.stats.dropped_before == 1


async def test_ambiguous_creates_the_request_then_drops_the_answer(
    simulator_factory: SimulatorFactory, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, ambiguous=Fault(at={1}))
    with pytest.raises(aiohttp.ClientError):
        await fresh_create(sim)
    assert sim.stats.tasks_created == 1
    assert sim.stats.ambiguous_prompts == [VALID["prompt"]]
    assert sim.stats.ticks_charged == TABLE  # paid for, answer lost
    (record,) = sim.stats.tasks.values()
    assert record.ambiguous
    assert (await fresh_create(sim)).status == 200


async def test_refuse_closes_the_port_for_a_while(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, refuse=Fault(at={1}), refuse_duration=0.5)
    answered = await xai_client(sim).create(VALID)
    assert answered.status == 200 and answered.headers["Connection"] == "close"
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await fresh_create(sim)
    assert caught.value.os_error.errno == errno.ECONNREFUSED
    assert sim.stats.refused_windows == 1


# ---------------------------------------------------------------- how requests end


async def test_task_faults_end_failed_with_xais_error_codes(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory,
        xai_sim_config,
        task_permanent=Fault(at={1}),
        task_transient=Fault(at={2}),
    )
    client = xai_client(sim)
    permanent = await client.wait_final(await client.start())
    transient = await client.wait_final(await client.start())
    assert permanent["status"] == transient["status"] == "failed"
    assert tuple(permanent["error"].values()) in PERMANENT_ERRORS
    assert tuple(transient["error"].values()) in TRANSIENT_ERRORS
    assert permanent["progress"] == 0 and "usage" not in permanent
    assert "url" not in permanent["video"]
    assert sim.stats.ticks_charged == 0  # failures are not billed by default


async def test_task_expired_ends_expired_without_a_video(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, task_expired=Fault(at={1}))
    client = xai_client(sim)
    request_id = await client.start()
    assert await client.wait_final(request_id) == {"status": "expired"}
    assert sim.stats.ticks_charged == 0
    video = await client.request("GET", f"{sim.url}/xai-vidgen-bucket/xai-video-{request_id}.mp4")
    assert video.status == 404


async def test_bill_failures_bills_failed_and_expired_at_the_table_price(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory,
        xai_sim_config,
        bill_failures=True,
        task_expired=Fault(at={1}),
        task_transient=Fault(at={2}),
    )
    client = xai_client(sim)
    for _ in range(2):
        await client.start(duration=VALID["duration"])
    assert sim.stats.ticks_charged == 2 * TABLE


async def test_moderated_is_done_without_a_url_and_billed(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(simulator_factory, xai_sim_config, moderated=Fault(at={1}))
    client = xai_client(sim)
    request_id = (await client.create(VALID)).json()["request_id"]
    final = await client.wait_final(request_id)
    assert final["status"] == "done" and final["progress"] == 100
    assert final["video"] == {"duration": 4, "respect_moderation": False}
    assert final["usage"] == {"cost_in_usd_ticks": TABLE}
    video = await client.request("GET", f"{sim.url}/xai-vidgen-bucket/xai-video-{request_id}.mp4")
    assert video.status == 404


@pytest.mark.parametrize("factor", [1.5, 0.25])
async def test_cost_mismatch_reports_another_cost_than_the_table(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    factor: float,
) -> None:
    sim = await faulty(
        simulator_factory,
        xai_sim_config,
        cost_mismatch=Fault(at={1}),
        cost_mismatch_factor=factor,
    )
    client = xai_client(sim)
    odd = await client.wait_final((await client.create(VALID)).json()["request_id"])
    plain = await client.wait_final((await client.create(VALID)).json()["request_id"])
    assert odd["usage"]["cost_in_usd_ticks"] == round(TABLE * factor)
    assert plain["usage"]["cost_in_usd_ticks"] == TABLE
    assert sim.stats.ticks_charged == round(TABLE * factor) + TABLE
    record = next(r for r in sim.stats.tasks.values() if r.cost_ticks != r.table_ticks)
    assert record.table_ticks == TABLE


async def test_unknown_status_and_pending_200_while_running(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await faulty(
        simulator_factory,
        xai_sim_config,
        fake_clock,
        unknown_status=Fault(at={1}),
        pending_200=Fault(at={2}),
    )
    client = xai_client(sim)
    odd, ok = await client.start(), await client.start()
    odd_reply, ok_reply = await client.video(odd), await client.video(ok)
    assert odd_reply.status == 202 and odd_reply.json()["status"] in XAI_UNKNOWN_STATUSES
    assert ok_reply.status == 200 and ok_reply.json()["status"] == "pending"
    fake_clock.advance(60.0)
    for request_id in (odd, ok):
        assert (await client.video(request_id)).json()["status"] == "done"


# ---------------------------------------------------------------- downloads


async def _link(client: XaiClient) -> str:
    final = await client.wait_final(await client.start())
    url = final["video"]["url"]
    assert isinstance(url, str)
    return url


async def test_download_faults_hit_xais_links(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await faulty(
        simulator_factory,
        xai_sim_config,
        expired=Fault(at={1}),
        wrong_type=Fault(at={2}),
        truncated=Fault(at={3}),
        unsized_cut=Fault(at={4}),
    )
    client = xai_client(sim)
    url = await _link(client)
    expired = await client.request("GET", url)
    assert expired.status == 403
    login = await client.request("GET", url)
    assert login.status == 200 and login.headers["Content-Type"].startswith("text/html")
    with pytest.raises(aiohttp.ClientPayloadError):  # truncated: shorter than its length
        await client.request("GET", url)
    cut = await client.request("GET", url)  # no length: the cut looks like the end
    assert cut.status == 200 and len(cut.body) < len(video_bytes())
    whole = await client.request("GET", url)
    assert whole.body == video_bytes()
    names = ("expired", "wrong_type", "truncated", "unsized_cut")
    assert [sim.stats.faults[name] for name in names] == [1, 1, 1, 1]
