"""Tasks: request validation, the fate a task draws at birth, its status as time passes, and
the book of every task created (``TaskBook``: who owns it, which videos it serves).

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
import secrets
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from batchgen.models import CREDITS_PER_TASK, MODES, RATIOS
from batchgen.simulator.sim_config import SimConfig
from batchgen.simulator.stats import SimStats, TaskRecord

__all__ = [
    "PERMANENT_MESSAGES",
    "SUCCEEDED",
    "TRANSIENT_MESSAGES",
    "UNKNOWN_STATUSES",
    "Fate",
    "TaskBook",
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
#: Final statuses whose task serves its videos (the reseller's and xAI's words).
SUCCEEDED = frozenset({"completed", "done"})


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

    @classmethod
    def of(cls, faults: Collection[str]) -> Fate:
        """The fate made of the task faults that fired (names from ``config.TASK_FAULTS``)."""
        return cls(
            permanent="task_permanent" in faults,
            transient="task_transient" in faults,
            unknown_status="unknown_status" in faults,
        )


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


class TaskBook:
    """Every task the simulator created and the token that owns it.

    The records themselves live in ``stats.tasks`` (tests read them there); creating a task
    also counts it and its credits in ``stats``.
    """

    def __init__(self, config: SimConfig, stats: SimStats, rng: random.Random) -> None:
        self._config = config
        self._stats = stats
        self._rng = rng
        self._owners: dict[str, str] = {}  # task id -> the token that created it

    def create(self, request: dict[str, Any], owner: str, now: float, fate: Fate) -> TaskRecord:
        """A new reseller task for the validated ``request`` of token ``owner``, born at clock
        ``now``."""
        record = draw_record(
            task_id=self._new_task_id(),
            request=request,
            now=now,
            fate=fate,
            config=self._config,
            rng=self._rng,
        )
        return self.add(record, owner)

    def add(self, record: TaskRecord, owner: str) -> TaskRecord:
        """Book a new task of any dialect for account ``owner``; counts it and what it bills
        (``credits`` and ``cost_ticks``) in the stats."""
        if record.task_id in self._owners:
            raise ValueError(f"task id {record.task_id} is taken")
        stats = self._stats
        stats.tasks[record.task_id] = record
        stats.tasks_created += 1
        stats.credits_charged += record.credits
        stats.ticks_charged += record.cost_ticks
        stats.tasks_by_prompt[record.prompt] += 1
        self._owners[record.task_id] = owner
        return record

    def taken(self, task_id: str) -> bool:
        """Whether some task already has this id."""
        return task_id in self._owners

    def _new_task_id(self) -> str:
        # Not drawn from the seeded generator: a restarted simulator with the same seed must
        # not hand out ids that a client's state still holds from the previous instance.
        while True:
            task_id = f"task_{secrets.randbelow(10**12):012d}"
            if task_id not in self._owners:
                return task_id

    def owned(self, task_id: str, owner: str) -> TaskRecord | None:
        """Task ``task_id`` if token ``owner`` created it (another token's task is unknown)."""
        record = self._stats.tasks.get(task_id)
        if record is None or self._owners[task_id] != owner:
            return None
        return record

    def video(self, task_id: str, n: int, now: float) -> TaskRecord | None:
        """The completed task whose video ``n`` (from 1) exists at clock ``now``, if any."""
        record = self._stats.tasks.get(task_id)
        if record is None or now < record.finished or record.final_status not in SUCCEEDED:
            return None
        return record if 1 <= n <= record.videos else None
