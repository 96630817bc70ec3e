"""How a run's outcome becomes exit codes and the words the log and the notice use."""

from __future__ import annotations

from batchgen.engine.dispatcher import Dispatcher, StopReason
from batchgen.errors import BatchgenError, ExitCode, StateBusyError
from batchgen.models import JobStatus
from batchgen.state.protocol import ManifestStore

__all__ = ["MEANINGS", "OUTCOMES", "ended_by", "manifest_exit", "overall_exit"]

OUTCOMES = {
    ExitCode.OK: "complete",
    ExitCode.ATTENTION: "needs attention",
    ExitCode.STOPPED_EARLY: "stopped early (budget or deadline)",
    ExitCode.OUTAGE: "the API could not be reached",
    ExitCode.AUTH: "token refused",
    ExitCode.DISK_FULL: "stopped: disk full",
    ExitCode.SIGINT: "interrupted",
    ExitCode.SIGTERM: "interrupted",
}


def ended_by(exc: BatchgenError, *, sent: bool) -> int:
    """The exit code of a run that an error ended mid-dispatch; ``sent``: whether any request
    went out. Exit 2 means "nothing was sent", so a run that had sent never ends with it: a
    state that stayed busy stops it early (5, a re-run continues), anything else needs
    attention (1). Before any request, a busy state is a held lock (4)."""
    if isinstance(exc, StateBusyError):
        return ExitCode.STOPPED_EARLY if sent else ExitCode.LOCKED
    if sent and exc.exit_code == ExitCode.USAGE:
        return ExitCode.ATTENTION
    return exc.exit_code


def manifest_exit(store: ManifestStore, dispatcher: Dispatcher, signum: int | None) -> int:
    """One manifest's exit code after the dispatcher stopped."""
    counts = store.counts(in_manifest_only=True)
    if dispatcher.fatal is not None:
        return ExitCode.AUTH
    if dispatcher.downloads.disk_full is not None:
        return ExitCode.DISK_FULL
    if dispatcher.stop_reason is StopReason.SIGNAL:
        # 128 + the signal, as a shell reports it: SIGTERM (cron, systemd) is 143, not 130
        return 128 + signum if signum is not None else ExitCode.SIGINT
    if dispatcher.stop_reason is StopReason.OUTAGE:
        return ExitCode.OUTAGE
    unsettled = sum(
        counts.get(s, 0)
        for s in (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.RUNNING, JobStatus.COMPLETED)
    )
    if unsettled and dispatcher.stop_reason in (StopReason.BUDGET, StopReason.DEADLINE):
        return ExitCode.STOPPED_EARLY
    total = sum(counts.values()) - counts.get(JobStatus.SKIPPED, 0)
    return ExitCode.OK if counts.get(JobStatus.DOWNLOADED, 0) == total else ExitCode.ATTENTION


def overall_exit(
    codes: list[int],
    dispatcher: Dispatcher,
    signum: int | None,
    *,
    locked: bool,
    unreadable: bool,
) -> int:
    """The process's exit code: the most serious manifest's, after run-wide causes."""
    if dispatcher.fatal is not None:
        return ExitCode.AUTH
    if signum is not None:
        return 128 + signum
    if dispatcher.stop_reason is StopReason.OUTAGE:
        return ExitCode.OUTAGE
    if dispatcher.downloads.disk_full is not None:
        return ExitCode.DISK_FULL
    if locked:
        return ExitCode.LOCKED
    if ExitCode.STOPPED_EARLY in codes:
        return ExitCode.STOPPED_EARLY
    if unreadable or ExitCode.ATTENTION in codes:
        return ExitCode.ATTENTION
    return ExitCode.OK


MEANINGS = {
    ExitCode.OK: "every row downloaded",
    ExitCode.ATTENTION: "some rows need attention",
    ExitCode.AUTH: "the API refused the token",
    ExitCode.LOCKED: "a manifest was locked by another run",
    ExitCode.STOPPED_EARLY: "stopped early by the budget or the deadline; a re-run continues",
    ExitCode.OUTAGE: "the API could not be reached; a re-run continues",
    ExitCode.DISK_FULL: "stopped because a disk is full; free space and run again",
    ExitCode.SIGINT: "interrupted",
    ExitCode.SIGTERM: "interrupted",
}
