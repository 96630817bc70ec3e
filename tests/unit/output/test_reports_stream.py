"""Every output is written from the state page by page: ``StateJobs`` gives the rows in
display order without holding them, and ``write_reports`` never holds every row at once."""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.records import StubRow, make_rows

from batchgen.app.review_loop import ledger_report
from batchgen.config import Settings
from batchgen.models import Job, JobSpec, JobStatus
from batchgen.output.reports import StateJobs, write_reports
from batchgen.output.results import DeletedLast
from batchgen.state.store import StateStore


def _state(tmp_path: Path, rows: list[StubRow]) -> StateStore:
    store = StateStore.open(tmp_path / "state.sqlite")
    store.sync_manifest(["id", "prompt"], rows)
    return store


def test_state_jobs_come_in_display_order_with_takes_by_number(tmp_path: Path) -> None:
    rows = make_rows(3)
    takes = [  # a row's takes #v2 and #v10: by number, not as text sorts them
        StubRow(
            3,
            f"id:1#v{n}",
            {"id": "1"},
            JobSpec(key=f"id:1#v{n}", row=3, prompt="p", mode="fun", ratio="1:1"),
            "p",
        )
        for n in (10, 2)
    ]
    store = _state(tmp_path, [*rows, *takes])
    store.sync_manifest(["id", "prompt"], [rows[1], rows[2], *takes])  # row 2 left: deleted
    keys = [job.key for job in StateJobs(store)]
    assert keys == ["id:1", "id:1#v2", "id:1#v10", "id:2", "id:0"]
    assert [job.key for job in StateJobs(store)] == keys  # iterated again: read again


def test_deleted_rows_go_last_and_the_view_can_be_read_again() -> None:
    jobs = [
        Job(key=f"id:{i}", row=i + 2, prompt="p", mode="fun", ratio="1:1", in_manifest=i % 2 == 0)
        for i in range(5)
    ]
    view = DeletedLast(jobs)
    assert [j.key for j in view] == ["id:0", "id:2", "id:4", "id:1", "id:3"]
    assert [j.key for j in view] == ["id:0", "id:2", "id:4", "id:1", "id:3"]


class CountingStore:
    """A state whose ``iter_jobs`` notes, every 250 rows it hands out, how many jobs are alive
    in the process: the most any write held at once."""

    def __init__(self, store: StateStore) -> None:
        self.inner = store
        self.alive: list[int] = []

    def iter_jobs(self, *args: Any, **kwargs: Any) -> Iterator[Job]:
        for count, job in enumerate(self.inner.iter_jobs(*args, **kwargs)):
            if count % 250 == 0:
                self.alive.append(sum(isinstance(o, Job) for o in gc.get_objects()))
            yield job

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_reports_of_a_big_state_never_hold_every_row(tmp_path: Path) -> None:
    n = 3_000
    store = _state(tmp_path, make_rows(n))
    for job in store.iter_jobs():  # a third done, with a video each
        if job.row % 3 == 0:
            store.transition(job.key, JobStatus.SUBMITTING)
            store.transition(job.key, JobStatus.SUBMITTED, task_id=f"t{job.row}")
            store.transition(job.key, JobStatus.COMPLETED, video_urls=("https://cdn/v.mp4",))
    counting = CountingStore(store)
    write_reports(counting, tmp_path, name="m.csv", settings=Settings())
    assert len(counting.alive) >= 3 * n // 250  # the summary, the sheets with the CSV, the gallery
    assert max(counting.alive) < n // 2  # a page or two at a time, never the whole state
    with (tmp_path / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [int(line["row"]) for line in lines] == list(range(2, n + 2))


def test_the_ledger_keeps_a_row_number_and_a_prompt_per_key_not_the_rows(tmp_path: Path) -> None:
    n = 2_000
    store = _state(tmp_path, make_rows(n))
    for job in store.iter_jobs():
        store.transition(job.key, JobStatus.SUBMITTING)
        store.transition(job.key, JobStatus.SUBMITTED, task_id=f"t{job.row}")
    counting = CountingStore(store)
    line = ledger_report(counting, tmp_path)
    assert f"({n} tasks" in line
    assert max(counting.alive) < n // 2
