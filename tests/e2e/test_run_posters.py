"""Poster frames off the run's hot path: ``batchgen run`` decodes no video for its gallery (the
page shows the browser's own first frame: ``test_gallery_browser``), ``batchgen report`` makes
the posters."""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.simulators import MakeSim

TOKEN = "sk-posters-test"
SIM_DEFAULTS: dict[str, Any] = {
    "tokens": frozenset({TOKEN}),
    "time_scale": 0.01,
    "latency_median": 10.0,
    "seed": 5,
    "rpm": 100_000,
}


async def batchgen_cli(cwd: Path, base_url: str, *args: str) -> int:
    env = {**os.environ, "GROKIMAGINE_API_TOKEN": TOKEN, "GROKIMAGINE_BASE_URL": base_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", *args, cwd=cwd, env=env
    )
    return await asyncio.wait_for(proc.wait(), 120)


@pytest.mark.e2e
async def test_run_makes_no_poster_and_report_makes_them(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    with (tmp_path / "briefs.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows([f"r{i}", f"posters prompt {i}", "fun", "1:1"] for i in range(3))
    run = ("run", "briefs.csv", "--first-poll", "0.05s", "--no-progress", "-q")
    assert await batchgen_cli(tmp_path, sim.url, *run) == 0
    out = tmp_path / "outputs" / "briefs"
    videos = sorted(out.glob("videos/*.mp4"))
    assert len(videos) >= 3
    assert not (out / "posters").exists()
    assert "posters/" not in _gallery_data(out)  # each card: the browser's own first frame
    assert await batchgen_cli(tmp_path, sim.url, "report", "briefs.csv") == 0
    posters = sorted(p.name for p in (out / "posters" / "videos").iterdir())
    assert posters == [f"{v.name}.jpg" for v in videos]
    assert _gallery_data(out).count("posters/videos/") == len(videos)


def _gallery_data(out: Path) -> str:
    """The gallery's data parts (the cards' files and posters), as text."""
    return "".join(p.read_text(encoding="utf-8") for p in sorted(out.glob("gallery/*/*.js")))
