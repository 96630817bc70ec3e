"""Issue 23, item 3: the throttle holds for ``Retry-After`` rather than the reset, and logs a
capped pause (once as a warning) and a server clock far from ours (once).
"""

from __future__ import annotations

import email.utils
import logging

import pytest
from helpers.simulators import FakeClock

from batchgen.engine.pacing.throttle import Throttle
from batchgen.providers.ratelimit import (
    RateInfo,
    parse_rate_headers,
)

NOW = 1_700_000_000.0  # this machine's clock in the unit tests


HOUR = 3600.0


def date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


def test_the_throttle_holds_for_retry_after_not_the_reset() -> None:
    clock = FakeClock(100.0)
    throttle = Throttle(100, clock=clock)
    throttle.observe(RateInfo(remaining=0, reset_after=50.0, retry_after=10.0), 429)
    assert throttle.resume_at == 110.0


def test_the_throttle_logs_a_capped_pause_and_a_far_server_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(100.0)
    throttle = Throttle(100, clock=clock)
    capped = parse_rate_headers({"X-RateLimit-Reset": str(int(NOW + HOUR))}, now=NOW)
    with caplog.at_level(logging.INFO, logger="batchgen"):
        throttle.observe(capped, 429)
        skewed = parse_rate_headers({"Retry-After": "5", "Date": date(NOW + HOUR)}, now=NOW)
        clock.advance(100.0)
        throttle.observe(skewed, 429)
    assert throttle.resume_at == 205.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "capped" in warnings[0].getMessage()
    assert "3600 s ahead of this machine's" in caplog.text
