"""What the engine writes into a row's state for each outcome of a submit or a poll.

One function per outcome; each performs one guarded transition (with its history entry where
it explains a decision) and keeps the run's counters, spend included, in the provider's billing
unit: a task counts as charged at the vendor's plausible figure, else at its row's price
(``providers.descriptor.Billing.settle``); an unknown submit counts its row's price as
possibly charged. A charge above the row's price (a vendor whose prices moved away from the
provider's table) is said once per manifest and raises ``Counters.drift``, by which the budget
then counts what is in flight and what comes next (:func:`charge`).
"""

from __future__ import annotations

import logging
from typing import Any

from batchgen.engine.manifest_run import ManifestRun
from batchgen.engine.retry import PERMANENT, Outcome, task_error_kind
from batchgen.errors import (
    AmbiguousSubmitError,
    ApiError,
    NotSentError,
    ProtocolError,
    RateLimitedError,
    TaskGoneError,
    TransientApiError,
)
from batchgen.models import (
    AttemptKind,
    AttemptOutcome,
    ErrorKind,
    JobStatus,
    TaskStatus,
)
from batchgen.providers.descriptor import Billing
from batchgen.state.protocol import Store
from batchgen.state.schema import Attempt

__all__ = [
    "FINAL_MESSAGES",
    "charge",
    "outcome_of",
    "record_completed",
    "record_ended",
    "record_failed",
    "record_gone",
    "record_protocol_error",
    "record_without_video",
    "settle_submit",
    "submit_refused",
]

log = logging.getLogger("batchgen.engine.dispatcher")


def outcome_of(exc: ApiError) -> Outcome:
    """The retry policy's name for what a failed request proved."""
    if isinstance(exc, NotSentError):
        return Outcome.NOT_SENT
    if isinstance(exc, RateLimitedError):
        return Outcome.RATE_LIMITED
    if isinstance(exc, TaskGoneError):
        return Outcome.GONE
    if isinstance(exc, ProtocolError):
        return Outcome.PROTOCOL
    if isinstance(exc, TransientApiError):
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def settle_submit(
    store: Store,
    key: str,
    to: JobStatus,
    kind: str,
    outcome: AttemptOutcome,
    exc: ApiError,
    message: str | None = None,
) -> None:
    """A submit that did not return a task id: the row's new status and its history entry."""
    store.transition(
        key,
        to,
        error_kind=kind,
        error_message=message or str(exc),
        attempt=Attempt(AttemptKind.SUBMIT, outcome, str(exc)),
    )


def submit_refused(run: ManifestRun, key: str, exc: ApiError, price: int) -> None:
    """An ambiguous submit becomes ``unknown`` (its ``price`` possibly charged); a refused one
    ``rejected``. (A refused token is the dispatcher's business: it stops the run.)"""
    if isinstance(exc, AmbiguousSubmitError):
        message = (
            f"{exc}. Not sent again automatically: check the vendor's dashboard, "
            "then re-run with --resubmit-unknown to generate it again"
        )
        settle_submit(
            run.store,
            key,
            JobStatus.UNKNOWN,
            ErrorKind.AMBIGUOUS,
            AttemptOutcome.AMBIGUOUS,
            exc,
            message,
        )
        run.counters.unknown += 1
        run.counters.possible += price
        log.warning("%s: row key %s: outcome of the submit is unknown: %s", run.name, key, exc)
    else:
        settle_submit(run.store, key, JobStatus.REJECTED, PERMANENT, AttemptOutcome.REJECTED, exc)
        run.counters.rejected += 1


def charge(run: ManifestRun, key: str, price: int, reported: int | None, billing: Billing) -> int:
    """What a finished task of row ``key`` counts as (``Billing.settle``), in units. When that
    is above the row's ``price`` the vendor charges more than the provider's price table says:
    the first time in a manifest's run that is said (a warning with both figures), and
    ``run.counters.drift`` keeps the largest ratio, so that the budget counts the tasks in
    flight and the next submits at their price times it."""
    charged = billing.settle(price, reported)
    if price > 0 and charged > price:
        ratio = charged / price
        if run.counters.drift == 1.0:
            unit = billing.unit
            log.warning(
                "%s: row key %s: the vendor charged %s for a task priced %s by batchgen's "
                "table (%.2f x): the table may be out of date; the budget now counts tasks "
                "in flight and new submits at %.2f x their price",
                run.name,
                key,
                unit.show(charged),
                unit.show(price),
                ratio,
                ratio,
            )
        run.counters.drift = max(run.counters.drift, ratio)
    return charged


def record_gone(run: ManifestRun, key: str, task_id: str, exc: TaskGoneError, price: int) -> None:
    """The vendor does not know the task: ``lost`` (it was created: its price charged)."""
    message = (
        f"{exc}. Its videos cannot be fetched; re-run with --resubmit-unknown to generate "
        "it again (a new task, paid again)"
    )
    run.store.transition(
        key,
        JobStatus.LOST,
        error_kind=ErrorKind.GONE,
        error_message=message,
        attempt=Attempt(AttemptKind.POLL, AttemptOutcome.GONE, str(exc), task_id),
    )
    run.counters.lost += 1
    run.counters.credits += price
    log.warning("%s: row key %s: %s", run.name, key, message)


def record_protocol_error(
    run: ManifestRun, key: str, task_id: str, exc: ProtocolError, price: int
) -> None:
    """A status answer that cannot be used fails this row only (its price charged)."""
    message = f"protocol error: {exc}"
    run.store.transition(
        key,
        JobStatus.FAILED,
        error_kind=PERMANENT,
        error_message=message,
        attempt=Attempt(AttemptKind.POLL, AttemptOutcome.PROTOCOL_ERROR, str(exc), task_id),
    )
    run.counters.failed += 1
    run.counters.credits += price
    log.warning("%s: row key %s: %s", run.name, key, message)


async def record_completed(
    run: ManifestRun, key: str, status: TaskStatus, price: int, billing: Billing
) -> None:
    """A task done with at least one URL; a message beside it is kept as a note. Committed
    with the other rows moving at the same time (``run.commits``)."""
    fields: dict[str, Any] = {}
    if status.error_message:  # a success with a remark: a note, not an error
        fields = {"error_kind": ErrorKind.NOTE, "error_message": status.error_message}
    await run.commits.move(
        key,
        JobStatus.COMPLETED,
        video_urls=status.urls,
        consumed_credits=status.consumed_credits or 0,
        on_made=run.counters.counting(
            "completed", charge(run, key, price, status.consumed_credits, billing)
        ),
        **fields,
    )


def record_without_video(
    run: ManifestRun, key: str, status: TaskStatus, price: int, billing: Billing
) -> None:
    """A task reported done without any URL: needs a person, never resubmitted on its own."""
    message = (
        f"the vendor reported task {status.task_id} {status.status!r} without any video "
        "URL; check the vendor's dashboard. Not sent again automatically: "
        "--retry-failed generates it again (paid again)"
    )
    run.store.transition(
        key,
        JobStatus.FAILED,
        error_kind=PERMANENT,
        error_message=message,
        consumed_credits=status.consumed_credits or 0,
    )
    run.counters.failed += 1
    run.counters.credits += charge(run, key, price, status.consumed_credits, billing)
    log.warning("%s: row key %s: %s", run.name, key, message)


#: What a final word of the vendor that is neither success nor failure means, and what to do.
FINAL_MESSAGES: dict[JobStatus, str] = {
    JobStatus.EXPIRED: (
        "the vendor reports task {task} {word!r}: it expired before a video could be "
        "fetched, and no video will come. Whether it was billed is not documented (counted "
        "as charged). Not sent again automatically: --retry-failed generates it again "
        "(a new task, paid again)"
    ),
    JobStatus.MODERATED: (
        "the vendor's moderation withheld the video of task {task} (it finished, and the "
        "vendor's cost stands). Not sent again automatically: change the prompt or picture, "
        "then --retry-failed generates it again (paid again)"
    ),
}


def record_ended(
    run: ManifestRun,
    key: str,
    status: TaskStatus,
    to: JobStatus,
    price: int,
    billing: Billing,
) -> None:
    """A final state that is neither a video nor a failure (``expired``, ``moderated``): the
    row ends with a status that says so, never polled again nor resent on its own."""
    message = FINAL_MESSAGES[to].format(task=status.task_id, word=status.status)
    if status.error_message:
        message = f"{message} (the vendor said: {status.error_message})"
    run.store.transition(
        key,
        to,
        error_kind=PERMANENT,
        error_message=message,
        consumed_credits=status.consumed_credits or 0,
    )
    run.counters.failed += 1
    run.counters.credits += charge(run, key, price, status.consumed_credits, billing)
    log.warning("%s: row key %s: %s", run.name, key, message)


def record_failed(
    run: ManifestRun, key: str, status: TaskStatus, price: int, billing: Billing
) -> str:
    """A task that ended without video; returns its error kind (transient / permanent)."""
    message = status.error_message or f"the task ended as {status.status!r}"
    kind = task_error_kind(message)
    run.store.transition(
        key,
        JobStatus.FAILED,
        error_kind=kind,
        error_message=message,
        consumed_credits=status.consumed_credits or 0,
    )
    run.counters.credits += charge(run, key, price, status.consumed_credits, billing)
    return kind
