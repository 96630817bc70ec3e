"""Issue 23 item 7: a state that never sent a request does not bind its manifest.

Seen: a first night refused for a wrong token bound the manifest to that night's ``--out``;
the next night, with another ``--out``, was refused with "every row is submitted, and paid
for, again", which was not true. Variant: a first night whose budget let nothing be sent. A
state that did send keeps binding (its tasks would be paid for again).
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import RetryPolicy
from batchgen.errors import ExitCode, StateConflictError
from batchgen.providers.grokimagine import Token

TOKEN = "sk-unbound-test"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


def _manifest(path: Path, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        for i in range(n):
            writer.writerow([f"r{i}", f"unbound prompt {i}", "fun", "1:1"])
    return path


async def _run(manifest: Path, out: Path, url: str, *args: str, token: str = TOKEN) -> int:
    ns = parse_args(["run", str(manifest), "--out", str(out), "--first-poll", "0.01s", *args])
    settings = settings_from_args(ns, base_url=url).with_options(retry=FAST_RETRY)
    return await run_batch(ns.manifests, settings, Token(token), command="t", install_signals=False)


async def test_a_night_refused_for_its_token_binds_nothing(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    manifest = _manifest(tmp_path / "briefs.csv", 3)
    first = await _run(manifest, tmp_path / "monday", vendor.url, token="sk-wrong")
    assert first == ExitCode.AUTH and not vendor.tasks
    assert (tmp_path / "monday" / "briefs" / "state.sqlite").exists()
    # the next night, another --out: not refused, every row made once
    assert await _run(manifest, tmp_path / "tuesday", vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 3
    assert len(list((tmp_path / "tuesday" / "briefs" / "videos").glob("*.mp4"))) == 3
    # and now that state binds: a third --out is refused, nothing sent
    with pytest.raises(StateConflictError, match="tuesday"):
        await _run(manifest, tmp_path / "wednesday", vendor.url)
    assert len(vendor.tasks) == 3


async def test_a_night_whose_budget_sent_nothing_binds_nothing(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    manifest = _manifest(tmp_path / "briefs.csv", 2)
    first = await _run(manifest, tmp_path / "a", vendor.url, "--max-credits", "1")
    assert first == ExitCode.STOPPED_EARLY and not vendor.tasks
    assert await _run(manifest, tmp_path / "b", vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 2


async def test_a_state_that_sent_still_binds(tmp_path: Path, vendor: HostileVendor) -> None:
    manifest = _manifest(tmp_path / "briefs.csv", 1)
    assert await _run(manifest, tmp_path / "a", vendor.url) == ExitCode.OK
    with pytest.raises(StateConflictError, match="paid for, again"):
        await _run(manifest, tmp_path / "b", vendor.url)
    assert len(vendor.tasks) == 1
