"""Group commits of a run's transitions (``engine/commit_group.py``, ``transition_many``).

A burst of rows shares one commit; every move is still guarded on its own; the intent of each
row is committed before its POST leaves, and a task id in hand reaches the state even when the
run is halted meanwhile.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.hostile_vendor import HostileVendor, Task

from batchgen.config import RetryPolicy, Settings
from batchgen.engine.commit_group import CommitGroup
from batchgen.engine.dispatcher import Dispatcher, ManifestRun, StopReason
from batchgen.engine.pacing.throttle import Throttle
from batchgen.errors import StateError, TransitionError
from batchgen.models import AttemptKind, AttemptOutcome, JobSpec, JobStatus, TaskState, TaskStatus
from batchgen.providers.base import ApiHealth, SendMark
from batchgen.providers.grokimagine import ApiClient, Token
from batchgen.state.schema import Attempt, Move
from batchgen.state.store import StateStore

S = JobStatus
TOKEN = "sk-commit-group-test"


class Row:
    """A manifest row as ``sync_manifest`` takes it."""

    def __init__(self, i: int) -> None:
        self.row = i + 2
        self.prompt = f"group prompt {i}"
        self.spec: JobSpec | None = JobSpec(
            key=f"id:{i}", row=self.row, prompt=self.prompt, mode="fun", ratio="1:1"
        )
        self.key = self.spec.key
        self.user: dict[str, Any] = {"id": str(i), "prompt": self.prompt}
        self.problems: tuple[Any, ...] = ()


def make_store(tmp_path: Path, n: int) -> StateStore:
    store = StateStore.open(tmp_path / "out" / "state.sqlite")
    store.sync_manifest(["id", "prompt"], [Row(i) for i in range(n)])
    return store


class Recording:
    """A store that records the size of every ``transition_many`` (and can fail them)."""

    def __init__(self, store: StateStore, *, fail: Exception | None = None) -> None:
        self.inner = store
        self.fail = fail
        self.groups: list[int] = []

    def transition_many(self, moves: Sequence[Move]) -> list[str | None]:
        self.groups.append(len(moves))
        if self.fail is not None:
            raise self.fail
        return self.inner.transition_many(moves)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# ---------------------------------------------------------------- transition_many
def test_moves_of_one_call_are_guarded_one_by_one_and_committed_together(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path, 3)
    attempt = Attempt(AttemptKind.SUBMIT, AttemptOutcome.OK, None, "t-1")
    answers = store.transition_many(
        [
            Move("id:0", S.SUBMITTING),
            Move("id:1", S.SUBMITTED, {"task_id": "t-1"}),  # refused: it is pending
            Move("id:2", S.SUBMITTING),
            Move("id:0", S.SUBMITTED, {"task_id": "t-0"}, attempt=attempt),
        ]
    )
    assert answers[0] is None and answers[2] is None and answers[3] is None
    assert answers[1] is not None and "it is pending" in answers[1]
    assert [j.status for j in store.iter_jobs()] == [S.SUBMITTED, S.PENDING, S.SUBMITTING]
    assert store.get("id:0").task_id == "t-0" and store.get("id:0").attempts == 1
    assert [a["kind"] for a in store.attempts("id:0")] == ["submit"]
    assert store.attempts("id:1") == []  # a refused move writes no history


def test_a_malformed_move_refuses_the_whole_call_before_anything_is_written(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path, 2)
    with pytest.raises(TypeError, match="colour"):
        store.transition_many(
            [Move("id:0", S.SUBMITTING), Move("id:1", S.SUBMITTING, {"colour": 1})]
        )
    with pytest.raises(ValueError, match="may not follow"):
        store.transition_many(
            [Move("id:0", S.SUBMITTING), Move("id:1", S.SUBMITTED, expect=[S.PENDING])]
        )
    assert [j.status for j in store.iter_jobs()] == [S.PENDING, S.PENDING]


def test_other_connections_see_a_group_whole_or_not_at_all(tmp_path: Path) -> None:
    store = make_store(tmp_path, 4)
    seen: list[int] = []
    reader = sqlite3.connect(store.path)

    def count() -> int:
        return int(
            reader.execute("SELECT count(*) FROM jobs WHERE status = 'submitting'").fetchone()[0]
        )

    seen.append(count())
    store.transition_many([Move(f"id:{i}", S.SUBMITTING) for i in range(4)])
    seen.append(count())
    reader.close()
    assert seen == [0, 4]


# ---------------------------------------------------------------- the group
async def test_moves_asked_before_the_group_is_due_share_one_commit(tmp_path: Path) -> None:
    store = Recording(make_store(tmp_path, 20))
    group = CommitGroup(store, max_wait=3600.0, max_moves=20)

    async def one(i: int) -> None:
        for _ in range(i):  # asked over twenty turns of the loop
            await asyncio.sleep(0)
        await group.move(f"id:{i}", S.SUBMITTING)

    await asyncio.gather(*(one(i) for i in range(20)))  # the 20th move commits them
    assert store.groups == [20] and group.commits == 1
    assert {j.status for j in store.inner.iter_jobs()} == {S.SUBMITTING}


async def test_a_group_is_committed_when_it_reaches_its_size_bound(tmp_path: Path) -> None:
    store = Recording(make_store(tmp_path, 10))
    group = CommitGroup(store, max_wait=3600.0, max_moves=4)
    moves = [asyncio.ensure_future(group.move(f"id:{i}", S.SUBMITTING)) for i in range(10)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert store.groups == [4, 4]  # the last two wait for their group to be due
    assert not moves[9].done()
    group.flush()  # as the timer would
    await asyncio.gather(*moves)
    assert store.groups == [4, 4, 2]


async def test_a_lone_move_is_committed_when_its_wait_is_over(tmp_path: Path) -> None:
    store = Recording(make_store(tmp_path, 2))
    group = CommitGroup(store, max_wait=0.0)
    await group.move("id:0", S.SUBMITTING)
    await group.move("id:1", S.SUBMITTING)
    assert store.groups == [1, 1]


async def test_a_refused_move_raises_for_its_caller_only(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    group = CommitGroup(store)
    results = await asyncio.gather(
        group.move("id:0", S.SUBMITTING),
        group.move("id:1", S.DOWNLOADED),  # pending rows are never downloaded
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], TransitionError)
    assert store.get("id:0").status is S.SUBMITTING and store.get("id:1").status is S.PENDING
    assert group.commits == 1


async def test_a_failed_commit_reaches_every_caller_of_its_group(tmp_path: Path) -> None:
    store = Recording(make_store(tmp_path, 2), fail=StateError("the disk said no"))
    group = CommitGroup(store)
    results = await asyncio.gather(
        group.move("id:0", S.SUBMITTING), group.move("id:1", S.SUBMITTING), return_exceptions=True
    )
    assert [type(r) for r in results] == [StateError, StateError]
    assert {j.status for j in store.inner.iter_jobs()} == {S.PENDING}


async def test_a_cancelled_caller_s_move_is_dropped_unless_kept(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    group = CommitGroup(store)
    dropped = asyncio.ensure_future(group.move("id:0", S.SUBMITTING))
    kept = asyncio.ensure_future(group.move("id:1", S.SUBMITTING, keep=True))
    await asyncio.sleep(0)  # both are queued, not yet committed
    dropped.cancel()
    kept.cancel()
    await asyncio.gather(dropped, kept, return_exceptions=True)
    group.flush()  # as its timer would
    assert store.get("id:0").status is S.PENDING  # nothing written for it
    assert store.get("id:1").status is S.SUBMITTING  # a task id in hand would not be lost


# ---------------------------------------------------------------- in a run
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


class WatchingVendor(HostileVendor):
    """A vendor that, as each POST arrives, reads the state from its own connection: the row
    whose prompt it carries must already be committed as SUBMITTING."""

    def __init__(self, token: str, state: Path) -> None:
        super().__init__(token)
        self.state = state
        self.seen: dict[str, str] = {}

    def _create(self, body: dict[str, Any]) -> Task:
        prompt = str(body.get("prompt"))
        with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True) as db:
            (status,) = db.execute("SELECT status FROM jobs WHERE prompt = ?", (prompt,)).fetchone()
        self.seen[prompt] = status
        return super()._create(body)


async def test_every_row_s_intent_is_committed_before_its_post_in_a_burst(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path, 60)
    recording = Recording(store)
    vendor = WatchingVendor(TOKEN, store.path)
    async with vendor:
        run = ManifestRun(name="briefs", store=recording, out_dir=tmp_path / "out")
        settings = Settings.from_options(
            base_url=vendor.url, rpm=100_000, retry=FAST_RETRY, first_poll=0.01
        )
        throttle = Throttle(100_000, window=60.0, margin=settings.api.safety_margin)
        async with (
            ApiClient(vendor.url, Token(TOKEN), on_response=throttle.observe) as api,
            aiohttp.ClientSession() as cdn,
        ):
            await Dispatcher([run], api=api, throttle=throttle, cdn=cdn, settings=settings).run()
        assert len(vendor.seen) == 60 and set(vendor.seen.values()) == {"submitting"}
        assert set(vendor.paid.values()) == {1}
    assert {j.status for j in store.iter_jobs()} == {S.DOWNLOADED}
    # 4 moves a row (submitting, submitted, completed, downloaded), in fewer commits (how
    # many fewer depends on timing: the benchmark measures it)
    assert sum(recording.groups) == 4 * 60 and max(recording.groups) > 1


class HaltingVendor:
    """A vendor in memory (the ``Provider`` protocol) that creates tasks and, as it answers
    the ``halt_at``-th POST, halts the run: the task id is in hand, its commit not yet made."""

    def __init__(self, halt_at: int) -> None:
        self.requests = self.rate_limited = 0
        self.token_accepted = True
        self.health = ApiHealth()
        self.halt_at = halt_at
        self.halt: Callable[[], None] = lambda: None
        self.created: list[str] = []

    @property
    def host(self) -> str:
        return "vendor.invalid"

    def clock(self) -> float:
        return asyncio.get_running_loop().time()

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        if mark is not None:
            mark.sent = True
        self.created.append(f"task-{len(self.created)}")
        if len(self.created) == self.halt_at:
            self.halt()  # the run is told to stop while this answer is being returned
        return self.created[-1]

    async def status(self, task_id: str) -> TaskStatus:
        return TaskStatus(task_id=task_id, state=TaskState.WAITING, status="pending")


async def test_a_task_id_in_hand_reaches_the_state_when_the_run_halts(tmp_path: Path) -> None:
    store = make_store(tmp_path, 1)
    vendor = HaltingVendor(halt_at=1)
    settings = Settings.from_options(base_url="http://vendor.invalid", rpm=1000)
    throttle = Throttle(1000, window=60.0)
    run = ManifestRun(name="briefs", store=store, out_dir=tmp_path / "out")
    async with aiohttp.ClientSession() as cdn:
        dispatcher = Dispatcher([run], api=vendor, throttle=throttle, cdn=cdn, settings=settings)
        vendor.halt = lambda: dispatcher.control.stop(StopReason.SIGNAL, True)
        await dispatcher.run()
    job = store.get("id:0")
    assert (job.status, job.task_id) == (S.SUBMITTED, "task-0")  # not "unknown" next run


async def test_the_run_counts_a_move_when_it_is_committed_even_if_its_caller_is_gone(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path, 2)
    group = CommitGroup(store)
    made: list[str] = []
    kept = asyncio.ensure_future(
        group.move("id:0", S.SUBMITTING, keep=True, on_made=lambda: made.append("id:0"))
    )
    refused = asyncio.ensure_future(
        group.move("id:1", S.DOWNLOADED, on_made=lambda: made.append("id:1"))
    )
    await asyncio.sleep(0)
    kept.cancel()  # halted: it will never resume to count
    await asyncio.gather(kept, return_exceptions=True)
    group.flush()
    with pytest.raises(TransitionError):
        await refused
    assert made == ["id:0"]  # counted with the commit; a refused move is not counted


async def test_a_group_waits_for_more_moves_only_while_the_run_is_busy(tmp_path: Path) -> None:
    store = make_store(tmp_path, 2)
    group = CommitGroup(store, max_wait=3600.0)
    busy = True
    group.busy = lambda: busy
    waiting = asyncio.ensure_future(group.move("id:0", S.SUBMITTING))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # other requests are out: their moves will join it
    group.flush()
    await waiting
    busy = False
    alone = group.move("id:1", S.SUBMITTING).__await__()
    with pytest.raises(StopIteration):  # nothing else is going on: made before it yields
        next(alone)
    assert group.commits == 2 and store.get("id:1").status is S.SUBMITTING


class BurstVendor(HaltingVendor):
    """A HaltingVendor whose answers after the first come in bursts of ``burst``: each POST
    waits until that many are out, so their task ids are committed as one group."""

    def __init__(self, halt_at: int, burst: int) -> None:
        super().__init__(halt_at)
        self.burst = burst
        self.out = 0
        self.released = asyncio.Event()

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        if self.created:  # the first request goes alone (the token is not yet accepted)
            self.out += 1
            if self.out % self.burst == 0:
                self.released.set()
            await self.released.wait()
        return await super().submit(spec, mark=mark)


async def test_every_row_generated_is_told_to_on_generated_when_the_run_halts(
    tmp_path: Path,
) -> None:
    # on_generated keeps the per-user record of generated requests (a copy of the sheet must
    # not pay again): every intent is told before its POST leaves, and a task id committed
    # after its caller was cancelled is told too, each written by after_commit after its commit.
    store = make_store(tmp_path, 6)
    vendor = BurstVendor(halt_at=2, burst=3)  # halted as the second task id comes back
    settings = Settings.from_options(base_url="http://vendor.invalid", rpm=100_000)
    throttle = Throttle(100_000, window=60.0)
    run = ManifestRun(name="briefs", store=store, out_dir=tmp_path / "out")
    told: list[tuple[str, str | None]] = []
    written: list[tuple[str, str | None]] = []
    run.on_generated = lambda job, task_id: told.append((job.key, task_id))

    def on_commit() -> None:
        written.extend(told)
        told.clear()

    run.commits.after_commit = on_commit
    sent: list[str] = []
    submit = vendor.submit

    async def seen_first(spec: JobSpec, *, mark: SendMark | None = None) -> str:
        assert (spec.key, None) in written  # the intent was written before the POST
        sent.append(spec.key)
        return await submit(spec, mark=mark)

    vendor.submit = seen_first  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as cdn:
        dispatcher = Dispatcher([run], api=vendor, throttle=throttle, cdn=cdn, settings=settings)
        vendor.halt = lambda: dispatcher.control.stop(StopReason.SIGNAL, True)
        await dispatcher.run()
    committed = sorted((j.key, j.task_id) for j in store.iter_jobs() if j.task_id)
    assert len(committed) >= 2  # those in hand when the run halted were kept...
    assert sorted(w for w in written if w[1] is not None) == committed  # ... each recorded
    assert sent and not told  # and nothing told was left unwritten
