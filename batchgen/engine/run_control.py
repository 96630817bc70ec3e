"""What the stages of one run share: why and how far it is stopping, the wake-up call, and the
slot every API request goes through.

The dispatcher owns one ``RunControl``; the submit and poll stages read its flags, wait on its
wake-up event, and send each request inside :meth:`RunControl.api_slot`. A stop only ever
grows: submissions stop first (a budget, a deadline), then everything (a signal, a refused
token, a full disk, a halt after the deadline's grace or an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from batchgen.engine.guards import StopReason
from batchgen.engine.pacing.throttle import Throttle
from batchgen.errors import ApiError, AuthError
from batchgen.models import TaskStatus
from batchgen.providers.base import Provider

__all__ = ["RunControl"]

log = logging.getLogger(__name__)

#: Reasons that stop everything, not only submissions.
_HARD = (StopReason.SIGNAL, StopReason.AUTH, StopReason.DISK_FULL, StopReason.STATE_BUSY)


class RunControl:
    """The run's stop flags, wake-up event and API slot.

    ``stop_submitting``: no new POST may start; ``past_deadline``: a POST queued before the
    deadline must not go out after it; ``hard_stop``: no request of any kind may go out;
    ``submits_done``: every submit worker has ended; ``halted``: cancel what is in flight.
    """

    def __init__(self, api: Provider, throttle: Throttle) -> None:
        self.api = api
        self.throttle = throttle
        self.stop_reason: StopReason | None = None
        self.fatal: AuthError | None = None
        self.stop_submitting = False
        self.past_deadline = False
        self.hard_stop = False
        self.submits_done = False
        self.halted = asyncio.Event()
        self.wake = asyncio.Event()
        self._probe = asyncio.Lock()

    def request_stop(self, reason: StopReason) -> None:
        """Stop submitting now; after a signal (or auth failure) also stop polling/downloading.

        The deadline and the budget only stop submissions: tasks in flight are still followed.
        """
        if self.stop_reason is None or reason in (*_HARD, StopReason.OUTAGE):
            self.stop_reason = reason
        self.stop_submitting = True
        if reason in _HARD:
            self.hard_stop = True
        self.wake.set()

    def stop(self, reason: StopReason, halt: bool) -> None:
        """The guard's verdict: stop submitting, and with ``halt`` cancel what is in flight."""
        if reason is StopReason.DEADLINE:
            self.past_deadline = True
        self.request_stop(reason)
        if halt:
            self.hard_stop = True
            self.halted.set()

    def fail(self, exc: AuthError) -> None:
        """The vendor refused the token: remember the first refusal and stop everything."""
        if self.fatal is None:
            self.fatal = exc
            log.error("%s", exc)
        self.request_stop(StopReason.AUTH)

    async def wait_wake(self, seconds: float) -> None:
        """Wait until a stage calls ``wake.set()`` (work moved), at most ``seconds``."""
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)

    @contextlib.asynccontextmanager
    async def api_slot(self, deadline: float | None = None) -> AsyncIterator[bool]:
        """A throttle slot; yields False when the run is stopping and nothing may be sent.

        ``deadline`` orders the waiting requests (see ``Throttle.slot``). Until the vendor has
        accepted the token once, requests go one at a time, so a wrong token costs exactly one
        refused request, not one per worker.
        """
        async with self.throttle.slot(deadline=deadline):
            if self.api.token_accepted:
                yield not self.hard_stop
                return
            async with self._probe:
                yield not self.hard_stop

    async def fresh_status(self, task_id: str) -> TaskStatus | None:
        """The task's status for a download whose links expired (None: not now)."""
        try:
            async with self.api_slot() as may_send:
                return await self.api.status(task_id) if may_send else None
        except ApiError:
            return None
