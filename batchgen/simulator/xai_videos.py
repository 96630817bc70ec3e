"""xAI's video requests over time: the fate one draws at birth, what it bills, and the body and
HTTP status of ``GET /v1/videos/{request_id}`` at any moment.

Sources: ``../shared/xai-video-api.md`` section 3 (states, fields, 202 vs 200) and 8 (price).
A request is ``pending`` (202, ``progress`` 0..99 as its latency passes), then ``done`` (200,
the video's URL, duration and ``usage.cost_in_usd_ticks``), ``failed`` (200, ``error``) or
``expired`` (200, status only). Where the contract is silent the simulator decides:

* what is billed is decided at creation, like the reseller's credits: a ``done`` request its
  table price (``cost_mismatch``: times ``cost_mismatch_factor``), one blocked by moderation
  too (a relay says blocks are billed), a ``failed`` or ``expired`` one nothing unless
  ``bill_failures``;
* an undocumented status (``unknown_status``) is one a relay shows, ``queued`` or
  ``processing``, answered 202 like ``pending``;
* ``expired`` comes when the request's latency has passed, with ``{"status": "expired"}``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection
from typing import Any

from batchgen.simulator.sim_config import SimConfig
from batchgen.simulator.stats import TaskRecord
from batchgen.simulator.xai_requests import VideoRequest

__all__ = [
    "PERMANENT_ERRORS",
    "TRANSIENT_ERRORS",
    "XAI_UNKNOWN_STATUSES",
    "draw_video",
    "video_path",
    "video_status",
]

#: ``error`` of a request failed by ``task_permanent``: codes xAI lists, with their text.
PERMANENT_ERRORS: tuple[tuple[str, str], ...] = (
    ("invalid_argument", "The input image could not be used to generate a video."),
    ("permission_denied", "The request was rejected by content moderation."),
    ("failed_precondition", "The request cannot be processed in its current state."),
)
#: ``error`` of a request failed by ``task_transient``.
TRANSIENT_ERRORS: tuple[tuple[str, str], ...] = (
    ("internal_error", "Video generation failed due to an internal error."),
    ("service_unavailable", "The service is temporarily unavailable. Please try again."),
)
#: Undocumented statuses reported while running under the ``unknown_status`` fault.
XAI_UNKNOWN_STATUSES: tuple[str, ...] = ("queued", "processing")


def draw_video(
    request: VideoRequest,
    *,
    task_id: str,
    now: float,
    fired: Collection[str],
    config: SimConfig,
    rng: random.Random,
) -> TaskRecord:
    """A new xAI request with its latency, outcome and bill drawn up front; ``fired`` names
    the task faults that hit it."""
    error: tuple[str, str] | None = None
    if "task_permanent" in fired:
        error = rng.choice(PERMANENT_ERRORS)
    elif "task_transient" in fired:
        error = rng.choice(TRANSIENT_ERRORS)
    final = "failed" if error else "expired" if "task_expired" in fired else "done"
    table = request.table_ticks
    if final == "done":
        factor = config.cost_mismatch_factor if "cost_mismatch" in fired else 1.0
        cost = round(table * factor)
    else:
        cost = table if config.bill_failures else 0
    moderated = final == "done" and "moderated" in fired
    return TaskRecord(
        task_id=task_id,
        prompt=request.prompt,
        request=request.echo(),
        created=now,
        created_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        latency=config.draw_latency(rng),
        final_status=final,
        error_message=error[1] if error else None,
        error_code=error[0] if error else None,
        videos=1 if final == "done" and not moderated else 0,
        credits=0,
        unknown_status=rng.choice(XAI_UNKNOWN_STATUSES) if "unknown_status" in fired else None,
        model=request.model,
        duration=request.duration,
        images=int(request.image is not None),
        table_ticks=table,
        cost_ticks=cost,
        moderated=moderated,
        pending_200="pending_200" in fired,
    )


def video_path(task_id: str) -> str:
    """The CDN path of a request's video, shaped like xAI's (``vidgen.x.ai/...``)."""
    return f"/xai-vidgen-bucket/xai-video-{task_id}.mp4"


def video_status(record: TaskRecord, now: float, base_url: str) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of ``GET /v1/videos/{id}`` for ``record`` at clock ``now``."""
    elapsed = now - record.created
    if elapsed < record.latency:
        progress = min(99, max(0, int(100 * elapsed / record.latency)))
        status = record.unknown_status or "pending"
        body = {"status": status, "progress": progress, "model": record.model}
        return (200 if record.pending_200 else 202), body
    if record.final_status == "expired":
        return 200, {"status": "expired"}
    if record.final_status == "failed":
        return 200, {
            "status": "failed",
            "progress": 0,
            "model": "",
            "video": {"duration": 0, "respect_moderation": True},
            "error": {"code": record.error_code, "message": record.error_message},
        }
    video: dict[str, Any] = {"duration": record.duration, "respect_moderation": True}
    if record.moderated:
        video["respect_moderation"] = False
    else:
        video = {"url": base_url + video_path(record.task_id), **video}
    return 200, {
        "status": "done",
        "progress": 100,
        "model": record.model,
        "video": video,
        "usage": {"cost_in_usd_ticks": record.cost_ticks},
    }
