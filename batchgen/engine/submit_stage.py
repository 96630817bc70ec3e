"""The run's submit stage: pending rows in, tasks in flight out, within the budget.

A few workers take pending rows from each manifest's state a page at a time, round-robin
(rows whose task failed transiently come back through ``ManifestRun.retry`` when their pause
is over), while fewer than ``max_in_flight`` tasks are out and the money already committed
leaves room for the next row's price (in the provider's billing unit: ``Billing``). One
POST per row at a time, its intent committed first (SUBMITTING; the intents of a burst share
one commit, see ``engine/commit_group.py``, and a POST goes out only once its own is
committed); its answer settles the row (``engine/outcomes.py``): a task id hands the task to
the poll stage; a request that provably never created anything is sent again as
``retry.decide`` says; a refused or ambiguous one is never sent again without the user; a
refused token stops the run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable

from batchgen.config import BudgetScope
from batchgen.engine.guards import StopReason
from batchgen.engine.manifest_run import ManifestRun
from batchgen.engine.outcomes import outcome_of, settle_submit, submit_refused
from batchgen.engine.poll_stage import InFlight, PollStage
from batchgen.engine.retry import TRANSIENT, Action, Step, decide
from batchgen.engine.run_context import RunContext
from batchgen.errors import (
    AmbiguousSubmitError,
    ApiError,
    AuthError,
    NoSuchEndpointError,
    NotSentError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
)
from batchgen.models import (
    AttemptKind,
    AttemptOutcome,
    Job,
    JobStatus,
)
from batchgen.providers.base import SendMark
from batchgen.state.schema import Attempt
from batchgen.state.spend import Spend

__all__ = ["SubmitStage"]

log = logging.getLogger(__name__)

_PAGE = 256


class SubmitStage:
    """Every pending row of a run's manifests, submitted once (or left for the next run).

    ``time_left()`` is the seconds until the run's deadline (None: no deadline), which no
    retry of a submit may pass.
    """

    def __init__(
        self,
        context: RunContext,
        *,
        polls: PollStage,
        time_left: Callable[[], float | None],
    ) -> None:
        self.runs = runs = context.runs
        self.billing = context.billing
        #: The budget in units (``--max-credits`` / ``--max-usd``; UsageError for credits
        #: with a provider that bills dollars).
        self.limit = context.billing.unit.limit(
            max_credits=context.settings.limits.max_credits,
            max_usd=context.settings.limits.max_usd,
        )
        self.api = context.api
        self.throttle = context.throttle
        self.settings = context.settings
        self.control = context.control
        self.polls = polls
        self.rng = context.rng
        self._time_left = time_left
        self.submitting = 0  # POSTs whose price is committed but not yet in flight
        self.submitting_spend = 0  # their prices
        self._next_lock = asyncio.Lock()
        self._round_robin = itertools.cycle(runs) if runs else iter(())
        self._spend_base = Spend()  # earlier runs' spend, when the budget covers them

    def workers(self) -> int:
        """How many submit workers the run starts: enough POSTs in flight to keep the throttle
        busy at high tiers, few at low ones."""
        return max(4, min(32, self.throttle.limit // 200 + 2))

    # ------------------------------------------------------------------ budget
    def start(self) -> None:
        """Count what earlier runs spent, when the budget covers them (``budget_scope``)."""
        self._spend_base = self._budget_base()

    def _budget_base(self) -> Spend:
        if self.settings.limits.budget_scope is not BudgetScope.TOTAL:
            return Spend()
        spends = [run.store.spend() for run in self.runs]
        # tasks in flight are counted below, from the heap they are loaded into
        return Spend(
            charged=sum(spend.charged for spend in spends),
            possible=sum(spend.possible for spend in spends),
        )

    def committed_credits(self) -> int:
        """What may have been charged (scope-dependent), in units: finished tasks (the
        vendor's plausible figure, else the row's price), unknown submits and every task in
        flight or being sent (each at its row's price)."""
        return self.spend().total

    def spend(self) -> Spend:
        """What the budget counts, by how sure it is (``state.spend.Spend``): earlier runs'
        spend when the scope is ``total``, then this run's."""
        counters = [run.counters for run in self.runs]
        in_flight = self.polls.committed() + self.submitting_spend
        return self._spend_base + Spend(
            charged=sum(c.credits for c in counters),
            committed=math.ceil(in_flight * self.drift()),
            possible=sum(c.possible for c in counters),
        )

    def drift(self) -> float:
        """How far above their rows' prices the vendor charged this run (1.0: not at all;
        ``outcomes.charge``): tasks in flight and the next submit count at price times it."""
        return max((run.counters.drift for run in self.runs), default=1.0)

    def budget_message(self, price: int | None = None) -> str:
        """Why the budget stops submissions: its limit, its scope, and what is already
        counted, e.g. ``the budget of 10 credits (~$0.10, this run) is less than one
        generation (40 credits): nothing was sent``. ``price``: the next row's."""
        unit, limit = self.billing.unit, self.limit or 0
        total = self.settings.limits.budget_scope is BudgetScope.TOTAL
        scope = "this run and earlier runs" if total else "this run"
        shown = unit.show(limit)
        budget = (
            f"the budget of {shown[:-1]}, {scope})"
            if unit.credits
            else f"the budget of {shown} ({scope})"
        )
        if price is not None and limit < price and not self.committed_credits():
            return (
                f"{budget} is less than one generation ({unit.show(price).split(' (')[0]}): "
                "nothing was sent"
            )
        spent = self.billing.unit.spend_text(self.spend())
        return f"{budget} is reached: {spent}; no new submissions this run"

    def _budget_allows(self, price: int) -> bool:
        if self.limit is None:
            return True
        return self.committed_credits() + math.ceil(price * self.drift()) <= self.limit

    # ------------------------------------------------------------------ taking rows
    async def worker(self) -> None:
        """Submit rows until none is left, or submissions stop."""
        while (item := await self._next_row()) is not None:
            run, job = item
            try:
                await self._submit(run, job)
            finally:
                self.submitting -= 1
                self.submitting_spend -= job.price or 0

    async def _next_row(self) -> tuple[ManifestRun, Job] | None:
        control = self.control
        async with self._next_lock:
            while self.polls.in_flight() + self.submitting >= self.settings.limits.max_in_flight:
                if control.stop_submitting:
                    return None
                await control.wait_wake(1.0)
            if control.stop_submitting:
                return None
            item = await self._take_row()
            if item is None:
                return None
            run, job = item
            price = job.price or 0
            if not self._budget_allows(price):
                run.buffer.appendleft(job)  # stays pending: the next run sends it
                log.warning("%s", self.budget_message(price))
                control.request_stop(StopReason.BUDGET)
                return None
            self.submitting += 1
            self.submitting_spend += price
            return item

    async def _take_row(self) -> tuple[ManifestRun, Job] | None:
        while True:
            for _ in range(len(self.runs)):
                run = next(self._round_robin)
                job = self._row_from(run)
                if job is not None:
                    return run, job
            retry_at = self._earliest_retry()
            if retry_at is None and not self.polls.in_flight():
                return None  # nothing pending, and nothing in flight that could fail back
            wait = 1.0 if retry_at is None else max(0.0, retry_at - self.throttle.now())
            await self.control.wait_wake(wait)
            if self.control.stop_submitting:
                return None

    def _row_from(self, run: ManifestRun) -> Job | None:
        if run.retry and run.retry[0][0] <= self.throttle.now():
            return run.retry.popleft()[1]
        if not run.buffer and not run.exhausted:
            page = run.store.next_pending(_PAGE, after_row=run.cursor)
            run.buffer.extend(page)
            run.exhausted = len(page) < _PAGE
            if page:
                run.cursor = page[-1].row
        return run.buffer.popleft() if run.buffer else None

    def _earliest_retry(self) -> float | None:
        times = [run.retry[0][0] for run in self.runs if run.retry]
        return min(times) if times else None

    # ------------------------------------------------------------------ submitting
    async def _submit(self, run: ManifestRun, job: Job) -> None:
        """Send ``job`` until a task is created or the POST settles the row; a POST that
        proved nothing was created (never sent, or a 429) is tried again per ``decide``, or
        left pending for the next run (it cost nothing)."""
        tries = 0
        while True:
            failure = await self._submit_once(run, job)
            if failure is None:
                return
            tries += 1
            decision = decide(
                Step.SUBMIT,
                outcome_of(failure),
                tries,
                failure.retry_after,
                policy=self.settings.limits.retry,
                time_left=self._time_left(),
                draw=self.rng.random(),
            )
            if decision.action is not Action.RETRY or self.control.stop_submitting:
                return  # stays pending: nothing was created, the next run sends it
            log.debug(
                "%s: row %d: submit met %s; trying again in %.1f s",
                run.name,
                job.row,
                failure,
                decision.delay,
            )
            await asyncio.sleep(decision.delay)

    async def _submit_once(
        self, run: ManifestRun, job: Job
    ) -> NotSentError | RateLimitedError | None:
        """One POST; returns the failure when it proved nothing was created (the request
        never left, or a 429), else None: the row is settled (submitted, rejected, unknown)."""
        store, key = run.store, job.key
        async with self.control.api_slot() as may_send:
            if not may_send or self.control.past_deadline:  # the deadline came while this
                return None  # submit queued: the row stays pending (the budget counted it)
            await self._intent(run, job)
            mark = SendMark()
            try:
                task_id = await self.api.submit(job.spec(), mark=mark)
            except NotSentError as exc:  # the request never left: the row is as it was
                store.transition(
                    key, JobStatus.PENDING, error_kind=TRANSIENT, error_message=str(exc)
                )
                return exc
            except RateLimitedError as exc:  # refused before any work: send again later
                settle_submit(
                    store, key, JobStatus.PENDING, TRANSIENT, AttemptOutcome.RATE_LIMITED, exc
                )
                return exc
            except (PermanentApiError, AmbiguousSubmitError, AuthError) as exc:
                self._submit_refused(run, job, exc)
                return None
            except TransientApiError as exc:  # not a proof of "not created": ask the user
                self._submit_refused(run, job, AmbiguousSubmitError(str(exc)))
                return None
            except asyncio.CancelledError:  # halted mid-POST
                if mark.sent:  # the vendor may have seen it: maybe created, maybe charged
                    stopped = AmbiguousSubmitError("the run stopped while the POST was out")
                    self._submit_refused(run, job, stopped)
                else:  # it never left: the row is as it was
                    store.transition(key, JobStatus.PENDING)
                raise
        # committed with the other answers of this turn of the loop, even if the run is
        # halted meanwhile (keep): a task id in hand always reaches the state
        await run.commits.move(
            key,
            JobStatus.SUBMITTED,
            task_id=task_id,
            attempt=Attempt(AttemptKind.SUBMIT, AttemptOutcome.OK, None, task_id),
            keep=True,
            on_made=self._task_committed(run, job, task_id),
        )
        item = InFlight(run, key, task_id, self.throttle.now(), job.mode, job.price or 0)
        self.polls.push(item, 0.0)
        return None

    @staticmethod
    def _task_committed(run: ManifestRun, job: Job, task_id: str) -> Callable[[], None]:
        """What follows the commit of a task id, even when a halt cancelled the submit
        meanwhile: the run's count, and ``run.on_generated`` (the per-user record of generated
        requests)."""
        count = run.counters.counting("submitted")

        def made() -> None:
            count()
            if run.on_generated is not None:
                run.on_generated(job, task_id)

        return made

    @staticmethod
    async def _intent(run: ManifestRun, job: Job) -> None:
        """Commit the row's SUBMITTING (its intent) before its POST, in the current group; the
        per-user record is told in the same turn, so a copy of the manifest run after a kill
        anywhere past this point finds the row (``run.on_generated``)."""
        key = job.key
        told = run.on_generated

        def made() -> None:
            if told is not None:
                told(job, None)

        try:
            await run.commits.move(
                key, JobStatus.SUBMITTING, error_kind=None, error_message=None, on_made=made
            )
        except asyncio.CancelledError:
            # halted while the intent was committed: its POST never left, so the row is as
            # it was (a move still queued was dropped with the caller)
            if run.store.get(key).status is JobStatus.SUBMITTING:
                run.store.transition(key, JobStatus.PENDING)
            raise

    def _submit_refused(self, run: ManifestRun, job: Job, exc: ApiError) -> None:
        if isinstance(exc, AuthError):
            attempt = Attempt(AttemptKind.SUBMIT, AttemptOutcome.UNAUTHORIZED, str(exc))
            run.store.transition(job.key, JobStatus.PENDING, attempt=attempt)
            self.control.fail(exc)
        else:
            submit_refused(run, job.key, exc, job.price or 0)
        if isinstance(exc, NoSuchEndpointError) and not self.control.stop_submitting:
            log.error("%s: no new submissions this run: %s", run.name, exc)
            self.control.request_stop(StopReason.NO_ENDPOINT)
