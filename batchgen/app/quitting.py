"""Leaving at once on a signal, with every run's line in its state written first.

The first SIGINT/SIGTERM during the dispatch stops the run gently; a second one, or any signal
while the results are written, exits at once (README "Stopping a run"). Before that exit the
state's ``runs`` line gets its end time, exit code and counts, so ``status``, ``report`` and
the next run's Runs sheet show how the run ended; the results are left for ``batchgen report``.

The dispatch's handlers (:func:`dispatch_signals`, on the event loop) hand over to the run's
own (:func:`quit_on_signal`) in one step, with nothing awaited between: a signal that lands
while the dispatch's connections close is held until the runs' lines are written, never
taken by Python's default handler (which once ended such a run with 130 and no line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from batchgen.app.outcome import OUTCOMES
from batchgen.app.record import close_run
from batchgen.engine.guards import StopReason
from batchgen.engine.manifest_run import ManifestRun
from batchgen.state.protocol import ManifestStore

__all__ = ["Closed", "RunLine", "close_all", "dispatch_signals", "quit_on_signal"]

log = logging.getLogger("batchgen")


@dataclass(frozen=True)
class RunLine:
    """One manifest's run: its file name (for messages), state, run id and counters."""

    name: str
    store: ManifestStore
    run_id: int
    run: ManifestRun


def close_all(
    lines: Sequence[RunLine], codes: Sequence[int], requests: int, rate_limited: int
) -> None:
    """Write every run's line (exit code, counts, end time) in its state; never raises.

    ``codes``: one exit code per line. Also called just before ``os._exit``: the exit must
    stay prompt whatever the state says.
    """
    for index, (line, code) in enumerate(zip(lines, codes, strict=True)):
        try:
            close_run(
                line.store,
                line.run_id,
                line.run,
                code=code,
                outcome=OUTCOMES.get(code, "interrupted"),
                # the API counters are process-wide: the first manifest carries them
                requests=requests if index == 0 else 0,
                rate_limited=rate_limited if index == 0 else 0,
            )
        except Exception as exc:  # any failure: log it, go on
            log.error("%s: run not recorded: %s", line.name, exc)


@dataclass
class Closed:
    """The run's own signal handling, after the dispatch (see :func:`quit_on_signal`).

    ``close(code)``, set by the caller once the runs' lines are written, rewrites them;
    ``pending``: signals that came before that, handled as soon as ``close`` is set.
    """

    enabled: bool = True
    close: Callable[[int], None] | None = None
    pending: list[int] = field(default_factory=list)
    #: the handlers before the run (asyncio's own for SIGINT), given back by ``uninstall``
    found: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        """Take SIGINT and SIGTERM from now on (idempotent; nothing when not ``enabled``)."""
        if self.enabled and signal.getsignal(signal.SIGINT) != self._on_signal:
            for signum in _SIGNALS:
                signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Give the handlers found before the run back."""
        for signum, handler in self.found.items():
            signal.signal(signum, handler)

    def ready(self, close: Callable[[int], None]) -> None:
        """The runs' lines are written; a signal received meanwhile exits now."""
        self.close = close
        if self.pending:
            _leave(close, self.pending[-1])

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.close is None:  # the runs' lines are being written: exit right after
            self.pending.append(signum)
            return
        _leave(self.close, signum)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _leave(close: Callable[[int], None], signum: int) -> None:
    log.warning("quitting at once: results not rewritten (batchgen report writes them)")
    close(128 + signum)
    os._exit(128 + signum)


@contextlib.contextmanager
def quit_on_signal(*, enabled: bool) -> Iterator[Closed]:
    """The run's signal handling from the end of its dispatch to its last line: a signal
    records 128 + signal in every run's line, then exits at once. Its handlers are taken up
    by :meth:`Closed.install` (the dispatch's handlers do it as they go) and given back at
    the end."""
    closed = Closed(enabled=enabled)
    if enabled:
        closed.found = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    try:
        yield closed
    finally:
        closed.uninstall()


class Stoppable(Protocol):
    """What the dispatch's first signal needs of the dispatcher."""

    def request_stop(self, reason: StopReason) -> None: ...


@contextlib.contextmanager
def dispatch_signals(
    dispatcher: Stoppable, quit_now: Callable[[int], None], closed: Closed
) -> Iterator[list[int]]:
    """During the dispatch: the first SIGINT/SIGTERM stops it gently; a second one closes the
    runs' lines (``quit_now(128 + signal)``) and exits. Yields the signals received. Run on
    the event loop (its handlers run between callbacks, never inside a state write). On the
    way out, ``closed`` takes the signals over before anything else runs."""
    received: list[int] = []
    if not closed.enabled:
        yield received
        return
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if received:  # the second signal: commit what is queued, record the run, leave now
            quit_now(128 + signum)
            os._exit(128 + signum)
        received.append(signum)
        log.warning(
            "%s received: no new submissions; finishing requests in flight "
            "(send it again to quit at once)",
            signal.Signals(signum).name,
        )
        dispatcher.request_stop(StopReason.SIGNAL)

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield received
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)  # back to Python's default handlers...
        closed.install()  # ...for no longer than this line
