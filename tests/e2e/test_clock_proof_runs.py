"""Issue 23, item 3, the seen case as a whole run: a vendor whose clock is an hour ahead of
this host's sends a 429 with an absolute reset (and ``Retry-After``, or not); the night goes
on instead of stopping with "asked to hold all requests for 3,601 s", exit 5.
"""

from __future__ import annotations

import asyncio
import csv
import email.utils
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import RetryPolicy
from batchgen.errors import ExitCode
from batchgen.providers.grokimagine import Token

HOUR = 3600.0


TOKEN = "sk-clock-test"


def date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


def write_rows(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        for i in range(n):
            writer.writerow([f"r{i}", f"clock prompt {i}", "fun", "1:1"])


async def run(tmp_path: Path, vendor: HostileVendor, *args: str) -> int:
    ns = parse_args(
        [
            "run",
            str(tmp_path / "briefs.csv"),
            "--out",
            str(tmp_path / "outputs"),
            "--first-poll",
            "0.01s",
            *args,
        ]
    )
    fast = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)
    built = settings_from_args(ns, base_url=vendor.url).with_options(retry=fast, heartbeat=0.2)
    return await run_batch(ns.manifests, built, Token(TOKEN), command="test", install_signals=False)


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


@pytest.mark.parametrize("retry_after", ["1", None], ids=["retry_after", "reset_only"])
async def test_a_slow_host_clock_does_not_stop_the_night(
    tmp_path: Path, vendor: HostileVendor, retry_after: str | None
) -> None:
    write_rows(tmp_path / "briefs.csv", 3)
    server = time.time() + HOUR  # the vendor's clock; this host's is an hour slow
    vendor.post = ["ratelimit"]
    vendor.retry_after = retry_after
    vendor.reset = str(int(server + 1))
    vendor.date = date(server)
    code = await asyncio.wait_for(
        run(tmp_path, vendor, "--max-runtime", "60s", "--grace", "10s"), 60
    )
    assert code == ExitCode.OK  # before: "asked to hold all requests for 3,601 s", exit 5
    assert len(vendor.tasks) == 3 and vendor.requests["generate"] == 4
