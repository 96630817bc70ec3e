"""A POST that meets a 404 page stops the run's submits: a wrong URL costs one row, not all.

Seen in a new user's trial: the reseller's client pointed at xAI's port (the wrong provider)
sent every row's POST to a path that is not there; each plain-text 404 proved nothing about
money, so every row ended ``unknown``, possibly charged, and stayed on the bill. The 404 still
proves nothing (the row it answered stays unknown), but the run sends no more.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import pytest

from batchgen.app.run import run_batch
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.errors import ExitCode
from batchgen.models import JobStatus
from batchgen.providers.token import TokenNames, load_token
from batchgen.simulator import SimConfig
from batchgen.state.store import StateStore

pytestmark = pytest.mark.e2e

ROWS = 20


def _manifest(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        for i in range(ROWS):
            writer.writerow([f"r{i}", f"a fox {i}", "fun", "1:1"])
    return path


@pytest.mark.parametrize("where", ["xai port", "path prefix"])
async def test_a_missing_endpoint_stops_the_submits(
    simulator_factory: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    tokens = frozenset({DEMO_TOKEN})
    if where == "xai port":  # the reseller's client at xAI's address: no /v1/generate there
        sim = await simulator_factory(SimConfig(provider="xai", tokens=tokens, rps=1000))
        base_url = sim.url
    else:  # the reseller's own simulator under a path that is not its
        sim = await simulator_factory(SimConfig(tokens=tokens, rpm=100_000))
        base_url = f"{sim.url}/api"
    settings = Settings.from_options(
        base_url=base_url, out_dir=tmp_path / "out", first_poll=0.02, limiter="none", rpm=600
    )
    token = load_token({"T": DEMO_TOKEN}, names=TokenNames("T", "T_FILE"))
    manifest = _manifest(tmp_path / "briefs.csv")
    with caplog.at_level(logging.ERROR, logger="batchgen"):
        code = await run_batch([manifest], settings, token, command="t", install_signals=False)
    assert code == ExitCode.ATTENTION
    assert len(sim.stats.tasks) == 0  # nothing was created: the POSTs met no endpoint
    with StateStore.open(tmp_path / "out" / "briefs" / "state.sqlite") as store:
        counts = store.counts()
    unknown, pending = counts.get(JobStatus.UNKNOWN, 0), counts.get(JobStatus.PENDING, 0)
    # the POSTs already out when the first 404 came back are unknown (a page proves
    # nothing); the rest were never sent, and the next run (fixed) sends them
    assert unknown >= 1 and pending >= ROWS // 2 and unknown + pending == ROWS
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "no new submissions this run" in said
    assert f"{base_url}/v1/generate answered HTTP 404" in said and "--provider" in said
