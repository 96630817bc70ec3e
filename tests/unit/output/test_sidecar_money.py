"""What a sidecar says a video cost: the *task's* cost, named so, in US dollars for every
provider and in credits only for a provider that bills credits; with the video's place among
the task's videos, so that summing sidecars cannot count a task twice unawares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.records import StubRow

from batchgen.app.report import rebuild_reports
from batchgen.config import Settings
from batchgen.models import Job, JobStatus
from batchgen.output.naming import FileNames
from batchgen.output.sidecar import (
    SIDECAR_VERSION,
    restore_sidecars,
    sidecar_owner,
    sidecar_path,
    write_sidecar,
)
from batchgen.providers.catalog import PROVIDERS
from batchgen.state.store import StateStore

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40


def finished(cost: int, videos: int = 1) -> Job:
    """A downloaded task whose vendor reported ``cost`` (in the provider's unit), with
    ``videos`` videos."""
    return Job(
        key="id:hero",
        row=2,
        prompt="a lighthouse",
        mode="",
        ratio="1:1",
        status=JobStatus.DOWNLOADED,
        task_id="task-1",
        consumed_credits=cost,
        video_urls=tuple(f"https://cdn.example/v{n}.mp4" for n in range(1, videos + 1)),
        files=tuple(f"videos/hero_{n}.mp4" for n in range(1, videos + 1)),
    )


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    return data


MONEY = ("credits", "task_credits", "task_cost_usd")


@pytest.mark.parametrize(
    ("name", "cost", "money"),
    [
        ("xai", 202_000, {"task_cost_usd": 0.202}),  # micro-dollars, never shown as credits
        ("grokimagine", 40, {"task_cost_usd": 0.4, "task_credits": 40}),
    ],
)
def test_a_sidecar_gives_the_tasks_cost_in_the_providers_unit(
    tmp_path: Path, name: str, cost: int, money: dict[str, Any]
) -> None:
    video = tmp_path / "hero_1.mp4"
    unit = PROVIDERS[name].unit
    write_sidecar(video, finished(cost), index=1, size=len(VIDEO), unit=unit)
    data = read(video)
    assert {k: data[k] for k in MONEY if k in data} == money
    assert data["batchgen_sidecar"] == SIDECAR_VERSION == 2
    assert (data["index"], data["task_videos"]) == (1, 1)


@pytest.mark.parametrize(
    ("name", "cost", "usd"), [("grokimagine", 40, 0.4), ("xai", 804_000, 0.804)]
)
def test_each_video_of_a_task_names_the_cost_as_the_tasks_and_its_place(
    tmp_path: Path, name: str, cost: int, usd: float
) -> None:
    """A task with two videos: both sidecars give the task's cost under the task's name and
    say which of the task's two videos they describe; counting each task id once is the bill."""
    job = finished(cost, videos=2)
    names = FileNames(tmp_path, lambda: [job], unit=PROVIDERS[name].unit)
    for index, rel in enumerate(job.files, start=1):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        names.describe(job, index, rel, len(VIDEO))
    first, second = (read(tmp_path / rel) for rel in job.files)
    assert "credits" not in first and "credits" not in second
    assert [(s["index"], s["task_videos"]) for s in (first, second)] == [(1, 2), (2, 2)]
    assert first["task_id"] == second["task_id"] and first["task_cost_usd"] == usd
    by_task = {s["task_id"]: s["task_cost_usd"] for s in (first, second)}
    assert sum(by_task.values()) == usd


def test_sidecars_written_again_by_report_keep_the_units(tmp_path: Path) -> None:
    """``batchgen report`` writes a lost sidecar of an xAI task in dollars too."""
    videos = tmp_path / "videos"
    videos.mkdir()
    job = finished(1_602_000, videos=2)
    for rel in job.files:
        (tmp_path / rel).write_bytes(VIDEO)
    assert restore_sidecars(tmp_path, [job], PROVIDERS["xai"].unit) == 2
    data = read(videos / "hero_2.mp4")
    assert {k: data[k] for k in MONEY if k in data} == {"task_cost_usd": 1.602}
    assert (data["index"], data["task_videos"]) == (2, 2)


def test_report_restores_a_sidecar_in_the_unit_its_state_bills_in(tmp_path: Path) -> None:
    """``batchgen report`` reads the provider's unit from the state (no --provider given)."""
    out = tmp_path / "outputs" / "briefs"
    (out / "videos").mkdir(parents=True)
    manifest = tmp_path / "briefs.csv"
    manifest.write_text("id,prompt\nhero,a lighthouse\n", encoding="utf-8")
    job = finished(1_602_000)
    (out / job.files[0]).write_bytes(VIDEO)
    row = StubRow(2, job.key, {"id": "hero", "prompt": job.prompt}, job.spec(), job.prompt)
    with StateStore.open(out / "state.sqlite", manifest=manifest) as store:
        store.sync_manifest(["id", "prompt"], [row])
        store.set_meta("billing_unit", PROVIDERS["xai"].unit.name)
        store.transition(job.key, JobStatus.SUBMITTING)
        store.transition(job.key, JobStatus.SUBMITTED, task_id="task-1")
        store.transition(
            job.key, JobStatus.COMPLETED, video_urls=job.video_urls, consumed_credits=1_602_000
        )
        store.transition(job.key, JobStatus.DOWNLOADED, files=job.files, file_sizes=(len(VIDEO),))
    rebuild_reports([manifest], Settings.from_options(out_dir=tmp_path / "outputs"))
    data = read(out / job.files[0])
    assert {k: data[k] for k in MONEY if k in data} == {"task_cost_usd": 1.602}


def test_a_version_1_sidecar_still_names_its_row(tmp_path: Path) -> None:
    """Sidecars written before version 2 (``credits``, no ``task_videos``) still tell which
    row owns a file, so a file of another row is never handed out."""
    video = tmp_path / "videos" / "hero_1.mp4"
    video.parent.mkdir()
    old = {"batchgen_sidecar": 1, "key": "id:other", "index": 1, "credits": 202000}
    sidecar_path(video).write_text(json.dumps(old), encoding="utf-8")
    assert sidecar_owner(sidecar_path(video)) == "id:other"
    names = FileNames(tmp_path, lambda: [], unit=PROVIDERS["xai"].unit)
    assert names.claim(finished(0), 1) != "videos/hero_1.mp4"
