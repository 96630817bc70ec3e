"""The polling policy: the budget's free share, the dispatcher's two regimes on an injected
clock, the latency prior and censoring, and latency history that carries over between runs."""

from __future__ import annotations

import itertools
import json
import logging
import math
from pathlib import Path
from statistics import NormalDist
from typing import Any, cast

import aiohttp
import pytest
from helpers.simulators import FakeClock

from batchgen.config import Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.poll_stage import InFlight
from batchgen.engine.timing.latency import LatencyModel, Observation
from batchgen.engine.timing.latency_store import MAX_PER_MODE, LatencyStore
from batchgen.engine.timing.poll_plan import BOTTLENECK, Budget, PollPlanner, poll_budget
from batchgen.paths import digest, user_state_dir
from batchgen.providers.grokimagine import ApiClient
from batchgen.state.store import StateStore

WARM = [60.0 * math.exp(0.5 * NormalDist().inv_cdf((i + 0.5) / 200)) for i in range(200)]


# --------------------------------------------------------------------------- the free share
def test_the_budget_is_the_bottleneck_when_the_work_needs_all_of_it() -> None:
    assert poll_budget(capacity=97, pending=90, in_flight=10, horizon=60) == BOTTLENECK
    assert poll_budget(capacity=0, pending=0, in_flight=1, horizon=60) == BOTTLENECK
    idle = poll_budget(capacity=970, pending=0, in_flight=3, horizon=60)
    assert idle.free > 0.99
    assert idle.spare_gap == pytest.approx(3 / (967 / 60))  # every task polled with the slack


def test_the_free_share_is_a_continuous_function_of_the_budget_left() -> None:
    frees = [poll_budget(capacity=100, pending=p, in_flight=5, horizon=60).free for p in range(96)]
    assert all(a > b for a, b in itertools.pairwise(frees))  # falls with demand
    assert max(a - b for a, b in itertools.pairwise(frees)) <= 0.011  # no step
    # Variant: the same over capacity, with the demand fixed.
    frees = [
        poll_budget(capacity=c, pending=0, in_flight=50, horizon=60).free for c in range(50, 500)
    ]
    assert max(b - a for a, b in itertools.pairwise(frees)) <= 0.02


def test_a_quiet_minute_does_not_free_the_budget_of_a_run_that_needs_it() -> None:
    # 100 tasks at the free tier: the least requests take 124 s, the longest task about 218 s.
    budget = poll_budget(
        capacity=90, pending=0, in_flight=2, horizon=60, run_requests=124, run_latency=218
    )
    assert budget.free == pytest.approx(1 - 124 / 218)
    run_bound = poll_budget(
        capacity=90, pending=0, in_flight=2, horizon=60, run_requests=1200, run_latency=300
    )
    assert run_bound.free == 0.0


async def test_the_throttle_says_how_many_requests_a_horizon_can_carry() -> None:
    clock = FakeClock()
    throttle = Throttle(100, window=60.0, margin=0.03, clock=clock)
    for _ in range(40):
        async with throttle.slot():
            pass
    assert throttle.capacity_within(0.0) == 57
    clock.advance(30.0)
    assert throttle.capacity_within(29.0) == 57  # the 40 answers still count then
    assert throttle.capacity_within(30.0) == 97  # ... and no longer
    assert throttle.capacity_within(90.0) == pytest.approx(97 + 30 * 97 / 60)


# --------------------------------------------------------------------------- planner regimes
def test_first_polls_slide_from_late_to_prompt_as_the_budget_frees() -> None:
    planner = PollPlanner(history={"fun": WARM}, spread=0.0)
    ages = [
        planner.next_age(0.0, Budget(free=f / 20, spare_gap=1.0), mode="fun") for f in range(21)
    ]
    assert ages[0] > 60.0 * math.exp(0.5 * 1.6)  # the 95th percentile: one poll for most
    assert ages[-1] < 60.0  # before the median: as soon as completion is plausible
    assert all(a >= b for a, b in itertools.pairwise(ages))
    assert max(a - b for a, b in itertools.pairwise(ages)) < 0.15 * ages[0]


def test_a_mode_is_planned_with_its_own_fit_once_it_has_one() -> None:
    slow = [5 * x for x in WARM]
    planner = PollPlanner(history={"fun": WARM, "spicy": slow}, spread=0.0)
    fun = planner.next_age(0.0, BOTTLENECK, mode="fun")
    spicy = planner.next_age(0.0, BOTTLENECK, mode="spicy")
    assert spicy == pytest.approx(5 * fun, rel=0.02)
    # Variant: a mode with no history yet uses the pooled fit (both modes together).
    assert planner.model_for("normal") is planner.model
    medians = [planner.model_for(m).quantile(0.5) for m in ("fun", "normal", "spicy")]
    assert medians == sorted(medians) and medians[0] < medians[1] < medians[2]


# --------------------------------------------------------------------------- the dispatcher
def _dispatcher(tmp_path: Path, clock: FakeClock, *, rows: int, planner: PollPlanner) -> Dispatcher:
    store = StateStore.open(tmp_path / "state.sqlite")
    store.sync_manifest(["id"], [])
    throttle = Throttle(100, window=60.0, margin=0.03, clock=clock)
    run = ManifestRun(name="m.csv", store=store, out_dir=tmp_path)
    dispatcher = Dispatcher(
        [run],
        api=cast(ApiClient, None),
        throttle=throttle,
        cdn=cast(aiohttp.ClientSession, None),
        settings=Settings.from_options(rpm=100),
        planner=planner,
    )
    dispatcher.polls.rows_total = rows
    return dispatcher


async def _fill(throttle: Throttle, requests: int) -> None:
    for _ in range(requests):
        async with throttle.slot():
            pass


async def test_dispatcher_polls_late_while_rows_wait_for_the_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    planner = PollPlanner(history={"fun": WARM}, spread=0.0)
    dispatcher = _dispatcher(tmp_path, clock, rows=300, planner=planner)
    await _fill(dispatcher.throttle, 97)  # the first window's submits
    assert dispatcher.polls.budget() == BOTTLENECK
    item = InFlight(dispatcher.runs[0], "k", "task-1", clock(), "fun")
    dispatcher.polls.push(item, 0.0)
    assert item.due - item.submitted > 60.0 * math.exp(0.5 * 1.5)  # past the 93rd percentile
    # a straggler is still re-polled within 8% of its age
    dispatcher.polls.push(item, 300.0)
    assert item.due - item.submitted == pytest.approx(324.0)
    # and a due poll waits while the window's room is what the pending rows need
    assert dispatcher.polls.submits_first(item)


async def test_dispatcher_polls_promptly_while_the_budget_is_idle(tmp_path: Path) -> None:
    clock = FakeClock()
    dispatcher = _dispatcher(tmp_path, clock, rows=10, planner=PollPlanner(history={"fun": WARM}))
    dispatcher.runs[0].counters.submitted = 10  # every row sent: 10 tasks in flight
    items = [InFlight(dispatcher.runs[0], f"k{i}", f"t{i}", clock(), "fun") for i in range(10)]
    for item in items[1:]:
        dispatcher.polls.schedule(item, clock() + 30.0)
    budget = dispatcher.polls.budget()
    assert budget.free > 0.8 and budget.spare_gap < 10.0
    dispatcher.polls.push(items[0], 0.0)
    assert items[0].due - items[0].submitted < 70.0  # about the median, not the 95th percentile
    dispatcher.polls.push(items[0], 300.0)
    assert items[0].due - items[0].submitted < 300.0 * 1.05  # a straggler: sooner than 8%
    assert not dispatcher.polls.submits_first(items[0])


async def test_dispatcher_free_share_falls_smoothly_as_rows_wait(tmp_path: Path) -> None:
    clock = FakeClock()
    dispatcher = _dispatcher(tmp_path, clock, rows=90, planner=PollPlanner(history={"": WARM}))
    frees = []
    for sent in range(90, -1, -1):  # 0 to 90 rows still to send, 5 tasks in flight
        dispatcher.runs[0].counters.submitted = sent
        for i in range(5 - len(dispatcher.polls.heap)):
            dispatcher.polls.schedule(InFlight(dispatcher.runs[0], f"k{i}", f"t{i}", 0, ""), 1e9)
        frees.append(dispatcher.polls.budget().free)
        clock.advance(0.1)  # past the budget's cache
    assert frees[0] > 0.4 and frees[-1] < 0.05
    assert max(a - b for a, b in itertools.pairwise(frees)) < 0.05


# --------------------------------------------------------------------------- prior, censoring
def test_the_prior_is_documented_and_fades_as_tasks_finish() -> None:
    model = LatencyModel(prior_median=60.0)
    assert model.quantile(0.5) == pytest.approx(60.0)
    model.seed([10.0] * 40)  # the vendor is six times faster than the prior says
    assert model.quantile(0.5) == pytest.approx(10.0, rel=0.05)


def test_tasks_still_running_push_a_too_fast_prior_up_before_any_finishes() -> None:
    planner = PollPlanner(first_poll=1.0)  # prior median 12 s
    for i in range(30):
        planner.saw_running(f"t{i}", "fun", 40.0 + i)
    assert planner.model.quantile(0.5) > 40.0
    # Variant: the fast tasks of a run finish first; the slow ones still running keep the
    # fit from believing every task is fast.
    finished = LatencyModel(prior_median=60.0)
    model = LatencyModel(prior_median=60.0)
    for i in range(20):
        finished.observe(15.0 + i, 20.0 + i)
        model.observe(15.0 + i, 20.0 + i)
    for i in range(20):
        model.saw_running(f"r{i}", 45.0)
    finished.fit()
    model.fit()
    assert model.quantile(0.5) > 1.3 * finished.quantile(0.5)


# --------------------------------------------------------------------------- history
def test_history_is_kept_per_api_without_the_token(tmp_path: Path) -> None:
    store = LatencyStore.for_api("https://api.example/")
    assert store.path == user_state_dir() / f"latency-{digest('https://api.example')}.json"
    store.save({"fun": [Observation(1.0, 2.0)] * (MAX_PER_MODE + 5), "spicy": []})
    loaded = store.load()
    assert len(loaded["fun"]) == MAX_PER_MODE and loaded["spicy"] == []
    assert LatencyStore.for_api("https://other.example").load() == {}


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"version": 9, "modes": {}}), json.dumps([1, 2])],
)
def test_an_unreadable_history_is_reported_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    store = LatencyStore(tmp_path / "latency.json")
    store.path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert store.load() == {}
    assert "ignoring the latency history" in caplog.text


def test_malformed_intervals_are_skipped(tmp_path: Path) -> None:
    store = LatencyStore(tmp_path / "latency.json")
    bad: list[Any] = [[1, 2], [3, 1], ["a", 2], [1, float("inf")], [1], [0, 5]]
    store.path.write_text(json.dumps({"version": 1, "modes": {"fun": bad}}), encoding="utf-8")
    assert store.load() == {"fun": [Observation(1.0, 2.0), Observation(0.0, 5.0)]}


async def test_a_cold_start_that_learns_fast_tasks_replans_the_polls_it_set_late(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    planner = PollPlanner(first_poll=5.0, spread=0.0, seed=3)  # prior: median 60 s
    dispatcher = _dispatcher(tmp_path, clock, rows=0, planner=planner)
    items = [InFlight(dispatcher.runs[0], f"k{i}", f"t{i}", clock(), "fun") for i in range(20)]
    for item in items:
        dispatcher.polls.schedule(item, clock() + planner.next_age(0.0, BOTTLENECK))
    assert min(item.due for item in items) > clock() + 60.0  # planned with the prior
    clock.advance(5.0)
    for i in range(6):  # the first probes find tasks done within 5 s
        planner.observe(f"p{i}", "fun", 0.0, 5.0)
    probe = InFlight(dispatcher.runs[0], "kp", "tp", clock(), "fun")
    dispatcher.polls.push(probe, 0.0)
    assert max(item.due for item in items) < clock() + 5.0  # asked again now, not in a minute
    assert dispatcher.polls.heap[0][0] == min(item.due for item in [*items, probe])


def test_tasks_only_ever_found_done_do_not_drive_the_fit_to_zero() -> None:
    # Every first poll (at 5 s) found its task done: "L <= 5 s" and nothing below, in three
    # modes, as a history file of such a run holds them.
    done = {m: [Observation(0.0, 5.0 + i / 100) for i in range(10)] for m in ("a", "b", "c")}
    model = PollPlanner(first_poll=5.0, history=done).model
    assert 0.5 < model.quantile(0.5) < 5.0
    # Variant: once one task was seen running, the intervals are taken as they are.
    model.observe(1.0, 6.0)
    model.fit()
    assert model.quantile(0.5) < 5.0
