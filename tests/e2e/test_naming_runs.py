"""File names in real runs: rows whose ids sanitise alike, the name template and sidecars, an
unknown template column stopping the run before anything is sent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import VIDEO_SIZE, Cli, store_of
from helpers.simulators import MakeSim


def write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio", "campaign"])
        writer.writerows(rows)


async def test_rows_whose_ids_sanitise_alike_each_get_their_own_video(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    ids = ["a/b", "a?b", "a.", "a", "春", "夏", "x" * 130 + "1", "x" * 130 + "2"]
    write(tmp_path / "m.csv", [[i, f"prompt {n}", "fun", "1:1", "c"] for n, i in enumerate(ids)])
    sim = await make_sim(videos_per_task=(1, 1))
    result = await Cli(tmp_path, sim).run("run", "m.csv", "--rpm", "5000")
    assert result.code == 0, result.stderr
    out = tmp_path / "outputs" / "m"
    with store_of(tmp_path, "m") as store:
        jobs = list(store.iter_jobs())
    files = [f for j in jobs for f in j.files]
    assert len(files) == len(set(files)) == len(ids)
    for j in jobs:
        video = out / j.files[0]
        assert video.stat().st_size == VIDEO_SIZE
        assert json.loads(video.with_suffix(".json").read_text())["key"] == j.key


async def test_name_template_and_sidecars_end_to_end(make_sim: MakeSim, tmp_path: Path) -> None:
    write(
        tmp_path / "m.csv",
        [["hero-01", "a", "fun", "1:1", "Spring Sale"], ["hero-02", "b", "fun", "1:1", "Fall"]],
    )
    sim = await make_sim(videos_per_task=(1, 1))
    cli = Cli(tmp_path, sim)
    result = await cli.run("run", "m.csv", "--name-template", "{campaign}/{id}_{n}")
    assert result.code == 0, result.stderr
    out = tmp_path / "outputs" / "m" / "videos"
    assert (out / "Spring Sale" / "hero-01_1.mp4").stat().st_size == VIDEO_SIZE
    sidecar = json.loads((out / "Fall" / "hero-02_1.json").read_text(encoding="utf-8"))
    assert sidecar["key"] == "id:hero-02" and sidecar["video"] == "hero-02_1.mp4"
    assert sidecar["request"] == {"mode": "fun", "prompt": "b", "ratio": "1:1"}
    assert sidecar["task_id"] and sidecar["task_credits"] == 40 and sidecar["bytes"] == VIDEO_SIZE
    assert sidecar["columns"]["campaign"] == "Fall"
    assert sidecar["created_at"].endswith("Z") and sidecar["completed_at"].endswith("Z")


async def test_an_unknown_template_column_stops_before_anything_is_sent(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    write(tmp_path / "m.csv", [["hero-01", "a", "fun", "1:1", "Spring"]])
    sim = await make_sim()
    result = await Cli(tmp_path, sim).run("run", "m.csv", "--name-template", "{brand}/{id}")
    assert result.code == 2 and "{brand} is not a column of m.csv" in result.stderr
    assert sum(sim.stats.requests.values()) == 0
