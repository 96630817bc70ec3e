"""``RetryPolicy.max_attempts`` has one meaning, and its per-step limits are written once
(``batchgen.engine.retry.attempt_limit``): no call site scales or reinterprets it."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from helpers.paths import REPO

from batchgen.config import RetryPolicy, Settings
from batchgen.engine.dispatcher import Dispatcher, ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.retry import (
    POLLS_PER_ATTEMPT,
    RATE_LIMITED_PER_ATTEMPT,
    Action,
    Outcome,
    Step,
    attempt_limit,
    decide,
)
from batchgen.errors import RateLimitedError, TransientApiError
from batchgen.models import JobSpec, JobStatus, TaskStatus
from batchgen.providers.base import ApiHealth, SendMark
from batchgen.state.store import StateStore

ROOT = REPO / "batchgen"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002, jitter=0.0)


def test_each_step_has_its_limit_in_one_place() -> None:
    assert attempt_limit(Step.SUBMIT, POLICY) == 3
    assert attempt_limit(Step.DOWNLOAD, POLICY) == 3
    assert attempt_limit(Step.POLL, POLICY) == POLLS_PER_ATTEMPT * 3 == 9


@pytest.mark.parametrize("step", list(Step))
def test_decide_applies_the_steps_limit_to_the_policy_as_configured(step: Step) -> None:
    limit = attempt_limit(step, POLICY)
    assert decide(step, Outcome.TRANSIENT, limit - 1, None, policy=POLICY).action is Action.RETRY
    assert decide(step, Outcome.TRANSIENT, limit, None, policy=POLICY).action is Action.GIVE_UP
    storm = RATE_LIMITED_PER_ATTEMPT * limit
    assert decide(step, Outcome.RATE_LIMITED, storm - 1, None, policy=POLICY).action is (
        Action.RETRY
    )
    assert decide(step, Outcome.RATE_LIMITED, storm, None, policy=POLICY).action is Action.LEAVE


# Where the setting may be read: the retry policy, and the two places that build it from the
# command line. Anywhere else, a read of ``.max_attempts`` is a second meaning in the making.
READERS = {"engine/retry.py", "cli/settings.py", "cli/options.py"}


def test_only_the_retry_policy_reads_max_attempts() -> None:
    readers = set()
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(node, ast.Attribute) and node.attr == "max_attempts"
            for node in ast.walk(tree)
        ):
            readers.add(path.relative_to(ROOT).as_posix())
    assert readers <= READERS, "ask batchgen.engine.retry.attempt_limit instead"


class _FailingStatus:
    """A vendor that creates every task and then never answers a status request."""

    requests = 0
    rate_limited = 0
    token_accepted = True
    host = "vendor.example"

    def __init__(self, error: TransientApiError) -> None:
        self.health = ApiHealth()
        self.error = error
        self.polls = 0

    def clock(self) -> float:
        return 0.0

    async def submit(self, spec: JobSpec, *, mark: SendMark | None = None) -> str:
        return f"task-{spec.key}"

    async def status(self, task_id: str) -> TaskStatus:
        self.polls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "polls"),
    [
        (TransientApiError("HTTP 503"), POLLS_PER_ATTEMPT * 2),
        (RateLimitedError("HTTP 429"), RATE_LIMITED_PER_ATTEMPT * POLLS_PER_ATTEMPT * 2),
    ],
)
async def test_a_tasks_polls_fail_exactly_the_polls_limit_then_it_waits_for_the_next_run(
    tmp_path: Path, error: TransientApiError, polls: int
) -> None:
    store = StateStore.open(tmp_path / "state.sqlite")
    spec = JobSpec(key="id:1", row=2, prompt="a fox", mode="fun", ratio="1:1")
    store.sync_manifest(["id"], [_Row(spec)])
    vendor = _FailingStatus(error)
    retry = dataclasses.replace(POLICY, max_attempts=2)
    settings = Settings.from_options(rpm=100_000, retry=retry, first_poll=0.001, max_poll_lag=0.0)
    dispatcher = Dispatcher(
        [ManifestRun(name="m.csv", store=store, out_dir=tmp_path)],
        api=vendor,
        throttle=Throttle(100_000, window=60.0),
        cdn=cast(aiohttp.ClientSession, None),
        settings=settings,
    )
    await dispatcher.run()
    assert vendor.polls == polls
    assert store.get("id:1").status is JobStatus.SUBMITTED  # the next run asks again
    store.close()


@dataclasses.dataclass(frozen=True)
class _Row:
    spec: JobSpec
    row: int = 2
    key: str = "id:1"
    user: dict[str, str] = dataclasses.field(default_factory=lambda: {"id": "1"})
    prompt: str = "a fox"
    problems: tuple[str, ...] = ()
    price: int = 40  # a manifest row carries its price (the default provider's)
