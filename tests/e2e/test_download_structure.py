"""Issue 23 item 1, whole runs: a CDN cache served half of each MP4 with a ``Content-Length``
that matched the half, and every row was ``downloaded`` and never fetched again. Now a cut copy
is fetched again while the link lives and is never ``downloaded``; a cut file left at a video's
final name is downloaded again. The checks: ``tests/unit/engine/test_video_structure.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS, VIDEO_SIZE, Cli, store_of, write_manifest
from helpers.simulators import MakeSim

from batchgen.models import JobStatus
from batchgen.simulator import Fault
from batchgen.simulator.files import video_bytes

__all__ = ["SIM_DEFAULTS"]  # the make_sim fixture reads it

VIDEO = video_bytes()


# ---------------------------------------------------------------- a whole run
async def test_a_run_fetches_a_cut_copy_again_and_every_row_ends_whole(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(videos_per_task=(1, 1), short_copy=Fault(at={1, 3}))
    write_manifest(tmp_path / "m.csv", 3)
    result = await Cli(tmp_path, sim).run("run", "m.csv")
    assert result.code == 0, result.stderr
    assert sim.stats.faults["short_copy"] == 2
    assert "not a whole video" not in result.stderr  # a retry within the run, logged at debug
    videos = sorted((tmp_path / "outputs" / "m" / "videos").glob("*.mp4"))
    assert len(videos) == 3 and all(v.read_bytes() == VIDEO for v in videos)
    with store_of(tmp_path, "m") as store:
        assert all(job.file_sizes == (VIDEO_SIZE,) for job in store.iter_jobs())


async def test_a_cdn_that_only_has_the_cut_copy_leaves_the_row_not_downloaded(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(videos_per_task=(1, 1), short_copy=Fault(rate=1.0))
    write_manifest(tmp_path / "m.csv", 1)
    result = await Cli(tmp_path, sim).run("run", "m.csv", "--max-attempts", "2")
    assert result.code == 1, result.stderr
    assert "not a whole video" in result.stderr
    with store_of(tmp_path, "m") as store:
        (job,) = store.iter_jobs()
        assert job.status is JobStatus.DOWNLOAD_FAILED and "not a whole video" in (
            job.error_message or ""
        )
    assert not list((tmp_path / "outputs" / "m" / "videos").glob("*.mp4"))


async def test_a_cut_file_at_a_videos_final_name_is_downloaded_again(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    """A file an earlier run left under its final name (an older version kept a CDN's cut
    copy) is not taken as finished: it is checked, deleted, and fetched again."""
    sim = await make_sim(videos_per_task=(1, 1))
    write_manifest(tmp_path / "m.csv", 1)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "m.csv")).code == 0
    out = tmp_path / "outputs" / "m"
    (video,) = (out / "videos").glob("*.mp4")
    video.write_bytes(VIDEO[: len(VIDEO) // 2])
    with sqlite3.connect(out / "state.sqlite") as conn:  # as if the run stopped before its commit
        conn.execute("UPDATE jobs SET status = 'completed'")
    result = await cli.run("run", "m.csv")
    assert result.code == 0, result.stderr
    assert "is not a whole video" in result.stderr and video.read_bytes() == VIDEO
