"""Latency history across real runs: a second run on a new sheet starts warm from the first's."""

from __future__ import annotations

from pathlib import Path

from helpers.records import write_briefs
from helpers.simulators import SimulatorFactory

from batchgen.app.run import run_batch
from batchgen.config import Settings
from batchgen.engine.timing.latency_store import LatencyStore
from batchgen.engine.timing.poll_plan import PollPlanner
from batchgen.providers.grokimagine import Token
from batchgen.simulator import SimConfig


async def test_a_second_run_on_a_new_sheet_starts_warm(
    tmp_path: Path, simulator_factory: SimulatorFactory
) -> None:
    token = "sk-history-s3cret"
    sim = await simulator_factory(
        SimConfig(tokens=frozenset({token}), rpm=100_000, time_scale=0.01, latency_median=10.0)
    )
    settings = Settings.from_options(
        base_url=sim.url, out_dir=tmp_path / "out", first_poll=0.02, rpm=100_000
    )
    first = write_briefs(tmp_path / "monday.csv", 12)
    assert (
        await run_batch([first], settings, Token(token), command="run", install_signals=False) == 0
    )
    store = LatencyStore.for_api(sim.url)
    after_first = store.load()
    assert len(after_first["fun"]) == 12
    warm = PollPlanner(first_poll=0.02, history=after_first)
    assert warm.model_for("fun").completions == 12
    assert 0.05 < warm.model.quantile(0.5) < 0.3  # the simulator's median is 0.1 s

    second = write_briefs(tmp_path / "tuesday.csv", 8)
    assert (
        await run_batch([second], settings, Token(token), command="run", install_signals=False) == 0
    )
    # the second run loaded the first's latencies and kept them with its own
    assert len(store.load()["fun"]) == 12 + 8
    assert token not in store.path.read_text(encoding="utf-8")
    assert token not in store.path.name
