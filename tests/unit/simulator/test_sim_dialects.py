"""Choosing the simulator's dialect: ``SimConfig(provider=...)`` and
``batchgen simulate --provider``; what each dialect serves and refuses to serve."""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from batchgen.config import DEMO_TOKEN
from batchgen.errors import UsageError
from batchgen.simulator import (
    XAI_ONLY_FAULTS,
    Fault,
    SimConfig,
    Simulator,
    add_simulate_arguments,
    config_from_args,
    serve,
)
from batchgen.simulator.command import _banner

if TYPE_CHECKING:
    from helpers.simulators import SimClient, XaiClient


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_simulate_arguments(parser)
    return parser.parse_args(argv)


def test_the_reseller_stays_the_default() -> None:
    config = SimConfig()
    assert config.provider == "grokimagine"
    assert config.rate_limit == (100, 60.0)
    assert config.video_link_ttl is None
    assert config_from_args(parse()).provider == "grokimagine"


def test_xai_defaults_to_one_request_per_second_and_day_long_links() -> None:
    config = SimConfig(provider="xai")
    assert config.rate_limit == (1, 1.0)
    assert Simulator(config).stats.tick == 1.0  # the timeline counts per second
    assert Simulator(SimConfig()).stats.tick == 1.0  # a 60th of the reseller's minute
    assert config.video_link_ttl == 24 * 3600.0
    assert SimConfig(provider="xai", link_ttl=5.0).video_link_ttl == 5.0


def test_the_command_options_reach_an_xai_config() -> None:
    ns = parse(
        "--provider", "xai", "--rps", "3", "--retry-after", "--bill-failures",
        "--cost-mismatch-factor", "0.5", "--upload-max-bytes", "1000",
        "--moderated-at", "2", "--task-expired-rate", "0.1",
    )  # fmt: skip
    config = config_from_args(ns)
    assert config.provider == "xai"
    assert config.rate_limit == (3, 1.0)
    assert config.retry_after and config.bill_failures
    assert (config.cost_mismatch_factor, config.upload_max_bytes) == (0.5, 1000)
    assert config.moderated == Fault(at={2})
    assert config.task_expired == Fault(rate=0.1)


@pytest.mark.parametrize(
    "argv",
    [("--provider", "xai", "--rps", "0"), ("--moderated-at", "1"), ("--pending-200-rate", "1")],
)
def test_the_command_refuses_what_the_dialect_cannot_do(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError, match="simulate"):
        config_from_args(parse(*argv))


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse("--provider", "fal")
    with pytest.raises(ValueError, match="provider"):
        SimConfig(provider="fal")


@pytest.mark.parametrize("name", XAI_ONLY_FAULTS)
def test_xai_only_faults_need_the_xai_dialect(name: str) -> None:
    with pytest.raises(ValueError, match="provider='xai'"):
        SimConfig(**{name: Fault(at={1})})  # type: ignore[arg-type]
    assert SimConfig(provider="xai", **{name: Fault(at={1})}).fault(name).active  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tokens", "teams", "message"),
    [
        ({"a", "b"}, ({"a", "c"},), "accepted tokens"),
        ({"a", "b", "c"}, ({"a", "b"}, {"b", "c"}), "one team"),
    ],
)
def test_teams_must_be_disjoint_sets_of_accepted_tokens(
    tokens: set[str], teams: tuple[set[str], ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SimConfig(tokens=frozenset(tokens), teams=tuple(frozenset(t) for t in teams))


def test_the_xai_banner_gives_the_url_and_the_limit_without_the_key() -> None:
    banner = _banner(
        SimConfig(provider="xai", tokens=frozenset({"xai-secret-key-1"})), "http://h:1"
    )
    assert "xAI video API simulator listening on http://h:1" in banner
    assert "1 request(s) per second per team" in banner
    assert "xai-secret-key-1" not in banner
    assert f"demo token: {DEMO_TOKEN}" in _banner(SimConfig(provider="xai"), "http://h:1")


async def test_an_xai_simulator_does_not_speak_the_resellers_paths(
    xai_simulator: Simulator, sim_client: Callable[[Simulator], SimClient]
) -> None:
    client = sim_client(xai_simulator)
    assert (await client.generate({"mode": "fun", "prompt": "p", "ratio": "1:1"})).status == 404
    assert (await client.status("task_1")).status == 404


async def test_a_reseller_simulator_does_not_speak_xais_paths(
    simulator: Simulator, xai_client: Callable[[Simulator], XaiClient]
) -> None:
    reply = await xai_client(simulator).create({"model": "grok-imagine-video", "prompt": "p"})
    assert reply.status == 404


class _Banner(io.StringIO):
    """A text sink that says when something was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


async def test_serve_speaks_xai_when_asked(
    xai_client: Callable[[Simulator], XaiClient],
) -> None:
    out = _Banner()
    config = SimConfig(provider="xai", time_scale=0.01)
    task = asyncio.create_task(serve(config, "127.0.0.1", 0, out=out))
    async with asyncio.timeout(5):
        await out.written.wait()
    client = xai_client(Simulator(config))
    client.sim.url = out.getvalue().split("listening on ", 1)[1].split()[0]
    assert (await client.video("unknown")).status == 404
    assert (await client.video("unknown", token="xai-wrong-key-0001")).status == 400
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.e2e
def test_batchgen_simulate_accepts_provider_xai() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batchgen", "simulate", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--provider {grokimagine,xai}" in result.stdout
