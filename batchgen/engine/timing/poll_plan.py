"""When to poll a task: as early as completion is plausible while requests are spare, late
while they are the bottleneck, and everything in between.

Every poll is a request taken from the account's budget, and a poll that finds the task still
running is waste. How much waste the run can afford is measured by ``poll_budget``: over the
next *horizon* (the typical latency, the fit's median) the request window lets ``capacity``
requests through; the work needs at least one submit per pending row and one poll per task in
flight (``demand``). The **free fraction** is ``1 - demand / capacity`` (0 when the budget is
the bottleneck, near 1 when it is idle), and the **spare gap** is how often every task in
flight could be polled with the requests left over. Both are continuous in the state of the
run; neither is a threshold.

``PollPlanner.next_age`` turns them into a poll age:

* A task's first poll goes at the quantile ``q`` of the latency fit, with ``q`` sliding from
  ``late_quantile`` (0.97: most tasks cost one poll) to ``prompt_quantile`` (0.3: a poll as
  soon as completion is plausible) as ``free ** spend_power`` goes from 0 to 1.
* A task found running is polled again at the earlier of a *late* age (the ``late_quantile`` of
  its remaining latency, at least ``late_growth`` times its age) and a *prompt* age (the
  ``prompt_quantile`` of its remaining latency, at least ``prompt_growth`` times its age and at
  least the spare gap later). With no slack the spare gap is infinite and the late age wins;
  with plenty the prompt one does, so the last tasks of a run are noticed within a percent or
  two of their latency.
* Until ``warmup`` tasks have finished (a cold start: no history for this API and mode), the
  first tasks, and a share ``free ** spend_power`` of the others, probe from ``first_poll``
  growing by ``cold_growth`` while the budget is free: spare requests buy the first
  completions, and tasks still running older than the prior expects move it (see
  ``batchgen.engine.timing.latency``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batchgen.engine.timing.latency import PRIOR_MEDIAN_POLLS, LatencyModel, Observation

__all__ = [
    "BOTTLENECK",
    "IDLE",
    "Budget",
    "LatencyModel",
    "Observation",
    "PollPlanner",
    "poll_budget",
]

#: a mode's own fit is used once it has seen this many finished tasks; the pooled one before
_OWN_FIT = 20


@dataclass(frozen=True, slots=True)
class Budget:
    """How much of the request budget is free for polls beyond the one each task needs."""

    free: float  # in [0, 1]: 0 when the budget is the bottleneck
    spare_gap: float  # seconds between polls of each task in flight the slack pays for (inf)


BOTTLENECK = Budget(free=0.0, spare_gap=math.inf)
IDLE = Budget(free=1.0, spare_gap=0.0)


def poll_budget(
    *,
    capacity: float,
    pending: int,
    in_flight: int,
    horizon: float,
    run_requests: float = 0.0,
    run_latency: float = math.inf,
) -> Budget:
    """The budget over the next ``horizon`` seconds, and over the whole run.

    ``capacity``: requests the rate window lets through in the next ``horizon`` seconds;
    ``pending``: rows still to be submitted (each needs one request now); ``in_flight``: tasks
    that each need at least one more poll. ``run_requests``: seconds the whole run's least
    requests (a submit and a poll per task) take at the steady rate; ``run_latency``: the
    longest latency expected among its tasks. The free fraction is the smaller of the two
    views: the budget is not free for this run just because this minute is quiet.
    """
    demand = pending + in_flight
    if capacity <= 0 or demand >= capacity:
        return BOTTLENECK
    slack = capacity - demand
    spare_rate = slack / max(horizon, 1e-6)  # requests per second
    whole_run = 1.0 - run_requests / max(run_requests, run_latency, 1e-9)
    return Budget(free=min(slack / capacity, whole_run), spare_gap=max(in_flight, 1) / spare_rate)


def _slide(late: float, prompt: float, spend: float) -> float:
    """A growth factor from ``late`` (spend 0) to ``prompt`` (spend 1), its excess over 1
    moving geometrically (8% -> 4.5% -> 2.5% -> 1.4% -> 1% in quarters)."""
    return 1.0 + (late - 1.0) * ((prompt - 1.0) / (late - 1.0)) ** spend


class PollPlanner:
    """Decides the age (seconds since submission) at which a task is polled next.

    Latencies are fitted per generation mode (and pooled: a mode with fewer than 20 finished
    tasks is planned with the pooled fit).
    """

    def __init__(
        self,
        *,
        first_poll: float = 5.0,
        min_gap: float = 0.05,
        warmup: int = 5,
        late_quantile: float = 0.97,
        prompt_quantile: float = 0.3,
        late_requantile: float = 0.5,
        prompt_requantile: float = 0.05,
        late_growth: float = 1.08,
        prompt_growth: float = 1.01,
        cold_growth: float = 1.3,
        spend_power: float = 4.0,
        spread: float = 0.03,
        history: Mapping[str, Iterable[Observation | float]] | None = None,
        seed: int | None = None,
    ) -> None:
        self.first_poll = first_poll
        self.min_gap = min_gap
        self.warmup = warmup
        self.late_quantile = late_quantile
        self.prompt_quantile = prompt_quantile
        self.late_requantile = late_requantile
        self.prompt_requantile = prompt_requantile
        self.late_growth = late_growth
        self.prompt_growth = prompt_growth
        self.cold_growth = cold_growth
        self.spend_power = spend_power
        self.spread = spread
        self._rng = random.Random(seed)
        self._models: dict[str, LatencyModel] = {}
        self.model = self._new_model()  # the pooled fit
        self._revision = 0
        self._revised_median = self.model.quantile(0.5)
        for mode, observations in (history or {}).items():
            seen = list(observations)
            self.model.seed(seen)
            if mode:
                self._model(mode).seed(seen)

    def _new_model(self) -> LatencyModel:
        return LatencyModel(prior_median=PRIOR_MEDIAN_POLLS * self.first_poll)

    def _model(self, mode: str) -> LatencyModel:
        model = self._models.get(mode)
        if model is None:
            model = self._models[mode] = self._new_model()
        return model

    def model_for(self, mode: str) -> LatencyModel:
        """The fit a task of ``mode`` is planned with."""
        own = self._models.get(mode)
        return own if own is not None and own.completions >= _OWN_FIT else self.model

    # ------------------------------------------------------------------ learning
    def seed(self, latencies: Iterable[float], mode: str = "") -> None:
        """Latencies (seconds) of tasks finished in earlier runs."""
        values = list(latencies)
        self.model.seed(values)
        if mode:
            self._model(mode).seed(values)

    def saw_running(self, task: str, mode: str, age: float) -> None:
        """Task ``task`` was polled at ``age`` seconds and is still running."""
        self.model.saw_running(task, age)
        if mode:
            self._model(mode).saw_running(task, age)

    def observe(self, task: str, mode: str, lo: float, hi: float) -> None:
        """Task ``task`` was found done at age ``hi``, last seen running at age ``lo``."""
        self.model.observe(lo, hi, task=task)
        if mode:
            self._model(mode).observe(lo, hi, task=task)

    def forget(self, task: str) -> None:
        """Task ``task`` ended without a latency worth learning (it failed)."""
        self.model.forget(task)
        for model in self._models.values():
            model.forget(task)

    def export(self) -> dict[str, list[Observation]]:
        """What was learned, per mode ("" for tasks of no known mode), for ``LatencyStore``."""
        return {mode: model.samples() for mode, model in self._models.items() if model.count}

    def horizon(self) -> float:
        """The typical latency (seconds): the pooled fit's median."""
        return self.model.quantile(0.5)

    def longest(self, tasks: int) -> float:
        """The longest latency expected among ``tasks`` tasks (seconds): the fit's
        1 - 1/(2 tasks) quantile."""
        return self.model.quantile(1.0 - 0.5 / max(tasks, 1))

    # ------------------------------------------------------------------ planning
    def next_age(self, age: float, budget: Budget, *, mode: str = "") -> float:
        """When to poll a task next that is ``age`` seconds old (0: just submitted) and was
        last seen running, given the request ``budget``."""
        model = self.model_for(mode)
        cold = model.completions < self.warmup
        spend = budget.free**self.spend_power
        if age <= 0:
            return self._first(model, spend, cold=cold)
        # Late: the median of the remaining latency, but an old task (a straggler: the last
        # tasks set the run's end) is never left more than late_growth of its age.
        late = min(model.quantile(self.late_requantile, above=age), model.quantile(0.5))
        late = max(late, age * self.late_growth)
        # Prompt: as soon as completion is plausible, as often as the slack pays for, and a
        # straggler within a share of its age sliding from late_growth to prompt_growth.
        q = self.late_requantile + (self.prompt_requantile - self.late_requantile) * spend
        hopeful = model.quantile(q, above=age)
        straggler = age * _slide(self.late_growth, self.prompt_growth, spend)
        hopeful = min(hopeful, max(straggler, model.quantile(0.5)))
        if cold:
            hopeful = min(hopeful, max(age * self.cold_growth, age + self.first_poll))
        prompt = max(hopeful, age * self.prompt_growth, age + budget.spare_gap)
        return max(min(late, prompt), age + self.min_gap)

    def revision(self) -> int:
        """Bumped whenever the pooled fit's median has moved by half or more since the last
        bump: polls planned before then are worth planning again."""
        median = self.model.quantile(0.5)
        if abs(math.log(median / self._revised_median)) >= math.log(1.5):
            self._revised_median = median
            self._revision += 1
        return self._revision

    def _first(self, model: LatencyModel, spend: float, *, cold: bool) -> float:
        q = self.late_quantile + (self.prompt_quantile - self.late_quantile) * spend
        # A little spread (earlier only: a late first poll can set the run's end): first polls
        # at a single age would tell the fit F at one point only.
        q = max(0.01, q - self._rng.uniform(0.0, self.spread))
        target = model.quantile(q)
        if cold and self._rng.random() < spend:  # spare requests buy the first completions
            target = min(target, self.first_poll)
        return max(target, self.min_gap)
