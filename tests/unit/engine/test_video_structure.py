"""Issue 23 item 1: a video is verified by its structure every time, whatever the headers say
(:mod:`batchgen.engine.downloads.container`, against a hostile CDN). The runs are in
``tests/e2e/test_download_structure.py``."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from helpers.hostile_cdn import WEBM, HostileCdn

from batchgen.engine.downloads.container import video_problem
from batchgen.engine.downloads.fetch import DownloadPolicy, download
from batchgen.errors import DownloadError
from batchgen.simulator.files import video_bytes

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
