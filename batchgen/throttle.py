"""One account-wide request throttle: aiolimiter for pacing, server feedback for pauses.

aiolimiter's leaky bucket starts empty, so ``AsyncLimiter(R, 60)`` lets R requests through at
once and then R more over the next minute: about 2R in the first 60 seconds. We use a *small*
bucket instead: ``burst`` requests per ``window * burst / rate`` seconds. In any interval of
length T it admits at most ``burst + rate * T / window`` requests, so any window of ``window``
seconds sees at most ``burst + rate``, which is kept at ``limit * (1 - margin)``.

A 429, or a response saying ``X-RateLimit-Remaining: 0``, moves one shared ``resume_at``
deadline forward (never back) and every request waits for it, so no request slips through
during a pause the server asked for.

Who goes next is decided here, not by aiolimiter: requests queue by a *deadline* (a time on the
throttle's clock; by default the moment they arrived, so first come first served) and only the
earliest one waits in the limiter. The dispatcher gives a poll the deadline "when it is due
plus the lag allowed", so while submissions keep the budget busy they go first and a poll
waits, up to that lag, for a moment nothing else needs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from batchgen.api import DEFAULT_RESET, RateInfo

__all__ = ["Throttle", "bucket_shape"]

log = logging.getLogger(__name__)


def bucket_shape(limit: int, margin: float) -> tuple[int, float]:
    """(burst, rate per window) such that burst + rate <= limit * (1 - margin)."""
    usable = limit * (1.0 - margin)
    if usable < 2:
        # A bucket of one: admissions are spaced a little more than a window apart.
        return 1, 0.999
    # A bucket of a few requests absorbs the event loop's hiccups (a request that is let
    # through late cannot bank the lost time otherwise); 50 at most keeps bursts polite.
    burst = max(1, min(50, int(usable // 30)))
    return burst, usable - burst


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
        self.burst, self.rate = bucket_shape(limit, margin)
        self._limiter = AsyncLimiter(self.burst, window * self.burst / self.rate)
        self._clock = clock
        self.resume_at = 0.0
        self.pauses = 0
        self.waiting = 0  # requests queued at the gate right now
        self.in_flight = 0
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()
        self._turn_taken = False

    def now(self) -> float:
        """The clock pauses are measured on (the event loop's, unless one was injected)."""
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def per_second(self) -> float:
        """The steady rate the limiter allows."""
        return self.rate / self.window

    @asynccontextmanager
    async def slot(self, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Wait for permission to send one request; hold it while the request is out.

        Waiting requests are let through earliest ``deadline`` first (default: now).
        """
        self.waiting += 1
        try:
            await self._take_turn(self.now() if deadline is None else deadline)
            try:
                await self._acquire()
            finally:
                self._turn_taken = False
                self._pass_turn()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def _take_turn(self, deadline: float) -> None:
        """Queue by ``deadline`` until it is this request's turn at the limiter."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (deadline, next(self._tickets), turn))
        self._pass_turn()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed the turn as it was cancelled
                self._turn_taken = False
                self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        while not self._turn_taken and self._queue:
            turn = heapq.heappop(self._queue)[2]
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)
                self._turn_taken = True

    async def _acquire(self) -> None:
        while True:
            await self._wait_for_resume()
            await self._limiter.acquire()
            if self.now() >= self.resume_at:
                return
            # A pause began while we waited for the bucket: the token is spent, which only
            # makes us more conservative; wait out the pause and queue again.

    async def _wait_for_resume(self) -> None:
        # A loop, not an Event: the deadline may move further while we sleep.
        while (delay := self.resume_at - self.now()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)

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
