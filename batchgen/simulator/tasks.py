"""Tasks: request validation, the fate a task draws at birth, and its status as time passes.

A task needs no timer of its own: its status is computed from the clock when someone asks.
It is ``queued`` for the first ``queued_fraction`` of its latency, then ``processing``, then
``completed`` or ``failed``. A failed task reports ``consumed_credits`` 0 (the simulator's
answer to the contract's silence: failures are refunded) unless ``failed_credits`` says
otherwise; any other task reports 40.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any
from urllib.parse import urlsplit

from batchgen.models import CREDITS_PER_TASK, MODES, RATIOS
from batchgen.simulator.config import SimConfig
from batchgen.simulator.stats import TaskRecord

__all__ = [
    "PERMANENT_MESSAGES",
    "TRANSIENT_MESSAGES",
    "UNKNOWN_STATUSES",
    "Fate",
    "draw_record",
    "status_data",
    "status_of",
    "validate_generate",
    "video_urls",
]

TRANSIENT_MESSAGES: tuple[str, ...] = (
    "Network error, please try again later.",
    "grok imagine build failed",
)
PERMANENT_MESSAGES: tuple[str, ...] = (
    "Inappropriate content, please try another prompt.",
    "File type not supported",
)
#: Undocumented status strings reported by tasks hit by the ``unknown_status`` fault.
UNKNOWN_STATUSES: tuple[str, ...] = ("rendering", "upscaling", "in_review")

_INVALID = "Invalid request: "


def validate_generate(raw: bytes) -> dict[str, Any] | str:
    """The normalised generate request (``mode``, ``prompt``, ``ratio`` and any ``images``),
    or the message of a 400 explaining the first problem. Unknown fields are ignored."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _INVALID + "the body is not valid JSON"
    if not isinstance(body, dict):
        return _INVALID + "the body must be a JSON object"
    problem = _prompt_problem(body.get("prompt"))
    problem = problem or _choice_problem(body, "mode", MODES)
    problem = problem or _choice_problem(body, "ratio", RATIOS)
    if "images" in body:
        problem = problem or _images_problem(body["images"])
    if problem:
        return _INVALID + problem
    request = {"mode": body["mode"], "prompt": body["prompt"], "ratio": body["ratio"]}
    if "images" in body:
        request["images"] = list(body["images"])
    return request


def _prompt_problem(prompt: object) -> str | None:
    if prompt is None:
        return "The prompt parameter is required"
    if not isinstance(prompt, str):
        return "The prompt parameter must be a string"
    if not prompt.strip():
        return "The prompt parameter must not be empty"
    return None


def _choice_problem(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return f"The {name} parameter is required"
    if value not in allowed:
        return f"{name} must be one of {', '.join(allowed)}"
    return None


def _images_problem(images: object) -> str | None:
    if not isinstance(images, list):
        return "images must be an array of image URLs"
    for index, url in enumerate(images):
        if not _is_web_url(url):
            return f"images[{index}] is not an absolute http(s) URL"
    return None


def _is_web_url(url: object) -> bool:
    if not isinstance(url, str) or url != url.strip() or " " in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Fate:
    """Which task faults hit one task (decided by the simulator, applied by ``draw_record``)."""

    __slots__ = ("permanent", "transient", "unknown_status")

    def __init__(self, *, permanent: bool, transient: bool, unknown_status: bool) -> None:
        self.permanent = permanent
        self.transient = transient
        self.unknown_status = unknown_status


def draw_record(
    *,
    task_id: str,
    request: dict[str, Any],
    now: float,
    fate: Fate,
    config: SimConfig,
    rng: random.Random,
) -> TaskRecord:
    """A new task with its latency, outcome, message and video count drawn up front."""
    message: str | None = None
    if fate.permanent:
        message = rng.choice(PERMANENT_MESSAGES)
    elif fate.transient:
        message = rng.choice(TRANSIENT_MESSAGES)
    return TaskRecord(
        task_id=task_id,
        prompt=request["prompt"],
        request=request,
        created=now,
        created_at=_iso_now(),
        latency=config.draw_latency(rng),
        final_status="failed" if message else "completed",
        error_message=message,
        videos=rng.randint(*config.videos_per_task),
        credits=config.failed_credits if message else CREDITS_PER_TASK,
        unknown_status=rng.choice(UNKNOWN_STATUSES) if fate.unknown_status else None,
    )


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_of(record: TaskRecord, now: float, queued_fraction: float) -> str:
    """The status string ``record`` reports at clock time ``now``."""
    elapsed = now - record.created
    if elapsed >= record.latency:
        return record.final_status
    if record.unknown_status:
        return record.unknown_status
    return "queued" if elapsed < record.latency * queued_fraction else "processing"


def status_data(record: TaskRecord, status: str, base_url: str) -> dict[str, Any]:
    """The ``data`` object of a ``GET /v1/status`` answer for ``record`` in ``status``."""
    completed = status == "completed"
    failed = status == "failed"
    return {
        "consumed_credits": record.credits if failed else CREDITS_PER_TASK,
        "created_at": record.created_at,
        "status": status,
        "task_id": record.task_id,
        "error_message": record.error_message if failed else None,
        "request": record.request,
        "response": video_urls(base_url, record) if completed else [],
    }


def video_urls(base_url: str, record: TaskRecord) -> list[str]:
    """The URLs a completed task lists: ``{base}/files/{task_id}/{n}.mp4``, n from 1."""
    return [f"{base_url}/files/{record.task_id}/{n}.mp4" for n in range(1, record.videos + 1)]
