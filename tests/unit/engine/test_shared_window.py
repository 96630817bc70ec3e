"""The account's window shared by processes: its rule with an injected clock, in both stores.

Each test runs against the SQLite file (``LocalWindow``) and against a real ``redis-server``
started on a free loopback port (``RedisWindow``; skipped only when no ``redis-server`` can be
found). Two ``SharedWindow`` objects on one store stand for two processes: the store is the
only thing they share. Time is the injected clock's, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from helpers.redis_server import RedisServer, redis_server_or_skip
from helpers.simulators import FakeClock

from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.pacing.window import STALE, SharedWindow, Verdict, WindowRequest
from batchgen.engine.pacing.window_redis import RedisWindow
from batchgen.engine.pacing.window_sqlite import LocalWindow
from batchgen.simulator.stats import max_in_window

WINDOW = 10.0
USABLE = 20

Open = Callable[[], SharedWindow]


@pytest.fixture(scope="module")
def redis() -> RedisServer:
    return redis_server_or_skip()


@pytest.fixture(params=["local", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Open]:
    """Opens one more member ("process") of one store, all on the injected ``clock``."""
    opened: list[SharedWindow] = []
    digest = secrets.token_hex(8)  # a fresh account per test
    if request.param == "local":
        path = tmp_path / "window.sqlite"

        def open_member() -> SharedWindow:
            opened.append(LocalWindow(path, clock=clock, store_clock=clock))
            return opened[-1]
    else:
        url = request.getfixturevalue("redis").url

        def open_member() -> SharedWindow:
            opened.append(RedisWindow(url, digest, clock=clock, store_clock=clock))
            return opened[-1]

    yield open_member
    for member in opened:
        await member.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_000_000.0)


async def ask(
    member: SharedWindow, want: float = 0.0, after: float | None = None, count: int = 1
) -> Verdict:
    return await member.acquire(usable=USABLE, window=WINDOW, want=want, after=after, count=count)


async def fill_window(member: SharedWindow) -> None:
    """``member`` takes every usable slot of the window, each answered at once, and beats."""
    for _ in range(USABLE):
        assert (await ask(member)).granted
        member.answered()
    await member.beat()


async def test_two_processes_never_exceed_the_limit_in_any_window(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    granted: list[float] = []
    flying: list[tuple[float, SharedWindow]] = []  # (answer time, member)
    # 40 windows of traffic: both ask every 0.1 s while they may; requests take 0.3 s.
    for step in range(4000):
        clock.now = 1_000_000.0 + step * 0.1
        for t, member in [f for f in flying if f[0] <= clock.now]:
            member.answered()
            flying.remove((t, member))
        for member in (a, b) if step % 2 else (b, a):
            while (await ask(member)).granted:
                granted.append(clock.now)
                flying.append((clock.now + 0.3, member))
    assert max_in_window(granted, WINDOW) <= USABLE
    # ... and the window is used: each 10 s carries nearly the whole limit (a request counts
    # from its grant to 10 s after its answer, 10.3 s in all)
    assert len(granted) >= 0.9 * USABLE * 400 / 10.3


async def test_in_flight_requests_count_until_answered(store: Open, clock: FakeClock) -> None:
    a, b = store(), store()
    for _ in range(USABLE):
        assert (await ask(a)).granted
    clock.advance(3 * WINDOW)  # still in flight at a, which is alive (it beats)
    await a.beat()
    assert not (await ask(b)).granted
    a.answered()
    await a.beat()  # one answered now: it counts one more window
    answered_at = clock.now
    clock.now = answered_at + WINDOW - 0.01
    await a.beat()
    verdict = await ask(b)
    assert not verdict.granted and verdict.used == USABLE
    assert verdict.retry_in == pytest.approx(0.01, abs=1e-3)  # when that answer leaves
    clock.now = answered_at + WINDOW + 0.01
    verdict = await ask(b)
    assert verdict.granted and verdict.used == USABLE - 1


async def test_a_dead_process_holds_its_slots_no_longer_than_the_window(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    for _ in range(USABLE):
        assert (await ask(a)).granted
    await ask(a, want=1.0)  # a waits with an early deadline ... and is killed: no more beats
    clock.advance(WINDOW - 0.5)
    verdict = await ask(b)
    assert not verdict.granted and verdict.sharers == 0  # a is silent: not counted as a sharer
    clock.advance(0.5)  # the window after a's last sign of life
    for _ in range(USABLE):  # b gets the whole window: nothing reserved for a's waiting request
        assert (await ask(b)).granted


async def test_a_silent_process_stops_being_waited_for_after_two_seconds(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    start = clock.now
    await fill_window(b)
    clock.now = start + WINDOW - 1.0
    assert not (await ask(a, want=-5.0)).granted  # full: a's request waits, a goes silent
    clock.now = start + WINDOW + 0.01  # every answer has left the window
    for _ in range(USABLE - 1):
        assert (await ask(b)).granted
    verdict = await ask(b)  # the last slot is a's (earlier deadline), while a may be alive
    assert not verdict.granted and verdict.sharers == 1
    clock.now = start + WINDOW - 1.0 + STALE + 0.01  # a silent for longer than STALE
    verdict = await ask(b)
    assert verdict.granted and verdict.sharers == 0


@pytest.mark.parametrize(("b_deadline", "b_first"), [(60.0, False), (40.0, True)])
async def test_the_process_with_the_earlier_deadline_goes_first(
    store: Open, clock: FakeClock, b_deadline: float, b_first: bool
) -> None:
    a, b = store(), store()
    for _ in range(USABLE - 1):
        assert (await ask(a, after=50.0)).granted  # a has another request waiting (50 s)
    # One slot left. b's request meets a's published one.
    verdict = await ask(b, want=b_deadline)
    assert bool(verdict.granted) is b_first and verdict.sharers == 1
    assert bool((await ask(a, want=50.0)).granted) is not b_first


async def test_submits_of_one_process_go_before_polls_of_another(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    start = clock.now
    await fill_window(a)
    clock.advance(1.0)
    assert not (await ask(a, want=300.0)).granted  # a poll: due + lag
    assert not (await ask(b, want=0.0)).granted  # b's submit: now
    clock.now = start + WINDOW + 0.01  # room for all
    await b.beat()  # b is alive (its heartbeat), its submit still waiting
    for _ in range(USABLE - 1):
        assert (await ask(a, want=300.0, after=300.0)).granted
    # One slot left: b's submit is earlier than a's polls, so a is refused and b gets it
    assert not (await ask(a, want=300.0, after=300.0)).granted
    assert (await ask(b, want=0.0)).granted


async def test_a_process_that_finishes_leaves_its_share_at_once(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    start = clock.now
    await fill_window(b)
    assert not (await ask(a, want=-1.0)).granted  # a waits with the earliest deadline
    await a.close()  # ... and finishes: nothing is reserved for it any more
    clock.now = start + WINDOW + 0.01
    for _ in range(USABLE):
        verdict = await ask(b)
        assert verdict.granted and verdict.sharers == 0


async def test_a_burst_takes_what_fits_at_once_and_gives_back_what_it_did_not_use(
    store: Open, clock: FakeClock
) -> None:
    a, b = store(), store()
    for _ in range(USABLE - 5):
        assert (await ask(b)).granted
    verdict = await ask(a, count=8)  # 8 due at once, 5 fit: all counted in one exchange
    assert verdict.granted == 5
    assert [a.take_lease() for _ in range(3)] == [True] * 3  # the first was the ask's own
    assert not (await ask(b)).granted  # the account's window is full
    # a used 4 of them, then had nothing more to send: the last goes back after a beat
    clock.advance(a.beat_every(WINDOW) + 0.01)
    verdict = await ask(b)
    assert not verdict.granted  # still counted until a's next exchange...
    await a.beat()  # ... which gives it back (it was never sent)
    assert (await ask(b)).granted


async def test_a_lease_is_never_used_after_its_beat(store: Open, clock: FakeClock) -> None:
    a = store()
    assert (await ask(a, count=3)).granted == 3
    assert a.take_lease()
    clock.advance(a.beat_every(WINDOW))
    assert not a.take_lease()


async def test_one_lease_left_is_still_usable_within_its_beat(
    store: Open, clock: FakeClock
) -> None:
    a = store()
    assert (await ask(a, count=2)).granted == 2
    assert a.take_lease() and not a.take_lease()


# ---------------------------------------------------------------- two throttles, one window
async def _throttles(tmp_path: Path, limit: int, window: float) -> list[Throttle]:
    loop = asyncio.get_running_loop()
    throttles = []
    for _ in range(2):  # two "processes": each its own throttle and its own connection
        shared = LocalWindow(tmp_path / "w.sqlite", clock=loop.time, store_clock=loop.time)
        throttle = Throttle(limit, window=window, margin=0.0, shared=shared)
        await shared.start(usable=throttle.usable, window=window)
        throttles.append(throttle)
    return throttles


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait for a condition to hold (polled); fail loudly if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_two_throttles_on_one_window_never_pass_the_limit_together(tmp_path: Path) -> None:
    window, limit = 0.2, 10
    throttles = await _throttles(tmp_path, limit, window)
    loop = asyncio.get_running_loop()
    entered: list[float] = []

    async def request(throttle: Throttle) -> None:
        async with throttle.slot():
            entered.append(loop.time())
            await asyncio.sleep(0)

    try:
        work = [request(t) for t in throttles for _ in range(3 * limit)]
        await asyncio.wait_for(asyncio.gather(*work), 20)
    finally:
        for throttle in throttles:
            assert throttle.shared is not None
            await throttle.shared.close()
    assert len(entered) == 6 * limit
    assert max_in_window(sorted(entered), window) <= limit


async def test_a_request_held_back_by_another_process_is_counted_and_shown(
    tmp_path: Path,
) -> None:
    a, b = await _throttles(tmp_path, 5, 0.5)
    release = asyncio.Event()

    async def hold(throttle: Throttle) -> None:
        async with throttle.slot():
            await release.wait()

    try:
        holders = [asyncio.create_task(hold(a)) for _ in range(5)]  # a fills the window
        await until(lambda: a.in_flight == 5)
        waiter = asyncio.create_task(hold(b))  # b alone has room, but the account has none
        await until(lambda: b.holding)
        assert b.held_back == 1 and b.in_flight == 0
        assert b.shared is not None and b.shared.sharers == 1
        assert b.per_second == pytest.approx(5 / 0.5 / 2)  # its share of the window
        release.set()
        await asyncio.wait_for(asyncio.gather(*holders, waiter), 10)  # then b gets its turn
        assert not b.holding
    finally:
        for throttle in (a, b):
            assert throttle.shared is not None
            await throttle.shared.close()


class _Recorder(SharedWindow):
    """A store that refuses every ask while ``refusing``, then grants all; records the asks."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.asks: list[WindowRequest] = []
        self.refusing = True

    async def _exchange(self, request: WindowRequest) -> Verdict:
        if request.want is None:
            return Verdict(0, 0, 1, 0.0)
        self.asks.append(request)
        return Verdict(0 if self.refusing else request.count, 0, 1, 0.001)

    async def _leave(self) -> None:
        return None


async def test_a_submit_queued_behind_a_waiting_poll_is_what_the_process_asks_with() -> None:
    clock = FakeClock(start=100.0)
    store = _Recorder(clock)
    throttle = Throttle(10, window=0.04, margin=0.0, clock=clock, shared=store)
    order: list[str] = []

    async def request(name: str, deadline: float | None) -> None:
        async with throttle.slot(deadline=deadline):
            order.append(name)

    poll = asyncio.create_task(request("poll", 700.0))  # due + lag: it may wait
    await until(lambda: len(store.asks) >= 1)  # it took the turn, and is refused
    submit = asyncio.create_task(request("submit", None))  # queues behind it, due now
    await until(lambda: throttle.waiting == 2)
    store.refusing = False
    await asyncio.wait_for(asyncio.gather(poll, submit), 5)
    assert store.asks[0].want == pytest.approx(600.0) and store.asks[0].count == 1
    # the process now asks with the submit's deadline, for both requests at once
    assert store.asks[-1].want == pytest.approx(0.0) and store.asks[-1].count == 2
    assert order == ["poll", "submit"]
