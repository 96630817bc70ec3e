"""Gallery pages for tests: jobs as the results writer sees them, rendered by the real writer.

* ``make_job(row, status, **fields)``: a ``Job`` with one downloaded file when done.
* ``edited(job, prompt)``: ``job`` once its prompt cell was edited to ``prompt``.
* ``render(tmp_path, jobs, prompt_column, **kw)``: ``index.html``'s text for ``jobs``.
* ``records(out_dir)``: every take of the gallery at ``out_dir``, read from its data parts in
  page order, as dicts by field name; ``page_config(page)``: the page's configuration.
* ``T0``: the start of the one finished run in the summary; ``TINY_MP4``: a real small video;
  ``XSS``: text that must come out escaped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import batchgen
from batchgen.models import Job, JobStatus
from batchgen.output.gallery import write_gallery
from batchgen.output.gallery_data import FIELDS
from batchgen.output.results import summarise

from .records import finished_run

XSS = "<script>alert(1)</script>"
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
TINY_MP4 = Path(batchgen.__file__).parent / "data" / "tiny.mp4"


def make_job(row: int, status: JobStatus = JobStatus.DOWNLOADED, **kw: Any) -> Job:
    """A job with one downloaded file when done; keyword arguments override fields."""
    done = status is JobStatus.DOWNLOADED
    fields: dict[str, Any] = {
        "key": f"k{row}",
        "row": row,
        "prompt": f"prompt {row}",
        "mode": "fun",
        "ratio": "3:2",
        "status": status,
        "files": (f"videos/k{row}_1.mp4",) if done else (),
        "video_urls": (f"https://cdn.example.com/k{row}.mp4",) if done else (),
    }
    return Job(**(fields | kw))


def edited(job: Job, prompt: str) -> Job:
    """``job`` as the state holds it once its prompt cell was edited to ``prompt``."""
    return dataclasses.replace(job, request_now=dataclasses.replace(job.spec(), prompt=prompt))


def render(tmp_path: Path, jobs: list[Job], prompt_column: str | None = None, **kw: Any) -> str:
    runs = [
        finished_run(1, T0, 3725, "batchgen run <m>.xlsx", requests=12, rate_limited=2, credits=80)
    ]
    summary = summarise(jobs, runs, manifest="spring & <summer>.xlsx", version="1.2.3")
    path = write_gallery(tmp_path, jobs=jobs, summary=summary, prompt_column=prompt_column, **kw)
    assert path == tmp_path / "index.html"
    return path.read_text(encoding="utf-8")


def records(out_dir: Path) -> list[dict[str, Any]]:
    """Every take the gallery at ``out_dir`` holds, in page order, by field name."""
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    found: list[list[Any]] = []
    for src in re.findall(r'<script defer src="([^"]+)"></script>', page):
        text = (out_dir / html.unescape(src)).read_text(encoding="ascii")
        assert text.startswith("batchgenRows(") and text.endswith(");\n"), src
        found += json.loads(text[len("batchgenRows(") : -len(");\n")])
    return [dict(zip(FIELDS, record, strict=True)) for record in found]


def page_config(page: str) -> dict[str, Any]:
    """The configuration the page's script reads (columns, field positions)."""
    match = re.search(r'<script type="application/json" id="config">(.*?)</script>', page)
    assert match is not None
    config: dict[str, Any] = json.loads(match.group(1))
    return config
