"""Issue 23 item 2: one identity for a manifest's requests across all its states.

Seen: ``briefs (1).csv`` (a browser's re-download) beside ``briefs.csv``, a rename to
``briefs-final.csv``, or a hard link under another name: 3 tasks became 6, exit 0, no warning.
Now a rename or a hard link continues the existing state (and says so), a copy's rows already
generated are held with a message naming where they were made (``--allow-regenerate`` sends
them), and ``validate`` shows the same. Variants: a same-content file in another folder, a
copy with a row added, a copy whose original's state was deleted, a copy killed after its
tasks were made and before the record was told.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from helpers.hostile_vendor import HostileVendor, Task

from batchgen.app.run import run_batch
from batchgen.app.validate import validate_manifests
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import RetryPolicy
from batchgen.errors import ExitCode
from batchgen.models import JobStatus
from batchgen.providers.grokimagine import Token
from batchgen.state.generated import RECORD_FILE, Generation, GenerationRecord
from batchgen.state.registry import Registry
from batchgen.state.store import StateStore

TOKEN = "sk-copies-test"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


def _manifest(path: Path, n: int, *, extra: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        for i in range(n + extra):
            writer.writerow([f"r{i}", f"copies prompt {i}", "fun", "1:1"])
    return path


def _settings(out: Path, url: str, manifest: Path, *args: str):  # type: ignore[no-untyped-def]
    ns = parse_args(["run", str(manifest), "--out", str(out), "--first-poll", "0.01s", *args])
    return ns, settings_from_args(ns, base_url=url).with_options(retry=FAST_RETRY)


async def _run(manifest: Path, out: Path, url: str, *args: str) -> int:
    ns, settings = _settings(out, url, manifest, *args)
    return await run_batch(ns.manifests, settings, Token(TOKEN), command="t", install_signals=False)


def _validate(manifest: Path, out: Path, url: str) -> tuple[str, int]:
    _, settings = _settings(out, url, manifest)
    return validate_manifests([manifest], settings)


def _statuses(state: Path) -> dict[str, JobStatus]:
    with StateStore.open(state) as store:
        return {job.key: job.status for job in store.iter_jobs()}


async def test_a_copy_of_a_sheet_is_not_paid_for_again(
    tmp_path: Path, vendor: HostileVendor, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 3)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 3
    copy = tmp_path / "briefs (1).csv"
    shutil.copyfile(original, copy)  # a browser's re-download
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        code = await _run(copy, out, vendor.url)
    assert code == ExitCode.ATTENTION  # not 0: three rows held
    assert len(vendor.tasks) == 3  # nothing paid twice
    held = [r.getMessage() for r in caplog.records if "already generated" in r.getMessage()]
    assert len(held) == 3
    assert (
        str(original.resolve()) in held[0]
        and "row 2 of" in held[0]
        and "--allow-regenerate" in held[0]
    )
    copy_state = next(p for p in out.glob("*/state.sqlite") if p.parent.name != "briefs")
    assert set(_statuses(copy_state).values()) == {JobStatus.INVALID}
    # validate says the same before anything is sent
    report, vcode = _validate(copy, out, vendor.url)
    assert vcode == 1 and "already generated" in report and "briefs.csv" in report


async def test_allow_regenerate_sends_a_copys_rows_on_purpose(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 2)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    copy = tmp_path / "briefs-copy.csv"
    shutil.copyfile(original, copy)
    assert await _run(copy, out, vendor.url, "--allow-regenerate") == ExitCode.OK
    assert len(vendor.tasks) == 4
    # and the copy's own rows are never held in its own state afterwards
    assert await _run(copy, out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 4


async def test_a_copy_with_a_new_row_sends_only_the_new_row(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "team" / "briefs.csv", 2)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    # the same name in another folder, one row added: a variant of a copy
    copy = _manifest(tmp_path / "mine" / "briefs.csv", 2, extra=1)
    assert await _run(copy, out, vendor.url) == ExitCode.ATTENTION
    assert len(vendor.tasks) == 3
    prompts = sorted(task.prompt for task in vendor.tasks.values())
    assert prompts == ["copies prompt 0", "copies prompt 1", "copies prompt 2"]


async def test_a_renamed_sheet_continues_its_state(
    tmp_path: Path, vendor: HostileVendor, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 3)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    renamed = original.rename(tmp_path / "briefs-final.csv")
    # validate, before the run, says what the run will do: continue, nothing to send
    report, vcode = _validate(renamed, out, vendor.url)
    assert vcode == 0 and "continuing its state" in report and "0 generations" in report
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        assert await _run(renamed, out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 3
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "briefs-final.csv is renamed from" in said and "continuing its state" in said
    assert [p.parent.name for p in out.glob("*/state.sqlite")] == ["briefs"]
    assert Registry().lookup(renamed) == (out / "briefs" / "state.sqlite").resolve()


async def test_a_hard_link_continues_the_same_state(
    tmp_path: Path, vendor: HostileVendor, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 3)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    link = tmp_path / "tonight.csv"
    os.link(original, link)
    with caplog.at_level(logging.WARNING, logger="batchgen"):
        assert await _run(link, out, vendor.url) == ExitCode.OK
    assert "tonight.csv is a hard link of" in " ".join(r.getMessage() for r in caplog.records)
    assert len(vendor.tasks) == 3
    assert await _run(original, out, vendor.url) == ExitCode.OK  # and back: the same state
    assert len(vendor.tasks) == 3


async def test_a_copy_whose_original_state_is_gone_is_still_held(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    """The record remembers the task ids when the original's state was deleted."""
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 2)
    assert await _run(original, out, vendor.url) == ExitCode.OK
    shutil.rmtree(out / "briefs")
    copy = tmp_path / "briefs (2).csv"
    shutil.copyfile(original, copy)
    assert await _run(copy, out, vendor.url) == ExitCode.ATTENTION
    assert len(vendor.tasks) == 2


async def test_a_copy_killed_before_the_record_held_its_tasks_is_not_paid_again(
    tmp_path: Path, vendor: HostileVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the chaos suite: the copy's run committed its task ids to its state and was
    killed before the per-user record held them; the original, run next, paid again. The
    record now holds each row's intent before its POST leaves, so the original's run finds
    the rows (its state says they were sent) whatever the record was not told after."""
    out = tmp_path / "outputs"
    original = _manifest(tmp_path / "briefs.csv", 3)
    copy = tmp_path / "briefs (1).csv"
    shutil.copyfile(original, copy)
    add = GenerationRecord.add

    def killed_after_the_post(self: GenerationRecord, generations: Iterable[Generation]) -> None:
        add(self, [g for g in generations if g.task_id is None])  # no task id reached it

    with monkeypatch.context() as patched:
        patched.setattr(GenerationRecord, "add", killed_after_the_post)
        assert await _run(copy, out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 3
    assert await _run(original, out, vendor.url) == ExitCode.ATTENTION  # held, not paid
    assert len(vendor.tasks) == 3


async def test_each_post_leaves_after_the_record_names_its_row(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    """A variant: a kill while a POST is out (the copy's state says SUBMITTING, then unknown)
    leaves the row in the record too, so the other sheet holds it; checked at the moment
    each POST reaches the vendor."""
    out = tmp_path / "outputs"
    copy = _manifest(tmp_path / "briefs (1).csv", 4)
    record_file = Path(os.environ["BATCHGEN_HOME"]) / RECORD_FILE
    recorded_when_posted: list[bool] = []
    create = vendor._create

    def create_and_look(body: dict[str, Any]) -> Task:
        key = "id:r" + str(body["prompt"]).rsplit(" ", 1)[1]
        with contextlib.closing(sqlite3.connect(record_file)) as conn:
            keys = {row[0] for row in conn.execute("SELECT key FROM generated")}
        recorded_when_posted.append(key in keys)
        return create(body)

    vendor._create = create_and_look  # type: ignore[method-assign]
    assert await _run(copy, out, vendor.url) == ExitCode.OK
    assert recorded_when_posted == [True] * 4
