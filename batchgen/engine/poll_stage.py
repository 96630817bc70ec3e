"""The run's poll stage: the tasks in flight, when each is asked about next, and what its answer
does to the row.

A heap of :class:`InFlight` tasks ordered by the time of their next poll (``PollPlanner``
chooses it from the latency fit and the request budget), and a few workers that pop what is
due. A due poll yields to pending submits until it is ``max_poll_lag`` overdue. An answer moves
the row (``engine/outcomes.py``): still running (poll again later), completed (to the download
stage), failed (a transient failure is sent again as a new task while the row has attempts
left), gone or unusable (final). A failed poll is retried as ``retry.decide`` says; when it
gives up, the task stays submitted and the next run asks again. At start the heap is loaded
with the tasks an earlier run left in flight, and the fit is seeded with earlier latencies.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from batchgen.engine.download_stage import DownloadStage
from batchgen.engine.manifest_run import ManifestRun
from batchgen.engine.outcomes import (
    outcome_of,
    record_completed,
    record_ended,
    record_failed,
    record_gone,
    record_protocol_error,
    record_without_video,
)
from batchgen.engine.retry import TRANSIENT, Action, Outcome, Step, attempt_limit, decide
from batchgen.engine.run_context import RunContext
from batchgen.engine.timing.poll_plan import Budget, PollPlanner, poll_budget
from batchgen.errors import (
    ApiError,
    AuthError,
    ProtocolError,
    TaskGoneError,
    TransientApiError,
)
from batchgen.models import JobStatus, TaskState, TaskStatus

__all__ = ["InFlight", "PollStage"]

log = logging.getLogger(__name__)

_IN_FLIGHT = (JobStatus.SUBMITTED, JobStatus.RUNNING)
#: Final states that are neither a video nor a failure, and the row status each ends in.
_ENDED = {TaskState.EXPIRED: JobStatus.EXPIRED, TaskState.MODERATED: JobStatus.MODERATED}


@dataclass(eq=False)
class InFlight:
    """One task in flight; times are on the throttle's clock (seconds)."""

    run: ManifestRun
    key: str
    task_id: str
    submitted: float
    mode: str = ""
    price: int = 0  # what the row is expected to cost (committed while the task is out)
    due: float = 0.0  # the next poll
    last_running_age: float = 0.0
    errors: int = 0  # failed polls this run
    warned: bool = False
    marked_running: bool = False


class PollStage:
    """The tasks in flight of every manifest of a run, polled until each is settled.

    ``time_left()`` is the seconds until the run ends (None: no end), which no retry of a poll
    may pass; ``submitting()`` counts the POSTs whose tasks are not in flight yet.
    """

    def __init__(
        self,
        context: RunContext,
        *,
        downloads: DownloadStage,
        planner: PollPlanner,
        time_left: Callable[[], float | None],
        submitting: Callable[[], int],
    ) -> None:
        self.runs = context.runs
        self.api = context.api
        self.throttle = context.throttle
        self.settings = context.settings
        self.control = context.control
        self.downloads = downloads
        self.planner = planner
        self.rng = context.rng
        self._time_left = time_left
        self._submitting = submitting
        self.billing = context.billing
        self.heap: list[tuple[float, int, InFlight]] = []
        self.active = 0  # polls being sent
        self._heap_spend = 0  # prices of the tasks in the heap
        self._active_spend = 0  # prices of the tasks being polled
        self.rows_total = 0  # rows pending when the run started
        self._seq = itertools.count()
        self._budget_cache: tuple[float, Budget] | None = None
        self._revision = 0

    def in_flight(self) -> int:
        """Tasks submitted and not yet finished."""
        return len(self.heap) + self.active

    def committed(self) -> int:
        """What the tasks in flight are expected to cost (their rows' prices, in units)."""
        return self._heap_spend + self._active_spend

    # ------------------------------------------------------------------ start of the run
    def start(self) -> None:
        """Count the pending rows, seed the latency fit, load the tasks still in flight."""
        self.rows_total = sum(r.store.counts().get(JobStatus.PENDING, 0) for r in self.runs)
        self._seed_latencies()
        self._load_in_flight()

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
                item = InFlight(
                    run, job.key, job.task_id, now - max(0.0, age), job.mode, job.price or 0
                )
                item.marked_running = job.status is JobStatus.RUNNING
                self.push(item, max(0.0, age))

    # ------------------------------------------------------------------ scheduling
    def push(self, item: InFlight, age: float) -> None:
        """Plan the next poll of ``item``, ``age`` seconds old (0: just submitted)."""
        if self.planner.revision() != self._revision:
            self._replan()
        budget = self.budget()
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
        self.schedule(item, item.submitted + next_age)

    def _replan(self) -> None:
        """The latency fit moved a lot (a cold start learning): polls planned with the old
        fit may come sooner (never later: a poll already due keeps its place)."""
        self._revision = self.planner.revision()
        budget, now, heap = self.budget(), self.throttle.now(), []
        for due, seq, item in self.heap:
            age = item.last_running_age
            sooner = item.submitted + self.planner.next_age(age, budget, mode=item.mode)
            item.due = max(min(due, sooner), now) if due > now else due
            heap.append((item.due, seq, item))
        heapq.heapify(heap)
        self.heap = heap

    def schedule(self, item: InFlight, due: float) -> None:
        """Poll ``item`` at ``due`` (the throttle's clock)."""
        item.due = due
        heapq.heappush(self.heap, (due, next(self._seq), item))
        self._heap_spend += item.price
        self.control.wake.set()

    def budget(self) -> Budget:
        """The request budget the planner may spend (recomputed every 1/1200 of a window)."""
        now = self.throttle.now()
        if self._budget_cache and now - self._budget_cache[0] < self.throttle.window / 1200:
            return self._budget_cache[1]
        # The typical latency, but at least a window: the room in the window is all there is
        # until answers expire, so a fit of fast tasks does not spend it in a second.
        horizon = max(self.planner.horizon(), self.throttle.window)
        budget = poll_budget(
            capacity=self.throttle.capacity_within(horizon),
            pending=self.pending(),
            in_flight=self.in_flight(),
            horizon=horizon,
            run_requests=2 * self.rows_total / self.throttle.per_second,
            run_latency=self.planner.longest(self.rows_total),
        )
        self._budget_cache = (now, budget)
        return budget

    def pending(self) -> int:
        """Rows still to be submitted this run (about: rows refused stay counted)."""
        if self.control.stop_submitting:
            return 0
        submitted = sum(run.counters.submitted for run in self.runs)
        retries = sum(len(run.retry) for run in self.runs)
        return max(0, self.rows_total - submitted) + retries

    def submits_first(self, item: InFlight) -> bool:
        """True while a due poll would take room in the window that pending rows need (it
        waits for it, up to ``max_poll_lag``): polls spend the slack, never the submits'."""
        if self.throttle.now() >= item.due + self.settings.polling.max_poll_lag:
            return False
        if self.in_flight() + self._submitting() >= self.settings.limits.max_in_flight:
            return False  # the submitters wait for polls to free a place
        pending = self.pending()
        return pending > 0 and self.throttle.capacity_within(0.0) <= pending

    # ------------------------------------------------------------------ polling
    async def worker(self) -> None:
        """Poll due tasks until none is left and no submit can add one (or a hard stop)."""
        while (item := await self._next_due()) is not None:
            self.active += 1
            self._active_spend += item.price
            try:
                await self._poll(item)
            finally:
                self.active -= 1
                self._active_spend -= item.price
                self.control.wake.set()

    async def _next_due(self) -> InFlight | None:
        control = self.control
        while not control.hard_stop:
            if self.heap:
                delay = self.heap[0][0] - self.throttle.now()
                if delay <= 0 and self.submits_first(self.heap[0][2]):
                    lag = self.heap[0][0] + self.settings.polling.max_poll_lag - self.throttle.now()
                    delay = min(lag, self.throttle.window / 20)
                elif delay <= 0:
                    item = heapq.heappop(self.heap)[2]
                    self._heap_spend -= item.price
                    return item
                await control.wait_wake(delay)
            elif control.submits_done and self.active == 0:
                control.wake.set()  # let the other pollers see it too
                return None
            else:
                await control.wait_wake(1.0)
        return None

    async def _poll(self, item: InFlight) -> None:
        # A poll yields to submissions until it is max_poll_lag overdue: while rows wait to be
        # sent, the budget goes to them, and a finished task loses nothing by waiting a little.
        try:
            async with self.control.api_slot(
                item.due + self.settings.polling.max_poll_lag
            ) as may_send:
                if not may_send:
                    return
                status = await self.api.status(item.task_id)
        except AuthError as exc:
            self.control.fail(exc)
            return
        except TaskGoneError as exc:
            record_gone(item.run, item.key, item.task_id, exc, item.price)
            return
        except ProtocolError as exc:
            record_protocol_error(item.run, item.key, item.task_id, exc, item.price)
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
            record_without_video(item.run, item.key, status, item.price, self.billing)
        elif status.state in _ENDED:
            self.planner.forget(item.task_id)
            to = _ENDED[status.state]
            record_ended(item.run, item.key, status, to, item.price, self.billing)
        else:
            self._task_failed(item, status)

    def _poll_failed(self, item: InFlight, exc: ApiError) -> None:
        item.errors += 1
        hint = exc.retry_after if isinstance(exc, TransientApiError) else None
        decision = decide(
            Step.POLL,
            outcome_of(exc),
            item.errors,
            hint,
            policy=self.settings.limits.retry,
            time_left=self._time_left(),
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
            self.schedule(item, self.throttle.now() + decision.delay)
            return
        # The task stays submitted in the state: the next run asks about it again.
        log.warning(
            "%s: row key %s: cannot get the task's status: %s", item.run.name, item.key, exc
        )

    def _still_running(self, item: InFlight, status: TaskStatus, age: float) -> None:
        if not item.marked_running and status.running:
            item.run.store.transition(item.key, JobStatus.RUNNING)
            item.marked_running = True
        item.last_running_age = age
        self.planner.saw_running(item.task_id, item.mode, age)
        if age > self.settings.limits.task_deadline:
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
        self.push(item, age)

    async def _completed(self, item: InFlight, status: TaskStatus, age: float) -> None:
        self.planner.observe(item.task_id, item.mode, item.last_running_age, age)
        if self.planner.revision() != self._revision:
            self._replan()
        await record_completed(item.run, item.key, status, item.price, self.billing)
        await self.downloads.put(item.run, item.run.store.get(item.key))

    def _task_failed(self, item: InFlight, status: TaskStatus) -> None:
        self.planner.forget(item.task_id)
        run = item.run
        kind = record_failed(run, item.key, status, item.price, self.billing)
        job = run.store.get(item.key)
        limit = attempt_limit(Step.SUBMIT, self.settings.limits.retry)
        if (
            kind == TRANSIENT
            and not self.control.stop_submitting
            and run.store.retry_transient(item.key, limit)
        ):
            delay = decide(
                Step.SUBMIT,
                Outcome.TRANSIENT,
                job.attempts,
                None,
                policy=self.settings.limits.retry,
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
