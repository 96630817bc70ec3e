"""The dispatcher end to end against the simulator: throttle, faults, exactly-once, downloads."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.records import StubRow, make_rows
from helpers.simulators import SimulatorFactory

from batchgen.config import RetryPolicy, Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun, StopReason
from batchgen.engine.pacing.throttle import Throttle
from batchgen.models import AttemptKind, AttemptOutcome, ErrorKind, JobSpec, JobStatus
from batchgen.providers.grokimagine import ApiClient, Token
from batchgen.simulator import Fault, SimConfig, Simulator
from batchgen.simulator.files import video_bytes
from batchgen.state.store import StateStore

TOKEN = "sk-dispatch-test"
VIDEO_SIZE = len(video_bytes())
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, jitter=0.5)


MakeSim = Callable[..., Awaitable[Simulator]]
SIM_DEFAULTS: dict[str, Any] = {
    "tokens": frozenset({TOKEN}),
    "time_scale": 0.01,
    "latency_median": 10.0,  # 0.1 s once scaled
    "seed": 7,
    "rpm": 100_000,
}


@pytest.fixture
def make_sim(simulator_factory: SimulatorFactory) -> MakeSim:
    async def make(**options: Any) -> Simulator:
        return await simulator_factory(SimConfig(**(SIM_DEFAULTS | options)))

    return make


def settings_for(sim: Simulator, **overrides: Any) -> Settings:
    base = Settings.from_options(
        base_url=sim.url,
        rpm=sim.config.rpm,
        retry=FAST_RETRY,
        first_poll=0.02,
        download_concurrency=4,
    )
    return base.with_options(**overrides)


async def dispatch(
    stores: Iterable[tuple[StateStore, Path]],
    settings: Settings,
    *,
    window: float = 60.0,
    limit: int | None = None,
) -> Dispatcher:
    rpm = limit or settings.api.rpm or 100
    throttle = Throttle(rpm, window=window, margin=settings.api.safety_margin)
    runs = [ManifestRun(name=p.name, store=s, out_dir=p) for s, p in stores]
    async with (
        ApiClient(
            settings.api.base_url,
            Token(TOKEN),
            timeouts=settings.api.timeouts,
            on_response=throttle.observe,
        ) as api,
        aiohttp.ClientSession() as cdn,
    ):
        dispatcher = Dispatcher(runs, api=api, throttle=throttle, cdn=cdn, settings=settings)
        await dispatcher.run()
    return dispatcher


def open_store(tmp_path: Path, name: str, rows: list[StubRow]) -> tuple[StateStore, Path]:
    out = tmp_path / name
    store = StateStore.open(out / "state.sqlite")
    store.sync_manifest(["id", "prompt"], rows)
    return store, out


def assert_all_downloaded(store: StateStore, out: Path, n: int) -> None:
    jobs = list(store.iter_jobs())
    assert [j.status for j in jobs] == [JobStatus.DOWNLOADED] * n, [
        (j.row, j.status, j.error_message) for j in jobs if j.status is not JobStatus.DOWNLOADED
    ]
    for job in jobs:
        assert job.files and len(job.files) == len(job.video_urls)
        for rel, size in zip(job.files, job.file_sizes, strict=True):
            assert (out / rel).stat().st_size == size == VIDEO_SIZE
    assert not list(out.rglob("*.part"))
    assert store.integrity_ok()


def paid_per_prompt(sim: Simulator) -> dict[str, int]:
    paid: dict[str, int] = {}
    for record in sim.stats.tasks.values():
        if record.credits:
            paid[record.prompt] = paid.get(record.prompt, 0) + 1
    return paid


async def test_every_row_goes_from_pending_to_a_verified_file(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    store, out = open_store(tmp_path, "briefs", make_rows(30))
    dispatcher = await dispatch([(store, out)], settings_for(sim))
    assert_all_downloaded(store, out, 30)
    assert set(paid_per_prompt(sim).values()) == {1}
    assert dispatcher.runs[0].counters.downloaded == 30
    assert sim.stats.rate_limited == 0


async def test_the_throttle_keeps_every_window_under_the_limit(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    # A 2-second window stands for the minute: 60 requests per window, 40 rows (80+ requests).
    sim = await make_sim(rpm=60, window=2.0, window_kind="sliding", latency_median=5.0)
    store, out = open_store(tmp_path, "briefs", make_rows(40))
    await dispatch([(store, out)], settings_for(sim, rpm=60), window=2.0)
    assert_all_downloaded(store, out, 40)
    assert sim.stats.rate_limited == 0
    assert 0 < sim.stats.peak_window <= 60


@pytest.mark.parametrize("lag", [0.0, 60.0])
async def test_while_the_budget_binds_submits_go_before_polls_up_to_the_lag(
    make_sim: MakeSim, tmp_path: Path, lag: float
) -> None:
    # 3 requests per 0.25 s window (4 less the margin), fewer than the 4 submit workers, so a
    # submit always waits when room appears; 20 rows whose tasks take 50 ms.
    sim = await make_sim(rpm=4, window=0.25, latency_median=5.0)
    store, out = open_store(tmp_path, "briefs", make_rows(20))
    await dispatch([(store, out)], settings_for(sim, rpm=4, max_poll_lag=lag), window=0.25)
    assert_all_downloaded(store, out, 20)
    ticks = {endpoint: sorted(counts) for endpoint, counts in sim.stats.timeline.items()}
    if lag:  # every submit first; then each task needs exactly one poll
        assert ticks["generate"][-1] <= ticks["status"][0]
        assert sim.stats.requests["status"] == 20
    else:  # a poll due now goes as soon as it is due, between submits
        assert ticks["status"][0] < ticks["generate"][-1]


async def test_memory_stays_flat_in_n_no_task_per_row(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim(latency_median=2.0)  # 20 ms tasks
    peaks: dict[int, tuple[int, int]] = {}
    for n in (40, 400):
        store, out = open_store(tmp_path, f"m{n}", make_rows(n))
        settings = settings_for(sim, max_in_flight=25)
        rpm = settings.api.rpm or 100
        throttle = Throttle(rpm, window=60.0, margin=settings.api.safety_margin)
        async with (
            ApiClient(sim.url, Token(TOKEN), on_response=throttle.observe) as api,
            aiohttp.ClientSession() as cdn,
        ):
            run = ManifestRun(name=f"m{n}", store=store, out_dir=out)
            dispatcher = Dispatcher([run], api=api, throttle=throttle, cdn=cdn, settings=settings)
            work = asyncio.ensure_future(dispatcher.run())
            tasks = in_flight = 0
            while not work.done():  # sample every turn of the event loop
                tasks = max(tasks, sum(map(_of_the_dispatcher, asyncio.all_tasks())))
                in_flight = max(in_flight, dispatcher.in_flight())
                await asyncio.sleep(0)
            await work
        assert_all_downloaded(store, out, n)
        peaks[n] = (tasks, in_flight)
    (small_tasks, _), (big_tasks, big_in_flight) = peaks[40], peaks[400]
    assert big_in_flight <= 25  # max_in_flight holds
    assert big_tasks == small_tasks < 100  # its workers, not one task per row


def _of_the_dispatcher(task: asyncio.Task[Any]) -> bool:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", "")
    return name.startswith(("Dispatcher.", "SubmitStage.", "PollStage."))


async def test_a_lower_real_limit_is_adapted_to(make_sim: MakeSim, tmp_path: Path) -> None:
    # Configured for 4x what the server allows: 429s and Remaining: 0 pause everyone.
    sim = await make_sim(rpm=30, window=1.0, latency_median=5.0)
    store, out = open_store(tmp_path, "briefs", make_rows(25))
    await dispatch([(store, out)], settings_for(sim, rpm=120), window=1.0)
    assert_all_downloaded(store, out, 25)
    assert set(paid_per_prompt(sim).values()) == {1}


async def test_exactly_one_paid_submission_per_row_under_faults(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(
        server_error=Fault(rate=0.1),
        body_error=Fault(rate=0.05),
        html_body=Fault(rate=0.05),
        refuse=Fault(rate=0.03),
        storm=Fault(at={7}),
        storm_duration=0.3,
        refuse_duration=0.02,
        truncated=Fault(rate=0.2),
        task_transient=Fault(rate=0.15),
        unknown_status=Fault(rate=0.1),
    )
    store, out = open_store(tmp_path, "briefs", make_rows(40))
    # Every POST that may have created a task counts as an attempt, the unknown ones too, and
    # at these rates about a third of POSTs end without a video: with six attempts some row
    # runs out in about one run of five (measured), which is the retry limit working, not this
    # test's subject (tests/test_retry_limits.py covers the limit). So the limit is raised
    # here, out of reach of chance.
    patient = settings_for(sim, retry=dataclasses.replace(FAST_RETRY, max_attempts=40))
    await dispatch([(store, out)], patient)
    # A 500, a 502 page, a 200 with "code": 500 or an HTML 200 prove nothing about the task
    # (submit_table.py), and a connection waiting to be accepted when the listener closes
    # ("refuse") is reset after the POST went out: each such row is reported unknown, not
    # sent again. Here the vendor had not created a task for any of them.
    ever_unknown: set[str] = set()
    for _ in range(20):  # what --resubmit-unknown does, run after run
        unknown = [job for job in store.iter_jobs() if job.status is JobStatus.UNKNOWN]
        assert all(paid_per_prompt(sim).get(job.prompt, 0) == 0 for job in unknown)
        ever_unknown |= {job.prompt for job in unknown}
        if not unknown:
            break
        store.requeue_unknown()
        await dispatch([(store, out)], patient)
    assert_all_downloaded(store, out, 40)
    assert set(paid_per_prompt(sim).values()) == {1}
    assert ever_unknown
    assert sim.stats.faults["truncated"] and sim.stats.faults["task_transient"]


async def test_a_download_cut_again_and_again_still_ends_while_it_makes_progress(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    # Seven cuts in a row, three attempts allowed: every cut still added bytes to the .part.
    sim = await make_sim(truncated=Fault(at=set(range(1, 8))))
    store, out = open_store(tmp_path, "briefs", make_rows(1))
    retry = dataclasses.replace(FAST_RETRY, max_attempts=3)
    await dispatch([(store, out)], settings_for(sim, retry=retry))
    assert_all_downloaded(store, out, 1)
    assert sim.stats.faults["truncated"] == 7


async def test_an_ambiguous_submit_becomes_unknown_and_is_not_resent(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(ambiguous=Fault(at={3}))
    store, out = open_store(tmp_path, "briefs", make_rows(6))
    await dispatch([(store, out)], settings_for(sim))
    statuses = [j.status for j in store.iter_jobs()]
    assert statuses.count(JobStatus.UNKNOWN) == 1 and statuses.count(JobStatus.DOWNLOADED) == 5
    unknown = next(store.iter_jobs([JobStatus.UNKNOWN]))
    assert "--resubmit-unknown" in (unknown.error_message or "")
    assert sim.stats.tasks_created == 6  # the vendor did create it; we did not send it twice
    # the user accepts the risk: the row is sent again
    assert store.requeue_unknown() == 1
    await dispatch([(store, out)], settings_for(sim))
    assert_all_downloaded(store, out, 6)


async def test_permanent_failures_and_rejections_are_not_retried(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(task_permanent=Fault(at={2}))
    rows = make_rows(4)
    bad = JobSpec(key="id:bad", row=6, prompt="x", mode="fun", ratio="4:3")  # server says 400
    rows.append(StubRow(6, bad.key, {"id": "bad", "prompt": "x"}, bad, "x"))
    store, out = open_store(tmp_path, "briefs", rows)
    await dispatch([(store, out)], settings_for(sim))
    by_key = {j.key: j for j in store.iter_jobs()}
    assert by_key["id:bad"].status is JobStatus.REJECTED
    failed = [j for j in by_key.values() if j.status is JobStatus.FAILED]
    assert len(failed) == 1 and failed[0].error_kind == "permanent" and failed[0].attempts == 1
    assert sim.stats.tasks_created == 4


async def test_expired_links_are_refreshed_from_the_api(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim(expired=Fault(at={1}))
    store, out = open_store(tmp_path, "briefs", make_rows(3))
    await dispatch([(store, out)], settings_for(sim))
    assert_all_downloaded(store, out, 3)


async def test_two_manifests_share_one_throttle(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim(rpm=50, window=1.0, window_kind="sliding", latency_median=5.0)
    a = open_store(tmp_path, "a", make_rows(15))
    b = open_store(tmp_path, "b", make_rows(15, start=100))
    await dispatch([a, b], settings_for(sim, rpm=50), window=1.0)
    assert_all_downloaded(*a, 15)
    assert_all_downloaded(*b, 15)
    assert sim.stats.rate_limited == 0 and sim.stats.peak_window <= 50


async def test_a_rerun_of_a_finished_state_sends_nothing(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    store, out = open_store(tmp_path, "briefs", make_rows(10))
    await dispatch([(store, out)], settings_for(sim))
    before = sum(sim.stats.requests.values())
    await dispatch([(store, out)], settings_for(sim))
    assert sum(sim.stats.requests.values()) == before


async def test_budget_stops_submitting_at_the_limit(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    store, out = open_store(tmp_path, "briefs", make_rows(10))
    dispatcher = await dispatch([(store, out)], settings_for(sim, max_credits=4 * 40 + 39))
    assert dispatcher.stop_reason is StopReason.BUDGET
    counts = store.counts()
    assert counts[JobStatus.DOWNLOADED] == 4 and counts[JobStatus.PENDING] == 6
    assert sim.stats.tasks_created == 4
    # the next run continues where this one stopped
    await dispatch([(store, out)], settings_for(sim, max_credits=6 * 40))
    assert_all_downloaded(store, out, 10)


async def test_every_history_entry_of_a_real_run_is_in_the_closed_vocabularies(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    # A run that meets most kinds of outcome: an interrupted POST found at the start (what
    # `batchgen run` recovers first), a 429 storm, an ambiguous POST, a refused request, a
    # download whose links expire for good.
    sim = await make_sim(
        ambiguous=Fault(at={3}), storm=Fault(at={5}), storm_duration=0.2, expired=Fault(rate=1.0)
    )
    rows = make_rows(8)
    bad = JobSpec(key="id:bad", row=20, prompt="x", mode="fun", ratio="4:3")  # server says 400
    rows.append(StubRow(20, bad.key, {"id": "bad", "prompt": "x"}, bad, "x"))
    store, out = open_store(tmp_path, "briefs", rows)
    store.transition("id:0", JobStatus.SUBMITTING)  # the last run died mid-POST
    assert store.recover_interrupted() == 1
    await dispatch([(store, out)], settings_for(sim))
    history = store.attempts()
    kinds = {entry["kind"] for entry in history}
    outcomes = {entry["outcome"] for entry in history}
    assert kinds <= set(AttemptKind) and outcomes <= set(AttemptOutcome), history
    # the run really met them (so the check above is not vacuous)
    assert {"interrupted", "ok", "ambiguous", "rejected", "failed", "rate limited"} <= outcomes
    assert kinds == {"submit", "download"}
    error_kinds = {job.error_kind for job in store.iter_jobs() if job.error_kind}
    assert error_kinds <= set(ErrorKind), error_kinds
    assert {"ambiguous", "download"} <= error_kinds
