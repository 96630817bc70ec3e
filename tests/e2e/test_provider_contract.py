"""The guarantees every registered provider gets: money, limits and outcomes.

Each test runs once per provider in ``providers.catalog`` against the simulator speaking that
provider's dialect, through the provider's own client, so a third provider that registers
(and whose dialect the simulator speaks) gets the same checks without a new test. Outcomes the
simulator cannot produce for every dialect (an expired task, moderation, an unknown status
word) are injected by wrapping the provider's real client: its answers still go through the
engine exactly as they would.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from batchgen.app.provider import provider_factory
from batchgen.app.run import run_batch
from batchgen.config import DEMO_TOKEN, RetryPolicy, Settings
from batchgen.engine.pacing.limiter import open_throttle
from batchgen.errors import ExitCode
from batchgen.models import JobSpec, JobStatus, TaskState, TaskStatus
from batchgen.providers.base import Provider, SendMark
from batchgen.providers.catalog import PROVIDERS
from batchgen.providers.descriptor import ProviderInfo, ResponseHook
from batchgen.providers.token import Token
from batchgen.simulator import Fault, SimConfig, Simulator
from batchgen.state.store import StateStore

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.5)
NAMES = list(PROVIDERS)


def _manifest(path: Path, info: ProviderInfo, n: int) -> Path:
    """``n`` rows every provider accepts (its required fields at their first value)."""
    required = [f for f in info.fields if f.required]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", *(f.name for f in required)])
        for i in range(n):
            writer.writerow([f"r{i}", f"prompt {i}", *(f.values[0] for f in required)])
    return path


def _row_price(info: ProviderInfo) -> int:
    required = {f.name: f.values[0] for f in info.fields if f.required}
    spec = JobSpec(
        key="k",
        row=2,
        prompt="p",
        mode=required.get("mode", ""),
        ratio=required.get("ratio", ""),
    )
    return info.price_of(spec)


async def _sim(factory: Any, info: ProviderInfo, **faults: Any) -> Simulator:
    config = SimConfig(
        provider=info.name,
        tokens=frozenset({DEMO_TOKEN}),
        rpm=100_000,
        rps=1000,
        time_scale=0.01,
        latency_median=2.0,
        latency_sigma=0.3,
        seed=11,
        **faults,
    )
    sim: Simulator = await factory(config)
    return sim


def _settings(tmp_path: Path, info: ProviderInfo, sim: Simulator, **options: Any) -> Settings:
    rate = {"rps": 1000} if info.limits.window <= 1.0 else {"rpm": 100_000}
    return Settings.from_options(
        provider=info.name,
        base_url=sim.url,
        out_dir=tmp_path / "out",
        first_poll=0.02,
        limiter="none",
        retry=FAST_RETRY,
        **(rate | options),
    )


async def _run(
    tmp_path: Path, info: ProviderInfo, sim: Simulator, n: int, **options: Any
) -> tuple[int, StateStore]:
    manifest = _manifest(tmp_path / "briefs.csv", info, n)
    settings = _settings(tmp_path, info, sim, **options)
    token = Token(DEMO_TOKEN, info.token_env)
    code = await run_batch([manifest], settings, token, command="t", install_signals=False)
    return code, StateStore.open(tmp_path / "out" / "briefs" / "state.sqlite")


def _reported(sim: Simulator, info: ProviderInfo) -> int:
    """What the vendor says it charged, in the provider's units."""
    if info.unit.credits:
        return sim.stats.credits_charged
    return sim.stats.ticks_charged // 10_000


# ---------------------------------------------------------------- money
@pytest.mark.parametrize("name", NAMES)
async def test_max_usd_holds_exactly(simulator_factory: Any, tmp_path: Path, name: str) -> None:
    info = PROVIDERS[name]
    price = _row_price(info)
    budget = info.unit.usd(price) * 2.5  # room for two rows and a half
    sim = await _sim(simulator_factory, info)
    code, store = await _run(tmp_path, info, sim, 5, max_usd=budget)
    with store:
        spend = store.spend()
    assert code == ExitCode.STOPPED_EARLY
    assert sim.stats.tasks_created == 2
    assert info.unit.usd(spend.total) <= budget


@pytest.mark.parametrize("name", NAMES)
async def test_the_bill_is_what_the_vendor_reported(
    simulator_factory: Any, tmp_path: Path, name: str
) -> None:
    info = PROVIDERS[name]
    sim = await _sim(simulator_factory, info)
    code, store = await _run(tmp_path, info, sim, 3)
    with store:
        spend = store.spend()
        assert store.get_meta("provider") == name
    assert code == ExitCode.OK
    assert spend.charged == _reported(sim, info) == 3 * _row_price(info)
    assert spend.committed == spend.possible == 0


@pytest.mark.parametrize("name", NAMES)
async def test_an_ambiguous_create_stays_unknown_and_counts_as_possibly_charged(
    simulator_factory: Any, tmp_path: Path, name: str
) -> None:
    info = PROVIDERS[name]
    sim = await _sim(simulator_factory, info, ambiguous=Fault(at={1}))
    code, store = await _run(tmp_path, info, sim, 2)
    with store:
        counts, spend = store.counts(), store.spend()
    assert code == ExitCode.ATTENTION
    assert counts[JobStatus.UNKNOWN] == 1 and counts[JobStatus.DOWNLOADED] == 1
    assert spend.possible == _row_price(info)
    assert sim.stats.tasks_created == 2  # never sent again on its own


# ---------------------------------------------------------------- limits
@pytest.mark.parametrize("name", NAMES)
async def test_the_throttle_paces_by_the_providers_limit_model(name: str) -> None:
    info = PROVIDERS[name]
    async with open_throttle(Settings.from_options(limiter="none"), "t", info.limits) as gate:
        assert (gate.limit, gate.window) == (info.limits.requests, info.limits.window)
    assert info.limits.status_calls_count  # undocumented: counted, to be safe


@pytest.mark.e2e
@pytest.mark.parametrize("name", NAMES)
async def test_a_run_at_the_vendors_own_limit_meets_no_429(
    simulator_factory: Any, tmp_path: Path, name: str
) -> None:
    info = PROVIDERS[name]
    requests, window = info.limits.requests, info.limits.window
    config = SimConfig(
        provider=info.name,
        tokens=frozenset({DEMO_TOKEN}),
        rpm=requests,
        rps=requests,
        window=window,
        time_scale=0.01,
        latency_median=20.0,
        seed=3,
    )
    sim: Simulator = await simulator_factory(config)
    manifest = _manifest(tmp_path / "briefs.csv", info, 2)
    settings = Settings.from_options(
        provider=name, base_url=sim.url, out_dir=tmp_path / "out", first_poll=0.2, limiter="none"
    )
    code = await run_batch(
        [manifest], settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )
    assert code == ExitCode.OK
    assert sim.stats.rate_limited == 0  # status calls counted too: none over the limit
    assert sum(sim.stats.requests.values()) >= 4  # a submit and a poll per task at least


# ---------------------------------------------------------------- outcomes
class _Scripted:
    """A provider's real client whose status answers are rewritten by ``script``."""

    def __init__(self, inner: Any, script: Any) -> None:
        self._inner, self._script = inner, script
        self.polls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        task_id: str = await self._inner.submit(spec, mark=mark)
        return task_id

    async def status(self, task_id: str) -> TaskStatus:
        self.polls += 1
        status: TaskStatus = self._script(await self._inner.status(task_id))
        return status


def _scripted(info: ProviderInfo, script: Any, seen: list[_Scripted]) -> Any:
    build = provider_factory(info)

    @contextlib.asynccontextmanager
    async def factory(
        settings: Settings, token: Token, on_response: ResponseHook
    ) -> AsyncIterator[Provider]:
        async with build(settings, token, on_response) as inner:
            wrapped = _Scripted(inner, script)
            seen.append(wrapped)
            yield wrapped

    return factory


def _final_word(info: ProviderInfo, state: TaskState) -> Any:
    word = sorted(info.words.expired)[0] if state is TaskState.EXPIRED else "done"

    def script(status: TaskStatus) -> TaskStatus:
        return dataclasses.replace(status, state=state, status=word, urls=())

    return script


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("state", "row_status"),
    [(TaskState.EXPIRED, JobStatus.EXPIRED), (TaskState.MODERATED, JobStatus.MODERATED)],
)
async def test_a_final_word_ends_the_row_saying_so_and_is_not_polled_again(
    simulator_factory: Any, tmp_path: Path, name: str, state: TaskState, row_status: JobStatus
) -> None:
    info = PROVIDERS[name]
    sim = await _sim(simulator_factory, info)
    seen: list[_Scripted] = []
    factory = _scripted(info, _final_word(info, state), seen)
    manifest = _manifest(tmp_path / "briefs.csv", info, 1)
    settings = _settings(tmp_path, info, sim, task_deadline=30.0)
    code = await run_batch(
        [manifest], settings, Token(DEMO_TOKEN), command="t", install_signals=False,
        provider=factory,
    )  # fmt: skip
    with StateStore.open(tmp_path / "out" / "briefs" / "state.sqlite") as store:
        (job,) = list(store.iter_jobs())
        spend = store.spend()
    assert code == ExitCode.ATTENTION
    assert job.status is row_status and job.error_message
    assert ("expired" if row_status is JobStatus.EXPIRED else "moderation") in job.error_message
    assert seen[0].polls == 1  # final at once: never polled until the deadline
    assert sim.stats.tasks_created == 1  # not sent again on its own
    assert spend.charged == _row_price(info)  # billing undocumented: counted as charged


@pytest.mark.parametrize("name", NAMES)
async def test_an_unknown_word_is_logged_once_and_polled_only_to_the_task_deadline(
    simulator_factory: Any, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    info = PROVIDERS[name]
    sim = await _sim(simulator_factory, info)
    seen: list[_Scripted] = []

    def unknown(status: TaskStatus) -> TaskStatus:
        seen[0]._inner.unknown_status("rendering-ish")  # the client's own once-only log
        return dataclasses.replace(status, state=TaskState.WAITING, status="rendering-ish")

    factory = _scripted(info, unknown, seen)
    manifest = _manifest(tmp_path / "briefs.csv", info, 1)
    settings = _settings(tmp_path, info, sim, task_deadline=0.3)
    with caplog.at_level(logging.WARNING):
        code = await run_batch(
            [manifest], settings, Token(DEMO_TOKEN), command="t", install_signals=False,
            provider=factory,
        )  # fmt: skip
    with StateStore.open(tmp_path / "out" / "briefs" / "state.sqlite") as store:
        (job,) = list(store.iter_jobs())
    assert job.status is JobStatus.SUBMITTED  # the next run asks again
    assert code != ExitCode.OK
    words = [r for r in caplog.records if "unknown task status" in r.getMessage()]
    assert len(words) == 1
    assert any("still unfinished after" in r.getMessage() for r in caplog.records)
    assert seen[0].polls < 40  # stopped at the deadline, not at the run's end
