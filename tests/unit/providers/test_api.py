"""The API client against the real simulator: every outcome lands in the right error class."""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from helpers.api_client import SPEC, TOKEN, client
from helpers.simulators import FakeClock, MakeSim, SimulatorFactory

from batchgen.config import Timeouts
from batchgen.errors import (
    AmbiguousSubmitError,
    AuthError,
    InsecureTransportError,
    NotSentError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
    UsageError,
)
from batchgen.models import JobSpec, TaskState
from batchgen.providers.grokimagine import (
    ApiClient,
    RateInfo,
    Token,
    check_transport,
    load_token,
    parse_rate_headers,
    parse_reset,
)
from batchgen.simulator import Fault, SimConfig

SIM_DEFAULTS: dict[str, Any] = {"tokens": frozenset({TOKEN}), "time_scale": 0.01, "seed": 1}


# ---------------------------------------------------------------- headers, token, transport
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("0", 0.0),
        ("1700000030", 30.0),  # Unix seconds
        ("1700000030000", 30.0),  # Unix milliseconds
        (email.utils.formatdate(1_700_000_045, usegmt=True), 45.0),  # HTTP date
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("nan", None),
    ],
)
def test_reset_header_formats(value: str | None, expected: float | None) -> None:
    assert parse_reset(value, now=1_700_000_000.0) == expected


def test_a_reset_in_the_past_means_now() -> None:
    assert parse_reset("1699999990", now=1_700_000_000.0) == 0.0


def test_garbage_rate_headers_never_crash() -> None:
    info = parse_rate_headers(
        {"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "later", "Retry-After": "x"}
    )
    assert info == RateInfo(None, None, None)
    assert info.pause() is None


def test_retry_after_wins_over_the_reset() -> None:
    info = parse_rate_headers(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30", "Retry-After": "20"}
    )
    assert info.remaining == 0 and info.pause() == 20.0


def test_the_token_never_shows_in_a_repr() -> None:
    token = Token(TOKEN)
    assert TOKEN not in repr(token) and TOKEN not in str(token) and TOKEN not in f"{token}"
    api = ApiClient("http://127.0.0.1:1", token)
    assert TOKEN not in repr(api) and TOKEN not in repr(vars(api))


def test_token_from_the_environment() -> None:
    assert load_token({"GROKIMAGINE_API_TOKEN": f" {TOKEN}\n"}).reveal() == TOKEN
    with pytest.raises(UsageError, match="GROKIMAGINE_API_TOKEN"):
        load_token({})


def test_token_file_must_not_be_readable_by_others(tmp_path: Path) -> None:
    # The user's own token file holds the secret by design: a value the leak check ignores.
    secret = "sk-in-the-users-token-file"
    path = tmp_path / "token"
    path.write_text(secret + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(UsageError, match="chmod 600") as caught:
        load_token({}, token_file=path)
    assert secret not in str(caught.value)
    os.chmod(path, 0o600)
    assert load_token({}, token_file=path).reveal() == secret


@pytest.mark.parametrize(
    "url",
    ["https://grokimagineapi.com", "http://127.0.0.1:8089", "http://localhost:1", "http://[::1]:9"],
)
def test_transport_allowed(url: str) -> None:
    check_transport(url)


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("https://api.x.ai/v1", "https://api.x.ai"),  # as xAI's OpenAI-style SDKs write it
        ("http://127.0.0.1:8090/v1/", "http://127.0.0.1:8090"),
        ("https://proxy.example.com/grok/V2", "https://proxy.example.com/grok"),
    ],
)
def test_a_base_url_ending_in_an_api_version_is_refused_before_sending(url: str, fix: str) -> None:
    """A new user's trial: ``--base-url .../v1`` sent every POST to ``/v1/v1/...``; each 404
    proved nothing, so every row ended unknown and possibly charged."""
    with pytest.raises(UsageError, match=f"use {re.escape(fix)}$"):
        check_transport(url)
    check_transport(fix)  # and the fix it names is taken
    check_transport("https://proxy.example.com/v1x")  # a path that merely starts so is not


def test_token_refused_over_plain_http_to_a_remote_host() -> None:
    with pytest.raises(InsecureTransportError, match="https"):
        check_transport("http://grokimagineapi.com")
    with pytest.raises(UsageError):
        check_transport("ftp://example.com")


# ---------------------------------------------------------------- the happy path
async def test_submit_then_status_until_completed(
    simulator_factory: SimulatorFactory, fake_clock: FakeClock
) -> None:
    # The simulator's clock is injected: the task is waiting until the clock passes its
    # latency, however slowly the machine answers.
    sim = await simulator_factory(SimConfig(**SIM_DEFAULTS), clock=fake_clock)
    async with client(sim) as api:
        task_id = await api.submit(SPEC)
        first = await api.status(task_id)
        assert first.state is TaskState.WAITING
        fake_clock.advance(3600.0)
        status = await api.status(task_id)
    assert status.state is TaskState.COMPLETED
    assert status.consumed_credits == 40 and status.urls and status.error_message is None
    assert status.request["prompt"] == SPEC.prompt
    assert isinstance(status.created_at, dt.datetime)
    assert api.requests >= 3


# ---------------------------------------------------------------- classification
async def test_400_is_permanent(make_sim: MakeSim) -> None:
    sim = await make_sim()
    bad = JobSpec(key="k", row=2, prompt="x", mode="fun", ratio="4:3")
    async with client(sim) as api:
        with pytest.raises(PermanentApiError, match="ratio"):
            await api.submit(bad)


async def test_401_is_fatal_and_names_the_variable_not_the_token(make_sim: MakeSim) -> None:
    sim = await make_sim()
    wrong = Token("wrong-token-value", "GROKIMAGINE_API_TOKEN")  # as load_token names it
    async with ApiClient(sim.url, wrong) as api:
        with pytest.raises(AuthError) as caught:
            await api.submit(SPEC)
    assert caught.value.exit_code == 3
    assert "GROKIMAGINE_API_TOKEN" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)


async def test_429_is_transient_with_the_servers_pause(make_sim: MakeSim) -> None:
    sim = await make_sim(rpm=2)
    seen: list[tuple[RateInfo, int]] = []
    async with client(sim, on_response=lambda r, s: seen.append((r, s))) as api:
        await api.submit(SPEC)
        await api.submit(SPEC)
        with pytest.raises(RateLimitedError) as caught:
            await api.submit(SPEC)
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 60
    assert api.rate_limited == 1
    assert [s for _, s in seen] == [200, 200, 429]
    assert all(r.remaining is not None for r, _ in seen)  # headers on every response


async def test_500_is_ambiguous_for_a_submit_and_transient_for_a_poll(make_sim: MakeSim) -> None:
    # A 500 proves nothing about whether the task was stored (submit_table.py): never resent.
    sim = await make_sim(server_error=Fault(at={1, 3}))
    async with client(sim) as api:
        with pytest.raises(AmbiguousSubmitError, match="HTTP 500"):
            await api.submit(SPEC)
        task_id = await api.submit(SPEC)  # the next one goes through
        with pytest.raises(TransientApiError) as caught:
            await api.status(task_id)
        assert caught.value.status == 500
        await api.status(task_id)


async def test_a_body_code_500_wins_over_http_200(make_sim: MakeSim) -> None:
    sim = await make_sim(body_error=Fault(at={1, 3}))
    async with client(sim) as api:
        with pytest.raises(AmbiguousSubmitError) as ambiguous:
            await api.submit(SPEC)
        task_id = await api.submit(SPEC)
        with pytest.raises(TransientApiError) as caught:
            await api.status(task_id)
    assert ambiguous.value.status == 200
    assert caught.value.status == 200 and caught.value.code == 500


async def test_a_non_json_body_names_the_status_and_the_first_bytes(make_sim: MakeSim) -> None:
    sim = await make_sim(html_body=Fault(at={2}))
    async with client(sim) as api:
        task_id = await api.submit(SPEC)
        with pytest.raises(TransientApiError) as caught:
            await api.status(task_id)
    text = str(caught.value)
    assert "HTTP" in text and "not JSON" in text and "<" in text


async def test_connection_refused_means_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ApiClient(f"http://127.0.0.1:{port}", Token(TOKEN)) as api:
        with pytest.raises(NotSentError) as caught:
            await api.submit(SPEC)
    assert TOKEN not in str(caught.value)


async def test_a_refusing_server_means_not_sent_and_nothing_created(make_sim: MakeSim) -> None:
    sim = await make_sim(refuse=Fault(at={1}), refuse_duration=0.5)
    async with client(sim) as api:
        await api.submit(SPEC)  # answered, then the server stops listening for a while
        with pytest.raises(NotSentError):
            await api.submit(SPEC)
    assert sim.stats.tasks_created == 1


async def test_a_reset_after_sending_is_ambiguous_for_a_submit(make_sim: MakeSim) -> None:
    sim = await make_sim(ambiguous=Fault(at={1}))
    async with client(sim) as api:
        with pytest.raises(AmbiguousSubmitError, match="may have created"):
            await api.submit(SPEC)
    assert sim.stats.tasks_created == 1  # it did create one: never resend silently


async def test_a_reset_during_a_status_poll_is_merely_transient(make_sim: MakeSim) -> None:
    # aiohttp itself retries an idempotent GET once on a reused connection: drop both tries.
    sim = await make_sim(drop_before=Fault(at={2, 3}))
    async with client(sim) as api:
        task_id = await api.submit(SPEC)
        with pytest.raises(TransientApiError) as caught:
            await api.status(task_id)
    assert not isinstance(caught.value, AmbiguousSubmitError)


async def test_a_read_timeout_after_sending_a_submit_is_ambiguous(make_sim: MakeSim) -> None:
    sim = await make_sim(slow=Fault(at={1}), slow_delay=1.0)
    timeouts = Timeouts(submit_read=0.2)
    async with client(sim, timeouts=timeouts) as api:
        with pytest.raises(AmbiguousSubmitError):
            await api.submit(SPEC)


async def test_a_failed_task_carries_its_message(make_sim: MakeSim) -> None:
    sim = await make_sim(task_permanent=Fault(at={1}), latency_median=0.5)
    async with client(sim) as api:
        task_id = await api.submit(SPEC)
        status = await _wait_done(api, task_id)
    assert status.state is TaskState.FAILED and status.error_message


async def test_unknown_status_strings_mean_not_done_and_are_logged_once(
    make_sim: MakeSim, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await make_sim(unknown_status=Fault(at={1}), latency_median=5.0)
    caplog.set_level(logging.WARNING)
    async with client(sim) as api:
        task_id = await api.submit(SPEC)
        states = [(await api.status(task_id)).state for _ in range(3)]
    assert states == [TaskState.WAITING] * 3
    assert sum("unknown task status" in r.getMessage() for r in caplog.records) == 1


async def _wait_done(api: ApiClient, task_id: str):  # type: ignore[no-untyped-def]
    import asyncio

    for _ in range(500):
        status = await api.status(task_id)
        if status.state is not TaskState.WAITING:
            return status
        await asyncio.sleep(0.005)
    raise AssertionError("task never finished")
