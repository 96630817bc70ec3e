"""The xAI client (``providers/xai.py``) against the simulator's xAI dialect and a hostile
server: what each answer means for the row and the money."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from batchgen.config import DEMO_TOKEN
from batchgen.errors import (
    AmbiguousSubmitError,
    AuthError,
    PermanentApiError,
    RateLimitedError,
    TaskGoneError,
)
from batchgen.models import JobSpec, TaskState, TaskStatus
from batchgen.providers.ratelimit import RateInfo
from batchgen.providers.token import Token
from batchgen.providers.xai import XAI, XaiClient, parse_video_status, video_body
from batchgen.simulator import Fault, SimConfig, Simulator

SIM_DEFAULTS: dict[str, Any] = {
    "provider": "xai",
    "tokens": frozenset({DEMO_TOKEN}),
    "rps": 1000,
    "time_scale": 0.01,
    "latency_median": 2.0,
    "latency_sigma": 0.3,
    "seed": 5,
}
SPEC = JobSpec(key="k1", row=2, prompt="a red fox in snow", mode="", ratio="9:16", duration=6)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


async def _sim(factory: Any, **options: Any) -> Simulator:
    sim: Simulator = await factory(SimConfig(**(SIM_DEFAULTS | options)))
    return sim


async def _final(api: XaiClient, task_id: str) -> TaskStatus:
    async with asyncio.timeout(5):
        while True:
            status = await api.status(task_id)
            if status.state is not TaskState.WAITING:
                return status
            await asyncio.sleep(0.01)


def _client(url: str, token: str = DEMO_TOKEN, **kwargs: Any) -> XaiClient:
    return XaiClient(url, Token(token, "XAI_API_KEY"), **kwargs)


async def test_a_video_is_created_polled_and_costs_what_the_vendor_reports(
    simulator_factory: Any,
) -> None:
    sim = await _sim(simulator_factory)
    async with _client(sim.url) as api:
        task_id = await api.submit(SPEC)
        status = await _final(api, task_id)
    assert status.state is TaskState.COMPLETED and len(status.urls) == 1
    assert status.consumed_credits == 300_000  # 6 s at $0.05: micro-dollars
    assert status.consumed_credits == XAI.price_of(SPEC)
    assert sim.stats.ticks_charged == 300_000 * 10_000


def test_the_body_spells_every_field_out_with_the_providers_defaults() -> None:
    spec = JobSpec(key="k", row=2, prompt="p", mode="", ratio="")
    assert video_body(spec, XAI, None) == {
        "model": "grok-imagine-video",
        "prompt": "p",
        "duration": 8,
        "resolution": "480p",
        "aspect_ratio": "16:9",
    }
    assert XAI.price_of(spec) == 400_000  # the contract's $0.40 default clip


@pytest.mark.parametrize(
    ("body", "http", "state", "detail"),
    [
        ({"status": "pending", "progress": 40}, 202, TaskState.WAITING, None),
        ({"progress": 0}, 202, TaskState.WAITING, None),  # a 202 without a word waits
        ({"status": "pending", "progress": 10}, 200, TaskState.WAITING, None),
        ({"status": "expired"}, 200, TaskState.EXPIRED, None),
        (
            {"status": "failed", "error": {"code": "internal_error", "message": "boom"}},
            200,
            TaskState.FAILED,
            "internal_error: boom",
        ),
        (
            {"status": "done", "video": {"duration": 6, "respect_moderation": False}},
            200,
            TaskState.MODERATED,
            "moderation",
        ),
    ],
)
def test_each_documented_state_maps_to_one_domain_state(
    body: dict[str, Any], http: int, state: TaskState, detail: str | None
) -> None:
    status, recognised = parse_video_status("r1", body, http)
    assert recognised and status.state is state
    if detail is not None:
        assert status.error_message is not None and detail in status.error_message


def test_an_unknown_word_waits_and_is_not_recognised() -> None:
    for word in ("queued", "processing"):
        status, recognised = parse_video_status("r1", {"status": word}, 200)
        assert status.state is TaskState.WAITING and not recognised


async def test_a_wrong_key_400_stops_the_run_as_a_token_error_naming_its_source(
    simulator_factory: Any,
) -> None:
    sim = await _sim(simulator_factory)
    async with _client(sim.url, token="xai-wrong-key-0123456789") as api:
        with pytest.raises(AuthError) as caught:
            await api.submit(SPEC)
    message = str(caught.value)
    assert caught.value.exit_code == 3 and "HTTP 400" in message
    assert "check XAI_API_KEY" in message and "xai-wrong-key-0123456789" not in message
    assert not api.token_accepted  # the probe stays one request at a time
    assert sim.stats.tasks_created == 0


async def test_an_ambiguous_create_raises_ambiguous_never_a_retry(simulator_factory: Any) -> None:
    sim = await _sim(simulator_factory, ambiguous=Fault(at={1}))
    async with _client(sim.url) as api:
        with pytest.raises(AmbiguousSubmitError):
            await api.submit(SPEC)
    assert sim.stats.tasks_created == 1  # the vendor made it: only a person may send again


async def test_a_server_error_on_create_is_ambiguous(simulator_factory: Any) -> None:
    sim = await _sim(simulator_factory, server_error=Fault(at={1}))
    async with _client(sim.url) as api:
        with pytest.raises(AmbiguousSubmitError):
            await api.submit(SPEC)


async def test_a_polled_expired_and_moderated_task_are_final(simulator_factory: Any) -> None:
    sim = await _sim(simulator_factory, task_expired=Fault(at={1}), moderated=Fault(at={2}))
    async with _client(sim.url) as api:
        expired = await _final(api, await api.submit(SPEC))
        moderated = await _final(api, await api.submit(SPEC))
    assert expired.state is TaskState.EXPIRED
    assert moderated.state is TaskState.MODERATED and moderated.urls == ()
    assert moderated.consumed_credits == 300_000  # its reported cost is kept


async def test_an_unknown_request_id_is_gone(simulator_factory: Any) -> None:
    sim = await _sim(simulator_factory)
    async with _client(sim.url) as api:
        with pytest.raises(TaskGoneError):
            await api.status("no-such-request")


# ---------------------------------------------------------------- a hostile xAI
Handler = Callable[[web.Request], Any]


@pytest.fixture
async def vendor() -> AsyncIterator[Callable[[Handler], Any]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize(
    "body",
    [
        {"code": "Client specified an invalid argument", "error": "Incorrect API key provided"},
        {"error": {"message": "Incorrect API key provided: xa***yz", "type": "invalid_request"}},
    ],
)
async def test_flat_and_nested_key_errors_are_both_token_errors(
    vendor: Any, body: dict[str, Any]
) -> None:
    url = await vendor(_answering(body, 400))
    async with _client(url) as api:
        with pytest.raises(AuthError, match="Incorrect API key"):
            await api.submit(SPEC)


@pytest.mark.parametrize(
    "body",
    [
        {"code": "Client specified an invalid argument", "error": "duration must be 1 to 15"},
        {"error": {"message": "duration must be 1 to 15", "code": "invalid_argument"}},
    ],
)
async def test_a_refused_request_names_the_vendors_words_in_either_shape(
    vendor: Any, body: dict[str, Any]
) -> None:
    url = await vendor(_answering(body, 400))
    async with _client(url) as api:
        with pytest.raises(PermanentApiError, match="duration must be 1 to 15"):
            await api.submit(SPEC)


async def test_a_429_without_a_hint_waits_one_second_then_two(vendor: Any, fake_clock: Any) -> None:
    url = await vendor(_answering({"error": "slow down"}, 429))
    seen: list[RateInfo] = []
    hook = lambda rate, status: seen.append(rate)  # noqa: E731
    async with _client(url, on_response=hook, clock=fake_clock) as api:
        waits = []
        for _ in range(3):
            with pytest.raises(RateLimitedError) as caught:
                await api.submit(SPEC)
            waits.append(caught.value.retry_after)
            fake_clock.advance(caught.value.retry_after)  # each sent once the pause is over
    assert waits == [1.0, 2.0, 4.0]  # the contract: back off exponentially from 1 s
    assert [rate.retry_after for rate in seen] == [1.0, 2.0, 4.0]  # the throttle pauses so


async def test_a_local_picture_goes_inline_and_a_large_one_through_the_files_api(
    vendor: Any, tmp_path: Path
) -> None:
    seen: list[tuple[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/v1/files":
            form = await request.post()
            seen.append(("upload", list(form)))
            return web.json_response({"id": "file_1", "object": "file", "bytes": 1})
        seen.append(("create", await request.json()))
        return web.json_response({"request_id": f"r{len(seen)}"})

    url = await vendor(handler)
    small, large = tmp_path / "s.png", tmp_path / "l.png"
    small.write_bytes(PNG)
    large.write_bytes(PNG + b"\0" * 5000)
    specs = [
        JobSpec(
            key=f"k{n}",
            row=n,
            prompt="p",
            mode="",
            ratio="1:1",
            images=(str(path),),
            image_digests=(_digest(path),),
        )
        for n, path in ((2, small), (3, large), (4, large))
    ]
    async with _client(url, inline_below=1000) as api:
        for spec in specs:
            await api.submit(spec)
    creates = [body for kind, body in seen if kind == "create"]
    uri = creates[0]["image"]["url"]
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri[22:]) == PNG
    assert creates[1]["image"] == {"file_id": "file_1"} == creates[2]["image"]
    uploads = [fields for kind, fields in seen if kind == "upload"]
    assert uploads == [["expires_after", "purpose", "file"]]  # once; expires_after first


async def test_a_picture_changed_since_it_was_read_is_refused_before_anything_is_sent(
    vendor: Any, tmp_path: Path
) -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"request_id": "r1"})

    url = await vendor(handler)
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    spec = JobSpec(
        key="k",
        row=2,
        prompt="p",
        mode="",
        ratio="1:1",
        images=(str(picture),),
        image_digests=(_digest(picture),),
    )
    picture.write_bytes(PNG + b"changed")
    async with _client(url) as api:
        with pytest.raises(PermanentApiError, match="changed since the manifest was read"):
            await api.submit(spec)
    assert calls == []


def _answering(body: dict[str, Any], status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bodies_are_json_objects() -> None:
    assert json.loads(json.dumps(video_body(SPEC, XAI, {"url": "https://x/p.png"})))["image"] == {
        "url": "https://x/p.png"
    }
