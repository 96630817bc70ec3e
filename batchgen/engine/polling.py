"""When to poll a task: learn the latency distribution, then spend requests where they pay.

Every poll is a request taken from the account's budget, so a poll that finds the task still
running is waste. What we observe of a task's latency L is an interval: the last poll that
found it running (``lo``) and the poll that found it done (``hi``), so ``lo < L <= hi``; a task
still running only tells us ``L > lo``. ``LatencyModel`` fits a log-normal distribution to these
interval-censored observations by expectation-maximisation (the censored parts are replaced by
their expected values under the current fit), so it is not fooled by polling late: a naive
"time until the done poll" would make every polled-late task look slow, and a ratchet follows.

``PollPlanner`` then picks each task's next poll age:
* while the request budget is the bottleneck (rows still waiting to be submitted), poll late, at
  the 90th percentile of the remaining latency, so that most tasks cost exactly one poll;
* otherwise poll at the median, and re-poll as often as the spare budget allows (but every 3%
  of the task's age at the most), so that the last tasks of a run are noticed promptly.
Before enough tasks have finished it probes geometrically from ``first_poll``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["LatencyModel", "PollPlanner"]

_STD = NormalDist()
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class _Observation:
    lo: float  # seconds; 0 when the first poll already found the task done
    hi: float  # seconds; math.inf while the task is still running


class LatencyModel:
    """A log-normal fit to interval-censored task latencies (seconds)."""

    def __init__(self, *, max_samples: int = 1000, refit_every: int = 25) -> None:
        self._done: deque[_Observation] = deque(maxlen=max_samples)
        self._refit_every = refit_every
        self._since_fit = 0
        self.mu: float | None = None
        self.sigma: float = 0.5

    @property
    def count(self) -> int:
        """Finished tasks observed."""
        return len(self._done)

    def seed(self, latencies: Iterable[float]) -> None:
        """Latencies of earlier runs (already intervals collapsed to a point)."""
        for value in latencies:
            if value > 0:
                self._done.append(_Observation(value * 0.999, value))
        self.fit()

    def observe(self, lo: float, hi: float) -> None:
        """A task found done at age ``hi`` after being seen running at age ``lo``."""
        self._done.append(_Observation(max(0.0, lo), max(hi, lo + _EPS)))
        self._since_fit += 1
        # Refit as the sample grows by a fifth: cheap, and the fit changes slowly by then.
        if self.mu is None or self._since_fit >= max(self._refit_every, self.count // 5):
            self.fit()

    def fit(
        self, running: Iterable[float] = (), iterations: int = 30, tolerance: float = 1e-3
    ) -> None:
        """Refit (mu, sigma) of ln L; ``running`` are the ages of tasks still unfinished.

        EM from the previous fit, until neither parameter moves by ``tolerance`` (a tenth of a
        percent of a latency) or after ``iterations`` steps.
        """
        observations = list(self._done) + [_Observation(age, math.inf) for age in running]
        if not self._done:
            return
        mu, sigma = (self.mu, self.sigma) if self.mu is not None else _initial_guess(self._done)
        for _ in range(iterations):
            new_mu, new_sigma = _em_step(observations, mu, sigma)
            moved = max(abs(new_mu - mu), abs(new_sigma - sigma))
            mu, sigma = new_mu, new_sigma
            if moved < tolerance:
                break
        self.mu, self.sigma = mu, max(sigma, 0.05)
        self._since_fit = 0

    def quantile(self, q: float, *, above: float = 0.0) -> float | None:
        """The latency t with P(L <= t | L > above) = q; None before any fit."""
        if self.mu is None:
            return None
        dist = NormalDist(self.mu, self.sigma)
        floor = dist.cdf(math.log(above)) if above > 0 else 0.0
        target = min(1 - 1e-9, floor + q * (1.0 - floor))
        return max(math.exp(dist.inv_cdf(target)), above)


def _initial_guess(done: Iterable[_Observation]) -> tuple[float, float]:
    logs = [math.log(math.sqrt(max(o.lo, o.hi / 2) * o.hi)) for o in done]
    mu = sum(logs) / len(logs)
    var = sum((x - mu) ** 2 for x in logs) / len(logs)
    return mu, max(math.sqrt(var), 0.1)


def _em_step(observations: list[_Observation], mu: float, sigma: float) -> tuple[float, float]:
    total = total_sq = 0.0
    for obs in observations:
        mean, second = _truncated_moments(obs, mu, sigma)
        total += mean
        total_sq += second
    n = len(observations)
    new_mu = total / n
    return new_mu, math.sqrt(max(total_sq / n - new_mu**2, 1e-4))


def _truncated_moments(obs: _Observation, mu: float, sigma: float) -> tuple[float, float]:
    """E[X] and E[X^2] of X ~ N(mu, sigma) restricted to (ln lo, ln hi]."""
    a = (math.log(obs.lo) - mu) / sigma if obs.lo > 0 else -math.inf
    b = (math.log(obs.hi) - mu) / sigma if obs.hi < math.inf else math.inf
    mass = _STD.cdf(b) - _STD.cdf(a) if b > a else 0.0
    if mass < 1e-12:  # the interval lies far out in a tail: take its nearest finite end
        x = math.log(obs.hi) if b < 0 or a == -math.inf else math.log(max(obs.lo, _EPS))
        return x, x * x
    pa, pb = _pdf(a), _pdf(b)
    shift = (pa - pb) / mass
    spread = (_x_pdf(a) - _x_pdf(b)) / mass
    mean = mu + sigma * shift
    var = sigma * sigma * (1 + spread - shift * shift)
    return mean, var + mean * mean


def _pdf(z: float) -> float:
    return 0.0 if math.isinf(z) else _STD.pdf(z)


def _x_pdf(z: float) -> float:
    return 0.0 if math.isinf(z) else z * _STD.pdf(z)


class PollPlanner:
    """Decides the age (seconds since submission) at which a task is polled next."""

    def __init__(
        self,
        model: LatencyModel,
        *,
        first_poll: float = 5.0,
        min_gap: float = 0.05,
        warmup: int = 5,
        late_quantile: float = 0.9,
        prompt_quantile: float = 0.5,
        seed: int | None = None,
        explore: float = 0.1,
        min_growth: float = 1.15,
        prompt_growth: float = 1.03,
        probe_tasks: int = 10,
        cold_factor: float = 12.0,
    ) -> None:
        self.model = model
        self.first_poll = first_poll
        self.min_gap = min_gap
        self.warmup = warmup
        self.late_quantile = late_quantile
        self.prompt_quantile = prompt_quantile
        self._rng = random.Random(seed)
        self.explore = explore
        self.min_growth = min_growth
        self.prompt_growth = prompt_growth
        self.probe_tasks = probe_tasks
        self.cold_factor = cold_factor
        self._cold_tasks = 0

    def next_age(self, age: float, *, contended: bool, spare_gap: float | None = None) -> float:
        """When to poll a task next that is ``age`` seconds old and was last seen running.

        ``age`` is 0 for a task just submitted. ``spare_gap`` is how often every in-flight
        task could be polled with the requests left over (None: no spare budget).
        """
        if self.model.count < self.warmup or self.model.mu is None:
            return self._cold(age, contended=contended)
        q = self.late_quantile if contended else self.prompt_quantile
        if contended and age == 0:
            # Spread first polls over a band of quantiles: polling every task at one age
            # would tell us F at a single point, and the fit's tail would be guesswork.
            explore = self._rng.random() < self.explore
            jitter = self._rng.uniform(-0.05, 0.05)
            q = self._rng.uniform(0.4, 0.97) if explore else min(0.98, q + jitter)
        target = self.model.quantile(q, above=age) or age * 1.3
        if not contended and spare_gap is not None and age > 0:
            target = min(target, age + spare_gap)
        # Never creep: a task older than the fit expects is re-polled on a geometric schedule,
        # coarse while the budget is contended, fine (a few percent late at most) when not:
        # the last tasks of a run set its end, and they are the ones still being polled.
        growth = self.min_growth if contended else self.prompt_growth
        return max(target, age * growth, age + self.min_gap)

    def _cold(self, age: float, *, contended: bool) -> float:
        """Before the fit: a few tasks probe geometrically from ``first_poll``; while the
        budget is contended the others wait ``cold_factor`` times longer, so learning does
        not cost every early task half a dozen polls."""
        if age == 0:
            self._cold_tasks += 1
            if contended and self._cold_tasks > self.probe_tasks:
                return self.first_poll * self.cold_factor
        return max(self.first_poll, age * 1.6, age + self.min_gap)
