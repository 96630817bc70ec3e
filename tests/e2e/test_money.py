"""Issue 11 against a misbehaving vendor: never pay twice, never hang, never under-report.

Each test is one observation of the issue (or a variant of its kind), run through the real
``run_batch`` (options parsed by the real CLI parser) against ``hostile_vendor.HostileVendor``
on loopback. The vendor keeps its own truth: ``vendor.tasks`` is what it created and charged.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.cli_runner import Cli
from helpers.hostile_vendor import PRICE, HostileVendor

from batchgen.app.run import run_batch
from batchgen.app.status import status_report
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import RetryPolicy, Settings
from batchgen.errors import ExitCode
from batchgen.models import JobStatus
from batchgen.providers.grokimagine import Token
from batchgen.state.store import StateStore

TOKEN = "sk-dispatch-test"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


def write_rows(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        for i in range(n):
            writer.writerow([f"r{i}", f"{path.stem} prompt {i}", "fun", "1:1"])
    return path


def settings(tmp_path: Path, vendor: HostileVendor, *args: str) -> tuple[list[Path], Settings]:
    manifest = tmp_path / "briefs.csv"
    ns = parse_args(
        ["run", str(manifest), "--out", str(tmp_path / "outputs"), "--first-poll", "0.01s", *args]
    )
    built = settings_from_args(ns, base_url=vendor.url)
    return ns.manifests, built.with_options(retry=FAST_RETRY, heartbeat=0.2)


async def run(tmp_path: Path, vendor: HostileVendor, *args: str) -> int:
    manifests, built = settings(tmp_path, vendor, *args)
    return await run_batch(manifests, built, Token(TOKEN), command="test", install_signals=False)


def store(tmp_path: Path) -> StateStore:
    return StateStore.open(tmp_path / "outputs" / "briefs" / "state.sqlite")


def summary_figures(tmp_path: Path) -> dict[str, Any]:
    """The Summary sheet of results.xlsx as {label: value}."""
    book = openpyxl.load_workbook(tmp_path / "outputs" / "briefs" / "results.xlsx")
    rows = book["Summary"].iter_rows(values_only=True)
    return {str(label): value for label, value, *_ in rows}


def statuses(tmp_path: Path) -> list[JobStatus]:
    with store(tmp_path) as s:
        return [job.status for job in s.iter_jobs()]


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


# ---------------------------------------------------------------- 1. bodies with a BOM
@pytest.mark.parametrize("mode", ["bom", "bom16"])
async def test_bodies_with_a_byte_order_mark_are_read(
    tmp_path: Path, vendor: HostileVendor, mode: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.default_post = mode
    vendor.default_status = "bom"
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert statuses(tmp_path) == [JobStatus.DOWNLOADED] * 3
    assert set(vendor.paid.values()) == {1} and len(vendor.tasks) == 3
    with store(tmp_path) as s:
        assert s.spend().charged == 3 * PRICE  # never "credits 0"


# ---------------------------------------------------------------- 1-2. ambiguous answers
@pytest.mark.parametrize(
    "mode", ["truncated", "html200", "gateway504", "gateway502", "json500", "trickle"]
)
async def test_an_answer_that_does_not_prove_nothing_was_created_is_never_resent(
    tmp_path: Path, vendor: HostileVendor, mode: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.post = ["ok", mode]  # the vendor created the task; its answer is bad
    vendor.trickle_every = 0.5
    extra = ("--max-runtime", "1s", "--grace", "1s") if mode == "trickle" else ()
    code = await run(tmp_path, vendor, *extra)
    assert code in (ExitCode.ATTENTION, ExitCode.STOPPED_EARLY)
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION  # finishes the others
    assert sorted(statuses(tmp_path)) == sorted([JobStatus.UNKNOWN] + [JobStatus.DOWNLOADED] * 2)
    assert len(vendor.tasks) == 3 and set(vendor.paid.values()) == {1}  # nothing paid twice
    with store(tmp_path) as s:
        unknown = next(s.iter_jobs([JobStatus.UNKNOWN]))
        assert "--resubmit-unknown" in (unknown.error_message or "")
        assert s.spend().possible == PRICE and s.spend().charged == 2 * PRICE
    figures = summary_figures(tmp_path)  # the results sheet says so too
    assert figures["Credits possibly charged (unknown submits)"] == PRICE
    assert figures["Credits charged"] == 2 * PRICE
    # a re-run leaves it alone; --resubmit-unknown sends it (the user accepted the risk)
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION
    assert len(vendor.tasks) == 3
    assert await run(tmp_path, vendor, "--resubmit-unknown") == ExitCode.OK
    assert len(vendor.tasks) == 4
    with store(tmp_path) as s:  # the earlier maybe-charge stays on the bill
        assert s.spend().possible == PRICE and s.spend().charged == 3 * PRICE


async def test_an_answer_with_a_task_id_is_recorded_whatever_its_code(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    vendor.post = ["code500_id", "code500_id"]
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert len(vendor.tasks) == 2 and set(vendor.paid.values()) == {1}


@pytest.mark.parametrize("mode", ["ratelimit", "reject"])
async def test_a_vendor_4xx_proves_nothing_was_created(
    tmp_path: Path, vendor: HostileVendor, mode: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    vendor.post = [mode]
    vendor.retry_after = "0"
    code = await run(tmp_path, vendor)
    if mode == "ratelimit":  # sent again after the pause: still exactly one task per row
        assert code == ExitCode.OK and len(vendor.tasks) == 2
    else:
        assert code == ExitCode.ATTENTION and len(vendor.tasks) == 1
        assert JobStatus.REJECTED in statuses(tmp_path)


# ---------------------------------------------------------------- 3. the deadline wins
FAR = "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize(("retry_after", "reset"), [("86400", None), (None, "inf"), (FAR, None)])
async def test_a_pause_that_outlives_the_deadline_ends_the_run_at_once(
    tmp_path: Path,
    vendor: HostileVendor,
    caplog: pytest.LogCaptureFixture,
    retry_after: str | None,
    reset: str | None,
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.default_post = "ratelimit"
    vendor.retry_after, vendor.reset = retry_after, reset
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        code = await asyncio.wait_for(
            run(tmp_path, vendor, "--max-runtime", "10s", "--grace", "5s"), 30
        )
    assert code == ExitCode.STOPPED_EARLY
    assert time.monotonic() - started < 10  # it did not even wait for the deadline
    assert "asked to hold all requests" in caplog.text
    assert statuses(tmp_path) == [JobStatus.PENDING] * 3 and not vendor.tasks


async def test_a_trickling_status_answer_cannot_hold_the_run_past_deadline_and_grace(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    vendor.default_status = "trickle"
    vendor.trickle_every = 5.0
    started = time.monotonic()
    code = await asyncio.wait_for(run(tmp_path, vendor, "--max-runtime", "1s", "--grace", "1s"), 30)
    assert time.monotonic() - started < 6
    assert code == ExitCode.STOPPED_EARLY
    assert statuses(tmp_path) == [JobStatus.SUBMITTED] * 2  # resumable: polled next run
    with store(tmp_path) as s:
        assert s.spend().committed == 2 * PRICE  # in flight, not "credits 0"
    vendor.default_status = "ok"
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert len(vendor.tasks) == 2


async def test_a_trickling_video_cannot_hold_the_run_past_deadline_and_grace(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 1)
    vendor.video_mode = "trickle"
    started = time.monotonic()
    code = await asyncio.wait_for(run(tmp_path, vendor, "--max-runtime", "1s", "--grace", "1s"), 30)
    assert time.monotonic() - started < 6
    assert code == ExitCode.STOPPED_EARLY
    assert statuses(tmp_path) == [JobStatus.COMPLETED]  # the next run downloads it
    vendor.video_mode = "ok"
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert len(vendor.tasks) == 1


async def test_after_ctrl_c_the_summary_and_status_show_what_is_committed(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.default_status = "running"
    cli = Cli(tmp_path, vendor, token=TOKEN)  # a real process, a real SIGINT
    proc = await cli.start("run", "briefs.csv")
    await vendor.polled.wait()
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130
    assert "committed in flight 120" in err.decode()
    status = await cli.run("status", "briefs.csv")
    assert "committed" in status.stdout and "120" in status.stdout


async def test_retry_after_on_a_503_is_honoured(tmp_path: Path, vendor: HostileVendor) -> None:
    write_rows(tmp_path / "briefs.csv", 1)
    vendor.status = ["busy503"]
    vendor.retry_after = "1"
    started = time.monotonic()
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert time.monotonic() - started >= 1.0  # waited as asked, not five quick tries
    assert vendor.requests["status"] == 2 and len(vendor.tasks) == 1


# ---------------------------------------------------------------- 4. outages
async def vanish_after_the_first_poll(vendor: HostileVendor) -> None:
    """Wait (on the vendor's own count, not a guess) for a poll, then take the host away."""
    await vendor.polled.wait()
    await vendor.go_away()


async def test_the_heartbeat_says_the_api_is_not_answering(
    tmp_path: Path, vendor: HostileVendor, caplog: pytest.LogCaptureFixture
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.default_status = "running"
    gone = asyncio.ensure_future(vanish_after_the_first_poll(vendor))
    with caplog.at_level(logging.INFO, logger="batchgen"):
        code = await asyncio.wait_for(run(tmp_path, vendor, "--outage-timeout", "2s"), 30)
    await gone
    assert code == ExitCode.OUTAGE
    beats = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    failing = [line for line in beats if "no API request has succeeded" in line]
    assert failing, beats
    assert all("ETA unknown" in line and "127.0.0.1" in line for line in failing)


async def test_a_vendor_gone_mid_run_ends_it_with_exit_6(
    tmp_path: Path, vendor: HostileVendor, caplog: pytest.LogCaptureFixture
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.default_status = "running"
    gone = asyncio.ensure_future(vanish_after_the_first_poll(vendor))
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        code = await asyncio.wait_for(run(tmp_path, vendor, "--outage-timeout", "1s"), 30)
    await gone
    assert code == ExitCode.OUTAGE
    assert "could not be reached" in caplog.text and "127.0.0.1" in caplog.text
    assert set(statuses(tmp_path)) <= {JobStatus.SUBMITTED, JobStatus.RUNNING}  # resumable
    assert "failed" not in caplog.text.lower().split("stopping")[-1]
    await vendor.come_back()
    vendor.default_status = "ok"
    assert await run(tmp_path, vendor) == ExitCode.OK
    assert len(vendor.tasks) == 3


@pytest.mark.parametrize("url", ["dead-port", "https://batchgen-test.invalid"])
async def test_an_api_that_never_answers_is_reported_quickly_and_touches_no_row(
    tmp_path: Path, vendor: HostileVendor, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    await vendor.go_away()
    manifests, built = settings(tmp_path, vendor, "--outage-timeout", "2s")
    if url != "dead-port":
        built = built.with_options(base_url=url)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        code = await asyncio.wait_for(
            run_batch(manifests, built, Token(TOKEN), command="t", install_signals=False), 40
        )
    assert code == ExitCode.OUTAGE and time.monotonic() - started < 30
    assert "no request of this run ever got through" in caplog.text
    assert "ssl:default" not in caplog.text  # aiohttp's TLS label is noise for any URL
    with store(tmp_path) as s:
        assert [(j.status, j.attempts) for j in s.iter_jobs()] == [(JobStatus.PENDING, 0)] * 3


# ---------------------------------------------------------------- 5. tasks the vendor forgot
@pytest.mark.parametrize("mode", ["unknown_task", "not_found"])
async def test_a_task_the_vendor_does_not_know_is_lost_listed_and_resubmittable(
    tmp_path: Path, vendor: HostileVendor, mode: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 2)
    vendor.status = [mode]
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION
    assert sorted(statuses(tmp_path)) == [JobStatus.DOWNLOADED, JobStatus.LOST]
    text, code = status_report(
        [tmp_path / "briefs.csv"], Settings.from_options(out_dir=tmp_path / "outputs")
    )
    assert code == 1 and "lost" in text and "does not know task" in text
    requests = vendor.requests["status"]
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION  # not polled again for ever
    assert vendor.requests["status"] == requests
    assert await run(tmp_path, vendor, "--resubmit-unknown") == ExitCode.OK
    assert len(vendor.tasks) == 3


# ---------------------------------------------------------------- 6. budgets hold
@pytest.mark.parametrize("scope", ["run", "total"])
async def test_the_budget_counts_unknown_submits_as_possibly_charged(
    tmp_path: Path, vendor: HostileVendor, scope: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 5)
    vendor.default_post = "gateway504"  # every answer lost after the task was created
    args = ("--budget-scope", scope, "--max-credits", "80")
    assert await run(tmp_path, vendor, *args) == ExitCode.STOPPED_EARLY
    assert vendor.charged <= 80 and len(vendor.tasks) == 2
    if scope == "total":  # a second run adds nothing: the unknown ones count
        assert await run(tmp_path, vendor, *args) == ExitCode.STOPPED_EARLY
        assert vendor.charged <= 80


@pytest.mark.parametrize("value", ["0", "-1000", "1e30", "1e400", '"abc"', "drop"])
async def test_a_lying_consumed_credits_never_lowers_the_spend(
    tmp_path: Path, vendor: HostileVendor, value: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 5)
    mode = "drop:consumed_credits" if value == "drop" else f"field:consumed_credits={value}"
    vendor.default_status = mode
    args = ("--budget-scope", "total", "--max-credits", "80")
    assert await run(tmp_path, vendor, *args) == ExitCode.STOPPED_EARLY
    assert await run(tmp_path, vendor, *args) == ExitCode.STOPPED_EARLY
    assert vendor.charged <= 80
    with store(tmp_path) as s:
        assert s.spend().charged == vendor.charged == 80
    assert summary_figures(tmp_path)["Cost (USD)"] == 0.8
    text, _ = status_report(
        [tmp_path / "briefs.csv"], Settings.from_options(out_dir=tmp_path / "outputs")
    )
    assert "charged" in text and "$-" not in text


async def test_the_notice_shows_the_three_spend_figures(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.post = ["ok", "gateway504"]
    vendor.status = ["running"]
    code = await run(tmp_path, vendor, "--notify-url", f"{vendor.url}/notify")
    assert code == ExitCode.ATTENTION
    (notice,) = vendor.notices
    assert notice["credits_charged"] == 2 * PRICE
    assert notice["credits_possibly_charged"] == PRICE
    assert notice["credits_committed"] == 0
    assert "possibly charged 40" in notice["text"]


# ---------------------------------------------------------------- 7. task outcomes
async def test_completed_with_a_message_is_a_success_with_a_note(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    write_rows(tmp_path / "briefs.csv", 1)
    vendor.status = ["completed_message"]
    assert await run(tmp_path, vendor) == ExitCode.OK
    with store(tmp_path) as s:
        job = next(s.iter_jobs())
    assert job.status is JobStatus.DOWNLOADED and job.error_kind == "note"
    assert "Network error" in (job.error_message or "")
    assert len(vendor.tasks) == 1


@pytest.mark.parametrize("mode", ["completed_empty", "field:response=null"])
async def test_completed_without_a_video_needs_a_person_and_is_not_resubmitted(
    tmp_path: Path, vendor: HostileVendor, mode: str
) -> None:
    write_rows(tmp_path / "briefs.csv", 1)
    vendor.default_status = mode
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION
    assert await run(tmp_path, vendor) == ExitCode.ATTENTION
    assert len(vendor.tasks) == 1
    with store(tmp_path) as s:
        job = next(s.iter_jobs())
    assert job.status is JobStatus.FAILED and job.error_kind == "permanent"
    assert "without any video" in (job.error_message or "")


# ---------------------------------------------------------------- issue 12: bad fields
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("field:response=5", JobStatus.FAILED),
        ('field:response={"a": 1}', JobStatus.FAILED),
        ('field:status=["completed"]', JobStatus.FAILED),
        ("many_urls", JobStatus.FAILED),
        ("huge", JobStatus.FAILED),
        ('field:request="abc"', JobStatus.DOWNLOADED),
        ("field:created_at=5", JobStatus.DOWNLOADED),
        ("header:X-RateLimit-Remaining=inf", JobStatus.DOWNLOADED),
        ("header:X-RateLimit-Reset=1e400", JobStatus.DOWNLOADED),
    ],
)
async def test_one_bad_field_is_confined_to_its_row(
    tmp_path: Path, vendor: HostileVendor, mode: str, expected: JobStatus
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    vendor.status = [mode]
    assert await run(tmp_path, vendor) == (
        ExitCode.OK if expected is JobStatus.DOWNLOADED else ExitCode.ATTENTION
    )
    found = statuses(tmp_path)
    assert found.count(JobStatus.DOWNLOADED) == (3 if expected is JobStatus.DOWNLOADED else 2)
    if expected is JobStatus.FAILED:
        with store(tmp_path) as s:
            failed = next(s.iter_jobs([JobStatus.FAILED]))
        assert (failed.error_message or "").startswith("protocol error")
    assert len(vendor.tasks) == 3


async def test_a_lone_url_string_is_one_video(tmp_path: Path, vendor: HostileVendor) -> None:
    write_rows(tmp_path / "briefs.csv", 1)
    vendor.default_status = "lone_url"
    assert await run(tmp_path, vendor) == ExitCode.OK
    with store(tmp_path) as s:
        job = next(s.iter_jobs())
    assert len(job.video_urls) == 1 and len(job.files) == 1
