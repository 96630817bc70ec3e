"""xAI's 429 backoff (``XaiClient.observed``): 1 s, doubling while 429s follow, counted per
burst. 429s answering requests that were all in flight when the first came back are one
burst: they share its pause instead of doubling it once each."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.errors import RateLimitedError
from batchgen.models import JobSpec
from batchgen.providers.token import Token
from batchgen.providers.xai import XaiClient
from batchgen.simulator import Fault, SimConfig

if TYPE_CHECKING:
    from helpers.simulators import FakeClock, SimulatorFactory

SPEC = JobSpec(key="k1", row=2, prompt="a red fox in snow", mode="", ratio="9:16", duration=6)
#: An xAI simulator whose first request starts a long 429 storm (no Retry-After: xAI sends none).
STORMY = SimConfig(
    provider="xai",
    tokens=frozenset({DEMO_TOKEN}),
    rps=1000,
    time_scale=0.01,
    seed=3,
    storm=Fault(at={1}),
    storm_duration=60.0,
)


async def _refused(api: XaiClient, n: int) -> list[float | None]:
    """``n`` creates sent together; the pause each 429 asked the caller for."""
    answers = await asyncio.gather(*(api.submit(SPEC) for _ in range(n)), return_exceptions=True)
    assert all(isinstance(a, RateLimitedError) for a in answers), answers
    return [a.retry_after for a in answers if isinstance(a, RateLimitedError)]


@pytest.mark.parametrize("together", [2, 6])
async def test_a_burst_of_429s_in_flight_together_shares_one_pause(
    simulator_factory: SimulatorFactory, fake_clock: FakeClock, together: int
) -> None:
    sim = await simulator_factory(STORMY)
    heard: list[float | None] = []
    async with XaiClient(
        sim.url,
        Token(DEMO_TOKEN, "XAI_API_KEY"),
        clock=fake_clock,
        on_response=lambda rate, status: heard.append(rate.retry_after),
    ) as api:
        assert await _refused(api, together) == [1.0] * together  # not 1, 2, 4 ... 2^n
        assert heard == [1.0] * together  # the throttle pauses 1 s once, not 2^n s
        fake_clock.advance(1.0)  # the pause is over: what is sent now and refused doubles
        assert await _refused(api, 1) == [2.0]
        fake_clock.advance(0.5)  # another answer of that burst, half-way through its pause
        assert await _refused(api, 1) == [2.0]
        assert heard[-1] == 1.5  # only what is left of the pause: never lengthened
    assert sim.stats.rate_limited == together + 2
