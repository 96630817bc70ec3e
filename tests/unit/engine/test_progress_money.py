"""The run's progress (heartbeat line and bars) shows what was spent in the provider's unit:
``credits 120`` for the reseller, ``charged $0.30`` for xAI (never micro-dollars as credits)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from batchgen.app.provider import provider_factory
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.progress import Progress
from batchgen.providers.catalog import PROVIDERS
from batchgen.providers.token import Token
from batchgen.state.store import StateStore


@asynccontextmanager
async def progress_of(
    tmp_path: Path, name: str, spent: int, *, bars: bool = False, stream: io.StringIO
) -> AsyncIterator[Progress]:
    """A real dispatcher of provider ``name`` (nothing sent) whose run has spent ``spent``
    units of the provider's money, and its ``Progress``."""
    info = PROVIDERS[name]
    settings = Settings.from_options(
        provider=name, base_url="http://127.0.0.1:9", out_dir=tmp_path, progress=bars
    )
    throttle = Throttle(100)
    with StateStore.open(tmp_path / "state.sqlite") as store:
        run = ManifestRun(name="m.csv", store=store, out_dir=tmp_path)
        run.counters.credits = spent
        token = Token(DEMO_TOKEN, info.token_env)
        client = provider_factory(info)(settings, token, throttle.observe)
        async with client as api, aiohttp.ClientSession() as cdn:
            dispatcher = Dispatcher(
                [run], api=api, throttle=throttle, cdn=cdn, settings=settings, billing=info.billing
            )
            yield Progress(dispatcher, api, settings, stream=stream)


@pytest.mark.parametrize(
    ("name", "spent", "shown"),
    [
        ("xai", 300_000, ", charged $0.30, ETA"),  # three 1 s clips at $0.10: micro-dollars
        ("xai", 402_000, ", charged $0.402, ETA"),  # a sub-cent figure keeps its digits
        ("grokimagine", 120, ", credits 120, ETA"),  # credits, as ever
    ],
)
async def test_the_heartbeat_shows_the_spend_in_the_providers_unit(
    tmp_path: Path, name: str, spent: int, shown: str
) -> None:
    async with progress_of(tmp_path, name, spent, stream=io.StringIO()) as progress:
        line = progress.line()
    assert shown in line, line
    assert ("credits" in line) == PROVIDERS[name].unit.credits, line


@pytest.mark.parametrize(
    ("name", "spent", "shown", "never"),
    [("xai", 300_000, "charged=$0.30", "300000"), ("grokimagine", 120, "credits=120", "$")],
)
async def test_the_progress_bars_show_the_spend_in_the_providers_unit(
    tmp_path: Path, name: str, spent: int, shown: str, never: str
) -> None:
    stream = io.StringIO()
    async with progress_of(tmp_path, name, spent, bars=True, stream=stream) as progress:
        await progress.__aenter__()
        await progress.__aexit__(None, None, None)  # leaving draws the bars once more
    drawn = stream.getvalue()
    assert shown in drawn and never not in drawn, drawn
