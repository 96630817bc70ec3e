"""A provider as data: its limit model, its billing, its prices."""

from __future__ import annotations

import pytest

from batchgen.errors import UsageError
from batchgen.models import JobSpec
from batchgen.providers.descriptor import CREDIT_BILLING, MICRO_USD, Billing, format_usd
from batchgen.providers.grokimagine import GROKIMAGINE
from batchgen.providers.xai import XAI
from batchgen.simulator import SimConfig


def test_the_limit_is_the_models_unless_an_option_says_otherwise() -> None:
    assert XAI.limits.resolve() == (1, 1.0) and XAI.limits.per == "second"
    assert GROKIMAGINE.limits.resolve() == (100, 60.0)
    assert GROKIMAGINE.limits.resolve(tier="pro") == (1000, 60.0)
    assert XAI.limits.resolve(rps=2) == (2, 1.0)
    assert XAI.limits.resolve(rps=1, window=0.1) == (1, 0.1)  # a compressed second
    assert GROKIMAGINE.limits.resolve(rpm=300) == (300, 60.0)
    with pytest.raises(UsageError, match="tiers are none"):
        XAI.limits.resolve(tier="pro")


def test_a_reported_cost_replaces_the_estimate_when_plausible() -> None:
    dollars = Billing(MICRO_USD)
    assert dollars.settle(400_000, 300_000) == 300_000  # xAI's report is the bill
    assert dollars.settle(400_000, None) == 400_000
    assert dollars.settle(400_000, 10**12) == 400_000  # not believable
    assert CREDIT_BILLING.settle(40, 10) == 40  # the reseller's contract fixes 40
    assert CREDIT_BILLING.settle(40, 80) == 80


def test_prices_follow_the_contracts_tables() -> None:
    clip = JobSpec(key="k", row=2, prompt="p", mode="", ratio="9:16", duration=10)
    assert XAI.price_of(clip) == 500_000
    hd = JobSpec(key="k", row=2, prompt="p", mode="", ratio="9:16", duration=4, resolution="720p")
    assert XAI.price_of(hd) == 280_000
    pictured = JobSpec(
        key="k", row=2, prompt="p", mode="", ratio="1:1", duration=1, images=("/p.png",),
        model="grok-imagine-video-1.5",
    )  # fmt: skip
    assert XAI.price_of(pictured) == 80_000 + 10_000
    assert GROKIMAGINE.price_of(clip) == 40


def test_dollars_are_shown_to_the_cent_and_below_when_there() -> None:
    assert [format_usd(x) for x in (0.4, 0.952, 1234.5, 0.0)] == [
        "$0.40",
        "$0.952",
        "$1,234.50",
        "$0.00",
    ]


def test_the_simulator_compresses_xais_second_for_benchmarks() -> None:
    assert SimConfig(provider="xai").rate_limit == (1, 1.0)
    assert SimConfig(provider="xai", rps_window=0.1).rate_limit == (1, 0.1)
    with pytest.raises(ValueError, match="rps_window"):
        SimConfig(provider="xai", rps_window=0)
