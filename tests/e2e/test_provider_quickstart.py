"""docs/providers.md's xAI quick start, as a user with only an xAI key runs it: 9:16, 16:9 and
1:1 clips of the requested lengths, one from a local picture, each in its own verified file,
and a bill in USD equal to what the vendor reported."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from helpers.paths import REPO

from batchgen.simulator import SimConfig

KEY = "sk-cli-test-s3cret-value"


async def _batchgen(cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROKIMAGINE", "XAI"))}
    env["XAI_API_KEY"] = KEY
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "batchgen", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.e2e
async def test_the_xai_quick_start_gets_every_clip_and_the_vendors_bill(
    simulator_factory: Any, tmp_path: Path
) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    sim = await simulator_factory(
        SimConfig(
            provider="xai", tokens=frozenset({KEY}), rps=1, time_scale=0.02, seed=9,
            sized_clips=True,  # as `batchgen simulate` serves them
        )
    )  # fmt: skip
    manifest = "manifests/example-xai.csv"
    code, out, _ = await _batchgen(tmp_path, "validate", manifest, "--provider", "xai")
    assert code == 0 and "cost           $1.602" in out
    code, _, err = await _batchgen(
        tmp_path, "run", manifest, "--provider", "xai", "--base-url", sim.url, "--max-usd", "5"
    )
    assert code == 0, err
    code, out, _ = await _batchgen(tmp_path, "status", manifest, "--json")
    (entry,) = json.loads(out)["manifests"]
    assert entry["provider"] == "xai" and entry["billing"] == "usd"
    assert entry["usd_charged"] == entry["usd"] == sim.stats.ticks_charged / 10**10 == 1.602
    folder = tmp_path / Path(entry["state_file"]).parent  # wherever the manifest's outputs go
    results = folder / "results.csv"
    with results.open(encoding="utf-8-sig") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    records = list(sim.stats.tasks.values())
    wanted = {("9:16", 6), ("16:9", 10), ("1:1", 4), ("9:16", 8)}
    assert {(r.request.get("aspect_ratio"), r.duration) for r in records} == wanted
    assert sum(r.images for r in records) == 1  # the local picture
    assert len(rows) == 4
    for row in rows.values():
        assert row["status"] == "downloaded"
        video = folder / row["files"]
        assert video.read_bytes()[4:8] == b"ftyp"
    # each clip is the one asked for, as a player sees it: its length, ratio and resolution
    asked = {
        "reel-01": (6, "9:16", 480), "yt-01": (10, "16:9", 720),
        "sq-01": (4, "1:1", 480), "short-01": (8, "9:16", 480),  # xAI's defaults: 8 s, 480p
    }  # fmt: skip
    assert {key: _shape(folder / row["files"]) for key, row in rows.items()} == asked


def _shape(video: Path) -> tuple[int, str, int]:
    """Seconds, aspect ratio and short side of ``video``, as FFmpeg reads them."""
    with av.open(str(video), mode="r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        seconds = round(container.duration / av.time_base)
        width, height = stream.codec_context.width, stream.codec_context.height
    ratio = Fraction(width, height)
    common = {"9:16": Fraction(9, 16), "16:9": Fraction(16, 9), "1:1": Fraction(1)}
    named = min(common, key=lambda name: abs(common[name] - ratio))  # 848 x 480 is "16:9"
    return seconds, named, min(width, height)
