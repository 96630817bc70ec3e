"""What task latencies look like: a log-normal fit to interval-censored observations.

Every poll is a request, so what we observe of a task's latency L is an interval: the last poll
that found it running (``lo``) and the poll that found it done (``hi``), so ``lo < L <= hi``; a
task still running only tells us ``L > lo`` (right-censored). ``LatencyModel`` fits a
log-normal distribution to both kinds by expectation-maximisation (the censored parts are
replaced by their expected values under the current fit), so it is fooled neither by polling
late (a naive "time until the done poll" makes every polled-late task look slow) nor by the
fast tasks of a run finishing first (the tasks still running pull the fit up).

Before anything is known the fit is a **prior**: log-normal with median ``PRIOR_MEDIAN_POLLS``
times the first poll (60 s at the default ``--first-poll`` of 5 s: GrokImagine's videos take
about a minute) and sigma ``PRIOR_SIGMA``, worth ``PRIOR_WEIGHT`` tasks. It fades as tasks
finish (gone after ``PRIOR_FADE`` completions), so a vendor much faster or slower than the
prior moves the fit after a handful of tasks; tasks still running older than the prior's
median push it up before any has finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "FIRST_POLL_FLOOR",
    "PRIOR_FADE",
    "PRIOR_MEDIAN_POLLS",
    "PRIOR_SIGMA",
    "PRIOR_WEIGHT",
    "LatencyModel",
    "Observation",
]

PRIOR_MEDIAN_POLLS = 12.0
PRIOR_SIGMA = 0.5
PRIOR_WEIGHT = 2.0
PRIOR_FADE = 20
#: while no task was ever seen running (no lower bound at all: every interval is "done by t",
#: whose likelihood grows without end as the fit shrinks), a task found done at age t is
#: taken to have needed at least t / 10
FIRST_POLL_FLOOR = 0.1

_STD = NormalDist()
_EPS = 1e-9
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: the prior's pseudo-observations sit at these quantiles of the prior distribution
_PRIOR_POINTS = tuple(_STD.inv_cdf((i + 0.5) / 6) for i in range(6))


@dataclass(frozen=True, slots=True)
class Observation:
    """One task's latency interval in seconds: ``lo < L <= hi``."""

    lo: float  # 0 when the first poll already found the task done
    hi: float  # math.inf while the task is still running


class LatencyModel:
    """A log-normal fit (``mu``, ``sigma`` of ln L, L in seconds) to task latency intervals.

    ``prior_median`` (seconds) and ``prior_sigma`` give the fit before any task has finished.
    """

    def __init__(
        self,
        *,
        prior_median: float = 60.0,
        prior_sigma: float = PRIOR_SIGMA,
        max_samples: int = 400,
        max_running: int = 200,
        refit_every: int = 10,
    ) -> None:
        self._done: list[Observation] = []
        self._next = 0  # ring-buffer index once ``_done`` is full
        self._max_samples = max_samples
        self._max_running = max_running
        self._running: dict[str, float] = {}  # task -> age last seen running (seconds)
        self._refit_every = refit_every
        self._events = 0
        self.completions = 0  # tasks observed finished, seeded ones included
        self.prior_mu = math.log(max(prior_median, _EPS))
        self.prior_sigma = prior_sigma
        self.mu = self.prior_mu
        self.sigma = prior_sigma

    @property
    def count(self) -> int:
        """Finished tasks held in the sample."""
        return len(self._done)

    @property
    def running(self) -> int:
        """Tasks seen running and not yet finished."""
        return len(self._running)

    def samples(self) -> list[Observation]:
        """The finished tasks' intervals held (at most ``max_samples``, the most recent)."""
        return list(self._done)

    def seed(self, observations: Iterable[Observation | float]) -> None:
        """Latencies known from earlier runs: intervals, or points (seconds)."""
        for item in observations:
            obs = item if isinstance(item, Observation) else Observation(item * 0.999, item)
            if obs.hi > 0 and obs.hi > obs.lo:
                self._add(obs)
        self.fit()

    def saw_running(self, task: str, age: float) -> None:
        """Task ``task`` was found running at ``age`` seconds."""
        self._running[task] = age
        self._tick()

    def observe(self, lo: float, hi: float, *, task: str | None = None) -> None:
        """A task found done at age ``hi`` after being seen running at age ``lo``."""
        if task is not None:
            self._running.pop(task, None)
        self._add(Observation(max(0.0, lo), max(hi, lo + _EPS)))
        self._tick()

    def forget(self, task: str) -> None:
        """A task that ended without a usable latency (failed, given up)."""
        self._running.pop(task, None)

    def _add(self, obs: Observation) -> None:
        self.completions += 1
        if len(self._done) < self._max_samples:
            self._done.append(obs)
        else:
            self._done[self._next] = obs
            self._next = (self._next + 1) % self._max_samples

    def _tick(self) -> None:
        # Refit as the evidence grows by a fifth: cheap, and the fit changes slowly by then;
        # at every event while the prior still counts (a cold start must learn fast).
        self._events += 1
        every = 1 if self.completions < PRIOR_FADE else self._refit_every
        if self._events >= max(every, (self.count + self.running) // 5):
            self.fit()

    def fit(self, iterations: int = 30, tolerance: float = 1e-3) -> None:
        """Refit (mu, sigma) by EM from the previous fit, until neither moves by ``tolerance``
        (a tenth of a percent of a latency) or after ``iterations`` steps."""
        self._events = 0
        data = self._weighted()
        if not data:
            return
        mu, sigma = self.mu, self.sigma
        for _ in range(iterations):
            new_mu, new_sigma = _em_step(data, mu, sigma)
            moved = max(abs(new_mu - mu), abs(new_sigma - sigma))
            mu, sigma = new_mu, new_sigma
            if moved < tolerance:
                break
        self.mu, self.sigma = mu, min(max(sigma, 0.05), 2.0)

    def _weighted(self) -> list[tuple[float, float, float]]:
        """(ln lo, ln hi, weight) of every observation the fit uses; the prior's share."""
        floor = 0.0 if self._running or any(o.lo > 0 for o in self._done) else FIRST_POLL_FLOOR
        data = [(_log(max(o.lo, o.hi * floor)), _log(o.hi), 1.0) for o in self._done]
        ages = list(self._running.values())
        if len(ages) > self._max_running:  # an even subsample: dropping by age would bias
            step = len(ages) / self._max_running
            ages = [ages[int(i * step)] for i in range(self._max_running)]
        data += [(_log(age), math.inf, 1.0) for age in ages]
        fade = max(0.0, 1.0 - self.completions / PRIOR_FADE)
        if fade > 0:
            weight = PRIOR_WEIGHT * fade / len(_PRIOR_POINTS)
            for z in _PRIOR_POINTS:
                x = self.prior_mu + self.prior_sigma * z
                data.append((x - 1e-3, x, weight))
        return data

    def cdf(self, t: float) -> float:
        """P(L <= t) under the fit."""
        if t <= 0:
            return 0.0
        return _phi((math.log(t) - self.mu) / self.sigma)

    def quantile(self, q: float, *, above: float = 0.0) -> float:
        """The latency t with P(L <= t | L > above) = q (seconds, at least ``above``)."""
        floor = self.cdf(above)
        target = min(1 - 1e-9, floor + q * (1.0 - floor))
        return max(math.exp(self.mu + self.sigma * _STD.inv_cdf(target)), above)


def _log(x: float) -> float:
    if x <= 0:
        return -math.inf
    return math.log(x)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / _SQRT2))


def _pdf(z: float) -> float:
    return 0.0 if math.isinf(z) else _INV_SQRT_2PI * math.exp(-0.5 * z * z)


def _em_step(
    data: list[tuple[float, float, float]], mu: float, sigma: float
) -> tuple[float, float]:
    total = total_sq = weights = 0.0
    for lo, hi, weight in data:
        mean, second = _truncated_moments(lo, hi, mu, sigma)
        total += weight * mean
        total_sq += weight * second
        weights += weight
    new_mu = total / weights
    return new_mu, math.sqrt(max(total_sq / weights - new_mu**2, 1e-4))


def _truncated_moments(lo: float, hi: float, mu: float, sigma: float) -> tuple[float, float]:
    """E[X] and E[X^2] of X ~ N(mu, sigma) restricted to (lo, hi] (logs of seconds)."""
    a = (lo - mu) / sigma
    b = (hi - mu) / sigma
    mass = _phi(b) - _phi(a) if b > a else 0.0
    if mass < 1e-12:  # the interval lies far out in a tail: take its nearest finite end
        x = hi if b < 0 or a == -math.inf else lo
        return x, x * x
    pa, pb = _pdf(a), _pdf(b)
    shift = (pa - pb) / mass
    spread = ((0.0 if math.isinf(a) else a * pa) - (0.0 if math.isinf(b) else b * pb)) / mass
    mean = mu + sigma * shift
    var = sigma * sigma * (1 + spread - shift * shift)
    return mean, var + mean * mean
