"""The simulator over real HTTP: bodies, errors, rate limits, task lifecycle, files, stats."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.simulator import SimConfig, Simulator, token_label
from batchgen.simulator.files import video_bytes

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, Reply, SimClient, SimulatorFactory

Client = Callable[[Simulator], "SimClient"]
VALID = {"mode": "fun", "prompt": "a red fox in the snow", "ratio": "1:1"}


def assert_rate_headers(reply: Reply) -> None:
    """Both rate headers, as non-negative integers."""
    assert re.fullmatch(r"\d+", reply.headers["X-RateLimit-Remaining"])
    assert re.fullmatch(r"\d+", reply.headers["X-RateLimit-Reset"])


def assert_error(reply: Reply, status: int, error: str, message: str | None = None) -> None:
    """An error answer in the contract's shape, rate headers included."""
    assert reply.status == status
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == status
    assert body["error"] == error
    assert set(body) == {"code", "message", "error"}
    if message is not None:
        assert body["message"] == message
    assert_rate_headers(reply)


# ---------------------------------------------------------------- POST /v1/generate


async def test_generate_answers_a_task_id(simulator: Simulator, sim_client: Client) -> None:
    reply = await sim_client(simulator).generate(VALID)
    assert reply.status == 200
    body = reply.json()
    assert body["code"] == 200 and body["message"] == "success"
    assert re.fullmatch(r"task_\d{12}", body["data"]["task_id"])
    assert_rate_headers(reply)
    assert simulator.stats.tasks_created == 1
    assert simulator.stats.tasks_by_prompt[VALID["prompt"]] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "fun", "ratio": "1:1"}, "Invalid request: The prompt parameter is required"),
        ({**VALID, "prompt": None}, "Invalid request: The prompt parameter is required"),
        ({**VALID, "prompt": ""}, "Invalid request: The prompt parameter must not be empty"),
        ({**VALID, "prompt": "  \n"}, "Invalid request: The prompt parameter must not be empty"),
        ({**VALID, "prompt": 7}, "Invalid request: The prompt parameter must be a string"),
        ({"prompt": "x", "ratio": "1:1"}, "Invalid request: The mode parameter is required"),
        ({**VALID, "mode": "weird"}, "Invalid request: mode must be one of fun, normal, spicy"),
        ({"prompt": "x", "mode": "fun"}, "Invalid request: The ratio parameter is required"),
        ({**VALID, "ratio": "16:9"}, "Invalid request: ratio must be one of 2:3, 3:2, 1:1"),
        ({**VALID, "images": "https://a.example/x.png"}, "Invalid request: images must be an"),
        ({**VALID, "images": None}, "Invalid request: images must be an"),
        ({**VALID, "images": ["/x.png"]}, "Invalid request: images[0] is not an absolute"),
        ({**VALID, "images": ["https://a.example/1.png", "ftp://a.example/2.png"]}, "images[1]"),
        ({**VALID, "images": [42]}, "Invalid request: images[0] is not an absolute"),
        ({**VALID, "images": ["https://"]}, "Invalid request: images[0] is not an absolute"),
        (["not", "an", "object"], "Invalid request: the body must be a JSON object"),
    ],
)
async def test_generate_rejects_bad_requests(
    simulator: Simulator, sim_client: Client, body: object, message: str
) -> None:
    reply = await sim_client(simulator).generate(body)
    assert_error(reply, 400, "INVALID_REQUEST")
    assert message in reply.json()["message"]
    assert simulator.stats.tasks_created == 0


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe\x00", b"mode=fun&prompt=x"])
async def test_generate_rejects_a_body_that_is_not_json(
    simulator: Simulator, sim_client: Client, raw: bytes
) -> None:
    reply = await sim_client(simulator).generate(raw=raw)
    assert_error(reply, 400, "INVALID_REQUEST", "Invalid request: the body is not valid JSON")


async def test_images_and_unknown_fields_are_accepted_and_echoed(
    simulator: Simulator, sim_client: Client
) -> None:
    client = sim_client(simulator)
    images = ["https://example.com/image.png", "http://127.0.0.1:9/a.jpg?x=1"]
    task_id = await client.submit(images=images, seed=7)
    data = (await client.status(task_id)).json()["data"]
    assert data["request"] == {**VALID, "images": images}


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Unauthorized: missing bearer token"),
        ({"Authorization": "Bearer not-the-token"}, "Unauthorized: invalid token"),
        ({"Authorization": f"Basic {DEMO_TOKEN}"}, "Unauthorized: invalid token"),
        ({"Authorization": "Bearer "}, "Unauthorized: invalid token"),
    ],
)
async def test_missing_or_unknown_tokens_get_401_and_cost_nothing(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    headers: dict[str, str],
    message: str,
) -> None:
    sim = await simulator_factory(dataclasses.replace(fast_sim_config, rpm=2))
    client = sim_client(sim)
    for url in (f"{sim.url}/v1/generate", f"{sim.url}/v1/status?task_id=x"):
        for _ in range(3):  # more than the limit: 401s must not use anyone's budget
            reply = await client.request(
                "POST" if "generate" in url else "GET", url, headers=headers
            )
            assert_error(reply, 401, "UNAUTHORIZED", message)
            assert reply.headers["X-RateLimit-Remaining"] == "2"
            assert b"not-the-token" not in reply.body and DEMO_TOKEN.encode() not in reply.body
    assert sim.stats.unauthorized == 6
    assert sim.stats.max_window == {}
    assert (await client.generate(VALID)).status == 200


async def test_each_configured_token_is_accepted(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await simulator_factory(
        dataclasses.replace(fast_sim_config, tokens=frozenset({"t1", "t2"}))
    )
    client = sim_client(sim)
    assert (await client.generate(VALID, token="t1")).status == 200
    assert (await client.generate(VALID, token="t2")).status == 200
    assert (await client.generate(VALID, token=DEMO_TOKEN)).status == 401


# ---------------------------------------------------------------- GET /v1/status


async def test_status_without_task_id_is_400(simulator: Simulator, sim_client: Client) -> None:
    client = sim_client(simulator)
    message = "Invalid request: The task_id parameter is required"
    assert_error(await client.status(None), 400, "INVALID_REQUEST", message)
    assert_error(await client.status(""), 400, "INVALID_REQUEST", message)


async def test_status_of_an_unknown_task_is_400(simulator: Simulator, sim_client: Client) -> None:
    reply = await sim_client(simulator).status("task_000000000000")
    assert_error(reply, 400, "INVALID_REQUEST", "Invalid request: Unknown task_id")


async def test_tasks_are_private_to_their_token(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await simulator_factory(
        dataclasses.replace(fast_sim_config, tokens=frozenset({"alice", "bob"}))
    )
    client = sim_client(sim)
    reply = await client.generate(VALID, token="alice")
    task_id = reply.json()["data"]["task_id"]
    assert (await client.status(task_id, token="alice")).status == 200
    assert_error(await client.status(task_id, token="bob"), 400, "INVALID_REQUEST")


async def test_lifecycle_follows_the_drawn_latency(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(fast_sim_config, videos_per_task=(2, 2), queued_fraction=0.25)
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    task_id = await client.submit()
    latency = sim.stats.tasks[task_id].latency
    seen = []
    for fraction in (0.0, 0.2, 0.3, 0.99, 1.001, 5.0):
        fake_clock.now = sim.stats.tasks[task_id].created + fraction * latency
        reply = await client.status(task_id)
        assert reply.status == 200
        assert_rate_headers(reply)
        seen.append(reply.json()["data"]["status"])
    assert seen == ["queued", "queued", "processing", "processing", "completed", "completed"]
    data = reply.json()["data"]
    assert data["consumed_credits"] == 40
    assert data["error_message"] is None
    assert data["task_id"] == task_id
    assert data["request"] == VALID
    assert data["response"] == [
        f"{sim.url}/files/{task_id}/1.mp4",
        f"{sim.url}/files/{task_id}/2.mp4",
    ]
    created = dt.datetime.strptime(data["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


async def test_unfinished_tasks_list_no_videos(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await simulator_factory(fast_sim_config, clock=fake_clock)
    client = sim_client(sim)
    data = (await client.status(await client.submit())).json()["data"]
    assert data["status"] == "queued"
    assert data["response"] == [] and data["error_message"] is None
    assert data["consumed_credits"] == 40


async def test_tasks_finish_in_real_time_when_scaled(
    simulator: Simulator, sim_client: Client
) -> None:
    client = sim_client(simulator)
    task_ids = [await client.submit(f"prompt {n}") for n in range(5)]
    for task_id in task_ids:
        data = await client.wait_done(task_id)
        assert data["status"] == "completed"
        assert 1 <= len(data["response"]) <= 2
    assert all(0 < rec.latency < 1.0 for rec in simulator.stats.tasks.values())


async def test_latency_draws_follow_the_seed(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    runs = []
    for _ in range(2):
        sim = await simulator_factory(dataclasses.replace(fast_sim_config, seed=99))
        client = sim_client(sim)
        for n in range(3):
            await client.submit(f"p{n}")
        runs.append([(r.latency, r.videos) for r in sim.stats.tasks.values()])
    assert runs[0] == runs[1]


# ---------------------------------------------------------------- rate limits


async def test_fixed_window_limits_all_endpoints_together(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(fast_sim_config, rpm=3, window=60.0, window_kind="fixed")
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    first = await client.generate(VALID)
    task_id = first.json()["data"]["task_id"]
    fake_clock.advance(10)
    replies = [first, await client.status(task_id), await client.generate(VALID)]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0"]
    assert [r.headers["X-RateLimit-Reset"] for r in replies] == ["60", "50", "50"]
    fake_clock.advance(0.5)
    limited = await client.generate(VALID)
    assert_error(limited, 429, "RATE_LIMITED", "Rate limit exceeded")
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == "50"  # 49.5 s, rounded up
    assert_error(await client.status(task_id), 429, "RATE_LIMITED")
    assert sim.stats.tasks_created == 2  # a 429 never creates a task
    assert sim.stats.rate_limited == 2
    fake_clock.advance(49.5)  # the window that began at the first request is over
    again = await client.status(task_id)
    assert again.status == 200
    assert again.headers["X-RateLimit-Remaining"] == "2"


async def test_sliding_window_frees_one_slot_at_a_time(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(fast_sim_config, rpm=3, window=60.0, window_kind="sliding")
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    statuses = []
    for step in (0, 20, 20, 5):  # requests at t = 0, 20, 40, 45
        fake_clock.advance(step)
        statuses.append((await client.generate(VALID)).status)
    assert statuses == [200, 200, 200, 429]
    fake_clock.advance(15)  # t = 60: the request of t = 0 has left the window
    freed = await client.generate(VALID)
    assert freed.status == 200 and freed.headers["X-RateLimit-Remaining"] == "0"
    assert freed.headers["X-RateLimit-Reset"] == "20"  # the t = 20 request leaves at 80
    limited = await client.generate(VALID)
    assert_error(limited, 429, "RATE_LIMITED")
    assert limited.headers["X-RateLimit-Reset"] == "20"


async def test_each_token_has_its_own_budget(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    config = dataclasses.replace(fast_sim_config, tokens=frozenset({"a", "b"}), rpm=1)
    sim = await simulator_factory(config)
    client = sim_client(sim)
    assert (await client.generate(VALID, token="a")).status == 200
    assert (await client.generate(VALID, token="a")).status == 429
    assert (await client.generate(VALID, token="b")).status == 200


async def test_max_window_counts_every_api_request_of_a_token(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(fast_sim_config, rpm=2, window=60.0)
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    for step in (0, 30, 29, 2, 0):  # t = 0, 30, 59, 61, 61: at most 4 in one minute
        fake_clock.advance(step)
        await client.status("task_x")
    # 429s count: max_window measures what the client sent, not what it was allowed.
    assert sim.stats.max_window == {token_label(DEMO_TOKEN): 4}
    assert sim.stats.max_window_for(DEMO_TOKEN) == 4
    assert sim.stats.requests["status"] == 5


# ---------------------------------------------------------------- files


async def _video_url(client: SimClient, **extra: Any) -> str:
    data = await client.wait_done(await client.submit(**extra))
    url = data["response"][0]
    assert isinstance(url, str)
    return url


async def test_files_serve_the_whole_video(simulator: Simulator, sim_client: Client) -> None:
    client = sim_client(simulator)
    url = await _video_url(client)
    reply = await client.request("GET", url)
    assert reply.status == 200
    assert reply.body == video_bytes()
    assert reply.body[4:8] == b"ftyp"
    assert reply.headers["Content-Length"] == str(len(video_bytes()))
    assert reply.headers["Content-Type"] == "video/mp4"
    assert reply.headers["Accept-Ranges"] == "bytes"
    assert "X-RateLimit-Remaining" not in reply.headers  # the CDN is not the API
    head = await client.request("HEAD", url)
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(video_bytes()))


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-10", -10, None)],
)
async def test_files_answer_ranges_with_206(
    simulator: Simulator,
    sim_client: Client,
    range_header: str,
    start: int,
    end: int | None,
) -> None:
    client = sim_client(simulator)
    url = await _video_url(client)
    reply = await client.request("GET", url, headers={"Range": range_header})
    video = video_bytes()
    expected = video[start : None if end is None else end + 1]
    assert reply.status == 206
    assert reply.body == expected
    assert reply.headers["Content-Length"] == str(len(expected))
    first = start % len(video)
    assert (
        reply.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(video)}"
    )


async def test_files_refuse_ranges_past_the_end(simulator: Simulator, sim_client: Client) -> None:
    client = sim_client(simulator)
    url = await _video_url(client)
    size = len(video_bytes())
    reply = await client.request("GET", url, headers={"Range": f"bytes={size}-"})
    assert reply.status == 416
    assert reply.headers["Content-Range"] == f"bytes */{size}"


async def test_files_ignore_a_range_for_a_changed_file(
    simulator: Simulator, sim_client: Client
) -> None:
    client = sim_client(simulator)
    url = await _video_url(client)
    headers = {"Range": "bytes=10-", "If-Range": '"some-other-etag"'}
    reply = await client.request("GET", url, headers=headers)
    assert reply.status == 200 and reply.body == video_bytes()
    etag = reply.headers["ETag"]
    resumed = await client.request("GET", url, headers={"Range": "bytes=10-", "If-Range": etag})
    assert resumed.status == 206


async def test_files_of_unknown_or_unfinished_videos_are_404(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    config = dataclasses.replace(fast_sim_config, videos_per_task=(1, 1))
    sim = await simulator_factory(config, clock=fake_clock)
    client = sim_client(sim)
    task_id = await client.submit()
    assert (await client.request("GET", f"{sim.url}/files/{task_id}/1.mp4")).status == 404
    fake_clock.advance(60)
    assert (await client.request("GET", f"{sim.url}/files/{task_id}/1.mp4")).status == 200
    assert (await client.request("GET", f"{sim.url}/files/{task_id}/2.mp4")).status == 404
    assert (await client.request("GET", f"{sim.url}/files/task_nope/1.mp4")).status == 404


async def test_files_do_not_count_against_the_rate_limit(
    simulator_factory: SimulatorFactory,
    sim_client: Client,
    fast_sim_config: SimConfig,
    fake_clock: FakeClock,
) -> None:
    sim = await simulator_factory(dataclasses.replace(fast_sim_config, rpm=2), clock=fake_clock)
    client = sim_client(sim)
    task_id = await client.submit()
    fake_clock.advance(10)
    url = (await client.status(task_id)).json()["data"]["response"][0]
    for _ in range(5):
        assert (await client.request("GET", url)).status == 200
    assert sim.stats.max_window_for(DEMO_TOKEN) == 2
    assert sim.stats.requests == {"generate": 1, "status": 1, "files": 5}


# ---------------------------------------------------------------- stats


async def test_stats_endpoint_serves_the_counters(
    simulator_factory: SimulatorFactory, sim_client: Client, fast_sim_config: SimConfig
) -> None:
    sim = await simulator_factory(dataclasses.replace(fast_sim_config, rpm=3))
    client = sim_client(sim)
    await client.submit("same prompt")
    await client.submit("same prompt")
    await client.generate(VALID, token="wrong")
    await client.status("task_nope")
    await client.status("task_nope")  # 429
    reply = await client.request("GET", f"{sim.url}/_sim/stats")
    stats = reply.json()
    assert stats == sim.stats.to_json()
    assert stats["requests"] == {"generate": 3, "status": 2}
    assert stats["responses"] == {"200": 2, "400": 1, "401": 1, "429": 1}
    assert stats["rate_limited"] == 1 and stats["unauthorized"] == 1
    assert stats["tasks_created"] == 2 and stats["credits_charged"] == 80
    assert stats["duplicate_prompts"] == {"same prompt": 2}
    assert stats["max_window"] == {token_label(DEMO_TOKEN): 4}
    assert set(stats["tasks"]) == set(sim.stats.tasks)
    record = next(iter(stats["tasks"].values()))
    assert {"prompt", "created", "latency", "final_status"} <= set(record)
    assert DEMO_TOKEN not in reply.body.decode()
    lean = (await client.request("GET", f"{sim.url}/_sim/stats?tasks=0")).json()
    assert "tasks" not in lean
    assert sim.stats.requests == {"generate": 3, "status": 2}  # /_sim/ is not counted


async def test_stop_is_idempotent() -> None:
    sim = Simulator(SimConfig(time_scale=0.01))
    async with sim:
        assert sim.url.startswith("http://127.0.0.1:")
    await sim.stop()  # idempotent
