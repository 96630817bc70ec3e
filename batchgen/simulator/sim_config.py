"""The simulator's knobs: one frozen ``SimConfig`` holding a ``Fault`` per fault kind.

Every fault is decided against a 1-based *ordinal* of the requests (or tasks) it can apply to,
so a test can say "the 3rd one fails" (``Fault(at={3})``) and a demo can say "5% fail"
(``Fault(rate=0.05)``). The ordinal sequences are global (all tokens together):

* **api** faults (``storm``, ``refuse``, ``drop_before``, ``slow``, ``server_error``,
  ``html_body``, ``body_error``) count *admitted* API requests: authenticated
  ``POST /v1/generate`` and ``GET /v1/status`` requests that passed the rate limit.
* **submit** faults (``ambiguous``) count valid generate requests about to create a task.
* **task** faults (``unknown_status``, ``task_transient``, ``task_permanent``) count tasks created.
* **file** faults (``truncated``, ``expired``, ``unsized_cut``, ``short_copy``, ``wrong_type``)
  count downloads
  of an existing video.

When several faults fire on one request, the first in ``API_FAULT_PRECEDENCE`` wins; ``slow`` and
``refuse`` are modifiers that combine with whatever answer follows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, fields

from batchgen.config import DEMO_TOKEN, TIERS

__all__ = [
    "API_FAULTS",
    "API_FAULT_PRECEDENCE",
    "FAULT_NAMES",
    "FILE_FAULTS",
    "SUBMIT_FAULTS",
    "TASK_FAULTS",
    "WINDOW_KINDS",
    "Fault",
    "SimConfig",
]

WINDOW_KINDS: tuple[str, ...] = ("fixed", "sliding")

#: Faults that replace the answer of an admitted API request, strongest first.
API_FAULT_PRECEDENCE: tuple[str, ...] = (
    "storm",
    "drop_before",
    "server_error",
    "html_body",
    "body_error",
)
#: Every fault decided per admitted API request (the answering ones plus two modifiers).
API_FAULTS: tuple[str, ...] = ("refuse", "slow", *API_FAULT_PRECEDENCE)
SUBMIT_FAULTS: tuple[str, ...] = ("ambiguous",)
TASK_FAULTS: tuple[str, ...] = ("task_permanent", "task_transient", "unknown_status")
FILE_FAULTS: tuple[str, ...] = ("expired", "truncated", "unsized_cut", "short_copy", "wrong_type")
FAULT_NAMES: tuple[str, ...] = tuple(
    sorted((*API_FAULTS, *SUBMIT_FAULTS, *TASK_FAULTS, *FILE_FAULTS))
)


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault kind: fires at random with probability ``rate``, and always at the ordinals
    listed in ``at`` (1-based, counted over the requests or tasks the fault applies to)."""

    rate: float = 0.0
    at: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        # Accept any iterable (a set literal, a list) so tests read naturally.
        object.__setattr__(self, "at", frozenset(self.at))
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate}")
        if any(n < 1 for n in self.at):
            raise ValueError("fault ordinals in `at` are 1-based")

    @classmethod
    def schedule(cls, ordinals: Iterable[int]) -> Fault:
        """A fault that fires exactly at these ordinals and never at random."""
        return cls(at=frozenset(ordinals))

    @property
    def active(self) -> bool:
        """Whether this fault can ever fire."""
        return self.rate > 0.0 or bool(self.at)

    def fires(self, ordinal: int, rng: random.Random) -> bool:
        """Decide this fault for the ``ordinal``-th eligible request.

        The generator is drawn only when ``rate`` is non-zero, so enabling one random fault
        does not reshuffle the draws of a seeded run that had none.
        """
        if ordinal in self.at:
            return True
        return self.rate > 0.0 and rng.random() < self.rate


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything a ``Simulator`` does. Times are seconds; only task latencies are scaled."""

    tokens: frozenset[str] = frozenset({DEMO_TOKEN})
    rpm: int = TIERS["free"]  # requests per window, per token, generate + status together
    window: float = 60.0  # length of the rate window
    window_kind: str = "fixed"  # one of WINDOW_KINDS
    latency_median: float = 2.0  # task latency median before ``time_scale``; log-normal
    latency_sigma: float = 0.5  # spread of log(latency)
    time_scale: float = 1.0  # multiplies every task latency (tests use 0.01)
    queued_fraction: float = 0.2  # share of a task's latency reported as "queued"
    videos_per_task: tuple[int, int] = (1, 2)  # inclusive range of videos a task yields
    seed: int | None = None

    server_error: Fault = Fault()  # HTTP 500 with an error body
    body_error: Fault = Fault()  # HTTP 200 whose body says code 500
    html_body: Fault = Fault()  # an HTML page, alternately 502 and 200
    drop_before: Fault = Fault()  # reset before acting: nothing happened
    refuse: Fault = Fault()  # answer, then refuse connections a while
    ambiguous: Fault = Fault()  # POST creates the task, then resets
    slow: Fault = Fault()  # answer after ``slow_delay``
    truncated: Fault = Fault()  # download cut short after the headers
    expired: Fault = Fault()  # download answered 403/410 as expired
    unsized_cut: Fault = Fault()  # download without Content-Length or chunking, cut short
    wrong_type: Fault = Fault()  # a "Login required" HTML page (text/html) instead of the video
    # a CDN cache's cut copy served as whole: 200, part of the body, a Content-Length matching it
    short_copy: Fault = Fault()
    storm: Fault = Fault()  # the token gets 429 for ``storm_duration``
    unknown_status: Fault = Fault()  # undocumented status while running
    task_transient: Fault = Fault()  # fails with a retryable message
    task_permanent: Fault = Fault()  # fails with a content/type rejection

    slow_delay: float = 2.0
    storm_duration: float = 5.0
    refuse_duration: float = 0.05  # how long the listening socket stays closed
    truncate_fraction: float = 0.5  # share of the body sent before a truncated download closes
    link_ttl: float | None = None  # video links expire this long after the task completed
    failed_credits: int = 0  # consumed_credits a failed task reports (0: failures refunded)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", frozenset(self.tokens))
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        """The first inconsistency in this configuration, if any."""
        low, high = self.videos_per_task
        checks = (
            (bool(self.tokens) and all(self.tokens), "at least one non-empty token is needed"),
            (self.rpm >= 1, "rpm must be at least 1"),
            (self.window > 0, "window must be positive"),
            (self.window_kind in WINDOW_KINDS, f"window_kind must be one of {WINDOW_KINDS}"),
            (self.latency_median > 0, "latency_median must be positive"),
            (self.latency_sigma >= 0, "latency_sigma must not be negative"),
            (self.time_scale > 0, "time_scale must be positive"),
            (0.0 <= self.queued_fraction <= 1.0, "queued_fraction must be within [0, 1]"),
            (1 <= low <= high, "videos_per_task must be a range (min, max) with 1 <= min <= max"),
            (0.0 <= self.truncate_fraction < 1.0, "truncate_fraction must be within [0, 1)"),
            (
                min(self.slow_delay, self.storm_duration, self.refuse_duration) >= 0,
                "delays and durations must not be negative",
            ),
            (self.link_ttl is None or self.link_ttl >= 0, "link_ttl must not be negative"),
            (self.failed_credits >= 0, "failed_credits must not be negative"),
        )
        return next((message for ok, message in checks if not ok), None)

    def fault(self, name: str) -> Fault:
        """The ``Fault`` configured under ``name`` (one of ``FAULT_NAMES``)."""
        if name not in FAULT_NAMES:
            raise KeyError(name)
        value = getattr(self, name)
        assert isinstance(value, Fault)
        return value

    def draw_latency(self, rng: random.Random) -> float:
        """One task latency in (scaled) seconds: log-normal around ``latency_median``."""
        return rng.lognormvariate(math.log(self.latency_median), self.latency_sigma) * (
            self.time_scale
        )


def _check_fault_fields() -> None:
    """Guard: every fault name is a ``Fault`` field of ``SimConfig`` (caught at import)."""
    names = {f.name for f in fields(SimConfig) if f.type in ("Fault", Fault)}
    if names != set(FAULT_NAMES):
        raise RuntimeError(f"fault tables out of sync: {sorted(names ^ set(FAULT_NAMES))}")


_check_fault_fields()
