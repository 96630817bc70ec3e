"""One account-wide request throttle: an exact sliding window, plus server feedback.

The vendor allows R requests per minute. A request is let through only while fewer than
``usable = R * (1 - margin)`` requests are either still in flight or finished within the last
``window`` seconds. Counting a request until ``window`` after its *answer* came back (not after
it was sent) makes the rule hold at the server too, however the network delays requests: any
request the server saw within a window before a new one arrives was, when the new one was let
through, either still in flight or answered within that window. So the first minute may carry
a full minute's requests at once (a big manifest's first submits all go out together), and no
60 seconds ever carry more than ``usable``.

Why not aiolimiter, which the project used first: a leaky bucket cannot say "R per sliding
minute". ``AsyncLimiter(R, 60)`` starts empty and lets about 2R through in the first minute;
a small bucket (``burst + rate <= R``) never passes the limit but never lets a burst through
either: at 1000 requests a minute the 1000th submit went out a minute late, and the benchmark's
pro-tier runs ended 13-16% after the lower bound, against 2-4% with this window.

A 429, or a response saying ``X-RateLimit-Remaining: 0``, moves one shared ``resume_at``
deadline forward (never back) and every request waits for it, so no request slips through
during a pause the server asked for.

Who goes next is decided here too: requests queue by a *deadline* (a time on the throttle's
clock; by default the moment they arrived, so first come first served), and whenever there is
room the earliest goes. The dispatcher gives a poll the deadline "when it is due plus the
lag allowed", so while submissions keep the budget busy they go first and a poll waits, up to
that lag, for a moment nothing else needs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from batchgen.api import DEFAULT_RESET, RateInfo

__all__ = ["Throttle", "usable_limit"]

log = logging.getLogger(__name__)


def usable_limit(limit: int, margin: float) -> int:
    """Requests let through per window: the limit less the margin, at least one."""
    return max(1, int(limit * (1.0 - margin)))


class Throttle:
    """The one gate every API request of the process passes through."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = 60.0,
        margin: float = 0.02,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.usable = usable_limit(limit, margin)
        self._answered: deque[float] = deque()  # when requests of the last window finished
        self._clock = clock
        self.resume_at = 0.0
        self.pauses = 0
        self.waiting = 0  # requests queued at the gate right now
        self.in_flight = 0
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    def now(self) -> float:
        """The clock pauses are measured on (the event loop's, unless one was injected)."""
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def per_second(self) -> float:
        """The steady rate the window allows."""
        return self.usable / self.window

    @asynccontextmanager
    async def slot(self, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Wait for permission to send one request; hold it while the request is out.

        Whenever there is room, the waiting request with the earliest ``deadline`` (default:
        the moment it arrived) goes.
        """
        self.waiting += 1
        try:
            await self._admission(self.now() if deadline is None else deadline)
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._answered.append(self.now())
            self._admit()

    async def _admission(self, deadline: float) -> None:
        admitted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (deadline, next(self._tickets), admitted))
        self._admit()
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():  # let in as it was cancelled
                self.in_flight -= 1
                self._admit()
            raise

    def _admit(self) -> None:
        """Let waiting requests in, earliest deadline first, while a pause is not on and the
        window has room; otherwise look again when that changes."""
        now = self.now()
        while self._queue:
            if now < self.resume_at:
                self._look_again(self.resume_at - now)
                return
            if self._used(now) >= self.usable:
                if self._answered:  # else a request in flight ends first and calls us
                    self._look_again(self._answered[0] + self.window - now)
                return
            admitted = heapq.heappop(self._queue)[2]
            if not admitted.done():  # a cancelled waiter is skipped
                self.in_flight += 1
                admitted.set_result(None)

    def _look_again(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.0), self._admit)

    def _used(self, now: float) -> int:
        horizon = now - self.window
        answered = self._answered
        while answered and answered[0] <= horizon:
            answered.popleft()
        return len(answered) + self.in_flight

    def pause_for(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (extends, never shortens, a pause)."""
        until = self.now() + max(0.0, seconds)
        if until > self.resume_at:
            if self.resume_at <= self.now():
                self.pauses += 1
                log.info("the API asked for a pause; holding all requests for %.1f s", seconds)
            self.resume_at = until

    def observe(self, rate: RateInfo, status: int) -> None:
        """Feed one response's rate information in (the ApiClient calls this)."""
        if status == 429:
            hint = rate.pause()
            self.pause_for(hint if hint is not None else DEFAULT_RESET)
        elif rate.remaining == 0:
            self.pause_for(rate.reset_after if rate.reset_after is not None else DEFAULT_RESET)
