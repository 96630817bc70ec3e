"""The run's clock rules: the deadline, the grace period, server pauses and the outage rule.

* ``--max-runtime``: at the deadline no new submission starts; polls and downloads go on for
  ``--grace``; at deadline + grace the run halts and every request still in flight is
  cancelled (its row stays resumable).
* A server pause (``Retry-After``, ``X-RateLimit-Reset``) is honoured only up to the end of
  the run: one that would outlive the deadline stops submissions; one that would outlive
  deadline + grace halts the run at once (exit 5) with a message saying what the vendor
  asked for. Without a deadline, a pause longer than ``--outage-timeout`` does the same.
* The outage rule: when no API request has succeeded for ``--outage-timeout`` (or, before any
  request of the run has succeeded, for ``connect_window``, about 30 s), the run halts
  (exit 6): nothing is marked failed, a WARNING names the host, how long and the last error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from enum import StrEnum

from batchgen.config import Settings
from batchgen.providers.base import Provider

__all__ = ["Guard", "StopReason", "human_duration", "time_left_until_end"]

log = logging.getLogger(__name__)


class StopReason(StrEnum):
    """Why a run stopped before it ran out of work."""

    BUDGET = "budget"
    DEADLINE = "deadline"
    SIGNAL = "signal"
    AUTH = "auth"
    OUTAGE = "outage"
    DISK_FULL = "disk full"
    STATE_BUSY = "state busy"  # another program held the state's write lock past the deadline
    NO_ENDPOINT = "no such endpoint"  # a POST met a 404 page: wrong base URL or provider


#: ``stop(reason, halt)``: stop submitting; with ``halt`` also cancel everything in flight.
StopHook = Callable[[StopReason, bool], None]


def time_left_until_end(settings: Settings) -> Callable[[], float | None]:
    """Seconds until deadline + grace from now (None: no deadline), on the monotonic clock:
    every API request's total time limit is capped by it."""
    if settings.limits.max_runtime is None:
        return lambda: None
    end = time.monotonic() + settings.limits.max_runtime + settings.limits.grace
    return lambda: end - time.monotonic()


def human_duration(seconds: float) -> str:
    """``95`` -> ``1m35s``; ``86400`` -> ``24h00m``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Guard:
    """Applies the rules above to one run; times are on ``now`` (the throttle's clock)."""

    def __init__(
        self, settings: Settings, api: Provider, now: Callable[[], float], stop: StopHook
    ) -> None:
        self.settings = settings
        self.api = api
        self.now = now
        self._stop = stop
        self.started = 0.0
        self.message: str | None = None  # why the run stopped early, in plain words

    def start(self) -> None:
        """The run starts now."""
        self.started = self.now()

    @property
    def deadline(self) -> float | None:
        """When submissions stop (None: no ``--max-runtime``)."""
        runtime = self.settings.limits.max_runtime
        return None if runtime is None else self.started + runtime

    @property
    def hard_end(self) -> float | None:
        """When everything stops: the deadline plus the grace period."""
        deadline = self.deadline
        return None if deadline is None else deadline + self.settings.limits.grace

    def time_to_deadline(self) -> float | None:
        """Seconds until submissions stop (None: no deadline)."""
        deadline = self.deadline
        return None if deadline is None else deadline - self.now()

    def time_to_end(self) -> float | None:
        """Seconds until the run halts (None: no deadline)."""
        end = self.hard_end
        return None if end is None else end - self.now()

    # ------------------------------------------------------------------ server pauses
    def cap_pause(self, seconds: float) -> float:
        """The part of a server-requested pause the run can honour (the throttle's hook)."""
        now = self.now()
        end = self.hard_end
        limit = end - now if end is not None else self.settings.api.outage_timeout
        asked = f"the API at {self.api.host} asked to hold all requests for {seconds:.0f} s"
        if seconds > limit:
            why = (
                "past the deadline (--max-runtime + --grace)"
                if end
                else "longer than --outage-timeout"
            )
            self._report(f"{asked} (Retry-After / X-RateLimit-Reset), {why}: stopping now")
            self._stop(StopReason.DEADLINE, True)
            return max(0.0, limit)
        deadline = self.deadline
        if deadline is not None and now + seconds > deadline:
            self._report(f"{asked}, past the --max-runtime deadline: no new submissions")
            self._stop(StopReason.DEADLINE, False)
        return seconds

    def _report(self, message: str) -> None:
        if self.message is None:
            self.message = message
            log.warning("%s; a re-run continues", message)

    # ------------------------------------------------------------------ watchers
    async def watch_deadline(self) -> None:
        """Stop submissions at the deadline; halt at deadline + grace."""
        if self.settings.limits.max_runtime is None:
            return
        await asyncio.sleep(max(0.0, self.time_to_deadline() or 0.0))
        log.warning("the --max-runtime deadline has passed: no new submissions")
        self._stop(StopReason.DEADLINE, False)
        await asyncio.sleep(max(0.0, self.time_to_end() or 0.0))
        log.warning(
            "the grace period is over: cancelling requests in flight; "
            "their rows are left for the next run"
        )
        self._stop(StopReason.DEADLINE, True)

    def outage_limit(self) -> float:
        """Seconds of failing requests that make an outage (shorter before any success)."""
        timeout = self.settings.api.outage_timeout
        if self.api.health.ever_reached:
            return timeout
        return min(timeout, self.settings.api.connect_window)

    async def watch_outage(self) -> None:
        """Halt the run when the API has not answered usefully for too long."""
        health = self.api.health
        while True:
            limit = self.outage_limit()
            await asyncio.sleep(max(0.05, min(1.0, limit / 10)))
            down = health.down_for(self.api.clock())
            if health.failing_since is not None and down >= self.outage_limit():
                break
        first = "" if health.ever_reached else " (no request of this run ever got through)"
        self.message = (
            f"the API at {self.api.host} could not be reached for {human_duration(down)}"
            f"{first}; last error: {health.last_error}"
        )
        log.warning(
            "%s. Stopping: rows in flight stay as they are; a re-run continues", self.message
        )
        self._stop(StopReason.OUTAGE, True)
