"""Issue 12 in a run: what reaches the state after a bad download, CDN waits, a full disk.

The stage tests drive ``DownloadStage`` over a real state file and the hostile CDN with an
injected ``sleep`` (no real waiting); the CLI tests run ``batchgen run`` against the simulator's
CDN faults. None of them passes on the code before the issue.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import VIDEO_SIZE, Cli, store_of, write_manifest
from helpers.hostile_cdn import HostileCdn
from helpers.records import make_rows
from helpers.simulators import MakeSim

from batchgen.config import RetryPolicy, Settings
from batchgen.engine.download_stage import DownloadStage
from batchgen.engine.manifest_run import ManifestRun
from batchgen.models import JobStatus
from batchgen.simulator import Fault
from batchgen.state.store import StateStore

RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, jitter=0.0)


@pytest.fixture
async def cdn() -> AsyncIterator[HostileCdn]:
    server = await HostileCdn().start()
    yield server
    await server.close()


class Stage:
    """One completed row pointing at ``url``, and a download stage that records its waits."""

    def __init__(self, tmp_path: Path, url: str, time_left: float | None = None) -> None:
        self.store = StateStore.open(tmp_path / "state.sqlite")
        rows = make_rows(1)
        self.store.sync_manifest(["id", "prompt"], rows)
        key = rows[0].key
        self.store.transition(key, JobStatus.SUBMITTING)
        self.store.transition(key, JobStatus.SUBMITTED, task_id="task-1")
        self.store.transition(key, JobStatus.COMPLETED, video_urls=(url,))
        self.key = key
        self.run = ManifestRun(name="m.csv", store=self.store, out_dir=tmp_path)
        self.waits: list[float] = []
        self.time_left = time_left

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def go(self) -> JobStatus:
        async def no_status(task_id: str) -> None:
            return None

        settings = Settings.from_options(base_url="http://127.0.0.1:9", retry=RETRY)
        async with aiohttp.ClientSession() as session:
            stage = DownloadStage(
                session,
                settings,
                rng=random.Random(1),
                fresh_status=no_status,
                stopping=lambda: False,
                time_left=lambda: self.time_left,
                sleep=self.sleep,
            )
            await stage.put(self.run, self.store.get(self.key))
            await stage.close(1)
            await stage.worker()
        return self.store.get(self.key).status


# ---------------------------------------------------------------- 7. Retry-After from a CDN
@pytest.mark.parametrize("mode", ["busy429", "busy503"])
async def test_a_busy_cdn_is_waited_for_as_it_asks(
    cdn: HostileCdn, tmp_path: Path, mode: str
) -> None:
    stage = Stage(tmp_path, cdn.url(mode))
    assert await stage.go() is JobStatus.DOWNLOADED
    assert stage.waits == [20.0, 20.0]  # Retry-After: 20, twice; not a 1-2 s backoff


async def test_the_deadline_wins_over_a_cdn_wait(cdn: HostileCdn, tmp_path: Path) -> None:
    stage = Stage(tmp_path, cdn.url("busy429"), time_left=5.0)
    assert await stage.go() is JobStatus.DOWNLOAD_FAILED
    assert stage.waits == [] and cdn.seen["busy429"] == 1
    message = stage.store.get(stage.key).error_message or ""
    assert "deadline" in message and "HTTP 429" in message


async def test_an_absurd_retry_after_is_not_waited_for(cdn: HostileCdn, tmp_path: Path) -> None:
    cdn.retry_after = "86400"
    stage = Stage(tmp_path, cdn.url("busy503"))
    assert await stage.go() is JobStatus.DOWNLOAD_FAILED
    assert stage.waits == [] and "a re-run tries again" in (
        stage.store.get(stage.key).error_message or ""
    )


# ---------------------------------------------------------------- 3, 4: never "downloaded"
@pytest.mark.parametrize("mode", ["unsized-half", "html-login", "png", "json"])
async def test_a_row_is_never_downloaded_with_a_bad_body(
    cdn: HostileCdn, tmp_path: Path, mode: str
) -> None:
    stage = Stage(tmp_path, cdn.url(mode))
    assert await stage.go() is JobStatus.DOWNLOAD_FAILED
    assert not list((tmp_path / "videos").glob("*.mp4"))
    # retried (a body that added bytes counts as progress once), never accepted
    assert RETRY.max_attempts <= cdn.seen[mode] <= RETRY.max_attempts + 1


async def test_a_loopback_url_is_refused_when_the_api_is_public(
    cdn: HostileCdn, tmp_path: Path
) -> None:
    stage = Stage(tmp_path, cdn.url("ok"))
    settings = Settings.from_options(base_url="https://grokimagineapi.com", retry=RETRY)

    async def no_status(task_id: str) -> None:
        return None

    async with aiohttp.ClientSession() as session:
        downloads = DownloadStage(
            session, settings, rng=random.Random(1), fresh_status=no_status, stopping=lambda: False
        )
        await downloads.put(stage.run, stage.store.get(stage.key))
        await downloads.close(1)
        await downloads.worker()
    job = stage.store.get(stage.key)
    assert job.status is JobStatus.DOWNLOAD_FAILED and cdn.seen["ok"] == 0
    assert "non-public address 127.0.0.1" in (job.error_message or "")


# ---------------------------------------------------------------- the whole run
async def test_a_run_never_accepts_a_login_page_or_a_cut_without_length(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    # every download of row 1's video is the login page; row 2's first try is cut, unsized
    sim = await make_sim(videos_per_task=(1, 1), wrong_type=Fault(rate=1.0))
    write_manifest(tmp_path / "m.csv", 1)
    result = await Cli(tmp_path, sim).run("run", "m.csv", "--max-attempts", "2")
    assert result.code == 1, result.stderr
    with store_of(tmp_path, "m") as store:
        (job,) = list(store.iter_jobs())
    assert job.status is JobStatus.DOWNLOAD_FAILED
    message = job.error_message or ""
    assert "text/html" in message and "Login required" in message
    assert not list((tmp_path / "outputs" / "m" / "videos").glob("*.mp4"))


async def test_a_cut_without_length_is_resumed_to_the_whole_video(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(videos_per_task=(1, 1), unsized_cut=Fault(at={1}))
    write_manifest(tmp_path / "m.csv", 1)
    result = await Cli(tmp_path, sim).run("run", "m.csv")
    assert result.code == 0, result.stderr
    assert sim.stats.faults["unsized_cut"] == 1
    (video,) = (tmp_path / "outputs" / "m" / "videos").glob("*.mp4")
    assert video.stat().st_size == VIDEO_SIZE


# ---------------------------------------------------------------- 8. disk full
async def test_a_full_disk_stops_the_run_cleanly(make_sim: MakeSim, tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    sim = await make_sim(videos_per_task=(1, 1))
    write_manifest(tmp_path / "m.csv", 3)
    videos = tmp_path / "outputs" / "m" / "videos"
    videos.mkdir(parents=True)
    cli = Cli(tmp_path, sim)
    # row r1's download finds no space (see tests/helpers/full_disk/sitecustomize.py)
    cli.env["PYTHONPATH"] = str(Path(__file__).parents[1] / "helpers" / "full_disk")
    cli.env["BATCHGEN_TEST_FULL_PART"] = "id_r1_1.mp4.part"
    result = await cli.run("run", "m.csv", "--download-concurrency", "1", "--new-state")
    assert result.code == 7, result.stderr
    assert "is full" in result.stderr and str(videos) in result.stderr
    assert f"needed {VIDEO_SIZE / 1024:.1f} KB" in result.stderr
    assert "run the same command again" in result.stderr and "Traceback" not in result.stderr
    with store_of(tmp_path, "m") as store:
        assert store.get("id:r1").status is JobStatus.COMPLETED  # resumes next time
        runs = store.runs()
    assert runs[-1].exit_code == 7
    assert (tmp_path / "outputs" / "m" / "results.csv").exists()
    (log,) = (tmp_path / "outputs" / "m" / "logs").glob("run-*.log")
    assert "is full" in log.read_text(encoding="utf-8")
    assert (videos / "id_r1_1.mp4.part").exists()  # partial files are kept


def test_a_run_log_on_a_full_disk_says_so_once_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from batchgen.logs import attach_run_log, detach_run_log

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    handler = attach_run_log(tmp_path)
    assert isinstance(handler, logging.FileHandler)
    handler.setStream(open("/dev/full", "w"))  # noqa: SIM115 (the handler closes it)
    record = logging.LogRecord("batchgen", logging.WARNING, __file__, 1, "x" * 10_000, None, None)
    try:
        for _ in range(3):
            handler.handle(record)
    finally:
        detach_run_log(handler)
    err = capsys.readouterr().err
    assert err.count("cannot be written") == 1 and "Traceback" not in err
