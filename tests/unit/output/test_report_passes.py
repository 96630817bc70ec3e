"""``report`` from a big state reads it three times, not five (issue 26): the workbook's
sizes ride on the summary's pass, and the Failed sheet asks the state for its few rows by
status. Counted (rows the state builds), never timed; and the files are the same as when the
workbook measures and filters every row itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
from helpers.records import CountingStore, StubRow, make_rows

from batchgen.config import Settings
from batchgen.models import NEEDS_ATTENTION, JobSpec, JobStatus
from batchgen.output.reports import StateJobs, write_reports
from batchgen.output.results import write_results
from batchgen.output.review import Review
from batchgen.output.summary import summarise
from batchgen.state.store import StateStore

S = JobStatus


def _state(tmp_path: Path, n: int) -> StateStore:
    """``n`` rows and a second take of row 4, a mix of statuses: downloaded with two videos,
    failed, refused, invalid in the sheet, pending; one row left the manifest."""
    take = JobSpec(key="id:2#v2", row=4, prompt="prompt number 2", mode="fun", ratio="1:1")
    rows = [*make_rows(n), StubRow(4, take.key, {"id": "2", "prompt": take.prompt}, take, "p")]
    long = "a very long prompt " * 20
    bad = StubRow(n + 2, f"id:{n}", {"id": str(n), "prompt": long}, None, long, ("no ratio",))
    store = StateStore.open(tmp_path / "state.sqlite")
    store.sync_manifest(["id", "prompt"], [*rows, bad])
    for i in range(n):
        key = f"id:{i}"
        if i % 4 == 3:
            continue  # pending
        store.transition(key, S.SUBMITTING)
        if i % 4 == 2:
            store.transition(key, S.REJECTED, error_message="refused")
            continue
        store.transition(key, S.SUBMITTED, task_id=f"t{i}")
        if i % 4 == 0:
            urls = (f"https://cdn/{i}/1.mp4", f"https://cdn/{i}/2.mp4")
            store.transition(key, S.COMPLETED, video_urls=urls)
            store.transition(key, S.DOWNLOADED, files=(f"videos/{i}_1.mp4", f"videos/{i}_2.mp4"))
        else:
            store.transition(key, S.FAILED, error_message="no video")
    store.sync_manifest(["id", "prompt"], [r for r in [*rows, bad] if r.key != "id:5"])
    return store


def _cells(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    wb = openpyxl.load_workbook(path)
    sheets = {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
    widths = {
        f"{ws.title} widths": [(k, d.width) for k, d in sorted(ws.column_dimensions.items())]
        for ws in wb.worksheets
    }
    return sheets | widths


def test_report_reads_every_row_three_times_and_the_failed_rows_once_more(
    tmp_path: Path,
) -> None:
    n = 40
    inner = _state(tmp_path, n)
    total = sum(1 for _ in inner.iter_jobs())
    attention = sum(1 for _ in inner.iter_jobs(NEEDS_ATTENTION, in_manifest_only=True))
    assert 0 < attention < total
    store = CountingStore(inner)
    write_reports(store, tmp_path, name="m.csv", settings=Settings())
    # the summary (carrying the workbook's sizes), the Results sheet with the CSV, the
    # gallery; then the Failed sheet's own rows
    assert store.built == 3 * total + attention

    # the same workbook as one that measures and filters every row itself
    review = Review(origins=inner.origins(), decisions=inner.decisions())
    summary = summarise(StateJobs(inner), inner.runs(), manifest="m.csv", version="x")
    alone = tmp_path / "alone"
    write_results(
        alone, columns=inner.columns(), jobs=StateJobs(inner), summary=summary, review=review
    )
    ours, theirs = _cells(tmp_path / "results.xlsx"), _cells(alone / "results.xlsx")
    for sheet in ("Results", "Failed", "Results widths", "Failed widths"):
        assert ours[sheet] == theirs[sheet], sheet
    assert len(ours["Failed"]) == 1 + attention  # the header, then the rows in the manifest
    assert len(ours["Results"]) == 1 + total
    inner.close()
