"""The sidecar JSON beside each video: what an asset library (or a person) needs to file it.

``videos/spring/hero_1.mp4`` gets ``videos/spring/hero_1.json``, written atomically once the
video is verified and before it takes its final name (so a finished video always has one)::

    {"batchgen_sidecar": 2, "key": "id:hero", "row": 2, "video": "hero_1.mp4", "index": 1,
     "task_videos": 2, "bytes": 1654, "task_id": "...",
     "request": {"mode": ..., "prompt": ..., "ratio": ...},
     "created_at": "2026-11-30T16:00:00Z", "completed_at": "...",
     "task_cost_usd": 0.4, "task_credits": 40, "columns": {"campaign": "spring", ...}}

A sidecar is rebuilt from the state at any time, so it is written atomically (a reader sees
the old file or the new one) but not fsynced: two syncs per video would cost more than the
rest of writing it. After a power cut a sidecar may be missing or empty; ``batchgen report``
writes every such one again (:func:`restore_sidecars`).

Times are UTC ISO 8601 to the second (``created_at``: when the task was submitted);
``columns`` are the row's own manifest columns. The ``key`` also tells batchgen which row owns
the file (``batchgen.output.naming``).

Money is the *task's*, never the video's: one task may make several videos (``index`` is this
one's, from 1, of ``task_videos``) and each of their sidecars repeats the same figures: a
total over sidecars counts each ``task_id`` once.
``task_cost_usd`` is what the vendor reported for the task, in US dollars, for every
provider; ``task_credits`` is the same in credits and is present only for a provider that
bills credits (the figures of the Results sheet's ``Credits`` and ``Cost (USD)``). Version 1
sidecars had ``credits`` instead (the task's cost in the provider's unit, so micro-dollars for
a vendor billing dollars) and no ``task_videos``; batchgen reads back only ``key``, which
both versions have (:func:`sidecar_owner`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchgen.atomic import atomic_write_bytes
from batchgen.models import Job
from batchgen.output.cells import job_usd
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = [
    "SIDECAR_VERSION",
    "restore_sidecars",
    "sidecar_data",
    "sidecar_owner",
    "sidecar_path",
    "write_sidecar",
]

SIDECAR_VERSION = 2  # 2: task_cost_usd, task_credits, task_videos (1: credits)
_MAX_SIDECAR_BYTES = 4 * 1024 * 1024


def sidecar_path(video: Path) -> Path:
    """``hero_1.mp4`` -> ``hero_1.json``."""
    return video.with_suffix(".json")


def _utc(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _task_money(job: Job, unit: BillingUnit) -> dict[str, Any]:
    """The task's reported cost: in USD always, in credits when the provider bills them."""
    money: dict[str, Any] = {"task_cost_usd": job_usd(job, unit)}
    if unit.credits:
        money["task_credits"] = job.consumed_credits
    return money


def sidecar_data(
    job: Job, *, index: int, video: str, size: int, unit: BillingUnit = CREDIT
) -> dict[str, Any]:
    """The sidecar's content for video ``index`` (from 1) of ``job``, as a JSON-ready dict
    (``unit``: the provider's, which ``job.consumed_credits`` counts in)."""
    return {
        "batchgen_sidecar": SIDECAR_VERSION,
        "key": job.key,
        "row": job.row,
        "video": video,
        "index": index,
        "task_videos": max(len(job.video_urls), len(job.files), index),
        "bytes": size,
        "task_id": job.task_id,
        "request": job.spec().request(),
        "created_at": _utc(job.submitted_at),
        "completed_at": _utc(job.completed_at),
        **_task_money(job, unit),
        "columns": {str(name): _plain(value) for name, value in job.user.items()},
    }


def write_sidecar(
    video: Path, job: Job, *, index: int, size: int, unit: BillingUnit = CREDIT
) -> Path:
    """Write ``video``'s sidecar atomically, not fsynced (see the module's docstring);
    returns its path. OSError passes through."""
    path = sidecar_path(video)
    data = sidecar_data(job, index=index, video=video.name, size=size, unit=unit)
    # one line: json's C encoder (an indented dump takes three times as long, per video)
    text = json.dumps(data, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8", "surrogatepass"), durable=False)
    return path


def restore_sidecars(out_dir: Path, jobs: Iterable[Job], unit: BillingUnit = CREDIT) -> int:
    """Write again the sidecar of every video of ``jobs`` (paths relative to ``out_dir``)
    that is on disk while its sidecar is missing or empty (a power cut after the video was
    saved); returns how many. One ``stat`` per video otherwise. ``unit``: the provider's
    (the state's ``billing_unit``). OSError passes through."""
    restored = 0
    for job in jobs:
        for index, rel in enumerate(job.files, start=1):
            video = out_dir / rel
            try:
                if sidecar_path(video).stat().st_size > 0:
                    continue
            except FileNotFoundError:
                pass
            try:
                size = video.stat().st_size
            except FileNotFoundError:
                continue  # no video, no sidecar
            write_sidecar(video, job, index=index, size=size, unit=unit)
            restored += 1
    return restored


def sidecar_owner(path: Path) -> str | None:
    """The row key a sidecar names; None when there is none or it cannot be read."""
    try:
        if path.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key = data.get("key") if isinstance(data, dict) else None
    return key if isinstance(key, str) else None
