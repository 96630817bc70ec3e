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
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from batchgen.config import Settings
from batchgen.engine.download_stage import DownloadStage
from batchgen.engine.guards import Guard, StopReason, time_left_until_end
from batchgen.engine.manifest_run import Counters, ManifestRun
from batchgen.engine.outcomes import (
    outcome_of,
    record_completed,
    record_failed,
    record_gone,
    record_protocol_error,
    record_without_video,
    settle_submit,
    submit_refused,
)
from batchgen.engine.polling import Budget, PollPlanner, poll_budget
from batchgen.engine.retry import (
    TRANSIENT,
    Action,
    Outcome,
    Step,
    attempt_limit,
    decide,
)
from batchgen.engine.throttle import Throttle
from batchgen.errors import (
    AmbiguousSubmitError,
    ApiError,
    AuthError,
    NotSentError,
    PermanentApiError,
    ProtocolError,
    RateLimitedError,
    TaskGoneError,
    TransientApiError,
)
from batchgen.models import (
    CREDITS_PER_TASK,
    AttemptKind,
    AttemptOutcome,
    Job,
    JobStatus,
    TaskState,
    TaskStatus,
)
from batchgen.providers.base import Provider, SendMark
from batchgen.state.store import Attempt

__all__ = ["Counters", "Dispatcher", "ManifestRun", "StopReason"]

log = logging.getLogger(__name__)

_PAGE = 256
_IN_FLIGHT = (JobStatus.SUBMITTED, JobStatus.RUNNING)


@dataclass(eq=False)
class _InFlight:
    run: ManifestRun
    key: str
    task_id: str
    submitted: float  # loop time
    mode: str = ""
    due: float = 0.0  # loop time of the next poll
    last_running_age: float = 0.0
    errors: int = 0
    warned: bool = False
    marked_running: bool = False


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
    ) -> None:
        self.runs = runs
        self.api = api
        self.throttle = throttle
        self.cdn = cdn
        self.settings = settings
        self.planner = planner or PollPlanner(first_poll=settings.first_poll)
        self.rng = rng or random.Random()
        self.stop_reason: StopReason | None = None
        self.fatal: AuthError | None = None
        self._stop_submitting = False
        self._past_deadline = False
        self._hard_stop = False
        self._submits_done = False
        self._heap: list[tuple[float, int, _InFlight]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._polls_active = 0
        self._submitting = 0  # POSTs whose credits are committed but not yet in flight
        self._next_lock = asyncio.Lock()
        self._round_robin = itertools.cycle(runs) if runs else iter(())
        self.downloads = DownloadStage(
            cdn,
            settings,
            rng=self.rng,
            fresh_status=self._fresh_status,
            stopping=lambda: self._hard_stop,
            time_left=time_left_until_end(settings),
            on_disk_full=lambda exc: self._stop_hook(StopReason.DISK_FULL, True),
        )
        self._probe = asyncio.Lock()
        self._credits_base = 0
        self._halted = asyncio.Event()
        self.guard = Guard(settings, api, throttle.now, self._stop_hook)
        self._rows_total = 0  # rows pending when the run started
        self._budget_cache: tuple[float, Budget] | None = None
        self._revision = 0

    # ------------------------------------------------------------------ the run
    async def run(self) -> None:
        """Work until every row is settled, or a stop was asked for and honoured."""
        self.guard.start()
        self.throttle.cap_pause = self.guard.cap_pause
        self._credits_base = self._budget_base()
        self._rows_total = sum(r.store.counts().get(JobStatus.PENDING, 0) for r in self.runs)
        self._seed_latencies()
        self._load_in_flight()
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
        if self.fatal is not None:
            raise self.fatal

    def _start_workers(self) -> dict[str, list[asyncio.Task[None]]]:
        spawn = asyncio.create_task
        return {
            "submit": [spawn(self._submit_worker()) for _ in range(self._submit_workers())],
            "poll": [spawn(self._poll_worker()) for _ in range(16)],
            "download": [
                spawn(self.downloads.worker()) for _ in range(self.settings.download_concurrency)
            ],
            "feed": [spawn(self.downloads.feed(self.runs))],
        }

    def _submit_workers(self) -> int:
        # Enough POSTs in flight to keep the throttle busy at high tiers, few at low ones.
        return max(4, min(32, self.throttle.limit // 200 + 2))

    async def _supervise_until_halt(self, workers: dict[str, list[asyncio.Task[None]]]) -> None:
        """Run the workers to the end, unless a halt (deadline + grace, outage) comes first:
        then everything in flight is cancelled, and its rows stay resumable."""
        work = asyncio.ensure_future(self._supervise(workers))
        halt = asyncio.ensure_future(self._halted.wait())
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
        self._submits_done = True
        self._wake.set()
        await asyncio.gather(*workers["poll"], *workers["feed"])
        await self.downloads.close(len(workers["download"]))
        await asyncio.gather(*workers["download"])

    def request_stop(self, reason: StopReason) -> None:
        """Stop submitting now; after a signal (or auth failure) also stop polling/downloading.

        The deadline and the budget only stop submissions: tasks in flight are still followed.
        """
        if self.stop_reason is None or reason in (
            StopReason.SIGNAL,
            StopReason.AUTH,
            StopReason.OUTAGE,
            StopReason.DISK_FULL,
        ):
            self.stop_reason = reason
        self._stop_submitting = True
        if reason in (StopReason.SIGNAL, StopReason.AUTH, StopReason.DISK_FULL):
            self._hard_stop = True
        self._wake.set()

    def _stop_hook(self, reason: StopReason, halt: bool) -> None:
        """The guard's verdict: stop submitting, and with ``halt`` cancel what is in flight."""
        if reason is StopReason.DEADLINE:
            self._past_deadline = True
        self.request_stop(reason)
        if halt:
            self._hard_stop = True
            self._halted.set()

    @property
    def stop_message(self) -> str | None:
        """Why the run stopped early, in plain words (deadline, server pause, outage)."""
        return self.guard.message

    def in_flight(self) -> int:
        """Tasks submitted and not yet finished."""
        return len(self._heap) + self._polls_active

    # ------------------------------------------------------------------ budget
    def _budget_base(self) -> int:
        if self.settings.budget_scope != "total":
            return 0
        spends = [run.store.spend() for run in self.runs]
        # tasks in flight are counted below, from the heap they are loaded into
        return sum(spend.charged + spend.possible for spend in spends)

    def committed_credits(self) -> int:
        """What may have been charged (scope-dependent): finished tasks (never below 40
        each), unknown submits (40 each), and 40 for every task in flight or being sent."""
        counters = [run.counters for run in self.runs]
        spent = self._credits_base + sum(c.credits + c.possible for c in counters)
        return spent + CREDITS_PER_TASK * (len(self._heap) + self._polls_active + self._submitting)

    def _budget_allows(self) -> bool:
        limit = self.settings.max_credits
        return limit is None or self.committed_credits() + CREDITS_PER_TASK <= limit

    # ------------------------------------------------------------------ submitting
    async def _submit_worker(self) -> None:
        while (item := await self._next_row()) is not None:
            run, job = item
            try:
                await self._submit(run, job)
            finally:
                self._submitting -= 1

    async def _next_row(self) -> tuple[ManifestRun, Job] | None:
        async with self._next_lock:
            while self.in_flight() + self._submitting >= self.settings.max_in_flight:
                if self._stop_submitting:
                    return None
                await self._wait_wake(1.0)
            if self._stop_submitting:
                return None
            if not self._budget_allows():
                log.warning("the credit budget is reached: no new submissions this run")
                self.request_stop(StopReason.BUDGET)
                return None
            item = await self._take_row()
            if item is not None:
                self._submitting += 1
            return item

    async def _take_row(self) -> tuple[ManifestRun, Job] | None:
        while True:
            for _ in range(len(self.runs)):
                run = next(self._round_robin)
                job = self._row_from(run)
                if job is not None:
                    return run, job
            retry_at = self._earliest_retry()
            if retry_at is None and not self._tasks_in_flight():
                return None  # nothing pending, and nothing in flight that could fail back
            wait = 1.0 if retry_at is None else max(0.0, retry_at - self.throttle.now())
            await self._wait_wake(wait)
            if self._stop_submitting:
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

    def _tasks_in_flight(self) -> bool:
        return bool(self._heap) or self._polls_active > 0

    def _earliest_retry(self) -> float | None:
        times = [run.retry[0][0] for run in self.runs if run.retry]
        return min(times) if times else None

    async def _submit(self, run: ManifestRun, job: Job) -> None:
        policy = self.settings.retry
        counted = tries = 0
        while True:
            failure = await self._submit_once(run, job)
            if failure is None:
                return
            outcome = outcome_of(failure)
            tries += 1
            counted += outcome is Outcome.TRANSIENT
            decision = decide(
                Step.SUBMIT,
                outcome,
                counted if outcome is Outcome.TRANSIENT else tries,
                failure.retry_after,
                policy=policy,
                time_left=self.guard.time_to_deadline(),
                draw=self.rng.random(),
            )
            if decision.action is Action.GIVE_UP:
                self._give_up_submit(run, job, failure, counted)
                return
            if decision.action is not Action.RETRY or self._stop_submitting:
                return  # stays pending: the next run sends it
            log.debug(
                "%s: row %d: submit met %s; trying again in %.1f s",
                run.name,
                job.row,
                failure,
                decision.delay,
            )
            await asyncio.sleep(decision.delay)

    async def _submit_once(self, run: ManifestRun, job: Job) -> TransientApiError | None:
        """One POST; returns the failure when nothing was created and a retry may help."""
        store, key = run.store, job.key
        async with self._api_slot() as may_send:
            if not may_send or self._past_deadline:  # the deadline came while this submit
                return None  # queued: the row stays pending (the budget counted it already)
            store.transition(key, JobStatus.SUBMITTING, error_kind=None, error_message=None)
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
                self._submit_refused(run, key, exc)
                return None
            except TransientApiError as exc:  # not a proof of "not created": ask the user
                self._submit_refused(run, key, AmbiguousSubmitError(str(exc)))
                return None
            except asyncio.CancelledError:  # halted mid-POST
                if mark.sent:  # the vendor may have seen it: maybe created, maybe charged
                    stopped = AmbiguousSubmitError("the run stopped while the POST was out")
                    self._submit_refused(run, key, stopped)
                else:  # it never left: the row is as it was
                    store.transition(key, JobStatus.PENDING)
                raise
        store.transition(
            key,
            JobStatus.SUBMITTED,
            task_id=task_id,
            attempt=Attempt(AttemptKind.SUBMIT, AttemptOutcome.OK, None, task_id),
        )
        run.counters.submitted += 1
        self._push(_InFlight(run, key, task_id, self.throttle.now(), job.mode), 0.0)
        return None

    @contextlib.asynccontextmanager
    async def _api_slot(self, deadline: float | None = None) -> AsyncIterator[bool]:
        """A throttle slot; yields False when the run is stopping and nothing may be sent.

        ``deadline`` orders the waiting requests (see ``Throttle.slot``). Until the vendor has
        accepted the token once, requests go one at a time, so a wrong token costs exactly one
        refused request, not one per worker.
        """
        async with self.throttle.slot(deadline=deadline):
            if self.api.token_accepted:
                yield not self._hard_stop
                return
            async with self._probe:
                yield not self._hard_stop

    def _submit_refused(self, run: ManifestRun, key: str, exc: ApiError) -> None:
        if isinstance(exc, AuthError):
            attempt = Attempt(AttemptKind.SUBMIT, AttemptOutcome.UNAUTHORIZED, str(exc))
            run.store.transition(key, JobStatus.PENDING, attempt=attempt)
            self._fatal(exc)
        else:
            submit_refused(run, key, exc)

    def _give_up_submit(self, run: ManifestRun, job: Job, exc: ApiError, attempts: int) -> None:
        if self._stop_submitting:
            return  # stays pending: the next run sends it
        message = f"gave up after {attempts} attempts: {exc}"
        run.store.transition(
            job.key,
            JobStatus.FAILED,
            expect=(JobStatus.PENDING,),
            error_kind=TRANSIENT,
            error_message=message,
        )
        run.counters.failed += 1

    def _fatal(self, exc: AuthError) -> None:
        if self.fatal is None:
            self.fatal = exc
            log.error("%s", exc)
        self.request_stop(StopReason.AUTH)

    # ------------------------------------------------------------------ polling
    def _push(self, item: _InFlight, age: float) -> None:
        if self.planner.revision() != self._revision:
            self._replan()
        budget = self._budget()
        next_age = self.planner.next_age(age, budget, mode=item.mode)
        log.debug(
            "%s: task %s (row key %s) at %.1f s: next status poll at %.1f s "
            "(%.0f%% of the request budget free)",
            item.run.name,
            item.task_id,
            item.key,
            age,
            next_age,
            100 * budget.free,
        )
        self._schedule(item, item.submitted + next_age)

    def _replan(self) -> None:
        """The latency fit moved a lot (a cold start learning): polls planned with the old
        fit may come sooner (never later: a poll already due keeps its place)."""
        self._revision = self.planner.revision()
        budget, now, heap = self._budget(), self.throttle.now(), []
        for due, seq, item in self._heap:
            age = item.last_running_age
            sooner = item.submitted + self.planner.next_age(age, budget, mode=item.mode)
            item.due = max(min(due, sooner), now) if due > now else due
            heap.append((item.due, seq, item))
        heapq.heapify(heap)
        self._heap = heap

    def _schedule(self, item: _InFlight, due: float) -> None:
        item.due = due
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._wake.set()

    def _budget(self) -> Budget:
        """The request budget the planner may spend (recomputed every 1/1200 of a window)."""
        now = self.throttle.now()
        if self._budget_cache and now - self._budget_cache[0] < self.throttle.window / 1200:
            return self._budget_cache[1]
        # The typical latency, but at least a window: the room in the window is all there is
        # until answers expire, so a fit of fast tasks does not spend it in a second.
        horizon = max(self.planner.horizon(), self.throttle.window)
        budget = poll_budget(
            capacity=self.throttle.capacity_within(horizon),
            pending=self._pending(),
            in_flight=self.in_flight(),
            horizon=horizon,
            run_requests=2 * self._rows_total / self.throttle.per_second,
            run_latency=self.planner.longest(self._rows_total),
        )
        self._budget_cache = (now, budget)
        return budget

    def _pending(self) -> int:
        """Rows still to be submitted this run (about: rows refused stay counted)."""
        if self._stop_submitting:
            return 0
        submitted = sum(run.counters.submitted for run in self.runs)
        retries = sum(len(run.retry) for run in self.runs)
        return max(0, self._rows_total - submitted) + retries

    def _submits_first(self, item: _InFlight) -> bool:
        """True while a due poll would take room in the window that pending rows need (it
        waits for it, up to ``max_poll_lag``): polls spend the slack, never the submits'."""
        if self.throttle.now() >= item.due + self.settings.max_poll_lag:
            return False
        if self.in_flight() + self._submitting >= self.settings.max_in_flight:
            return False  # the submitters wait for polls to free a place
        pending = self._pending()
        return pending > 0 and self.throttle.capacity_within(0.0) <= pending

    async def _poll_worker(self) -> None:
        while (item := await self._next_due()) is not None:
            self._polls_active += 1
            try:
                await self._poll(item)
            finally:
                self._polls_active -= 1
                self._wake.set()

    async def _next_due(self) -> _InFlight | None:
        while not self._hard_stop:
            if self._heap:
                delay = self._heap[0][0] - self.throttle.now()
                if delay <= 0 and self._submits_first(self._heap[0][2]):
                    lag = self._heap[0][0] + self.settings.max_poll_lag - self.throttle.now()
                    delay = min(lag, self.throttle.window / 20)
                elif delay <= 0:
                    return heapq.heappop(self._heap)[2]
                await self._wait_wake(delay)
            elif self._submits_done and self._polls_active == 0:
                self._wake.set()  # let the other pollers see it too
                return None
            else:
                await self._wait_wake(1.0)
        return None

    async def _wait_wake(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _poll(self, item: _InFlight) -> None:
        # A poll yields to submissions until it is max_poll_lag overdue: while rows wait to be
        # sent, the budget goes to them, and a finished task loses nothing by waiting a little.
        try:
            async with self._api_slot(item.due + self.settings.max_poll_lag) as may_send:
                if not may_send:
                    return
                status = await self.api.status(item.task_id)
        except AuthError as exc:
            self._fatal(exc)
            return
        except TaskGoneError as exc:
            record_gone(item.run, item.key, item.task_id, exc)
            return
        except ProtocolError as exc:
            record_protocol_error(item.run, item.key, item.task_id, exc)
            return
        except ApiError as exc:
            self._poll_failed(item, exc)
            return
        age = self.throttle.now() - item.submitted
        if status.state is TaskState.WAITING:
            self._still_running(item, status, age)
        elif status.state is TaskState.COMPLETED and status.urls:
            await self._completed(item, status, age)
        elif status.state is TaskState.COMPLETED:
            record_without_video(item.run, item.key, status)
        else:
            self._task_failed(item, status)

    def _poll_failed(self, item: _InFlight, exc: ApiError) -> None:
        item.errors += 1
        hint = exc.retry_after if isinstance(exc, TransientApiError) else None
        decision = decide(
            Step.POLL,
            outcome_of(exc),
            item.errors,
            hint,
            policy=self.settings.retry,
            time_left=self.guard.time_to_end(),
            draw=self.rng.random(),
        )
        if decision.action is Action.RETRY:
            log.debug(
                "%s: status of task %s failed (%s); asking again in %.1f s",
                item.run.name,
                item.task_id,
                exc,
                decision.delay,
            )
            self._schedule(item, self.throttle.now() + decision.delay)
            return
        # The task stays submitted in the state: the next run asks about it again.
        log.warning(
            "%s: row key %s: cannot get the task's status: %s", item.run.name, item.key, exc
        )

    def _still_running(self, item: _InFlight, status: TaskStatus, age: float) -> None:
        if not item.marked_running and status.status.lower() in ("processing", "running"):
            item.run.store.transition(item.key, JobStatus.RUNNING)
            item.marked_running = True
        item.last_running_age = age
        self.planner.saw_running(item.task_id, item.mode, age)
        if age > self.settings.task_deadline:
            if not item.warned:
                item.warned = True
                log.warning(
                    "%s: task %s (row key %s) is still unfinished after %.0f s; "
                    "it stays in flight and the next run asks about it again",
                    item.run.name,
                    item.task_id,
                    item.key,
                    age,
                )
            return
        self._push(item, age)

    async def _completed(self, item: _InFlight, status: TaskStatus, age: float) -> None:
        self.planner.observe(item.task_id, item.mode, item.last_running_age, age)
        if self.planner.revision() != self._revision:
            self._replan()
        record_completed(item.run, item.key, status)
        await self.downloads.put(item.run, item.run.store.get(item.key))

    def _task_failed(self, item: _InFlight, status: TaskStatus) -> None:
        self.planner.forget(item.task_id)
        run = item.run
        kind = record_failed(run, item.key, status)
        job = run.store.get(item.key)
        limit = attempt_limit(Step.SUBMIT, self.settings.retry)
        if (
            kind == TRANSIENT
            and not self._stop_submitting
            and run.store.retry_transient(item.key, limit)
        ):
            delay = decide(
                Step.SUBMIT,
                Outcome.TRANSIENT,
                job.attempts,
                None,
                policy=self.settings.retry,
                draw=self.rng.random(),
            ).delay
            run.retry.append((self.throttle.now() + delay, run.store.get(item.key)))
            run.counters.retried += 1
            log.info(
                "%s: row %d failed for a transient reason (%s); sending it again "
                "(attempt %d of %d, a new task: paid again)",
                run.name,
                job.row,
                job.error_message,
                job.attempts + 1,
                limit,
            )
        else:
            run.counters.failed += 1
            log.warning("%s: row %d failed: %s", run.name, job.row, job.error_message)

    def _seed_latencies(self) -> None:
        samples: list[float] = []
        for run in self.runs:
            samples.extend(run.store.latency_samples())
        if samples:
            self.planner.seed(samples)

    def _load_in_flight(self) -> None:
        now_wall = dt.datetime.now(dt.UTC)
        now = self.throttle.now()
        for run in self.runs:
            for job in run.store.iter_jobs(_IN_FLIGHT, in_manifest_only=False):
                if not job.task_id:
                    continue
                age = (now_wall - job.submitted_at).total_seconds() if job.submitted_at else 0.0
                item = _InFlight(run, job.key, job.task_id, now - max(0.0, age), job.mode)
                item.marked_running = job.status is JobStatus.RUNNING
                self._push(item, max(0.0, age))

    async def _fresh_status(self, task_id: str) -> TaskStatus | None:
        """The task's status for a download whose links expired (None: not now)."""
        try:
            async with self._api_slot() as may_send:
                return await self.api.status(task_id) if may_send else None
        except ApiError:
            return None
