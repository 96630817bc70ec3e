"""The sidecar JSON beside each video: what an asset library (or a person) needs to file it.

``videos/spring/hero_1.mp4`` gets ``videos/spring/hero_1.json``, written atomically once the
video is verified and before it takes its final name (so a finished video always has one)::

    {"batchgen_sidecar": 1, "key": "id:hero", "row": 2, "video": "hero_1.mp4", "index": 1,
     "bytes": 1654, "task_id": "...", "request": {"mode": ..., "prompt": ..., "ratio": ...},
     "created_at": "2026-11-30T16:00:00Z", "completed_at": "...", "credits": 40,
     "columns": {"campaign": "spring", ...}}

A sidecar is rebuilt from the state at any time, so it is written atomically (a reader sees
the old file or the new one) but not fsynced: two syncs per video would cost more than the
rest of writing it. After a power cut a sidecar may be missing or empty; ``batchgen report``
writes every such one again (:func:`restore_sidecars`).

Times are UTC ISO 8601 to the second (``created_at``: when the task was submitted);
``credits`` is what the task cost; ``columns`` are the row's own manifest columns. The
``key`` also tells batchgen which row owns the file (``batchgen.output.naming``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchgen.atomic import atomic_write_bytes
from batchgen.models import Job

__all__ = [
    "SIDECAR_VERSION",
    "restore_sidecars",
    "sidecar_data",
    "sidecar_owner",
    "sidecar_path",
    "write_sidecar",
]

SIDECAR_VERSION = 1
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


def sidecar_data(job: Job, *, index: int, video: str, size: int) -> dict[str, Any]:
    """The sidecar's content for video ``index`` (from 1) of ``job``, as a JSON-ready dict."""
    return {
        "batchgen_sidecar": SIDECAR_VERSION,
        "key": job.key,
        "row": job.row,
        "video": video,
        "index": index,
        "bytes": size,
        "task_id": job.task_id,
        "request": job.spec().request(),
        "created_at": _utc(job.submitted_at),
        "completed_at": _utc(job.completed_at),
        "credits": job.consumed_credits,
        "columns": {str(name): _plain(value) for name, value in job.user.items()},
    }


def write_sidecar(video: Path, job: Job, *, index: int, size: int) -> Path:
    """Write ``video``'s sidecar atomically, not fsynced (see the module's docstring);
    returns its path. OSError passes through."""
    path = sidecar_path(video)
    data = sidecar_data(job, index=index, video=video.name, size=size)
    # one line: json's C encoder (an indented dump takes three times as long, per video)
    text = json.dumps(data, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8", "surrogatepass"), durable=False)
    return path


def restore_sidecars(out_dir: Path, jobs: Iterable[Job]) -> int:
    """Write again the sidecar of every video of ``jobs`` (paths relative to ``out_dir``)
    that is on disk while its sidecar is missing or empty (a power cut after the video was
    saved); returns how many. One ``stat`` per video otherwise. OSError passes through."""
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
            write_sidecar(video, job, index=index, size=size)
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
