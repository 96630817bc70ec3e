"""A real run of each provider against its simulator shows the money in the provider's unit
where the run writes it: the Runs sheet of results.xlsx and the sidecars beside the videos
(the bill in credits for the reseller, in dollars for xAI, never xAI's micro-dollars as
credits; the task's cost counted once per task however many videos it made)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batchgen.app.run import run_batch
from batchgen.config import DEMO_TOKEN, RetryPolicy, Settings
from batchgen.errors import ExitCode
from batchgen.output.workbook import RUNS_HEADER
from batchgen.providers.catalog import PROVIDERS
from batchgen.providers.token import Token
from batchgen.simulator import SimConfig, Simulator

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.5)
#: Each provider's manifest (header, rows) and simulator options.
CASES: dict[str, tuple[list[str], list[list[str]], dict[str, Any]]] = {
    "xai": (
        ["id", "prompt", "duration", "resolution"],
        [["a", "a lighthouse", "2", "480p"], ["b", "a harbour", "4", "720p"]],
        {"rps": 1000},
    ),
    "grokimagine": (
        ["id", "prompt", "mode", "ratio"],
        [["a", "a lighthouse", "fun", "1:1"], ["b", "a harbour", "fun", "2:3"]],
        {"rpm": 100_000, "videos_per_task": (2, 2)},  # two videos a task: two sidecars
    ),
}


async def run(tmp_path: Path, name: str, sim: Simulator) -> Path:
    """Runs the provider's manifest to the end; returns its output folder."""
    header, rows, _ = CASES[name]
    manifest = tmp_path / "briefs.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    rate = {"rps": 1000} if name == "xai" else {"rpm": 100_000}
    settings = Settings.from_options(
        provider=name,
        base_url=sim.url,
        out_dir=tmp_path / "out",
        first_poll=0.02,
        limiter="none",
        retry=FAST_RETRY,
        **rate,
    )
    token = Token(DEMO_TOKEN, PROVIDERS[name].token_env)
    code = await run_batch([manifest], settings, token, command="t", install_signals=False)
    assert code == ExitCode.OK
    return tmp_path / "out" / "briefs"


def vendor_bill(sim: Simulator, name: str) -> tuple[int | None, float]:
    """What the vendor says it charged: (credits or None, USD)."""
    if PROVIDERS[name].unit.credits:
        return sim.stats.credits_charged, sim.stats.credits_charged / 100
    return None, sim.stats.ticks_charged / 10**10


@pytest.mark.parametrize("name", list(CASES))
async def test_the_runs_sheet_and_the_sidecars_bill_in_the_providers_unit(
    simulator_factory: Any, tmp_path: Path, name: str
) -> None:
    config = SimConfig(
        provider=name,
        tokens=frozenset({DEMO_TOKEN}),
        time_scale=0.01,
        latency_median=2.0,
        latency_sigma=0.3,
        seed=5,
        **CASES[name][2],
    )
    sim = await simulator_factory(config)
    out = await run(tmp_path, name, sim)
    credits, usd = vendor_bill(sim, name)
    assert usd > 0

    sheet = openpyxl.load_workbook(out / "results.xlsx")["Runs"]
    (line,) = (dict(zip(RUNS_HEADER, r, strict=True)) for r in sheet.iter_rows(2, values_only=True))
    assert line["Credits charged"] == credits
    assert line["Cost (USD)"] == pytest.approx(usd)

    sidecars = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "videos").glob("*.json")]
    per_task = 2 if name == "grokimagine" else 1
    assert len(sidecars) == 2 * per_task
    assert all("credits" not in s and s["task_videos"] == per_task for s in sidecars)
    tasks = {s["task_id"]: s for s in sidecars}  # the task's cost, once per task
    assert sum(s["task_cost_usd"] for s in tasks.values()) == pytest.approx(usd)
    if credits is None:
        assert not any("task_credits" in s for s in sidecars)
    else:
        assert sum(s["task_credits"] for s in tasks.values()) == credits
