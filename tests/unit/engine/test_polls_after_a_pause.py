"""A due poll gives way to a submit under way while the API's own limit binds.

Seen (``bench_run.py``, "adapt: client pro, server free"): the client counted with 1,000
requests a minute, the account allowed 100. The window's room as the client counted it looked
ample, so polls due while rows still waited took their turn whenever no submit happened to be
queued at the gate (between its intent's commit and its POST), and each minute carried 54-76
submits instead of 100: the run ended 1.35 x LB against 1.04 before. The kind: whenever the
API has asked for a pause (a 429, ``Remaining: 0``), the room this client counts is not the
account's, until a window after that pause ended; meanwhile a due poll waits for the submits
under way (never past ``max_poll_lag``), as it does when the counted room is short.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import aiohttp
from helpers.simulators import FakeClock

from batchgen.config import Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.poll_stage import InFlight
from batchgen.engine.timing.poll_plan import PollPlanner
from batchgen.providers.grokimagine import ApiClient
from batchgen.providers.ratelimit import RateInfo
from batchgen.state.store import StateStore

WARM = [60.0 * math.exp(0.5 * (i - 100) / 60) for i in range(200)]


def test_a_pause_marks_the_counted_room_unreliable_until_a_window_after_it_ends() -> None:
    clock = FakeClock()
    throttle = Throttle(1000, window=60.0, clock=clock)
    assert not throttle.paused_lately()
    throttle.pause_for(10.0)
    assert throttle.paused_lately()
    clock.advance(69.0)  # the pause ended 59 s ago
    assert throttle.paused_lately()
    clock.advance(2.0)
    assert not throttle.paused_lately()
    # Variant: a 429 (the ApiClient's path in) marks it too.
    throttle.observe(RateInfo(retry_after=1.0), 429)
    assert throttle.paused_lately()


def _dispatcher(tmp_path: Path, clock: FakeClock) -> Dispatcher:
    store = StateStore.open(tmp_path / "state.sqlite")
    store.sync_manifest(["id"], [])
    throttle = Throttle(1000, window=60.0, clock=clock)  # the limit the client was told
    dispatcher = Dispatcher(
        [ManifestRun(name="m.csv", store=store, out_dir=tmp_path)],
        api=cast(ApiClient, None),
        throttle=throttle,
        cdn=cast(aiohttp.ClientSession, None),
        settings=Settings.from_options(rpm=1000),
        planner=PollPlanner(history={"fun": WARM}, spread=0.0),
    )
    dispatcher.polls.rows_total = 300
    dispatcher.runs[0].counters.submitted = 100  # 200 rows still wait
    return dispatcher


async def test_a_due_poll_waits_for_a_submit_under_way_after_the_api_paused(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    dispatcher = _dispatcher(tmp_path, clock)
    polls, submits = dispatcher.polls, dispatcher.submits
    item = InFlight(dispatcher.runs[0], "k", "task-1", clock(), "fun")
    item.due = clock()
    submits.submitting = 2
    assert not polls.submits_first(item)  # the counted room (970) is ample: polls go too
    dispatcher.throttle.observe(RateInfo(remaining=0, reset_after=6.0), 200)
    clock.advance(7.0)  # the pause is over; the account's window is full again at once
    assert polls.submits_first(item)
    # Variant: no submit under way (none waits, none is between its intent and its POST):
    # the poll takes the turn, nothing is gained by leaving the slot unused.
    submits.submitting = 0
    assert not polls.submits_first(item)
    submits.submitting = 1
    assert polls.submits_first(item)
    # Variant: a poll max_poll_lag overdue goes anyway.
    overdue = InFlight(dispatcher.runs[0], "k2", "task-2", clock(), "fun")
    overdue.due = clock() - dispatcher.settings.polling.max_poll_lag
    assert not polls.submits_first(overdue)
    # Variant: a window after the pause ended, the room counted is trusted again.
    clock.advance(60.0)
    item.due = clock()
    assert not polls.submits_first(item)
