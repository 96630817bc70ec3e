"""Syncs of downloads off the event loop and grouped (``engine/downloads/syncs.py``), and the
files batchgen can rebuild written without syncs (sidecars: ``atomic_write_bytes(durable=
False)``, restored by ``batchgen report`` after a power cut)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from batchgen import atomic
from batchgen.app.report import rebuild_reports
from batchgen.config import Settings
from batchgen.engine.downloads.syncs import SyncGroup
from batchgen.models import Job, JobSpec, JobStatus
from batchgen.output.sidecar import restore_sidecars, sidecar_owner, sidecar_path
from batchgen.state.store import StateStore

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40


# ---------------------------------------------------------------- SyncGroup
async def test_renames_asked_together_share_one_trip_and_one_sync_per_folder(
    tmp_path: Path,
) -> None:
    synced: list[Path] = []
    syncs = SyncGroup(sync_folder=synced.append)
    a, b = tmp_path / "a", tmp_path / "b"
    await asyncio.gather(*(syncs.folder(folder) for folder in (a, a, a, b, a)))
    assert sorted(synced) == [a, b] and syncs.batches == 1


async def test_a_sync_asked_during_a_batch_waits_for_the_next_one(tmp_path: Path) -> None:
    gates = [threading.Event(), threading.Event()]
    started = threading.Event()
    synced: list[Path] = []

    def sync(folder: Path) -> None:
        synced.append(folder)
        started.set()
        gates[len(synced) - 1].wait(30)  # each batch is held until the test lets it go

    syncs = SyncGroup(sync_folder=sync)
    first = asyncio.ensure_future(syncs.folder(tmp_path))
    await asyncio.to_thread(started.wait, 30)  # the first batch is running now
    second = asyncio.ensure_future(syncs.folder(tmp_path))  # its rename came after it began
    await asyncio.sleep(0)
    gates[0].set()
    await first
    assert not second.done()  # the batch that was running when it asked does not count
    gates[1].set()
    await second
    assert synced == [tmp_path, tmp_path] and syncs.batches == 2


async def test_files_are_fsynced_in_a_worker_thread_each_with_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = os.fsync
    bad: set[int] = set()

    def watching(fd: int) -> None:
        threads.append(threading.current_thread().name)
        if os.fstat(fd).st_ino in bad:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", watching)
    syncs = SyncGroup()
    handles = [(tmp_path / f"v{i}.part").open("wb") for i in range(3)]
    try:
        for handle in handles:
            handle.write(VIDEO)
            handle.flush()
        bad.add(os.fstat(handles[1].fileno()).st_ino)
        results = await asyncio.gather(
            *(syncs.file(h.fileno()) for h in handles), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], OSError)  # that file's download fails, not the others
        assert all(not h.closed and os.fstat(h.fileno()) for h in handles)  # still open
    finally:
        for handle in handles:
            handle.close()
    assert len(threads) == 3 and threading.main_thread().name not in threads
    assert syncs.batches == 1


# ---------------------------------------------------------------- files batchgen rebuilds
def test_a_rebuildable_file_is_written_atomically_without_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: syncs.append(fd))
    atomic.atomic_write_bytes(tmp_path / "a.json", b"{}", durable=False)
    assert syncs == [] and (tmp_path / "a.json").read_bytes() == b"{}"
    atomic.atomic_write_bytes(tmp_path / "b.json", b"{}")
    assert len(syncs) == 2  # the file, then its folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporaries


def _downloaded(i: int, files: tuple[str, ...]) -> Job:
    spec = JobSpec(key=f"id:r{i}", row=i + 2, prompt=f"p {i}", mode="fun", ratio="1:1")
    return Job(
        **{f: getattr(spec, f) for f in ("key", "row", "prompt", "mode", "ratio")},
        status=JobStatus.DOWNLOADED,
        task_id=f"task-{i}",
        files=files,
        file_sizes=tuple(len(VIDEO) for _ in files),
    )


def test_missing_and_empty_sidecars_are_written_again_and_good_ones_left(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a_1.mp4", "a_2.mp4", "b_1.mp4", "c_1.mp4"):
        (videos / name).write_bytes(VIDEO)
    good = sidecar_path(videos / "b_1.mp4")
    good.write_text('{"key": "id:r1"}', encoding="utf-8")
    stamp = good.stat().st_mtime_ns
    sidecar_path(videos / "a_2.mp4").write_bytes(b"")  # a power cut right after the rename
    jobs = [
        _downloaded(0, ("videos/a_1.mp4", "videos/a_2.mp4")),  # one missing, one empty
        _downloaded(1, ("videos/b_1.mp4",)),  # whole: left as it is
        _downloaded(2, ("videos/gone_1.mp4",)),  # no video: no sidecar made up
    ]
    assert restore_sidecars(tmp_path, jobs) == 2
    assert sidecar_owner(sidecar_path(videos / "a_1.mp4")) == "id:r0"
    assert sidecar_owner(sidecar_path(videos / "a_2.mp4")) == "id:r0"
    assert good.stat().st_mtime_ns == stamp
    assert not sidecar_path(videos / "gone_1.mp4").exists()
    assert restore_sidecars(tmp_path, jobs) == 0


def test_report_restores_the_sidecars_a_power_cut_lost(tmp_path: Path) -> None:
    out = tmp_path / "outputs" / "briefs"
    (out / "videos").mkdir(parents=True)
    (out / "videos" / "r0_1.mp4").write_bytes(VIDEO)
    manifest = tmp_path / "briefs.csv"
    manifest.write_text("id,prompt\nr0,p 0\n", encoding="utf-8")
    job = _downloaded(0, ("videos/r0_1.mp4",))
    with StateStore.open(out / "state.sqlite", manifest=manifest) as store:
        store.sync_manifest(["id", "prompt"], [_Row(job)])
        store.transition(job.key, JobStatus.SUBMITTING)
        store.transition(job.key, JobStatus.SUBMITTED, task_id="task-0")
        store.transition(job.key, JobStatus.COMPLETED, video_urls=("https://cdn/v.mp4",))
        store.transition(job.key, JobStatus.DOWNLOADED, files=job.files, file_sizes=(len(VIDEO),))
    lines = rebuild_reports([manifest], Settings.from_options(out_dir=tmp_path / "outputs"))
    assert any("1 missing sidecar" in line for line in lines), lines
    assert sidecar_owner(sidecar_path(out / "videos" / "r0_1.mp4")) == "id:r0"


class _Row:
    def __init__(self, job: Job) -> None:
        self.row, self.key, self.prompt = job.row, job.key, job.prompt
        self.spec: JobSpec | None = job.spec()
        self.user = {"id": job.key.removeprefix("id:"), "prompt": job.prompt}
        self.problems: tuple[object, ...] = ()
