"""Issue 11, item 8-9: one state per manifest, found wherever batchgen runs from.

Runs go through the real ``run_batch`` against ``hostile_vendor.HostileVendor``; the per-user
registry lives in the test's private ``BATCHGEN_HOME`` (conftest).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers.hostile_vendor import HostileVendor
from helpers.records import write_briefs as write_rows

from batchgen.app.demo import run_demo
from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import RetryPolicy
from batchgen.errors import ExitCode, StateConflictError
from batchgen.providers.grokimagine import Token
from batchgen.state.registry import Registry
from batchgen.state.store import StateStore

TOKEN = "sk-dispatch-test"  # one of the tokens conftest checks never leak
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


async def run(manifests: list[Path], out: Path, url: str, *args: str) -> int:
    ns = parse_args(
        ["run", *map(str, manifests), "--out", str(out), "--first-poll", "0.01s", *args]
    )
    settings = settings_from_args(ns, base_url=url).with_options(retry=FAST_RETRY)
    return await run_batch(ns.manifests, settings, Token(TOKEN), command="t", install_signals=False)


async def test_a_symlink_or_another_out_folder_finds_the_existing_state(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    (tmp_path / "team").mkdir()
    manifest = write_rows(tmp_path / "team" / "briefs.csv", 5)
    link = tmp_path / "nightly.csv"
    link.symlink_to(manifest)
    assert await run([manifest], tmp_path / "outputs", vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 5
    # the same output folder through a symlink of another name: the same state, no new task
    assert await run([link], tmp_path / "outputs", vendor.url) == ExitCode.OK
    # another working directory's default --out: refused, naming the state and the way out
    with pytest.raises(StateConflictError) as refused:
        await run([link], tmp_path / "elsewhere" / "outputs", vendor.url)
    assert refused.value.exit_code == 2
    assert str(tmp_path / "outputs" / "briefs" / "state.sqlite") in str(refused.value)
    assert "--out" in str(refused.value) and "--new-state" in str(refused.value)
    assert len(vendor.tasks) == 5
    assert not (tmp_path / "elsewhere" / "outputs" / "briefs").exists()


async def test_a_deleted_state_is_noticed(tmp_path: Path, vendor: HostileVendor) -> None:
    manifest = write_rows(tmp_path / "briefs.csv", 3)
    out = tmp_path / "outputs"
    assert await run([manifest], out, vendor.url) == ExitCode.OK
    for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
        (out / "briefs" / name).unlink(missing_ok=True)
    with pytest.raises(StateConflictError, match="is gone"):
        await run([manifest], out, vendor.url)
    Registry().path.unlink()  # even without the registry: the videos give it away
    with pytest.raises(StateConflictError, match="holds results or videos but no state"):
        await run([manifest], out, vendor.url)
    assert len(vendor.tasks) == 3
    assert await run([manifest], out, vendor.url, "--new-state") == ExitCode.OK  # on request
    assert len(vendor.tasks) == 6


async def test_two_manifests_of_the_same_name_never_share_a_folder(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    (tmp_path / "a").mkdir()
    a = write_rows(tmp_path / "a" / "briefs.csv", 2)
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = b_dir / "briefs.csv"
    b.write_text(a.read_text().replace("briefs prompt", "team b prompt"))
    out = tmp_path / "outputs"
    assert await run([a], out, vendor.url) == ExitCode.OK
    assert await run([b], out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 4  # the vendor got B's prompts too
    assert {task.prompt for task in vendor.tasks.values()} >= {"team b prompt 0"}
    folders = sorted(p.parent.name for p in out.glob("*/state.sqlite"))
    assert len(folders) == 2 and folders[0] == "briefs"


async def test_names_that_clean_up_alike_get_their_own_folders_in_one_run(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    for name in ("a b", "a+b", "a_b"):
        write_rows(folder / f"{name}.csv", 1)  # prompts start with the file's stem: all differ
    assert await run([folder], tmp_path / "outputs", vendor.url) == ExitCode.OK
    assert len(list((tmp_path / "outputs").glob("*/state.sqlite"))) == 3
    assert len(vendor.tasks) == 3


async def test_a_state_is_bound_to_its_api_base_url(tmp_path: Path, vendor: HostileVendor) -> None:
    manifest = write_rows(tmp_path / "briefs.csv", 2)
    out = tmp_path / "outputs"
    assert await run([manifest], out, vendor.url) == ExitCode.OK
    async with HostileVendor(TOKEN) as other:
        with pytest.raises(StateConflictError, match="--rebind-base-url") as refused:
            await run([manifest], out, other.url)
        assert refused.value.exit_code == 2 and not other.requests["generate"]
        assert await run([manifest], out, other.url, "--rebind-base-url") == ExitCode.OK
    with StateStore.open(out / "briefs" / "state.sqlite") as store:
        assert store.get_meta("base_url") == other.url
        assert TOKEN not in (store.get_meta("base_url") or "")


async def test_a_state_that_never_reached_its_api_follows_the_corrected_url(
    tmp_path: Path, vendor: HostileVendor
) -> None:
    # A mistyped --base-url on the first night: nothing connects, nothing is sent (exit 6).
    manifest = write_rows(tmp_path / "briefs.csv", 2)
    out = tmp_path / "outputs"
    await vendor.go_away()
    dead = vendor.url
    assert await run([manifest], out, dead, "--outage-timeout", "1s") == ExitCode.OUTAGE
    async with HostileVendor(TOKEN) as right:
        # the corrected URL is simply used: the state held no task id to lose
        assert await run([manifest], out, right.url) == ExitCode.OK
        assert len(right.tasks) == 2
    with StateStore.open(out / "briefs" / "state.sqlite") as store:
        assert store.get_meta("base_url") == right.url
    # once tasks exist, another URL is refused again
    async with HostileVendor(TOKEN) as other:
        with pytest.raises(StateConflictError, match="--rebind-base-url"):
            await run([manifest], out, other.url)


async def test_the_demo_never_touches_a_real_state(tmp_path: Path, vendor: HostileVendor) -> None:
    manifest = write_rows(tmp_path / "my.csv", 2)
    out = tmp_path / "outputs"
    ns = parse_args(["demo", str(manifest), "--out", str(out)])
    settings = settings_from_args(ns).with_options(retry=FAST_RETRY)
    assert await run_demo([manifest], settings, command="demo") == ExitCode.OK
    assert (out / "demo" / "my" / "state.sqlite").exists()
    assert not (out / "my").exists() and Registry().lookup(manifest) is None
    # the real run submits every row: nothing of the demo is taken for a deliverable
    assert await run([manifest], out, vendor.url) == ExitCode.OK
    assert len(vendor.tasks) == 2


def test_the_registry_survives_a_damaged_file(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.path.write_text("{not json")
    assert registry.lookup(tmp_path / "x.csv") is None
    registry.record(tmp_path / "x.csv", tmp_path / "out" / "x" / "state.sqlite")
    assert registry.lookup(tmp_path / "x.csv") == (tmp_path / "out" / "x" / "state.sqlite")
    assert os.stat(registry.path).st_size > 0


@pytest.mark.parametrize("leftover", ["empty file", "schema, no manifest"])
async def test_a_first_run_killed_while_making_its_state_keeps_its_folder(
    tmp_path: Path, vendor: HostileVendor, leftover: str
) -> None:
    """A kill between the state file's creation and its owner's record left a state naming
    no manifest; the next run took ``briefs-csv`` and left ``briefs`` looking empty."""
    manifest = write_rows(tmp_path / "briefs.csv", 3)
    out = tmp_path / "outputs"
    state = out / "briefs" / "state.sqlite"
    state.parent.mkdir(parents=True)
    if leftover == "empty file":
        state.touch()
    else:
        StateStore.open(state).close()
    assert await run([manifest], out, vendor.url) == ExitCode.OK
    assert [p.name for p in out.iterdir()] == ["briefs"]
    with StateStore.open(state) as store:
        assert store.get_meta("manifest_path") == str(manifest.resolve())
        assert sum(store.counts().values()) == 3
    assert len(vendor.tasks) == 3
