"""Issue 23 item 1: a video is verified by its structure every time, whatever the headers say.

A CDN cache served half of each MP4 with a ``Content-Length`` that matched the half: every row
was ``downloaded`` and never fetched again. Variants: a cut inside ``mdat``, a file with no
``moov``, a box whose size runs past the end, an ``mdat`` "to the end of the file" whose index
points past the end, a WebM whose Segment is cut, and a cut file left at a video's final name.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cli_harness import SIM_DEFAULTS, VIDEO_SIZE, Cli, store_of, write_manifest
from conftest import MakeSim
from hostile_cdn import WEBM, HostileCdn

from batchgen.engine.downloads.container import video_problem
from batchgen.engine.downloads.fetch import DownloadPolicy, download
from batchgen.errors import DownloadError
from batchgen.models import JobStatus
from batchgen.simulator import Fault
from batchgen.simulator.files import video_bytes

__all__ = ["SIM_DEFAULTS"]  # the make_sim fixture reads it

LOCAL = DownloadPolicy(allow_private=True)
VIDEO = video_bytes()


@pytest.fixture
async def cdn() -> AsyncIterator[HostileCdn]:
    server = await HostileCdn().start()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def _problem(tmp_path: Path, body: bytes) -> str | None:
    path = tmp_path / "v.bin"
    path.write_bytes(body)
    return video_problem(path)


# ---------------------------------------------------------------- the structure, unit by unit
def test_a_whole_mp4_and_a_whole_webm_prove_themselves(tmp_path: Path) -> None:
    assert _problem(tmp_path, VIDEO) is None
    assert _problem(tmp_path, WEBM) is None


@pytest.mark.parametrize(
    ("cut", "said"),
    [
        (len(VIDEO) // 2, "'mdat' runs past the end"),  # inside mdat
        (len(VIDEO) - 1, "'mdat' runs past the end"),  # one byte short
        (876, "no 'mdat'"),  # exactly between boxes: ftyp + moov only
        (500, "'moov' runs past the end"),  # inside moov
        (20, "'ftyp' runs past the end"),
        (36, "box header is cut"),
    ],
)
def test_a_cut_mp4_is_named_for_what_is_missing(tmp_path: Path, cut: int, said: str) -> None:
    problem = _problem(tmp_path, VIDEO[:cut])
    assert problem is not None and said in problem


def test_an_mp4_without_moov_is_not_whole(tmp_path: Path) -> None:
    body = VIDEO[:32] + VIDEO[876:]  # ftyp, free, mdat
    assert "no 'moov'" in (_problem(tmp_path, body) or "")


def test_an_mdat_to_the_end_of_the_file_is_checked_against_the_index(tmp_path: Path) -> None:
    video = bytearray(VIDEO)
    struct.pack_into(">I", video, video.index(b"mdat") - 4, 0)  # size 0: "to the end"
    assert _problem(tmp_path, bytes(video)) is None  # the index fits: whole
    cut = _problem(tmp_path, bytes(video[:-10]))
    assert cut is not None and "past the end of the file" in cut


def test_a_webm_whose_segment_is_cut_is_not_whole(tmp_path: Path) -> None:
    assert "Segment claims" in (_problem(tmp_path, WEBM[:-5]) or "")
    assert _problem(tmp_path, WEBM[:10]) is not None  # inside the EBML header


# ---------------------------------------------------------------- a length that matches a cut
async def test_a_half_copy_with_a_matching_length_is_never_accepted(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    for _ in range(2):
        with pytest.raises(DownloadError, match=r"not a whole video.*'mdat' runs past the end"):
            await download(session, cdn.url("cached-half"), dest, policy=LOCAL)
        # deleted: the next attempt starts over rather than trusting the cut copy's length
        assert not dest.exists() and not (tmp_path / "v.mp4.part").exists()
    assert "Range" not in cdn.headers[-1]


async def test_a_half_copy_is_fetched_again_and_then_kept_whole(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadError, match="fetched again from the start"):
        await download(session, cdn.url("cached-half-once"), dest, policy=LOCAL)
    done = await download(session, cdn.url("cached-half-once"), dest, policy=LOCAL)
    assert dest.read_bytes() == VIDEO and done.size == len(VIDEO)


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("no-moov", "no 'moov'"),
        ("box-past-end", "'mdat' runs past the end"),
        ("index-past-end", "past the end of the file"),
    ],
)
async def test_a_broken_file_with_a_matching_length_is_never_accepted(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path, mode: str, said: str
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadError, match=said):
        await download(session, cdn.url(mode), dest, policy=LOCAL)
    assert not dest.exists() and not (tmp_path / "v.mp4.part").exists()


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
