"""Issue 23, item 3: a server's pause is read so that no clock can stretch it.

Seen: the host clock an hour slow; the vendor sent ``Retry-After: 10`` and an absolute
``X-RateLimit-Reset``; batchgen took the larger, read on its own clock (3,610 s). The rules:
``Retry-After`` wins; a point in time is read against the answer's ``Date``; a reset beyond
the vendor's window (or a date read on our own clock) is capped at the window and noted.
"""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.providers.ratelimit import (
    VENDOR_WINDOW,
    parse_rate_headers,
    retry_after_of,
)

NOW = 1_700_000_000.0  # this machine's clock in the unit tests


HOUR = 3600.0


TOKEN = "sk-clock-test"


def date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


def test_the_seen_case_retry_after_wins_over_an_absolute_reset_read_on_a_slow_clock() -> None:
    server = NOW + HOUR  # this host's clock is an hour slow
    info = parse_rate_headers(
        {"Retry-After": "10", "X-RateLimit-Reset": str(int(server + 10)), "Date": date(server)},
        now=NOW,
    )
    assert info.pause() == 10.0
    assert info.reset_after == 10.0  # read against the server's Date, not our clock
    assert info.skew == HOUR and info.note is None


@pytest.mark.parametrize("offset", [HOUR, -HOUR, 0.0], ids=["slow", "fast", "right"])
@pytest.mark.parametrize("form", ["unix", "unix_ms", "http_date"])
def test_an_absolute_reset_is_read_against_the_servers_date(offset: float, form: str) -> None:
    server = NOW + offset  # offset > 0: our clock is slow; < 0: our clock is fast
    at = server + 12
    value = {"unix": str(int(at)), "unix_ms": str(int(at * 1000)), "http_date": date(at)}[form]
    info = parse_rate_headers(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value, "Date": date(server)}, now=NOW
    )
    assert info.reset_after == 12.0 and info.pause() == 12.0
    assert info.skew == offset


def test_a_retry_after_date_is_read_against_the_servers_date_too() -> None:
    server = NOW - HOUR  # our clock an hour fast: on it, the date is long past
    headers = {"Retry-After": date(server + 7), "Date": date(server)}
    assert parse_rate_headers(headers, now=NOW).retry_after == 7.0
    assert retry_after_of(headers, now=NOW) == 7.0  # what a CDN's 429/503 is read with


def test_without_a_date_a_far_absolute_reset_is_capped_at_the_window_and_said() -> None:
    info = parse_rate_headers(
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW + HOUR + 10))}, now=NOW
    )
    assert info.reset_after == VENDOR_WINDOW and info.skew is None
    assert info.note is not None and "3,610 s" in info.note and "60 s" in info.note


def test_a_relative_reset_longer_than_the_window_is_capped() -> None:
    info = parse_rate_headers({"X-RateLimit-Reset": "3600"}, now=NOW, window=60.0)
    assert info.reset_after == 60.0 and info.note is not None


def test_a_retry_after_date_without_a_date_header_is_capped_but_seconds_are_kept() -> None:
    on_our_clock = parse_rate_headers({"Retry-After": date(NOW + HOUR)}, now=NOW)
    assert on_our_clock.retry_after == VENDOR_WINDOW and on_our_clock.note is not None
    # seconds need no clock: the vendor means them, and only the deadline limits them
    seconds = parse_rate_headers({"Retry-After": "3600"}, now=NOW)
    assert seconds.retry_after == 3600.0 and seconds.note is None


def test_a_garbage_date_falls_back_to_our_clock_and_the_cap() -> None:
    info = parse_rate_headers(
        {"X-RateLimit-Reset": str(int(NOW + HOUR)), "Date": "yesterday-ish"}, now=NOW
    )
    assert info.skew is None and info.reset_after == VENDOR_WINDOW


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v
