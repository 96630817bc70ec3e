"""Leaving at once on a signal, with every run's line in its state written first.

The first SIGINT/SIGTERM during the dispatch stops the run gently; a second one, or any signal
while the results are written, exits at once (README "Stopping a run"). Before that exit the
state's ``runs`` line gets its end time, exit code and counts, so ``status``, ``report`` and
the next run's Runs sheet show how the run ended; the results are left for ``batchgen report``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType

from batchgen.app.outcome import OUTCOMES
from batchgen.app.record import close_run
from batchgen.engine.manifest_run import ManifestRun
from batchgen.state.protocol import ManifestStore

__all__ = ["Closed", "RunLine", "close_all", "quit_on_signal"]

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
    """Set by the caller once the runs' lines are written: ``close(code)`` rewrites them.

    ``pending``: signals that came before that, handled as soon as ``close`` is set.
    """

    close: Callable[[int], None] | None = None
    pending: list[int] = field(default_factory=list)

    def ready(self, close: Callable[[int], None]) -> None:
        """The runs' lines are written; a signal received meanwhile exits now."""
        self.close = close
        if self.pending:
            _leave(close, self.pending[-1])


def _leave(close: Callable[[int], None], signum: int) -> None:
    log.warning("quitting at once: results not rewritten (batchgen report writes them)")
    close(128 + signum)
    os._exit(128 + signum)


@contextlib.contextmanager
def quit_on_signal(*, enabled: bool) -> Iterator[Closed]:
    """While the results are written: SIGINT/SIGTERM records 128 + signal, then exits at once."""
    closed = Closed()
    if not enabled:
        yield closed
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if closed.close is None:  # the runs' lines are being written: exit right after
            closed.pending.append(signum)
            return
        _leave(closed.close, signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield closed
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
