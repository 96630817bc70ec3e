"""Per-account rate limiting: a fixed or a sliding window, plus 429 storms; one ``Account`` for
each token, or for each team of tokens (``SimConfig.teams``).

Only admitted requests use up the budget: a request answered 429 does not push the
window further out (the simulator still counts it in ``SimStats.max_window``).

``X-RateLimit-Reset`` is the number of whole seconds (rounded up) until ``Remaining`` grows:
for a fixed window, until the window ends; for a sliding one, until the oldest counted request
leaves it; during a storm, until the storm ends. With nothing counted it is the window length.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from batchgen.simulator.stats import PeakWindow, token_label

__all__ = [
    "Account",
    "FixedWindow",
    "RateWindow",
    "SlidingWindow",
    "TokenGate",
    "Verdict",
    "accounts",
    "make_window",
    "rate_headers",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The rate limiter's answer for one request, with the header values to send."""

    allowed: bool
    remaining: int
    reset: float  # seconds until Remaining grows

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (integer seconds, rounded up)."""
        return rate_headers(self.remaining, self.reset)


def rate_headers(remaining: int, reset: float) -> dict[str, str]:
    """The two rate headers every API response carries."""
    return {
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": str(max(math.ceil(reset), 0)),
    }


class FixedWindow:
    """``limit`` requests per window; a window opens at the first request after the last one
    ended, and all of its budget comes back at once when it ends."""

    __slots__ = ("_count", "_start", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._start = -math.inf
        self._count = 0

    def admit(self, now: float) -> Verdict:
        """Count one request at ``now`` if the budget allows."""
        if now >= self._start + self.window:
            self._start, self._count = now, 0
        reset = self._start + self.window - now
        if self._count >= self.limit:
            return Verdict(False, 0, reset)
        self._count += 1
        return Verdict(True, self.limit - self._count, reset)


class SlidingWindow:
    """At most ``limit`` admitted requests in any ``window`` seconds (a log of timestamps)."""

    __slots__ = ("_log", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._log: deque[float] = deque()

    def _expire(self, now: float) -> None:
        log, horizon = self._log, now - self.window
        while log and log[0] <= horizon:
            log.popleft()

    def admit(self, now: float) -> Verdict:
        """Count one request at ``now`` if fewer than ``limit`` were admitted in the window."""
        self._expire(now)
        log = self._log
        if len(log) >= self.limit:
            return Verdict(False, 0, log[0] + self.window - now)
        log.append(now)
        return Verdict(True, self.limit - len(log), log[0] + self.window - now)


RateWindow = FixedWindow | SlidingWindow


def make_window(kind: str, limit: int, window: float) -> RateWindow:
    """A ``FixedWindow`` or a ``SlidingWindow``."""
    if kind == "sliding":
        return SlidingWindow(limit, window)
    return FixedWindow(limit, window)


class TokenGate:
    """Everything rate-related for one token: its window and any 429 storm in progress."""

    __slots__ = ("storm_until", "window")

    def __init__(self, window: RateWindow) -> None:
        self.window = window
        self.storm_until = -math.inf

    def admit(self, now: float) -> Verdict:
        """Storms answer first; otherwise the window decides."""
        if now < self.storm_until:
            return Verdict(False, 0, self.storm_until - now)
        return self.window.admit(now)

    def start_storm(self, now: float, duration: float) -> Verdict:
        """Begin a 429 storm at ``now``; returns the verdict for the request that started it."""
        self.storm_until = max(self.storm_until, now + duration)
        return Verdict(False, 0, self.storm_until - now)


class Account:
    """One account's rate state (a token, or a team of tokens that share one window): its
    gate, and the peak of its arrivals for the stats.

    ``token`` is the account's key (its smallest token: what owns its tasks); ``labels`` are
    the ``token_label`` of every member, under which the stats record its peak.
    """

    __slots__ = ("gate", "label", "labels", "peak", "token")

    def __init__(self, tokens: Iterable[str], *, kind: str, limit: int, window: float) -> None:
        members = sorted(tokens)
        self.token = members[0]
        self.label = token_label(self.token)
        self.labels = tuple(token_label(token) for token in members)
        self.gate = TokenGate(make_window(kind, limit, window))
        self.peak = PeakWindow(window)


def accounts(
    tokens: Iterable[str], teams: Iterable[frozenset[str]], *, kind: str, limit: int, window: float
) -> dict[str, Account]:
    """Every accepted token's ``Account``: one shared by the members of each team, one of its
    own for any other token."""
    found: dict[str, Account] = {}
    for team in teams:
        shared = Account(team, kind=kind, limit=limit, window=window)
        found.update(dict.fromkeys(team, shared))
    for token in tokens:
        if token not in found:
            found[token] = Account((token,), kind=kind, limit=limit, window=window)
    return found
