"""Benchmark: write results.xlsx + results.csv (and the gallery) for 100,000 rows.

Run ``python benchmarks/bench_results.py [ROWS]``. The work runs in a child process so its
peak RSS (``resource.getrusage(RUSAGE_CHILDREN)``) is measured alone; the goal is under 20 s
and under 1 GB for both result files together.

``python benchmarks/bench_results.py --engines [ROWS]`` compares the two XLSX writers on the
same cells (the Results sheet's values: text, numbers, dates, one link per video cell, a
style on every cell): openpyxl's write-only mode against XlsxWriter's constant-memory mode,
each in its own child process. batchgen keeps the faster one (XlsxWriter).

``python benchmarks/bench_results.py --state [ROWS]`` writes every output as ``batchgen
report`` does, in a child process, from a state of ROWS rows built first (eight in ten
downloaded with two videos, one failed, one pending): the CPU seconds of the write, the RSS
once the state is open and the child's peak. The outputs are read from the state page by
page, so the peak should not grow with the rows.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchgen.models import Job, JobStatus, RunInfo

DEFAULT_ROWS = 100_000
COLUMNS = ("prompt", "mode", "ratio", "image", "campaign", "budget")
_STATUSES = (JobStatus.DOWNLOADED,) * 8 + (JobStatus.FAILED, JobStatus.PENDING)
_PROMPT = "A slow dolly shot of a lighthouse at dusk, waves breaking, gulls overhead, warm light"


def make_job(i: int, start: dt.datetime) -> Job:
    """One realistic row: a ~180-character prompt, six user columns, two videos when done."""
    status = _STATUSES[i % len(_STATUSES)]
    done = status is JobStatus.DOWNLOADED
    key = f"h_{i:08x}"
    prompt = f"{_PROMPT} #{i}, variation {i % 7}: {'=SUM(A1) ' if i % 97 == 0 else ''}cinematic"
    return Job(
        key=key,
        row=i + 2,
        prompt=prompt,
        mode="normal",
        ratio="2:3",
        user={
            "prompt": prompt,
            "mode": "normal",
            "ratio": "2:3",
            "image": f"https://cdn.example.com/refs/{i % 500}.png",
            "campaign": f"spring-{i % 12}",
            "budget": 40 + i % 3,
        },
        status=status,
        in_manifest=i % 1000 != 999,
        task_id=f"task-{i:010d}" if status is not JobStatus.PENDING else None,
        attempts=1,
        consumed_credits=40 if done else 0,
        error_kind="permanent" if status is JobStatus.FAILED else None,
        error_message="content policy: the prompt was refused"
        if status is JobStatus.FAILED
        else None,
        video_urls=(f"https://vidgen.example.com/v/{key}_1.mp4?sig=abc",) * done,
        files=(f"videos/{key}_1.mp4", f"videos/{key}_2.mp4") if done else (),
        created_at=start,
        submitted_at=start + dt.timedelta(seconds=i % 60),
        completed_at=start + dt.timedelta(seconds=90 + i % 60) if done else None,
    )


def child(rows: int) -> None:
    """Build the rows, write the files, print timings as JSON."""
    from batchgen.output.gallery import write_gallery
    from batchgen.output.results import summarise, write_results

    start = dt.datetime(2025, 1, 1, 9, 0, 0)
    jobs = [make_job(i, start) for i in range(rows)]
    jobs.sort(key=lambda job: not job.in_manifest)
    runs = [RunInfo(run_id=1, started_at=start, ended_at=start + dt.timedelta(hours=2))]
    rss_jobs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0, cpu0 = time.perf_counter(), time.process_time()
        summary = summarise(jobs, runs, manifest="bench.xlsx", version="bench")
        xlsx, csv_path = write_results(out, columns=COLUMNS, jobs=jobs, summary=summary)
        t1, cpu1 = time.perf_counter(), time.process_time()
        rss_results = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gallery = write_gallery(out, jobs=jobs, summary=summary)
        t2 = time.perf_counter()
        sizes = {p.name: p.stat().st_size for p in (xlsx, csv_path, gallery)}
    print(
        json.dumps(
            {
                "rows": rows,
                "results_s": round(t1 - t0, 1),
                "results_cpu_s": round(cpu1 - cpu0, 1),  # what a busy machine cannot inflate
                "gallery_s": round(t2 - t1, 1),
                "rss_after_building_jobs_mb": round(rss_jobs),
                "peak_rss_after_results_mb": round(rss_results),
                "sizes_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
            }
        )
    )


def _grid(jobs: list[Job]) -> list[list[object]]:
    """The Results sheet's cells as plain values; a video cell is ("link", path)."""
    rows = []
    for job in jobs:
        row: list[object] = [job.user.get(name) for name in COLUMNS]
        row += [job.row, job.key, str(job.status), job.task_id, job.consumed_credits]
        row += [job.consumed_credits / 100, job.submitted_at, job.completed_at]
        row += [job.error_message, None]
        row += [("link", path) for path in job.files]
        rows.append(row)
    return rows


def engine_child(engine: str, rows: int) -> None:
    """Write the same grid with one library; print the seconds as JSON."""
    start = dt.datetime(2025, 1, 1, 9, 0, 0)
    grid = _grid([make_job(i, start) for i in range(rows)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.xlsx"
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        (_openpyxl if engine == "openpyxl" else _xlsxwriter)(grid, path)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    figures = {"engine": engine, "rows": rows, "seconds": round(seconds, 1), "cpu_s": round(cpu, 1)}
    print(json.dumps(figures))


_LINKS = 65_530  # Excel's per-sheet limit, respected by both


def _openpyxl(grid: list[list[object]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Results")
    top = Alignment(vertical="top")
    links = 0
    for row in grid:
        cells = []
        for value in row:
            if isinstance(value, tuple):
                cell = WriteOnlyCell(ws, value=value[1])
                if links < _LINKS:
                    cell.hyperlink = value[1]
                    links += 1
            else:
                cell = WriteOnlyCell(ws, value=value)
            cell.alignment = top
            cells.append(cell)
        ws.append(cells)
    wb.save(path)


def _xlsxwriter(grid: list[list[object]], path: Path) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Results")
    top = wb.add_format({"valign": "top"})
    when = wb.add_format({"valign": "top", "num_format": "yyyy-mm-dd hh:mm:ss"})
    links = 0
    for r, row in enumerate(grid, start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, tuple):
                if links < _LINKS:
                    ws.write_url(r, c, "external:" + value[1], top, value[1])
                    links += 1
                else:
                    ws.write_string(r, c, value[1], top)
            elif isinstance(value, str):
                ws.write_string(r, c, value, top)
            elif isinstance(value, dt.datetime):
                ws.write_datetime(r, c, value, when)
            else:
                ws.write_number(r, c, value, top)  # type: ignore[arg-type]
    wb.close()


def compare_engines(rows: int) -> None:
    """Each library in its own child process, on the same cells."""
    for engine in ("openpyxl", "xlsxwriter"):
        proc = subprocess.run(
            [sys.executable, __file__, "--engine", engine, str(rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(proc.stdout.strip())


def build_state(path: Path, rows: int) -> None:
    """A state of ``rows`` rows at ``path``: synced from the manifest, then moved in bulk
    with SQL (eight in ten downloaded with two videos, one failed, one pending)."""
    import sqlite3

    from batchgen.models import JobSpec
    from batchgen.state.store import StateStore

    class Row:
        def __init__(self, i: int) -> None:
            self.row, self.key = i + 2, f"id:r{i:06d}"
            self.prompt = f"{_PROMPT} #{i}, variation {i % 7}, cinematic"
            self.spec: JobSpec | None = JobSpec(
                key=self.key, row=self.row, prompt=self.prompt, mode="normal", ratio="2:3"
            )
            self.user = {"prompt": self.prompt, "mode": "normal", "ratio": "2:3"}
            self.user |= {"image": f"https://cdn.example.com/refs/{i % 500}.png"}
            self.user |= {"campaign": f"spring-{i % 12}", "budget": 40 + i % 3}
            self.problems: tuple[object, ...] = ()
            self.skipped = None

    with StateStore.open(path) as store:
        store.sync_manifest(list(COLUMNS), (Row(i) for i in range(rows)))
    urls = json.dumps(["https://cdn.example.com/v/a.mp4", "https://cdn.example.com/v/b.mp4"])
    files = json.dumps(["videos/a_1.mp4", "videos/a_2.mp4"])
    when = "2025-01-01T09:00:00.000000+00:00"
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE jobs SET status = 'downloaded', task_id = 't' || row_num, "
            "consumed_credits = 40, video_urls = ?, files = ?, file_sizes = '[1654, 1654]', "
            "submitted_at = ?, completed_at = ? WHERE row_num % 10 < 8",
            (urls, files, when, when),
        )
        db.execute(
            "UPDATE jobs SET status = 'failed', task_id = 't' || row_num, error_kind = "
            "'permanent', error_message = 'content policy: refused', submitted_at = ? "
            "WHERE row_num % 10 = 8",
            (when,),
        )


def state_child(path: Path) -> None:
    """Write every report from the state at ``path`` (as ``batchgen report``); print the
    CPU seconds and the process's peak RSS (the state open, then written from)."""
    from batchgen.config import Settings
    from batchgen.output.reports import write_reports
    from batchgen.state.store import StateStore

    with StateStore.open(path) as store:
        rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0, cpu0 = time.perf_counter(), time.process_time()
        write_reports(store, path.parent, name="bench.csv", settings=Settings())
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "write_s": round(seconds, 1),
        "write_cpu_s": round(cpu, 1),
        "rss_with_the_state_open_mb": round(rss_open),
        "peak_rss_mb": round(peak),
    }
    print(json.dumps(figures))


def main() -> None:
    """Run the child and report its figures and its peak RSS."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--state-child":
        state_child(Path(sys.argv[2]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--state":
        rows = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_ROWS
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "state.sqlite"
            build_state(path, rows)
            out = subprocess.run(
                [sys.executable, __file__, "--state-child", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
        print(json.dumps({"rows": rows, **json.loads(out.stdout)}))
        return
    if len(sys.argv) > 3 and sys.argv[1] == "--engine":
        engine_child(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--engines":
        compare_engines(int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_ROWS)
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_ROWS
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(rows)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - started
    figures = json.loads(proc.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures.update(child_wall_s=round(wall, 1), child_peak_rss_mb=round(peak_mb))
    print(json.dumps(figures, indent=2))
    ok = figures["results_s"] < 20 and figures["peak_rss_after_results_mb"] < 1024
    print("within the issue's budget (< 20 s, < 1 GB):", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
