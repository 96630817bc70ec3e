"""The simulator speaking xAI's dialect: create, poll, download, keys, the per-second limit,
what is billed (``../shared/xai-video-api.md``)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.simulator import TICKS_PER_USD, SimConfig, Simulator, mask_key, price_ticks
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, SimulatorFactory, XaiClient

Client = Callable[[Simulator], "XaiClient"]
MODEL = "grok-imagine-video"


async def xai(
    factory: SimulatorFactory, base: SimConfig, clock: FakeClock | None = None, **fields: Any
) -> Simulator:
    """An xAI simulator with ``base`` plus ``fields``."""
    config = dataclasses.replace(base, **fields)
    return await (factory(config, clock=clock) if clock else factory(config))


# ---------------------------------------------------------------- create and poll


async def test_create_answers_a_request_id_and_the_request_ends_done(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    reply = await client.create({"model": MODEL, "prompt": "a fox", "duration": 6})
    assert reply.status == 200
    assert set(reply.json()) == {"request_id"}
    body = await client.wait_final(reply.json()["request_id"])
    assert body["status"] == "done" and body["progress"] == 100
    assert body["model"] == MODEL
    assert body["video"]["duration"] == 6
    assert body["video"]["respect_moderation"] is True
    assert body["video"]["url"].endswith(f"/xai-video-{reply.json()['request_id']}.mp4")
    assert body["usage"] == {"cost_in_usd_ticks": 6 * 500_000_000}
    assert xai_simulator.stats.tasks_created == 1


async def test_a_pending_request_answers_202_with_progress(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await xai(simulator_factory, xai_sim_config, fake_clock, latency_sigma=0.0)
    client = xai_client(sim)
    request_id = await client.start()
    latency = sim.stats.tasks[request_id].latency
    first = await client.video(request_id)
    fake_clock.advance(latency / 2)
    half = await client.video(request_id)
    fake_clock.advance(latency / 2 + 1e-6)
    done = await client.video(request_id)
    assert (first.status, half.status, done.status) == (202, 202, 200)
    assert first.json() == {"status": "pending", "progress": 0, "model": MODEL}
    assert 40 <= half.json()["progress"] <= 60
    assert done.json()["status"] == "done"


async def test_defaults_are_8_seconds_480p_16_9(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    request_id = await xai_client(xai_simulator).start()
    request = xai_simulator.stats.tasks[request_id].request
    assert request == {
        "model": MODEL,
        "prompt": "a red fox in the snow",
        "duration": 8,
        "resolution": "480p",
        "aspect_ratio": "16:9",
    }
    # The default request costs $0.40 (xai-video-api.md section 8).
    assert xai_simulator.stats.ticks_charged == 4 * TICKS_PER_USD // 10


async def test_an_unknown_or_foreign_request_id_is_404(
    simulator_factory: SimulatorFactory, xai_client: Client, xai_sim_config: SimConfig
) -> None:
    sim = await xai(simulator_factory, xai_sim_config, tokens={DEMO_TOKEN, "xai-other-key-0001"})
    client = xai_client(sim)
    request_id = await client.start()
    unknown = await client.video("3f1e0000-0000-4000-8000-000000000000")
    foreign = await client.video(request_id, token="xai-other-key-0001")
    for reply in (unknown, foreign):
        assert reply.status == 404
        assert reply.json()["code"] == "Some requested entity was not found"


# ---------------------------------------------------------------- keys


async def test_a_wrong_key_is_400_with_the_key_masked(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    key = "xai-wrong-token-value-yz"
    reply = await client.create({"model": MODEL, "prompt": "a fox"}, token=key)
    assert reply.status == 400
    assert reply.json() == {
        "code": "Client specified an invalid argument",
        "error": "Incorrect API key provided: xa***yz. "
        "You can obtain an API key from https://console.x.ai.",
    }
    status = await client.video("any", token="wrong-token-value")
    assert status.status == 400
    assert b"wrong-token-value" not in status.body
    assert "wr***ue" in status.json()["error"]
    assert xai_simulator.stats.tasks_created == 0
    assert xai_simulator.stats.unauthorized == 2


def test_short_keys_are_masked_whole() -> None:
    assert mask_key("xai-abcdefgh-yz") == "xa***yz"
    assert mask_key("abc12") == "***"
    assert mask_key("") == "***"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic ZGVtbzp0b2tlbg==", "Bearer two words", "Token abc"],
)
async def test_a_missing_or_garbled_header_is_401(
    xai_simulator: Simulator, xai_client: Client, authorization: str | None
) -> None:
    client = xai_client(xai_simulator)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    url = f"{xai_simulator.url}/v1/videos/generations"
    reply = await client.request("POST", url, headers=headers, data=b'{"model": "x"}')
    assert reply.status == 401
    assert reply.json()["code"] == "The request does not have valid authentication credentials"
    assert xai_simulator.stats.tasks_created == 0


# ---------------------------------------------------------------- the limit


async def test_one_request_per_second_per_team_status_calls_included(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await xai(simulator_factory, xai_sim_config, fake_clock, rps=1)
    client = xai_client(sim)
    request_id = await client.start()
    limited = await client.video(request_id)  # same second: the status call counts
    assert limited.status == 429
    assert limited.json()["code"] == "Some resource has been exhausted"
    assert "Retry-After" not in limited.headers  # xAI documents no header
    assert not [h for h in limited.headers if h.lower().startswith("x-ratelimit")]
    again = await client.create({"model": MODEL, "prompt": "a second fox"})
    assert again.status == 429
    fake_clock.advance(1.0)
    assert (await client.video(request_id)).status in (200, 202)
    assert sim.stats.rate_limited == 2
    assert sim.stats.tasks_created == 1
    assert sim.stats.max_window_for(DEMO_TOKEN) == 3  # arrivals in one second, 429s included


async def test_rps_is_configurable_and_retry_after_optional(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await xai(simulator_factory, xai_sim_config, fake_clock, rps=3, retry_after=True)
    client = xai_client(sim)
    replies = [await client.video("unknown") for _ in range(4)]
    assert [r.status for r in replies] == [404, 404, 404, 429]
    assert replies[-1].headers["Retry-After"] == "1"
    assert "Retry-After" not in replies[0].headers


async def test_keys_of_one_team_share_its_window(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    keys = {"xai-team-key-0001", "xai-team-key-0002", "xai-alone-key-003"}
    team = frozenset(sorted(keys)[1:])  # the two team keys
    sim = await xai(
        simulator_factory, xai_sim_config, fake_clock, rps=1, tokens=keys, teams=(team,)
    )
    client = xai_client(sim)
    first, second = sorted(team)
    assert (await client.video("x", token=first)).status == 404
    assert (await client.video("x", token=second)).status == 429  # same team, same second
    assert (await client.video("x", token="xai-alone-key-003")).status == 404  # its own team
    fake_clock.advance(1.0)
    reply = await client.create({"model": MODEL, "prompt": "p"}, token=first)
    created = reply.json()["request_id"]
    fake_clock.advance(1.0)
    assert (await client.video(created, token=second)).status in (200, 202)  # the team's request
    assert sim.stats.max_window_for(first) == sim.stats.max_window_for(second) == 2
    assert sim.stats.max_window_for("xai-alone-key-003") == 1


# ---------------------------------------------------------------- the CDN


async def test_the_video_link_serves_a_real_mp4_without_a_key(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    body = await client.wait_final(await client.start())
    reply = await client.request("GET", body["video"]["url"])  # no Authorization header
    assert reply.status == 200
    assert reply.body == video_bytes()
    assert reply.body[4:8] == b"ftyp"
    assert reply.headers["Content-Type"] == "video/mp4"
    assert xai_simulator.stats.requests["files"] == 1


async def test_the_video_link_expires_after_24_hours(
    simulator_factory: SimulatorFactory,
    xai_client: Client,
    xai_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await xai(simulator_factory, xai_sim_config, fake_clock)
    client = xai_client(sim)
    request_id = await client.start()
    fake_clock.advance(60.0)
    url = (await client.video(request_id)).json()["video"]["url"]
    assert (await client.request("GET", url)).status == 200
    fake_clock.advance(24 * 3600.0 - 60.0)
    assert (await client.request("GET", url)).status == 200  # 24 h after it finished, less
    fake_clock.advance(60.0)
    expired = await client.request("GET", url)
    assert expired.status in (403, 410)
    assert expired.body != video_bytes()


# ---------------------------------------------------------------- billing


@pytest.mark.parametrize(
    ("body", "ticks"),
    [
        ({"model": MODEL, "prompt": "p", "duration": 1}, 500_000_000),  # the contract's example
        ({"model": MODEL, "prompt": "p", "duration": 10, "resolution": "720p"}, 7_000_000_000),
        (
            {"model": MODEL, "duration": 5, "image": {"url": "https://example.com/a.jpg"}},
            5 * 500_000_000 + 20_000_000,
        ),
        (
            {"model": "grok-imagine-video-1.5-preview", "prompt": "p", "seconds": "15"},
            15 * 800_000_000,
        ),
        (
            {
                "model": "grok-imagine-video-1.5",
                "prompt": "p",
                "resolution": "720p",
                "duration": 2,
                "image": {"image_url": "https://example.com/a.png"},
            },
            2 * 1_400_000_000 + 100_000_000,
        ),
    ],
)
async def test_the_cost_reported_is_the_price_table(
    xai_simulator: Simulator, xai_client: Client, body: dict[str, Any], ticks: int
) -> None:
    client = xai_client(xai_simulator)
    reply = await client.create(body)
    assert reply.status == 200, reply.body
    final = await client.wait_final(reply.json()["request_id"])
    assert final["usage"]["cost_in_usd_ticks"] == ticks
    assert xai_simulator.stats.ticks_charged == ticks


def test_price_ticks_follows_the_contract_table() -> None:
    assert price_ticks("grok-imagine-video", "480p", 8, False) == 4 * TICKS_PER_USD // 10
    assert price_ticks("grok-imagine-video", "720p", 1, True) == 720_000_000
    with pytest.raises(KeyError):
        price_ticks("grok-imagine-video", "1080p", 1, False)


async def test_stats_serve_ticks_and_uploads_as_json(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    client = xai_client(xai_simulator)
    await client.start(duration=2)
    reply = await client.request("GET", f"{xai_simulator.url}/_sim/stats?tasks=0")
    data = reply.json()
    assert data["ticks_charged"] == 1_000_000_000
    assert data["tasks_created"] == 1
    assert data["requests"] == {"generate": 1}
    assert data["uploads"] == 0


async def test_an_image_as_a_large_data_uri_is_accepted(
    xai_simulator: Simulator, xai_client: Client
) -> None:
    picture = b"\xff\xd8\xff\xe0" + bytes(3_000_000)  # a 3 MB JPEG: 4 MB of base64
    uri = "data:image/jpeg;base64," + base64.b64encode(picture).decode()
    reply = await xai_client(xai_simulator).create({"model": MODEL, "image": {"url": uri}})
    assert reply.status == 200, reply.body[:200]
