"""The async run: submit every pending row, poll what is in flight, download what is done.

Shape (all in one event loop, all API requests through one ``Throttle``)::

    pending rows ──(S submit workers)──▶ in-flight heap ──(P poll workers)──▶ DownloadStage
         ▲ paged from each manifest's        ordered by next poll time         (a bounded
           state, round-robin                                                   queue, D workers)

Submits and polls meet at the throttle, which lets the earliest deadline through first: a
submit's deadline is the moment it queues, a poll's is the moment it is due plus
``max_poll_lag``. So while rows wait to be sent they get the budget, and a poll goes once
nothing more urgent waits (or once it has waited the whole lag).

Nothing is created per row up front: pending rows are read from the state a page at a time,
the heap holds only tasks in flight (capped), and the download queue is bounded. Every change
of a row goes through ``StateStore.transition`` and is committed before the next step, so a
kill at any instant leaves a state a re-run can continue from.

This module wires the run: the stages (``submit_stage``, ``poll_stage``, ``download_stage``)
and what they share (``run_control``: stop flags, the wake-up event, the API slot), the guards
(deadline, outage), the workers, and the stop that ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random

import aiohttp

from batchgen.config import Settings
from batchgen.engine.download_stage import DownloadStage
from batchgen.engine.guards import Guard, StopReason, time_left_until_end
from batchgen.engine.manifest_run import Counters, ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.poll_stage import PollStage
from batchgen.engine.run_context import RunContext
from batchgen.engine.run_control import RunControl
from batchgen.engine.submit_stage import SubmitStage
from batchgen.engine.timing.poll_plan import PollPlanner
from batchgen.errors import AuthError
from batchgen.providers.base import Provider
from batchgen.providers.descriptor import CREDIT_BILLING, Billing

__all__ = ["Counters", "Dispatcher", "ManifestRun", "StopReason"]

_POLL_WORKERS = 16


class Dispatcher:
    """Drives every manifest of one run to completion (or to a stop)."""

    def __init__(
        self,
        runs: list[ManifestRun],
        *,
        api: Provider,
        throttle: Throttle,
        cdn: aiohttp.ClientSession,
        settings: Settings,
        planner: PollPlanner | None = None,
        rng: random.Random | None = None,
        billing: Billing = CREDIT_BILLING,
    ) -> None:
        self.runs = runs
        self.billing = billing
        self.api = api
        self.throttle = throttle
        self.cdn = cdn
        self.settings = settings
        self.planner = planner or PollPlanner(first_poll=settings.polling.first_poll)
        self.rng = rng or random.Random()
        self.control = RunControl(api, throttle)
        for run in runs:  # a group waits for more moves only while other submits are going
            run.commits.busy = lambda: self.submits.submitting > 1
        self.downloads = DownloadStage(
            cdn,
            settings,
            rng=self.rng,
            fresh_status=self.control.fresh_status,
            stopping=lambda: self.control.hard_stop,
            time_left=time_left_until_end(settings),
            on_disk_full=lambda exc: self.control.stop(StopReason.DISK_FULL, True),
        )
        self.guard = Guard(settings, api, throttle.now, self.control.stop)
        context = RunContext(
            runs=runs,
            api=api,
            throttle=throttle,
            settings=settings,
            control=self.control,
            rng=self.rng,
            billing=billing,
        )
        self.polls = PollStage(
            context,
            downloads=self.downloads,
            planner=self.planner,
            time_left=self.guard.time_to_end,
            submitting=lambda: self.submits.submitting,
        )
        self.submits = SubmitStage(context, polls=self.polls, time_left=self.guard.time_to_deadline)

    # ------------------------------------------------------------------ the run
    async def run(self) -> None:
        """Work until every row is settled, or a stop was asked for and honoured."""
        self.guard.start()
        self.throttle.cap_pause = self.guard.cap_pause
        self.submits.start()
        self.polls.start()
        workers = self._start_workers()
        guards = [
            asyncio.create_task(self.guard.watch_deadline()),
            asyncio.create_task(self.guard.watch_outage()),
        ]
        try:
            await self._supervise_until_halt(workers)
        finally:
            self.throttle.cap_pause = None
            every = [*guards, *itertools.chain.from_iterable(workers.values())]
            for task in every:
                task.cancel()
            await asyncio.gather(*every, return_exceptions=True)
            for run in self.runs:  # what is still queued (a task id in hand) is committed
                run.commits.flush()
        if self.fatal is not None:
            raise self.fatal

    def _start_workers(self) -> dict[str, list[asyncio.Task[None]]]:
        spawn = asyncio.create_task
        return {
            "submit": [spawn(self.submits.worker()) for _ in range(self.submits.workers())],
            "poll": [spawn(self.polls.worker()) for _ in range(_POLL_WORKERS)],
            "download": [
                spawn(self.downloads.worker())
                for _ in range(self.settings.downloads.download_concurrency)
            ],
            "feed": [spawn(self.downloads.feed(self.runs))],
        }

    async def _supervise_until_halt(self, workers: dict[str, list[asyncio.Task[None]]]) -> None:
        """Run the workers to the end, unless a halt (deadline + grace, outage) comes first:
        then everything in flight is cancelled, and its rows stay resumable."""
        work = asyncio.ensure_future(self._supervise(workers))
        halt = asyncio.ensure_future(self.control.halted.wait())
        try:
            await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]

    async def _supervise(self, workers: dict[str, list[asyncio.Task[None]]]) -> None:
        await asyncio.gather(*workers["submit"])
        self.control.submits_done = True
        self.control.wake.set()
        await asyncio.gather(*workers["poll"], *workers["feed"])
        await self.downloads.close(len(workers["download"]))
        await asyncio.gather(*workers["download"])

    # ------------------------------------------------------------------ the public view
    def request_stop(self, reason: StopReason) -> None:
        """Stop submitting now; after a signal (or auth failure) also stop polling/downloading.

        The deadline and the budget only stop submissions: tasks in flight are still followed.
        """
        self.control.request_stop(reason)

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the run stopped early (None: it did not)."""
        return self.control.stop_reason

    @property
    def fatal(self) -> AuthError | None:
        """The refusal of the token that stopped the run (None: none)."""
        return self.control.fatal

    @property
    def stop_message(self) -> str | None:
        """Why the run stopped early, in plain words (deadline, server pause, outage)."""
        return self.guard.message

    def in_flight(self) -> int:
        """Tasks submitted and not yet finished."""
        return self.polls.in_flight()

    def committed_credits(self) -> int:
        """What may have been charged (see ``SubmitStage.committed_credits``)."""
        return self.submits.committed_credits()
