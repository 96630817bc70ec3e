"""The simulator's knobs: one frozen ``SimConfig`` holding a ``Fault`` per fault kind.

Every fault is decided against a 1-based *ordinal* of the requests (or tasks) it can apply to,
so a test can say "the 3rd one fails" (``Fault(at={3})``) and a demo can say "5% fail"
(``Fault(rate=0.05)``). The ordinal sequences are global (all tokens together):

* **api** faults (``storm``, ``refuse``, ``drop_before``, ``slow``, ``server_error``,
  ``html_body``, ``body_error``) count *admitted* API requests: authenticated
  ``POST /v1/generate`` and ``GET /v1/status`` requests that passed the rate limit.
* **submit** faults (``ambiguous``) count valid generate requests about to create a task.
* **task** faults (``unknown_status``, ``task_transient``, ``task_permanent``, and the xAI
  dialect's ``task_expired``, ``moderated``, ``cost_mismatch``, ``pending_200``) count tasks
  created.
* **file** faults (``truncated``, ``expired``, ``unsized_cut``, ``short_copy``, ``wrong_type``)
  count downloads
  of an existing video.

When several faults fire on one request, the first in ``API_FAULT_PRECEDENCE`` wins; ``slow`` and
``refuse`` are modifiers that combine with whatever answer follows.

``provider`` picks the dialect the simulator speaks (``PROVIDERS``): ``grokimagine``, the
reseller of ``../shared/grokimagine-api.md`` (the default), or ``xai``, xAI's own video API of
``../shared/xai-video-api.md``. Faults, tasks, the CDN and the stats are shared; a few knobs
(``XAI_ONLY_FAULTS``, ``rps``, ``retry_after``, ``upload_max_bytes``, ``cost_mismatch_factor``,
``bill_failures``) mean something only to the xAI dialect.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Set
from dataclasses import dataclass, fields

from batchgen.config import DEMO_TOKEN, TIERS

__all__ = [
    "API_FAULTS",
    "API_FAULT_PRECEDENCE",
    "FAULT_NAMES",
    "FILE_FAULTS",
    "PROVIDERS",
    "SUBMIT_FAULTS",
    "TASK_FAULTS",
    "WINDOW_KINDS",
    "XAI_LINK_TTL",
    "XAI_ONLY_FAULTS",
    "Fault",
    "SimConfig",
]

WINDOW_KINDS: tuple[str, ...] = ("fixed", "sliding")
#: The dialects a simulator speaks: the reseller's (default) and xAI's own.
PROVIDERS: tuple[str, ...] = ("grokimagine", "xai")
#: How long an xAI video link lives: 24 hours (xai-video-api.md section 7, from the SDK).
XAI_LINK_TTL = 24 * 3600.0

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
#: Task faults whose outcome only xAI's answers can express.
XAI_ONLY_FAULTS: tuple[str, ...] = ("cost_mismatch", "moderated", "pending_200", "task_expired")
TASK_FAULTS: tuple[str, ...] = (
    "task_permanent",
    "task_transient",
    "unknown_status",
    *XAI_ONLY_FAULTS,
)
FILE_FAULTS: tuple[str, ...] = ("expired", "truncated", "unsized_cut", "short_copy", "wrong_type")
FAULT_NAMES: tuple[str, ...] = tuple(
    sorted((*API_FAULTS, *SUBMIT_FAULTS, *TASK_FAULTS, *FILE_FAULTS))
)


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault kind: fires at random with probability ``rate``, and always at the ordinals
    listed in ``at`` (1-based, counted over the requests or tasks the fault applies to)."""

    rate: float = 0.0
    at: Set[int] = frozenset()  # any set of ordinals; kept as a frozenset

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
    """Everything a ``Simulator`` does. Times are seconds; only task latencies are scaled.

    The rate limit is ``rpm`` requests per ``window`` for the reseller and ``rps`` requests per
    second for xAI (``rate_limit`` gives the pair in force); either way it is kept per *account*:
    each token alone, unless ``teams`` puts several tokens in one account (xAI: a team).
    """

    provider: str = "grokimagine"  # one of PROVIDERS: the dialect spoken
    tokens: frozenset[str] = frozenset({DEMO_TOKEN})
    teams: tuple[frozenset[str], ...] = ()  # groups of tokens that share one rate window
    rpm: int = TIERS["free"]  # grokimagine: requests per window, per account, all API calls
    window: float = 60.0  # grokimagine: length of the rate window
    rps: int = 1  # xai: requests per second per team, all API calls (status, uploads too)
    rps_window: float = 1.0  # xai: the seconds ``rps`` is counted over (benchmarks shrink it)
    retry_after: bool = False  # xai: send Retry-After on 429 (xAI documents no header)
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
    task_expired: Fault = Fault()  # xai: the request ends ``expired``, no video
    moderated: Fault = Fault()  # xai: ``done`` with respect_moderation false and no url
    cost_mismatch: Fault = Fault()  # xai: reported cost = table price x cost_mismatch_factor
    pending_200: Fault = Fault()  # xai: ``pending`` answered with HTTP 200 instead of 202

    slow_delay: float = 2.0
    storm_duration: float = 5.0
    refuse_duration: float = 0.05  # how long the listening socket stays closed
    truncate_fraction: float = 0.5  # share of the body sent before a truncated download closes
    link_ttl: float | None = None  # video links expire this long after the task completed
    # (None: grokimagine links never expire, xai links after XAI_LINK_TTL)
    failed_credits: int = 0  # consumed_credits a failed task reports (0: failures refunded)
    bill_failures: bool = False  # xai: failed and expired requests are billed at table price
    cost_mismatch_factor: float = 1.5  # xai: reported cost / table price under cost_mismatch
    upload_max_bytes: int = 50_000_000  # xai: POST /v1/files larger than this is 413 (50 MB)
    # xai: serve clips of each request's duration, aspect ratio and resolution (``clips``)
    # instead of the one-second placeholder (on in ``batchgen simulate`` and ``demo``)
    sized_clips: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", frozenset(self.tokens))
        object.__setattr__(self, "teams", tuple(frozenset(team) for team in self.teams))
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
            (self.provider in PROVIDERS, f"provider must be one of {PROVIDERS}"),
            (self.rps >= 1, "rps must be at least 1"),
            (self.rps_window > 0, "rps_window must be positive"),
            (self.upload_max_bytes >= 1, "upload_max_bytes must be at least 1"),
            (self.cost_mismatch_factor >= 0, "cost_mismatch_factor must not be negative"),
            (self._teams_problem() is None, self._teams_problem() or ""),
            (self.provider == "xai" or not self._xai_faults(), self._xai_only_message()),
        )
        return next((message for ok, message in checks if not ok), None)

    def _teams_problem(self) -> str | None:
        members = [token for team in self.teams for token in team]
        if len(members) != len(set(members)):
            return "a token may belong to one team only"
        if not set(members) <= self.tokens:
            return "every team member must be one of the accepted tokens"
        return None

    def _xai_faults(self) -> list[str]:
        return [name for name in XAI_ONLY_FAULTS if getattr(self, name).active]

    def _xai_only_message(self) -> str:
        return f"faults {', '.join(self._xai_faults())} need provider='xai'"

    @property
    def rate_limit(self) -> tuple[int, float]:
        """The limit in force: (requests, per this many seconds), per account."""
        if self.provider == "xai":
            return self.rps, self.rps_window
        return self.rpm, self.window

    @property
    def video_link_ttl(self) -> float | None:
        """Seconds a video link lives after its task finished (None: forever)."""
        if self.link_ttl is None and self.provider == "xai":
            return XAI_LINK_TTL
        return self.link_ttl

    def team_of(self, token: str) -> frozenset[str]:
        """The tokens that share ``token``'s rate window (``token`` alone if in no team)."""
        return next((team for team in self.teams if token in team), frozenset({token}))

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
