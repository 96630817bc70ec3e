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
clock; by default the moment they arrived, so first come first served) and only the earliest
one waits for the window. Requests are let through one per turn of the event loop, so a 429
or ``Remaining: 0`` that arrives in the middle of a burst stops the rest of it. (Letting every
waiter through in one pass was tried: with a client set to ten times the server's limit it
met 50 429s instead of 18 and ended 1.58 x LB instead of 1.09.)

The dispatcher gives a poll the deadline "when it is due plus the lag allowed", so while
submissions keep the budget busy they go first and a poll waits, up to that lag, for a moment
nothing else needs.

Other processes of the same account (``shared``, a ``batchgen.engine.pacing.window.SharedWindow``):
the request whose turn it is then asks the shared window, not the local count, for its slot,
with its deadline and the deadline of the next local waiter, so the account's window is
counted once for every process and its last free slot goes to the earliest deadline of the
account. The local count is still kept (for the figures), and server pauses stay local.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from batchgen.config import DEFAULT_SAFETY_MARGIN
from batchgen.engine.pacing.window import SharedWindow
from batchgen.errors import BatchgenError
from batchgen.providers.ratelimit import DEFAULT_RESET, RateInfo

__all__ = ["BATCH", "Throttle", "usable_limit"]

log = logging.getLogger(__name__)

#: Most slots one exchange with a shared window asks for (a burst's requests due together).
BATCH = 16
#: Seconds between the API's clock and ours worth a line in the log.
SKEW_WORTH_SAYING = 30.0


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
        margin: float = DEFAULT_SAFETY_MARGIN,
        clock: Callable[[], float] | None = None,
        shared: SharedWindow | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.usable = usable_limit(limit, margin)
        self._answered: deque[float] = deque()  # when requests of the last window finished
        self._freed = asyncio.Event()
        self._clock = clock
        self.resume_at = 0.0
        self.pauses = 0
        self._paused_at = -math.inf  # when the API last asked for a pause (``now()``)
        self.waiting = 0  # requests queued at the gate right now
        self.in_flight = 0
        self._queue: list[tuple[float, int, asyncio.Future[None]]] = []
        self._tickets = itertools.count()
        self._turn_taken = False
        self.shared = shared
        self.held_back = 0  # requests the shared window made wait although this process had room
        self.holding = False  # a request waits for the shared window right now
        self._shared_failed = False
        self._held_logged = -math.inf
        #: Given a server-requested pause (s), the part to honour: the dispatcher caps it by
        #: the run's deadline (and stops the run when the server asks for longer).
        self.cap_pause: Callable[[float], float] | None = None
        self._capped_logged = False
        self._skew_logged = False

    def now(self) -> float:
        """The clock pauses are measured on (the event loop's, unless one was injected)."""
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def per_second(self) -> float:
        """The steady rate the window allows this process (its share when others use it)."""
        sharers = self.shared.sharers if self.shared is not None else 0
        return self.usable / self.window / (1 + sharers)

    @asynccontextmanager
    async def slot(self, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Wait for permission to send one request; hold it while the request is out.

        Waiting requests are let through earliest ``deadline`` first (default: now).
        """
        self.waiting += 1
        deadline = self.now() if deadline is None else deadline
        try:
            await self._take_turn(deadline)
            try:
                if self.shared is None:
                    await self._acquire()
                else:
                    await self._acquire_shared(deadline)
            finally:
                self._turn_taken = False
                self._pass_turn()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._answered.append(self.now())
            if self.shared is not None:
                self.shared.answered()
            self._freed.set()

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
        """Wait until a pause is over and the window has room; then count this request."""
        while True:
            await self._wait_for_resume()
            now = self.now()
            if self._used(now) < self.usable:
                self.in_flight += 1
                return
            # Full: room comes when the oldest answer leaves the window, or a request ends.
            expiry = self._answered[0] + self.window - now if self._answered else None
            log.debug(
                "request limit in use (%d of %d in the last %.0f s): waiting up to %s for room",
                self._used(now),
                self.usable,
                self.window,
                "the next answer" if expiry is None else f"{expiry:.1f} s",
            )
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), expiry)

    async def _acquire_shared(self, deadline: float) -> None:
        """Like ``_acquire``, but the account's window (every process's) decides."""
        assert self.shared is not None
        held = False
        try:
            while True:
                await self._wait_for_resume()
                if self.shared.take_lease():
                    self.in_flight += 1
                    return
                now = self.now()
                want, count, after = self._batch(deadline, now)
                try:
                    verdict = await self.shared.acquire(
                        usable=self.usable,
                        window=self.window,
                        want=want - now,
                        after=None if after is None else after - now,
                        count=count,
                    )
                except BatchgenError as exc:
                    self._shared_failure(exc)
                    await asyncio.sleep(1.0)
                    continue
                self._shared_failed = False
                if verdict.granted:
                    self.in_flight += 1
                    return
                if not held:
                    held = True
                    self.holding = self._note_held(verdict.used, verdict.sharers, now)
                # Room comes when the oldest answer leaves the window; look again at least
                # every beat, as other processes come, go and change their deadlines.
                beat = self.shared.beat_every(self.window)
                delay = min(verdict.retry_in, beat) if verdict.retry_in > 0 else beat
                await asyncio.sleep(delay)
        finally:
            self.holding = False

    def _batch(self, deadline: float, now: float) -> tuple[float, int, float | None]:
        """What to ask the shared window for: the earliest deadline of this process (the
        turn holder's, or that of a request that queued behind it since, such as a submit
        behind a poll), how many slots (the turn holder's and those of the waiters already
        due, at most ``BATCH``) and the deadline of the first waiter after them, if any."""
        others = sorted(d for d, _, f in self._queue if not f.done())
        due = sum(1 for d in others[: BATCH - 1] if d <= now)
        first = min(deadline, others[0]) if others else deadline
        return first, 1 + due, others[due] if len(others) > due else None

    def _note_held(self, used: int, sharers: int, now: float) -> bool:
        """Count (and log, at most once a window) a request the other processes hold back;
        False when this process's own requests fill the window."""
        local = self._used(now)
        if local >= self.usable:
            return False
        self.held_back += 1  # it alone would have sent this request: the others hold it back
        if now - self._held_logged >= max(self.window, 1.0):
            self._held_logged = now
            log.debug(
                "the shared rate-limit window (%s) is full: %d of %d used by this and %d "
                "other process(es); this process has %d; waiting (%d held back so far)",
                self.shared.where if self.shared else "",
                used,
                self.usable,
                sharers,
                local,
                self.held_back,
            )
        return True

    def _shared_failure(self, exc: BatchgenError) -> None:
        if not self._shared_failed:
            self._shared_failed = True
            log.warning("%s; requests wait and try again every second", exc)

    def paused_lately(self) -> bool:
        """Whether the API asked for a pause that ended less than a window ago (or is still
        on): the account's real limit is then lower than the one this throttle counts with
        (or others use it unseen), and :meth:`capacity_within` overstates the room."""
        return self.now() < max(self._paused_at, self.resume_at) + self.window

    def capacity_within(self, horizon: float) -> float:
        """Requests the window lets through from now until ``horizon`` seconds from now
        (read-only; the poll planner measures its slack with it)."""
        now = self.now()
        still_counted = len(self._answered) - bisect.bisect_right(
            self._answered, now + horizon - self.window
        )
        room = self.usable - self.in_flight - still_counted
        return max(0.0, room + max(0.0, horizon - self.window) * self.per_second)

    def _used(self, now: float) -> int:
        horizon = now - self.window
        answered = self._answered
        while answered and answered[0] <= horizon:
            answered.popleft()
        return len(answered) + self.in_flight

    async def _wait_for_resume(self) -> None:
        # A loop, not an Event: the deadline may move further while we sleep.
        while (delay := self.resume_at - self.now()) > 0:
            log.debug("holding a request %.1f s: the API asked for a pause", delay)
            await asyncio.sleep(delay)

    def pause_for(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (extends, never shortens, a pause)."""
        if self.cap_pause is not None:
            seconds = self.cap_pause(seconds)
        self._paused_at = self.now()
        until = self._paused_at + max(0.0, seconds)
        if until > self.resume_at:
            if self.resume_at <= self.now():
                self.pauses += 1
                log.info("the API asked for a pause; holding all requests for %.1f s", seconds)
            self.resume_at = until

    def observe(self, rate: RateInfo, status: int) -> None:
        """Feed one response's rate information in (the ApiClient calls this).

        A 429 pauses for the server's hint (``Retry-After`` first, else the reset; default
        ``DEFAULT_RESET``); any answer with ``Retry-After`` pauses for it; ``Remaining: 0``
        pauses until the reset. The hints come clock-proof and capped from
        ``providers.ratelimit``; what was capped, and a server clock far from ours, are logged.
        """
        if status == 429:
            hint = rate.pause()
            seconds = hint if hint is not None else DEFAULT_RESET
        elif rate.retry_after is not None:  # honoured on every status that carries it
            seconds = rate.retry_after
        elif rate.remaining == 0:
            seconds = rate.reset_after if rate.reset_after is not None else DEFAULT_RESET
        else:
            return
        self._explain(rate)
        self.pause_for(seconds)

    def _explain(self, rate: RateInfo) -> None:
        """Log a capped hint (a warning the first time) and, once, a far-off server clock."""
        if rate.note is not None:
            (log.debug if self._capped_logged else log.warning)(
                "the API's pause was capped: %s", rate.note
            )
            self._capped_logged = True
        skew = rate.skew
        if skew is not None and abs(skew) >= SKEW_WORTH_SAYING and not self._skew_logged:
            self._skew_logged = True
            log.info(
                "the API's clock is %.0f s %s this machine's; its reset times are read on its "
                "own clock (its Date header)",
                abs(skew),
                "ahead of" if skew > 0 else "behind",
            )
