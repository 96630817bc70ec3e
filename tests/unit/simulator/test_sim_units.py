"""The simulator's pure parts: window arithmetic, ranges, configuration, the command."""

from __future__ import annotations

import argparse
import asyncio
import io
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import make_mocked_request

from batchgen.config import DEMO_TOKEN
from batchgen.errors import UsageError
from batchgen.simulator import (
    FAULT_NAMES,
    Fault,
    SimConfig,
    Simulator,
    add_simulate_arguments,
    config_from_args,
    max_in_window,
    serve,
    token_label,
)
from batchgen.simulator.files import RangeNotSatisfiable, parse_range, ranged_response
from batchgen.simulator.limits import FixedWindow, SlidingWindow, TokenGate
from batchgen.simulator.stats import PeakWindow

if TYPE_CHECKING:
    from helpers.simulators import SimClient

# ---------------------------------------------------------------- max_window


def brute_force_max(timestamps: list[float], window: float) -> int:
    """The definition, slowly: the most events in any half-open interval [s, s + window)."""
    return max((sum(s <= t < s + window for t in timestamps) for s in timestamps), default=0)


@pytest.mark.parametrize(
    ("timestamps", "window", "expected"),
    [
        ([], 60.0, 0),
        ([5.0], 60.0, 1),
        ([0.0, 60.0], 60.0, 1),  # exactly one window apart: never in one interval
        ([0.0, 59.999], 60.0, 2),
        ([0.0, 0.0, 0.0], 1.0, 3),
        # 3 per fixed 1-second bucket, but 6 inside (0.5, 1.5]: a bucket count would say 3
        ([0.5, 0.6, 0.7, 1.1, 1.2, 1.3], 1.0, 6),
        ([0, 10, 20, 30, 40, 50, 60, 70], 30.0, 3),
    ],
)
def test_max_in_window_is_exact(timestamps: list[float], window: float, expected: int) -> None:
    assert max_in_window(timestamps, window) == expected
    assert brute_force_max(timestamps, window) == expected


def test_online_peak_matches_the_definition() -> None:
    rng = random.Random(7)
    for _ in range(50):
        timestamps = sorted(rng.uniform(0, 200) for _ in range(rng.randint(1, 60)))
        window = rng.choice([1.0, 10.0, 60.0])
        peak = PeakWindow(window)
        for t in timestamps:
            peak.add(t)
        assert peak.peak == max_in_window(timestamps, window) == brute_force_max(timestamps, window)


def test_token_labels_hide_the_token() -> None:
    label = token_label("s3cret-token")
    assert label.startswith("tok-") and len(label) == 12
    assert "s3cret" not in label
    assert label == token_label("s3cret-token") != token_label("other")


# ---------------------------------------------------------------- rate windows


def test_fixed_window_restores_the_whole_budget_at_its_end() -> None:
    window = FixedWindow(limit=2, window=10.0)
    assert [window.admit(t).allowed for t in (0.0, 1.0, 2.0)] == [True, True, False]
    denied = window.admit(9.9)
    assert (denied.allowed, denied.remaining) == (False, 0)
    assert denied.headers() == {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    fresh = window.admit(10.0)
    assert (fresh.allowed, fresh.remaining, fresh.reset) == (True, 1, 10.0)


def test_sliding_window_counts_the_last_window_seconds() -> None:
    window = SlidingWindow(limit=2, window=10.0)
    assert window.admit(0.0).allowed and window.admit(6.0).allowed
    denied = window.admit(9.0)
    assert not denied.allowed and denied.reset == pytest.approx(1.0)
    assert window.admit(10.0).allowed  # t=0 left the window
    assert not window.admit(15.9).allowed
    assert window.admit(16.0).remaining == 0


def test_storms_outrank_the_window() -> None:
    gate = TokenGate(FixedWindow(limit=100, window=60.0))
    assert gate.admit(0.0).allowed
    started = gate.start_storm(1.0, 5.0)
    assert not started.allowed and started.reset == 5.0
    assert not gate.admit(5.9).allowed
    assert gate.admit(6.0).allowed


# ---------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=9-3", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-9", None),
        ("bytes=abc", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_parse_range_past_the_end(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


BODY = bytes(range(100))


def test_ranged_response_with_an_etag_honours_if_range() -> None:
    matching = {"Range": "bytes=10-19", "If-Range": '"v1"'}
    part = ranged_response(make_mocked_request("GET", "/", headers=matching), BODY, etag='"v1"')
    assert (part.status, part.body) == (206, BODY[10:20])
    assert part.headers["Content-Range"] == "bytes 10-19/100"
    assert (part.headers["ETag"], part.headers["Accept-Ranges"]) == ('"v1"', "bytes")
    changed = {"Range": "bytes=10-19", "If-Range": '"v0"'}
    whole = ranged_response(make_mocked_request("GET", "/", headers=changed), BODY, etag='"v1"')
    assert (whole.status, whole.body) == (200, BODY)


def test_ranged_response_without_an_etag_ignores_if_range() -> None:
    headers = {"Range": "bytes=-10", "If-Range": '"v0"'}
    part = ranged_response(make_mocked_request("GET", "/", headers=headers), BODY, "video/webm")
    assert (part.status, part.body, part.content_type) == (206, BODY[90:], "video/webm")
    assert "ETag" not in part.headers and "Accept-Ranges" not in part.headers
    past = ranged_response(make_mocked_request("GET", "/", headers={"Range": "bytes=100-"}), BODY)
    assert (past.status, past.headers["Content-Range"]) == (416, "bytes */100")


# ---------------------------------------------------------------- configuration


def test_fault_accepts_any_iterable_and_checks_itself() -> None:
    fault = Fault(at={3, 1})
    assert fault.at == frozenset({1, 3}) and fault.active
    assert Fault.schedule([2]).at == frozenset({2})
    assert not Fault().active
    rng = random.Random(0)
    assert [fault.fires(n, rng) for n in (1, 2, 3)] == [True, False, True]
    with pytest.raises(ValueError, match="rate"):
        Fault(rate=1.5)
    with pytest.raises(ValueError, match="1-based"):
        Fault(at=frozenset({0}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tokens": frozenset()},
        {"tokens": frozenset({""})},
        {"rpm": 0},
        {"window": 0},
        {"window_kind": "leaky"},
        {"latency_median": 0},
        {"time_scale": 0},
        {"videos_per_task": (2, 1)},
        {"videos_per_task": (0, 1)},
        {"truncate_fraction": 1.0},
        {"slow_delay": -1},
        {"link_ttl": -1},
    ],
)
def test_sim_config_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_every_fault_name_is_a_config_field() -> None:
    config = SimConfig()
    assert all(isinstance(config.fault(name), Fault) for name in FAULT_NAMES)
    assert len(FAULT_NAMES) == 20  # short_copy (issue 23) joined the file faults
    with pytest.raises(KeyError):
        config.fault("rpm")


def test_latency_draws_are_scaled_log_normal() -> None:
    config = SimConfig(latency_median=2.0, latency_sigma=0.0, time_scale=0.01)
    assert config.draw_latency(random.Random(1)) == pytest.approx(0.02)
    spread = SimConfig(latency_median=2.0, latency_sigma=0.5)
    draws = sorted(spread.draw_latency(random.Random(n)) for n in range(201))
    assert 1.7 < draws[100] < 2.3


# ---------------------------------------------------------------- the command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    return parser.parse_args(argv)


def test_command_defaults_suit_a_demo() -> None:
    ns = parse()
    config = config_from_args(ns)
    assert (ns.host, ns.port) == ("127.0.0.1", 8089)
    assert config.tokens == frozenset({DEMO_TOKEN})
    assert config.rpm == 100 and config.window == 60.0 and config.window_kind == "fixed"
    assert config.latency_median * config.time_scale <= 5.0
    assert not any(config.fault(name).active for name in FAULT_NAMES)


def test_command_options_reach_the_config() -> None:
    ns = parse(
        "--tier", "pro", "--token", "t1", "--token", "t2", "--window-kind", "sliding",
        "--time-scale", "0.1", "--latency-median", "3", "--latency-sigma", "0.2",
        "--seed", "4", "--videos-per-task", "2", "2", "--server-error-rate", "0.1",
        "--ambiguous-at", "2,5", "--link-ttl", "30", "--storm-duration", "1.5",
    )  # fmt: skip
    config = config_from_args(ns)
    assert config.tokens == frozenset({"t1", "t2"})
    assert config.rpm == 1000 and config.window_kind == "sliding"
    assert (config.time_scale, config.latency_median, config.latency_sigma) == (0.1, 3.0, 0.2)
    assert config.seed == 4 and config.videos_per_task == (2, 2)
    assert config.server_error == Fault(rate=0.1)
    assert config.ambiguous == Fault(at=frozenset({2, 5}))
    assert config.link_ttl == 30.0 and config.storm_duration == 1.5
    assert config_from_args(parse("--tier", "enterprise", "--rpm", "7")).rpm == 7


@pytest.mark.parametrize(
    "argv", [("--rpm", "0"), ("--slow-rate", "2"), ("--refuse-at", "0"), ("--time-scale", "0")]
)
def test_command_rejects_bad_values_as_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError, match="simulate"):
        config_from_args(parse(*argv))


def test_command_rejects_bad_schedules() -> None:
    with pytest.raises(SystemExit):
        parse("--expired-at", "one")


class _WatchedText(io.StringIO):
    """A text sink that says when something was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


async def test_serve_prints_its_url_and_stops_when_cancelled(
    sim_client: Callable[[Simulator], SimClient],
) -> None:
    out = _WatchedText()
    config = SimConfig(tokens=frozenset({"secret-token-1"}), time_scale=0.01)
    task = asyncio.create_task(serve(config, "127.0.0.1", 0, out=out))
    async with asyncio.timeout(5):
        await out.written.wait()
    banner = out.getvalue()
    url = banner.split("listening on ", 1)[1].split()[0]
    assert "secret-token-1" not in banner
    async with asyncio.timeout(5):
        client = sim_client(Simulator(config))
        client.sim.url = url
        assert (await client.status("task_x", token="secret-token-1")).status == 400
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_serve_reports_a_busy_port(simulator: Simulator) -> None:
    port = int(simulator.url.rsplit(":", 1)[1])
    with pytest.raises(UsageError, match="cannot listen"):
        await serve(SimConfig(), "127.0.0.1", port, out=io.StringIO())


def test_demo_banner_names_the_demo_token() -> None:
    from batchgen.simulator.command import _banner

    assert f"demo token: {DEMO_TOKEN}" in _banner(SimConfig(), "http://127.0.0.1:8089")
