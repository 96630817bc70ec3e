"""Pure decisions: backoff, task-error classification, and the poll planner's learning."""

from __future__ import annotations

import math
import random

import pytest

from batchgen.config import RetryPolicy
from batchgen.engine.polling import LatencyModel, PollPlanner
from batchgen.engine.retry import PERMANENT, TRANSIENT, backoff_delay, task_error_kind


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


def _simulate(planner: PollPlanner, n: int, *, contended: bool, seed: int = 1) -> float:
    """Poll n log-normal tasks (median 60 s, sigma 0.5) one after another; polls per task."""
    rng = random.Random(seed)
    polls = 0
    for _ in range(n):
        latency = math.exp(math.log(60) + 0.5 * rng.gauss(0, 1))
        age, last_running = 0.0, 0.0
        while True:
            age = planner.next_age(age, contended=contended)
            polls += 1
            if age >= latency:
                planner.model.observe(last_running, age)
                break
            last_running = age
    return polls / n


def test_contended_polling_costs_little_more_than_one_poll_per_task() -> None:
    planner = PollPlanner(LatencyModel(), first_poll=5.0, seed=1)
    polls = _simulate(planner, 800, contended=True)
    # A fixed 5 s poller would need about 13 polls for a 60 s task.
    assert polls < 1.3


def test_the_model_learns_the_latency_distribution_despite_late_polls() -> None:
    planner = PollPlanner(LatencyModel(), first_poll=5.0, seed=2)
    _simulate(planner, 800, contended=True, seed=2)
    median = planner.model.quantile(0.5)
    assert median is not None and 50 < median < 72
    assert 0.35 < planner.model.sigma < 0.65


def test_prompt_polling_finds_tasks_sooner_than_late_polling() -> None:
    def lateness(contended: bool) -> float:
        planner = PollPlanner(LatencyModel(), first_poll=5.0, seed=3)
        rng = random.Random(3)
        total = 0.0
        for _ in range(400):
            latency = math.exp(math.log(60) + 0.5 * rng.gauss(0, 1))
            age, last = 0.0, 0.0
            while True:
                age = planner.next_age(age, contended=contended, spare_gap=5.0)
                if age >= latency:
                    planner.model.observe(last, age)
                    total += age - latency
                    break
                last = age
        return total / 400

    assert lateness(contended=False) < lateness(contended=True) / 2


def test_no_poll_before_the_first_probe_and_geometric_probing_until_warm() -> None:
    planner = PollPlanner(LatencyModel(), first_poll=5.0)
    assert planner.next_age(0.0, contended=True) == 5.0
    assert planner.next_age(5.0, contended=True) == pytest.approx(8.0)


def test_polls_of_an_old_task_never_creep() -> None:
    model = LatencyModel()
    model.seed([10.0] * 50)  # every earlier task took 10 s
    planner = PollPlanner(model, first_poll=1.0)
    age = 100.0  # far beyond anything seen
    assert planner.next_age(age, contended=True) >= age * 1.15
    assert planner.next_age(age, contended=False, spare_gap=0.01) >= age * 1.03


def test_with_spare_budget_a_straggler_is_polled_within_a_few_percent_of_its_age() -> None:
    model = LatencyModel()
    model.seed([60.0] * 50)
    planner = PollPlanner(model, first_poll=1.0)
    age = 300.0  # a straggler: the last tasks of a run set its end
    assert planner.next_age(age, contended=False, spare_gap=0.5) == pytest.approx(age * 1.03)
    assert planner.next_age(age, contended=True) >= age * 1.15  # the budget is scarce


def test_seeding_from_earlier_runs_skips_the_probing() -> None:
    model = LatencyModel()
    model.seed([30.0, 35.0, 40.0, 45.0, 50.0, 38.0])
    planner = PollPlanner(model, first_poll=1.0, explore=0.0, seed=4)
    first = planner.next_age(0.0, contended=True)
    assert 40.0 < first < 70.0


def test_while_cold_and_contended_only_a_few_tasks_probe() -> None:
    planner = PollPlanner(LatencyModel(), first_poll=5.0, probe_tasks=3)
    firsts = [planner.next_age(0.0, contended=True) for _ in range(6)]
    assert firsts == [5.0, 5.0, 5.0, 60.0, 60.0, 60.0]
    assert planner.next_age(0.0, contended=False) == 5.0  # spare budget: probe freely
