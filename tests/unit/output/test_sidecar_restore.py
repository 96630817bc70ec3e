"""Files batchgen can rebuild are written without syncs (``atomic_write_bytes(durable=False)``:
sidecars), and ``batchgen report`` writes again the sidecars a power cut left missing or
empty (``output.sidecar.restore_sidecars``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen import atomic
from batchgen.app.report import rebuild_reports
from batchgen.config import Settings
from batchgen.models import Job, JobSpec, JobStatus
from batchgen.output.sidecar import restore_sidecars, sidecar_owner, sidecar_path
from batchgen.state.store import StateStore

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40


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
