"""Pure decisions: backoff, task-error classification, and the poll planner's learning."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest

from batchgen.config import RetryPolicy
from batchgen.engine.retry import PERMANENT, TRANSIENT, backoff_delay, task_error_kind
from batchgen.engine.timing.poll_plan import BOTTLENECK, IDLE, Budget, PollPlanner


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.0)
    assert [backoff_delay(n, policy) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay=4.0, max_delay=100.0, jitter=0.5)
    rng = random.Random(3)
    delays = [backoff_delay(1, policy, rng=rng) for _ in range(200)]
    assert min(delays) >= 2.0 and max(delays) <= 4.0
    assert len({round(d, 6) for d in delays}) > 150  # really random


def test_backoff_honours_the_servers_hint() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.0)
    assert backoff_delay(1, policy, hint=30.0) == 30.0


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Network error, please try again later.", TRANSIENT),
        ("grok imagine build failed", TRANSIENT),
        ("Inappropriate content, please try another prompt.", PERMANENT),
        ("File type not supported", PERMANENT),
        ("something nobody documented", PERMANENT),
        (None, PERMANENT),
    ],
)
def test_task_errors_are_classified_by_what_a_retry_can_do(message: str | None, kind: str) -> None:
    assert task_error_kind(message) == kind


WARM = [60.0 * math.exp(0.5 * NormalDist().inv_cdf((i + 0.5) / 200)) for i in range(200)]


def _simulate(
    planner: PollPlanner, n: int, budget: Budget, *, seed: int = 1
) -> tuple[float, float]:
    """Poll n log-normal tasks (median 60 s, sigma 0.5) one after another: polls per task and
    mean seconds between completion and the poll that saw it."""
    rng = random.Random(seed)
    polls, late = 0, 0.0
    for i in range(n):
        latency = math.exp(math.log(60) + 0.5 * rng.gauss(0, 1))
        age, last_running = 0.0, 0.0
        while True:
            age = planner.next_age(age, budget, mode="fun")
            polls += 1
            if age >= latency:
                planner.observe(f"t{i}", "fun", last_running, age)
                late += age - latency
                break
            planner.saw_running(f"t{i}", "fun", age)
            last_running = age
    return polls / n, late / n


def test_while_the_budget_is_the_bottleneck_a_task_costs_little_more_than_one_poll() -> None:
    planner = PollPlanner(first_poll=5.0, seed=1)
    polls, _ = _simulate(planner, 800, BOTTLENECK)
    # A fixed 5 s poller would need about 13 polls for a 60 s task.
    assert polls < 1.3


def test_the_model_learns_the_latency_distribution_despite_late_polls() -> None:
    planner = PollPlanner(first_poll=1.0, seed=2)  # a prior (median 12 s) five times too fast
    _simulate(planner, 800, BOTTLENECK, seed=2)
    median = planner.model.quantile(0.5)
    assert 50 < median < 72
    assert 0.35 < planner.model.sigma < 0.65


def test_with_the_budget_free_tasks_are_noticed_sooner_at_the_price_of_polls() -> None:
    idle = Budget(free=1.0, spare_gap=1.0)
    polls_late, lateness_late = _simulate(PollPlanner(history={"fun": WARM}), 400, BOTTLENECK)
    polls_soon, lateness_soon = _simulate(PollPlanner(history={"fun": WARM}), 400, idle)
    assert lateness_soon < lateness_late / 4
    assert polls_soon > 2 * polls_late


def test_no_poll_before_the_first_probe_and_geometric_probing_until_warm() -> None:
    planner = PollPlanner(first_poll=5.0)
    assert planner.next_age(0.0, IDLE) == 5.0
    assert planner.next_age(5.0, IDLE) == 10.0  # at least a first poll apart
    assert planner.next_age(40.0, IDLE) <= 40.0 * 1.3  # growing by 30% at the most


def test_polls_of_an_old_task_never_creep() -> None:
    planner = PollPlanner(first_poll=1.0, history={"": [10.0] * 50})  # earlier tasks took 10 s
    age = 100.0  # far beyond anything seen
    assert planner.next_age(age, BOTTLENECK) >= age * 1.08
    assert planner.next_age(age, Budget(free=1.0, spare_gap=0.01)) >= age * 1.01


def test_a_straggler_is_polled_within_a_few_percent_of_its_age() -> None:
    planner = PollPlanner(first_poll=1.0, history={"": WARM})
    age = 300.0  # a straggler: the last tasks of a run set its end
    assert planner.next_age(age, Budget(free=1.0, spare_gap=0.5)) <= age * 1.02
    assert planner.next_age(age, BOTTLENECK) == pytest.approx(age * 1.08)  # scarce budget
    # the slack rations prompt polls: never sooner than every task could be polled with it
    assert planner.next_age(age, Budget(free=1.0, spare_gap=12.0)) == pytest.approx(312.0)


def test_seeding_from_earlier_runs_skips_the_probing() -> None:
    planner = PollPlanner(first_poll=1.0, spread=0.0, seed=4)
    planner.seed([30.0, 35.0, 40.0, 45.0, 50.0, 38.0])
    first = planner.next_age(0.0, BOTTLENECK)
    assert 45.0 < first < 90.0


def test_while_cold_only_spare_budget_buys_probes() -> None:
    planner = PollPlanner(first_poll=5.0, spread=0.0, seed=5)
    # no spare budget: every task waits for the prior's late quantile (median 12 x first
    # poll, sigma 0.5), and learns from what its poll finds
    late = 60.0 * math.exp(0.5 * NormalDist().inv_cdf(0.97))
    assert [planner.next_age(0.0, BOTTLENECK) for _ in range(5)] == [pytest.approx(late)] * 5
    assert planner.next_age(0.0, IDLE) == 5.0  # spare budget: probe freely
    # Variant: half free probes about a tenth of the tasks ((1/2)^4 of them).
    half = Budget(free=0.5, spare_gap=1.0)
    probes = sum(planner.next_age(0.0, half) == 5.0 for _ in range(2000))
    assert 60 < probes < 190
