"""One ``batchgen run``: manifests in, videos and results out, an exit code for cron.

The steps, per manifest: read and validate it, open its state (taking the run lock), fold the
manifest into the state, recover what an earlier run left half-done, then one dispatcher works
on every manifest at once behind one throttle; at the end each manifest's results sheet and
gallery are rebuilt from its state alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from batchgen import __version__
from batchgen.app.copies import TaskRecorder, hold_copies, record_state, state_or_alias
from batchgen.app.outcome import MEANINGS, ended_by, manifest_exit, overall_exit
from batchgen.app.pictures import hold_bad_pictures
from batchgen.app.plan import plural
from batchgen.app.provider import ProviderFactory, provider_factory, provider_of, with_provider
from batchgen.app.quitting import Closed, RunLine, close_all, dispatch_signals, quit_on_signal
from batchgen.app.record import write_results
from batchgen.app.review_loop import sync_with_review
from batchgen.config import Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun, StopReason
from batchgen.engine.download_stage import policy_for
from batchgen.engine.downloads.addresses import cdn_connector
from batchgen.engine.guards import time_left_until_end
from batchgen.engine.pacing.limiter import open_throttle
from batchgen.engine.progress import Progress
from batchgen.engine.retry import Step, attempt_limit
from batchgen.engine.timing.latency_store import learned_latencies
from batchgen.errors import (
    AuthError,
    BatchgenError,
    DiskFullError,
    ExitCode,
    LockHeldError,
    ManifestError,
    StateBusyError,
    StateConflictError,
    UsageError,
)
from batchgen.logs import attach_run_log, detach_run_log
from batchgen.manifest.identity import hold_regenerations
from batchgen.manifest.load import Manifest, find_manifests, no_manifest_message, read_manifest
from batchgen.models import JobStatus
from batchgen.output.gallery import GALLERY_NAME
from batchgen.output.naming import file_names
from batchgen.output.notify import send_notice
from batchgen.output.results import XLSX_NAME
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import ProviderInfo, format_usd
from batchgen.providers.endpoint import normalise_base_url
from batchgen.providers.token import Token
from batchgen.state.factory import open_store
from batchgen.state.generated import GenerationRecord
from batchgen.state.location import manifest_identity
from batchgen.state.protocol import BusyWait, ManifestStore
from batchgen.state.registry import Registry, locate_state
from batchgen.state.spend import Spend

__all__ = ["Prepared", "hold_generated", "run_batch"]

log = logging.getLogger("batchgen")


@dataclass(eq=False)
class Prepared:
    """A manifest that is readable, locked and synced, ready to run."""

    path: Path
    out_dir: Path
    store: ManifestStore
    run_id: int
    run: ManifestRun


#: Seconds a run that stopped because its state stayed busy still waits to record its line.
RECORD_WAIT = 30.0


@dataclass(frozen=True)
class _Outcome:
    dispatcher: Dispatcher
    signum: int | None
    requests: int
    rate_limited: int
    error: BatchgenError | None = None  # what ended the dispatch, when an error did


@dataclass
class _BusyStop:
    """Told when a state stayed busy past the run's deadline: remembers the error and halts
    the dispatch (``stop``, set once it runs), whichever of its tasks met it."""

    error: StateBusyError | None = None
    stop: Callable[[], None] | None = None

    def __call__(self, exc: Exception) -> None:
        if self.error is None and isinstance(exc, StateBusyError):
            self.error = exc
        if self.stop is not None:
            self.stop()


def busy_wait(
    settings: Settings, *, extra: float | None = None, gave_up: _BusyStop | None = None
) -> BusyWait:
    """How long this run waits for a state that another program holds: until its deadline
    plus grace, or ``--outage-timeout`` without a deadline (``extra``: that many seconds
    from now instead); ``gave_up`` is told when a store gives up."""
    left = time_left_until_end(settings)
    bound = extra if extra is not None else settings.api.outage_timeout
    end = time.monotonic() + bound

    def time_left() -> float:
        by_deadline = None if extra is not None else left()
        return by_deadline if by_deadline is not None else end - time.monotonic()

    return BusyWait(
        time_left=time_left, notice=lambda text: log.warning("%s", text), gave_up=gave_up
    )


@dataclass
class _Batch:
    prepared: list[Prepared] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    record: GenerationRecord | None = None  # what was generated, across every state
    busy: _BusyStop = field(default_factory=_BusyStop)  # a state that stayed busy


def _prepare(
    path: Path,
    settings: Settings,
    command: str,
    info: ProviderInfo,
    busy: BusyWait,
    record: GenerationRecord | None,
) -> Prepared | None:
    manifest = read_manifest(path, settings.manifest, info)
    if not manifest.rows:  # a sheet emptied after a campaign: a note, nothing to do
        for problem in manifest.problems:
            log.info("%s", problem)
        return None
    registry = None if settings.state.demo else Registry()
    out, new_state = settings.output.out_dir, settings.state.new_state
    alias = state_or_alias(
        out, path, manifest.valid, registry=registry, record=record, new_state=new_state
    )
    if alias is not None:  # a rename or a hard link: the same manifest, the same state
        log.warning("%s", alias.describe(path.name))
        state = alias.state
    else:
        state = locate_state(out, path, registry=registry, new_state=new_state)
    store = open_store(state, manifest=path, busy=busy)
    try:
        # a wrong --name-template stops before anything is sent
        files = file_names(
            store, settings.output.name_template, manifest.columns, path.name, unit=info.unit
        )
        store.acquire_lock()
        store.bind_provider(
            info.name,
            unit=info.unit.name,
            floor=info.price.floor,
            price_of=info.price_of,
            legacy=DEFAULT.name,
        )
        store.bind_base_url(
            normalise_base_url(settings.api.base_url),
            rebind=settings.state.rebind_base_url or settings.state.demo,
        )
        store.set_meta("manifest_path", manifest_identity(path))
        if registry is not None:
            registry.record(path, store.path)
        allow = settings.manifest.allow_regenerate
        manifest, own = hold_generated(manifest, store, allow=allow)
        if record is not None:  # rows made under another manifest path (a copy): held
            record_state(record, store, path)
            manifest = hold_copies(manifest, record, store, own=own, allow=allow)
        for problem in manifest.problems:
            (log.warning if problem.severity == "warning" else log.error)("%s", problem)
        report = sync_with_review(store, manifest, store.path.parent)
        for warning in report.warnings:
            log.warning("%s: %s", path.name, warning)
        _recover(store, path, settings)
        store.fill_prices(info.price_of)  # rows requeued with an edited request
        _explain_skips(store, path.name, report.new)
        run_id = store.start_run(command=command, version=__version__)
    except BaseException:
        store.close()
        raise
    out_dir = store.path.parent
    run = ManifestRun(name=path.name, store=store, out_dir=out_dir, files=files)
    if record is not None:
        run.on_generated = recorder = TaskRecorder(record, store, path)
        run.commits.after_commit = recorder.flush
    return Prepared(path=path, out_dir=out_dir, store=store, run_id=run_id, run=run)


def hold_generated(
    manifest: Manifest, store: ManifestStore, *, allow: bool
) -> tuple[Manifest, set[str]]:
    """``manifest`` with the rows already generated in ``store`` under another key held
    (:func:`~batchgen.manifest.identity.hold_regenerations`), and the keys of the rows the
    state generated. The requests are read from the state only when some valid row is not one
    of those keys: a re-run of a finished manifest reads the keys alone."""
    own = store.generated_keys()
    if all(spec.key in own for spec in manifest.valid):
        return manifest, own  # no row could be a generated one under another key
    held, _ = hold_regenerations(manifest, store.generated_requests(), allow=allow)
    return held, own


def _recover(store: ManifestStore, path: Path, settings: Settings) -> None:
    name = path.name
    if moved := store.recover_interrupted():
        log.warning(
            "%s: %d take(s) were being submitted when the last run stopped; their outcome is "
            "unknown (re-run with --resubmit-unknown to send them again)",
            name,
            moved,
        )
    if settings.limits.resubmit_unknown and (moved := store.requeue_unknown()):
        log.warning(
            "%s: sending %d take(s) of unknown outcome again (--resubmit-unknown)", name, moved
        )
    moved = store.requeue_failed(
        include_permanent=settings.limits.retry_failed,
        max_attempts=attempt_limit(Step.SUBMIT, settings.limits.retry),
    )
    if moved:
        log.info("%s: %d failed take(s) will be tried again", name, moved)
    if moved := store.requeue_downloads():
        log.info("%s: %d download(s) will be tried again", name, moved)


_SKIPPED = {
    JobStatus.DOWNLOADED: "already downloaded",
    JobStatus.INVALID: "invalid in the manifest",
    JobStatus.FAILED: "failed for good (--retry-failed sends them again)",
    JobStatus.REJECTED: "refused by the API (--retry-failed sends them again)",
    JobStatus.UNKNOWN: "of unknown outcome (--resubmit-unknown sends them again)",
    JobStatus.LOST: "unknown to the vendor (--resubmit-unknown sends them again)",
}


def _explain_skips(store: ManifestStore, name: str, new: int) -> None:
    """-v: why rows of the manifest are not sent this run."""
    counts = store.counts(in_manifest_only=True)
    log.debug("%s: %d new take(s), %d to send", name, new, counts.get(JobStatus.PENDING, 0))
    for status, why in _SKIPPED.items():
        if counts.get(status):
            log.debug("%s: %d take(s) %s: skipped, no request", name, counts[status], why)


def _prepare_all(
    paths: Sequence[Path], settings: Settings, command: str, info: ProviderInfo
) -> _Batch:
    """Open every manifest's state; a usage problem or a state conflict (another state, a
    deleted state, another API URL) refuses the whole run before anything is sent."""
    batch = _Batch(record=None if settings.state.demo else GenerationRecord())
    files = find_manifests(list(paths))
    if not files:
        raise UsageError(no_manifest_message(list(paths)))
    busy = busy_wait(settings, gave_up=batch.busy)
    try:
        for path in files:
            try:
                prepared = _prepare(path, settings, command, info, busy, batch.record)
                if prepared is None:
                    batch.empty.append(path.name)
                else:
                    batch.prepared.append(prepared)
            except LockHeldError as exc:
                log.error("%s", exc)
                batch.locked.append(path.name)
            except (ManifestError, BatchgenError) as exc:
                if isinstance(exc, UsageError | StateConflictError):
                    raise
                shown = str(exc) if isinstance(exc, ManifestError) else f"{path.name}: {exc}"
                log.error("skipped %s", shown)
                batch.unreadable.append(path.name)
    except BaseException:
        for prepared_one in batch.prepared:
            prepared_one.store.close()
        if batch.record is not None:
            batch.record.close()
        raise
    return batch


async def run_batch(
    paths: Sequence[Path],
    settings: Settings,
    token: Token,
    *,
    command: str,
    install_signals: bool = True,
    provider: ProviderFactory | None = None,
) -> int:
    """Run every manifest under ``paths``; returns the process exit code.

    The provider is the one ``settings.api.provider`` names (the default one unless told);
    ``provider`` may build another client for it (the engine sees only the
    :class:`~batchgen.providers.base.Provider` protocol). UsageError (exit 2, nothing sent)
    for an unknown provider, or a budget it cannot take (``--max-credits`` for a provider
    that bills dollars)."""
    info = provider_of(settings)
    settings = with_provider(settings, info)
    info.unit.limit(max_credits=settings.limits.max_credits, max_usd=settings.limits.max_usd)
    factory = provider or provider_factory(info)
    batch = _prepare_all(paths, settings, command, info)
    batch.busy.error = None  # a manifest refused as busy before the dispatch is counted as locked
    if not batch.prepared:
        if batch.record is not None:
            batch.record.close()
        if batch.locked:
            return ExitCode.LOCKED
        if batch.unreadable:
            log.error(
                "nothing to run: no manifest among %s could be read", ", ".join(map(str, paths))
            )
            return ExitCode.USAGE
        return ExitCode.OK  # only manifests without data rows: nothing to do
    handlers = [attach_run_log(p.out_dir) for p in batch.prepared]
    try:
        with quit_on_signal(enabled=install_signals) as closed:
            try:
                await hold_bad_pictures([(p.path.name, p.store) for p in batch.prepared], settings)
                outcome = await _dispatch(batch, settings, token, closed, factory, info)
            except BatchgenError as exc:  # before the dispatch began: nothing was sent
                close_all(_lines(batch.prepared), [exc.exit_code] * len(batch.prepared), 0, 0)
                raise
            closed.install()  # (already done as the dispatch's own handlers left)
            code = _finish(batch, outcome, settings, closed, info)
            if settings.output.notify_url:
                await _notify(settings.output.notify_url, batch, code, info)
        return code
    finally:
        for handler in handlers:
            detach_run_log(handler)
        for prepared in batch.prepared:
            prepared.store.close()
        if batch.record is not None:
            batch.record.close()


async def _dispatch(
    batch: _Batch,
    settings: Settings,
    token: Token,
    closed: Closed,
    provider: ProviderFactory,
    info: ProviderInfo,
) -> _Outcome:
    prepared = batch.prepared
    async with (
        open_throttle(settings, token.reveal(), info.limits) as throttle,
        provider(settings, token, throttle.observe) as api,
        aiohttp.ClientSession(
            connector=cdn_connector(allow_private=policy_for(settings).allow_private)
        ) as cdn,
        learned_latencies(settings) as planner,
    ):
        dispatcher = Dispatcher(
            [p.run for p in prepared],
            api=api,
            throttle=throttle,
            cdn=cdn,
            settings=settings,
            planner=planner,
            billing=info.billing,
        )
        # a state that stays busy past the deadline halts the whole run, whichever task met it
        batch.busy.stop = lambda: dispatcher.control.stop(StopReason.STATE_BUSY, True)

        def quit_now(code: int) -> None:
            for each in prepared:  # the transitions still in a group (task ids in hand)
                each.run.commits.flush()
            close_all(_lines(prepared), [code] * len(prepared), api.requests, api.rate_limited)

        ended: BatchgenError | None = None
        with dispatch_signals(dispatcher, quit_now, closed) as received:
            progress = Progress(dispatcher, api, settings)
            async with progress:
                task = asyncio.ensure_future(dispatcher.run())
                try:
                    await _await_with_stop_timeout(task, dispatcher, settings)
                except BatchgenError as exc:  # the run's lines are still closed (_finish)
                    ended = exc
                finally:
                    batch.busy.stop = None
        ended = ended or batch.busy.error
        if ended is not None:
            log.error("%s", ended)
        signum = received[0] if received else None
        return _Outcome(dispatcher, signum, api.requests, api.rate_limited, error=ended)


async def _await_with_stop_timeout(
    task: asyncio.Future[None], dispatcher: Dispatcher, settings: Settings
) -> None:
    """Wait for the dispatcher; once a signal asked it to stop, wait only ``stop_timeout``."""
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=0.2)
        if done or dispatcher.stop_reason is not StopReason.SIGNAL:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), settings.limits.stop_timeout)
        if not task.done():
            log.warning(
                "requests still in flight after %.0f s: abandoning them",
                settings.limits.stop_timeout,
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        break
    if task.done() and not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if isinstance(exc, DiskFullError):  # the state itself could not be written
            dispatcher.downloads.disk_full = dispatcher.downloads.disk_full or exc
            log.error("%s", exc)
        elif not isinstance(exc, AuthError):
            raise exc  # type: ignore[misc]


def _lines(prepared: Sequence[Prepared]) -> list[RunLine]:
    return [RunLine(p.path.name, p.store, p.run_id, p.run) for p in prepared]


def _finish(
    batch: _Batch, outcome: _Outcome, settings: Settings, closed: Closed, info: ProviderInfo
) -> int:
    """Write every run's line in its state first (quick), then the results (slow)."""
    dispatcher = outcome.dispatcher
    error = outcome.error
    if error is None:
        try:
            codes = [manifest_exit(p.store, dispatcher, outcome.signum) for p in batch.prepared]
        except BatchgenError as exc:  # the state stayed busy past the deadline, say
            log.error("%s", exc)
            error = exc
    if error is not None:  # counted without the state, which may still be busy
        codes = [ended_by(error, sent=outcome.requests > 0)] * len(batch.prepared)
        for prepared in batch.prepared:
            prepared.store.wait_while_busy(busy_wait(settings, extra=RECORD_WAIT))
    lines = _lines(batch.prepared)
    close_all(lines, codes, outcome.requests, outcome.rate_limited)

    def close(code: int) -> None:
        close_all(lines, [code] * len(lines), outcome.requests, outcome.rate_limited)

    closed.ready(close)
    for prepared in batch.prepared:
        if batch.record is not None:  # what this run generated joins the per-user record
            with contextlib.suppress(BatchgenError):
                record_state(batch.record, prepared.store, prepared.path)
        try:  # results are written "if space allows" (and if the state can be read)
            write_results(prepared.store, prepared.run, settings=settings)
        except (BatchgenError, OSError) as exc:
            log.error("%s: results not written: %s", prepared.path.name, exc)
        with contextlib.suppress(BatchgenError):
            log.info("%s", summary_line(prepared, info, demo=settings.state.demo))
    if error is not None:
        return max(codes, default=ExitCode.ATTENTION)
    return overall_exit(
        codes,
        dispatcher,
        outcome.signum,
        locked=bool(batch.locked),
        unreadable=bool(batch.unreadable),
    )


async def _notify(url: str, batch: _Batch, code: int, info: ProviderInfo) -> None:
    lines = [summary_line(p, info) for p in batch.prepared]
    lines += [f"{name}: unreadable, skipped" for name in batch.unreadable]
    lines += [f"{name}: locked by another run" for name in batch.locked]
    meaning = MEANINGS.get(code, "see the log")
    text = f"batchgen finished (exit {code}: {meaning})\n" + "\n".join(lines)
    total = sum((p.store.spend() for p in batch.prepared), Spend())
    sizes = {
        "rows": sum(p.store.row_count(in_manifest_only=True) for p in batch.prepared),
        "takes": sum(sum(p.store.counts(in_manifest_only=True).values()) for p in batch.prepared),
    }
    fields = {"exit_code": code, "manifests": lines, **sizes, **info.unit.spend_fields(total)}
    await send_notice(url, text, fields)


def summary_line(prepared: Prepared, info: ProviderInfo = DEFAULT, *, demo: bool = False) -> str:
    """One line per manifest for the log and the notice: its rows and takes (counted apart),
    the takes by status, what this run did, what it cost (in the provider's unit), where the
    results are."""
    counts = prepared.store.counts(in_manifest_only=True)
    rows = prepared.store.row_count(in_manifest_only=True)
    c = prepared.run.counters
    unit = info.unit
    parts = [f"{status.value} {n}" for status, n in sorted(counts.items()) if n]
    simulated = " (simulated: the demo spends nothing)" if demo else ""
    if unit.credits:
        money = f"credits charged {c.credits}, possibly charged {c.possible}"
    else:
        money = f"charged {format_usd(unit.usd(c.credits))}, possibly charged "
        money += format_usd(unit.usd(c.possible))
    sizes = f"{plural(rows, 'row')}, {plural(sum(counts.values()), 'take')}"
    return (
        f"{prepared.path.name}: {sizes} ({', '.join(parts) or 'none'}); this run: submitted "
        f"{c.submitted}, downloaded {c.downloaded}, {money}; state: "
        f"{unit.spend_text(prepared.store.spend())}{simulated}; "
        f"results in {prepared.out_dir / XLSX_NAME}, gallery {prepared.out_dir / GALLERY_NAME}"
    )
