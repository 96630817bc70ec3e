"""Issue 12: a video is verified before it is called downloaded; limits; public addresses only.

Each test drives ``download()`` (or the download stage) against the hostile CDN of
``tests/hostile_cdn.py``; none of them passes on the code before the issue.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from helpers.hostile_cdn import WEBM, HostileCdn, named_video

from batchgen.config import Settings
from batchgen.engine.download_stage import policy_for
from batchgen.engine.downloads import fetch
from batchgen.engine.downloads.addresses import cdn_connector, host_is_private, is_public
from batchgen.engine.downloads.fetch import (
    CdnBusyError,
    DownloadPolicy,
    NotVideoError,
    RefusedError,
    download,
)
from batchgen.errors import DiskFullError, DownloadError
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


# ---------------------------------------------------------------- 2. encodings
@pytest.mark.parametrize("mode", ["gzip", "deflate", "br"])
async def test_an_encoded_video_is_decoded_and_checked_against_the_encoded_length(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path, mode: str
) -> None:
    dest = tmp_path / "v.mp4"
    done = await download(session, cdn.url(mode), dest, policy=LOCAL)
    assert dest.read_bytes() == VIDEO and done.size == len(VIDEO)
    assert cdn.headers[-1]["Accept-Encoding"] == "identity"  # asked for, then ignored


async def test_a_cut_encoded_video_is_never_accepted(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadError, match="cut short"):
        await download(session, cdn.url("gzip-cut"), dest, policy=LOCAL)
    assert not dest.exists() and not (tmp_path / "v.mp4.part").exists()  # starts over


# ---------------------------------------------------------------- 3. no stated length
async def test_a_body_without_length_cut_at_half_is_never_accepted(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    for _ in range(3):
        with pytest.raises(DownloadError, match="do not prove a whole video"):
            await download(session, cdn.url("unsized-half"), dest, policy=LOCAL)
    assert not dest.exists()


async def test_a_cut_without_length_is_completed_by_a_range_request(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadError, match="do not prove"):
        await download(session, cdn.url("unsized-then-range"), dest, policy=LOCAL)
    await download(session, cdn.url("unsized-then-range"), dest, policy=LOCAL)
    assert dest.read_bytes() == VIDEO
    assert cdn.headers[-1]["Range"] == f"bytes={len(VIDEO) // 2}-"


async def test_a_whole_mp4_without_length_proves_itself(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    await download(session, cdn.url("unsized-whole"), tmp_path / "v.mp4", policy=LOCAL)
    assert (tmp_path / "v.mp4").read_bytes() == VIDEO and cdn.seen["unsized-whole"] == 1


async def test_a_webm_cut_without_length_is_completed_by_a_range_request(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    dest = tmp_path / "v.webm"
    with pytest.raises(DownloadError, match="do not prove"):
        await download(session, cdn.url("webm-unsized"), dest, policy=LOCAL)
    await download(session, cdn.url("webm-unsized"), dest, policy=LOCAL)
    assert dest.read_bytes() == WEBM
    assert cdn.headers[-1]["Range"] == f"bytes={len(WEBM) // 2}-"


# ---------------------------------------------------------------- 4. not a video
@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("html-login", "Content-Type text/html"),
        ("html-as-video", "an HTML page"),
        ("json", "Content-Type application/json"),
        ("text", "Content-Type text/plain"),
        ("png", "a PNG image"),
    ],
)
async def test_a_body_that_is_not_a_video_is_refused_with_what_it_was(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path, mode: str, said: str
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(NotVideoError, match=said) as caught:
        await download(session, cdn.url(mode), dest, policy=LOCAL)
    assert "127.0.0.1" in str(caught.value)  # names the host
    assert not dest.exists() and not (tmp_path / "v.mp4.part").exists()


async def test_the_login_page_text_is_quoted_in_the_message(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(NotVideoError, match="Login required"):
        await download(session, cdn.url("html-login"), tmp_path / "v.mp4", policy=LOCAL)


# ---------------------------------------------------------------- 5. limits
async def test_an_announced_10_gb_video_is_refused_before_writing(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(RefusedError, match=r"announced 10\.00 GB.*--max-video-size"):
        await download(session, cdn.url("huge"), tmp_path / "v.mp4", policy=LOCAL)
    assert list(tmp_path.iterdir()) == []


async def test_an_endless_body_stops_at_the_limit_and_leaves_no_part(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    policy = DownloadPolicy(allow_private=True, max_bytes=2 * 1024**2)
    with pytest.raises(RefusedError, match=r"more than the --max-video-size limit of 2\.0 MB"):
        await download(session, cdn.url("endless"), tmp_path / "v.mp4", policy=policy)
    assert list(tmp_path.iterdir()) == []


async def test_a_video_just_under_the_limit_is_fine(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    policy = DownloadPolicy(allow_private=True, max_bytes=len(VIDEO))
    await download(session, cdn.url("ok"), tmp_path / "v.mp4", policy=policy)
    small = DownloadPolicy(allow_private=True, max_bytes=len(VIDEO) - 1)
    with pytest.raises(RefusedError):
        await download(session, cdn.url("ok"), tmp_path / "w.mp4", policy=small)


# ---------------------------------------------------------------- 4. public addresses only
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v.mp4",
        "http://10.1.2.3/v.mp4",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/v.mp4",
        "http://[::ffff:10.0.0.1]/v.mp4",
        "file:///etc/passwd",
        "ftp://cdn.example/v.mp4",
    ],
)
async def test_urls_that_are_not_public_http_are_never_fetched(
    session: aiohttp.ClientSession, tmp_path: Path, url: str
) -> None:
    with pytest.raises(DownloadError, match="not fetched"):
        await download(session, url, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_a_host_name_that_resolves_to_loopback_is_refused(
    cdn: HostileCdn, tmp_path: Path
) -> None:
    url = cdn.url("ok").replace("127.0.0.1", "localhost")
    async with aiohttp.ClientSession(connector=cdn_connector(allow_private=False)) as guarded:
        with pytest.raises(RefusedError, match="not a public address"):
            await download(guarded, url, tmp_path / "v.mp4")
    assert cdn.seen["ok"] == 0


async def test_a_redirect_to_a_private_address_is_refused(
    cdn: HostileCdn,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from batchgen.engine.downloads import addresses

    # the test server stands in for a public CDN: its own address counts as public here
    real = addresses.is_public
    monkeypatch.setattr(addresses, "is_public", lambda ip: ip == "127.0.0.1" or real(ip))
    policy = DownloadPolicy(allow_private=False)
    with pytest.raises(DownloadError, match=r"10\.255\.255\.1"):
        await download(session, cdn.url("redirect-private"), tmp_path / "v.mp4", policy=policy)
    with pytest.raises(DownloadError, match="redirects"):
        await download(session, cdn.url("redirect-loop"), tmp_path / "v.mp4", policy=LOCAL)


def test_private_addresses_are_allowed_for_a_private_api_or_by_option() -> None:
    assert not policy_for(
        Settings.from_options(base_url="https://grokimagineapi.com")
    ).allow_private
    assert policy_for(Settings.from_options(base_url="http://127.0.0.1:8080")).allow_private
    assert policy_for(Settings.from_options(base_url="http://localhost:8080")).allow_private
    assert policy_for(Settings.from_options(base_url="http://10.0.0.5")).allow_private
    assert policy_for(Settings.from_options(allow_private_urls=True)).allow_private
    assert host_is_private("http://[fd00::1]/") and not host_is_private("https://8.8.8.8/")
    assert is_public("8.8.8.8") and not is_public("100.64.0.1") and not is_public("224.0.0.1")


# ---------------------------------------------------------------- 7. CDN busy
@pytest.mark.parametrize(("mode", "status"), [("busy429", 429), ("busy503", 503)])
async def test_a_busy_cdn_says_how_long_to_wait(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path, mode: str, status: int
) -> None:
    with pytest.raises(CdnBusyError, match=f"HTTP {status}") as caught:
        await download(session, cdn.url(mode), tmp_path / "v.mp4", policy=LOCAL)
    assert caught.value.retry_after == 20


# ---------------------------------------------------------------- 8. disk full
async def test_a_full_disk_is_a_disk_full_error_naming_the_folder(
    cdn: HostileCdn,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    # every write: ENOSPC, a real one (a link to /dev/full would be refused)
    monkeypatch.setattr(fetch, "open_own", lambda path, append: open("/dev/full", "ab"))  # noqa: SIM115
    with pytest.raises(DiskFullError) as caught:
        await download(session, cdn.url("ok"), tmp_path / "v.mp4", policy=LOCAL)
    message = str(caught.value)
    assert str(tmp_path) in message and "run the same command again" in message
    assert f"needed {len(VIDEO) / 1024:.1f} KB" in message
    assert caught.value.exit_code == 7


async def test_a_video_that_cannot_fit_stops_before_writing(
    cdn: HostileCdn,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from batchgen.engine.downloads import disk as module

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(module.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    with pytest.raises(DiskFullError, match=r"2\.2 KB more; 1\.0 KB free"):
        await download(session, cdn.url("ok"), tmp_path / "v.mp4", policy=LOCAL)
    assert not (tmp_path / "v.mp4.part").exists()


# ---------------------------------------------------------------- the plain case still works
async def test_a_named_video_arrives_whole(
    cdn: HostileCdn, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    seen: list[int] = []
    dest = tmp_path / "a.mp4"
    done = await download(
        session, cdn.url("named", "a.mp4"), dest, policy=LOCAL, before_rename=seen.append
    )
    assert dest.read_bytes() == named_video("a.mp4") and seen == [done.size]
