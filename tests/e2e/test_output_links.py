"""Issue 23 item 8: the output folder is batchgen's alone; nothing is written through a link.

Seen: a symlink planted at ``videos/<name>.mp4.part`` was followed on resume and a file outside
the folder was appended with video bytes (exit 0). Variants: a link at the video's final name
(to a real video elsewhere), a ``videos`` folder that is a link, a link at a sidecar and at the
results sheet, and the state file itself.
"""

from __future__ import annotations

from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS, Cli, store_of, write_manifest
from helpers.simulators import MakeSim

from batchgen.models import JobStatus
from batchgen.simulator.files import video_bytes

__all__ = ["SIM_DEFAULTS"]  # the make_sim fixture reads it

VIDEO = video_bytes()
PRECIOUS = b"someone else's file\n"


def _outside(tmp_path: Path, content: bytes = PRECIOUS) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    target = elsewhere / "precious.txt"
    target.write_bytes(content)
    return target


# ---------------------------------------------------------------- a run
async def _run(make_sim: MakeSim, tmp_path: Path, *args: str) -> tuple[int, str]:
    sim = await make_sim(videos_per_task=(1, 1))
    result = await Cli(tmp_path, sim).run("run", "m.csv", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.code, result.stderr


def _videos(tmp_path: Path) -> Path:
    videos = tmp_path / "outputs" / "m" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    return videos


async def test_a_link_planted_at_a_part_file_is_refused_not_followed(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    write_manifest(tmp_path / "m.csv", 2)
    target = _outside(tmp_path)
    (_videos(tmp_path) / "id_r0_1.mp4.part").symlink_to(target)  # a resume would append
    code, stderr = await _run(make_sim, tmp_path, "--new-state")
    assert code == 1
    assert "id_r0_1.mp4.part is a symbolic link" in stderr
    assert target.read_bytes() == PRECIOUS  # nothing appended outside the folder
    with store_of(tmp_path, "m") as store:
        assert store.get("id:r0").status is JobStatus.DOWNLOAD_FAILED
        assert store.get("id:r1").status is JobStatus.DOWNLOADED  # one bad row stops no other


async def test_a_link_at_a_videos_final_name_is_not_taken_as_its_video(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    write_manifest(tmp_path / "m.csv", 1)
    target = _outside(tmp_path, VIDEO)  # a real video, elsewhere
    (_videos(tmp_path) / "id_r0_1.mp4").symlink_to(target)
    code, stderr = await _run(make_sim, tmp_path, "--new-state")
    assert code == 1 and "id_r0_1.mp4 is a symbolic link" in stderr
    assert target.read_bytes() == VIDEO
    with store_of(tmp_path, "m") as store:
        assert store.get("id:r0").status is JobStatus.DOWNLOAD_FAILED


async def test_a_videos_folder_that_is_a_link_is_refused(make_sim: MakeSim, tmp_path: Path) -> None:
    write_manifest(tmp_path / "m.csv", 1)
    elsewhere = _outside(tmp_path).parent
    (tmp_path / "outputs" / "m").mkdir(parents=True)
    (tmp_path / "outputs" / "m" / "videos").symlink_to(elsewhere)
    code, stderr = await _run(make_sim, tmp_path, "--new-state")
    assert code == 1 and "leads outside the output folder" in stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious.txt"]


async def test_links_at_a_sidecar_and_the_results_are_refused(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    write_manifest(tmp_path / "m.csv", 1)
    sidecar_target = _outside(tmp_path)
    results_target = sidecar_target.with_name("results.csv")
    results_target.write_bytes(PRECIOUS)
    (_videos(tmp_path) / "id_r0_1.json").symlink_to(sidecar_target)
    (tmp_path / "outputs" / "m" / "results.csv").symlink_to(results_target)
    code, stderr = await _run(make_sim, tmp_path, "--new-state")
    assert code == 1
    assert "id_r0_1.json is a symbolic link" in stderr
    assert "results.csv is a symbolic link" in stderr
    assert sidecar_target.read_bytes() == PRECIOUS and results_target.read_bytes() == PRECIOUS
    assert not (_videos(tmp_path) / "id_r0_1.mp4").exists()  # no video without its sidecar
