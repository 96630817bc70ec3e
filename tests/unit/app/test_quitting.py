"""No signal falls between the dispatch's handlers and the run's own.

Seen in CI under load: the second SIGINT of a stopping run landed while the dispatch's
connections were closing, after the event loop's handlers were removed and before the results'
were installed; Python's default handler ended the run with 130 and its line in the state had
no end, no exit code and no counts.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from batchgen.app.quitting import dispatch_signals, quit_on_signal
from batchgen.engine.guards import StopReason


class _Dispatcher:
    def __init__(self) -> None:
        self.stops: list[StopReason] = []

    def request_stop(self, reason: StopReason) -> None:
        self.stops.append(reason)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_as_the_dispatch_ends_waits_for_the_runs_lines(signum: int) -> None:
    before = signal.getsignal(signum)
    quit_now: list[int] = []
    dispatcher = _Dispatcher()
    with quit_on_signal(enabled=True) as closed:
        with dispatch_signals(dispatcher, quit_now.append, closed):
            signal.raise_signal(signum)  # the first: the dispatch stops gently
            await _one_turn()
            assert dispatcher.stops == [StopReason.SIGNAL]
        # the dispatch's handlers are gone and its connections would close now: a signal
        # here is held for the runs' lines (``Closed.ready``), not Python's default
        signal.raise_signal(signum)
        assert closed.pending == [signum]
        assert quit_now == []
    assert signal.getsignal(signum) == before  # given back at the end


async def test_without_signals_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with quit_on_signal(enabled=False) as closed:
        with dispatch_signals(_Dispatcher(), print, closed) as received:
            assert signal.getsignal(signal.SIGTERM) == before
        closed.install()
        assert signal.getsignal(signal.SIGTERM) == before
    assert received == []


async def _one_turn() -> None:
    """Let the event loop run the handler it was woken for (a few turns, no waiting)."""
    for _ in range(3):
        await asyncio.sleep(0)
