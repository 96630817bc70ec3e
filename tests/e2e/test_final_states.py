"""Issue 23, "Final states": the status vocabulary is closed per provider. ``expired`` and kin
end the row with a status that says so (the reseller's case seen in the wild: a task polled as
if running until the deadline, every night); an unrecognised word waits until the deadline."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.app.run import run_batch
from batchgen.config import RetryPolicy, Settings
from batchgen.errors import ExitCode
from batchgen.models import JobStatus, TaskState
from batchgen.providers.answers import GROKIMAGINE_WORDS, task_state
from batchgen.providers.token import Token
from batchgen.providers.xai import XAI_WORDS
from batchgen.state.store import StateStore

TOKEN = "sk-test-5ecret-t0ken"


@pytest.mark.parametrize("word", ["expired", "EXPIRED", "Expired", "expiry"])
def test_the_resellers_expired_and_kin_are_final(word: str) -> None:
    assert task_state(word, None, has_urls=False) is TaskState.EXPIRED
    assert task_state(word, "gone", has_urls=True) is TaskState.EXPIRED  # final, whatever else


def test_each_vocabulary_is_closed_and_an_unknown_word_is_not_final() -> None:
    assert task_state("rendering", None, has_urls=False) is None  # unknown: logged, waits
    assert task_state("expired", None, False, XAI_WORDS) is TaskState.EXPIRED
    assert task_state("processing", None, False, XAI_WORDS) is None  # not xAI's word
    assert GROKIMAGINE_WORDS.expired and not GROKIMAGINE_WORDS.expired & GROKIMAGINE_WORDS.waiting


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


@pytest.mark.parametrize("word", ["expired", "EXPIRED"])
async def test_an_expired_task_of_the_reseller_ends_its_row_at_once(
    tmp_path: Path, vendor: HostileVendor, word: str
) -> None:
    manifest = tmp_path / "briefs.csv"
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "prompt", "mode", "ratio"], ["a", "p", "fun", "1:1"]])
    vendor.default_status = f'field:status="{word}"'
    settings = Settings.from_options(
        base_url=vendor.url,
        out_dir=tmp_path / "out",
        first_poll=0.01,
        limiter="none",
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02),
    )
    code = await run_batch([manifest], settings, Token(TOKEN), command="t", install_signals=False)
    with StateStore.open(tmp_path / "out" / "briefs" / "state.sqlite") as store:
        (job,) = list(store.iter_jobs())
    assert code == ExitCode.ATTENTION
    assert job.status is JobStatus.EXPIRED and "expired" in (job.error_message or "")
    assert vendor.requests["status"] == 1  # never polled as if running
    assert len(vendor.tasks) == 1  # nor sent again on its own
