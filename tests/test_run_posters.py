"""Poster frames off the run's hot path: ``batchgen run`` decodes no video for its gallery (the
page shows the browser's own first frame), ``batchgen report`` makes the posters."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import MakeSim

import batchgen
from batchgen.models import Job, JobStatus
from batchgen.output.gallery import EAGER_VIDEOS, write_gallery
from batchgen.output.results import summarise

TOKEN = "sk-posters-test"
TINY_MP4 = Path(batchgen.__file__).parent / "data" / "tiny.mp4"
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
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'preload="metadata"' in page and "poster=" not in page
    assert await batchgen_cli(tmp_path, sim.url, "report", "briefs.csv") == 0
    posters = sorted(p.name for p in (out / "posters" / "videos").iterdir())
    assert posters == [f"{v.name}.jpg" for v in videos]
    assert (out / "index.html").read_text(encoding="utf-8").count('poster="posters/') == len(videos)


def _jobs(n: int) -> list[Job]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        Job(
            key=f"k{row}",
            row=row,
            prompt=f"prompt {row}",
            mode="fun",
            ratio="1:1",
            status=JobStatus.DOWNLOADED,
            files=("videos/one.mp4",),
            created_at=start,
        )
        for row in range(2, n + 2)
    ]


@pytest.mark.browser
def test_a_gallery_without_posters_shows_a_frame_per_video(
    tmp_path: Path, browser_page: Any
) -> None:
    (tmp_path / "videos").mkdir()
    shutil.copyfile(TINY_MP4, tmp_path / "videos" / "one.mp4")
    jobs = _jobs(EAGER_VIDEOS + 20)
    summary = summarise(jobs, [], manifest="m.csv", version="1")
    write_gallery(tmp_path, jobs=jobs, summary=summary, make_posters=False)
    assert not (tmp_path / "posters").exists()
    page = browser_page
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_load_state("load")
    # HAVE_CURRENT_DATA (2) or more: the browser holds the frame it shows
    shown = "vs => vs.filter(v => !v.poster && v.readyState >= 2).length"
    page.wait_for_function(
        f"() => ({shown})([...document.querySelectorAll('video')].slice(0, {EAGER_VIDEOS}))"
        f" === {EAGER_VIDEOS}"
    )
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the lazy ones too
    page.wait_for_function(
        "() => { const v = document.querySelector('main article:last-child video');"
        " return !v.dataset.lazy && v.readyState >= 2; }"
    )
