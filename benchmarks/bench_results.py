"""Benchmark: write results.xlsx + results.csv (and the gallery) for 100,000 rows.

Run ``python benchmarks/bench_results.py [ROWS]``. The work runs in a child process so its
peak RSS (``resource.getrusage(RUSAGE_CHILDREN)``) is measured alone; the issue asks for
under 60 s and under 1 GB for both result files together.
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
        t0 = time.perf_counter()
        summary = summarise(jobs, runs, manifest="bench.xlsx", version="bench")
        xlsx, csv_path = write_results(out, columns=COLUMNS, jobs=jobs, summary=summary)
        t1 = time.perf_counter()
        rss_results = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gallery = write_gallery(out, jobs=jobs, summary=summary)
        t2 = time.perf_counter()
        sizes = {p.name: p.stat().st_size for p in (xlsx, csv_path, gallery)}
    print(
        json.dumps(
            {
                "rows": rows,
                "results_s": round(t1 - t0, 1),
                "gallery_s": round(t2 - t1, 1),
                "rss_after_building_jobs_mb": round(rss_jobs),
                "peak_rss_after_results_mb": round(rss_results),
                "sizes_mb": {k: round(v / 1e6, 1) for k, v in sizes.items()},
            }
        )
    )


def main() -> None:
    """Run the child and report its figures and its peak RSS."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
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
    ok = figures["results_s"] < 60 and figures["peak_rss_after_results_mb"] < 1024
    print("within the issue's budget (< 60 s, < 1 GB):", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
