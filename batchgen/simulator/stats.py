"""What the simulator saw: live counters for tests and the benchmark, also served as JSON.

Tokens are secrets, so per-token figures are keyed by ``token_label(token)``, a short
fingerprint, never by the token itself: the stats may well end up in a benchmark report.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PeakWindow", "SimStats", "TaskRecord", "max_in_window", "token_label"]


def token_label(token: str) -> str:
    """A stable, non-reversible name for a token: ``tok-`` and 8 hex digits of its SHA-256."""
    return "tok-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def max_in_window(timestamps: Sequence[float], window: float) -> int:
    """The largest number of ``timestamps`` (sorted ascending) inside any interval of length
    ``window`` (half-open, so two events exactly ``window`` apart never share one).

    Two pointers over the sorted list: exact, and O(n).
    """
    best = 0
    start = 0
    for end, t in enumerate(timestamps):
        while timestamps[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


class PeakWindow:
    """``max_in_window`` computed online: feed timestamps in order, read ``peak``.

    Keeps only the events of the last ``window`` seconds, so each event costs O(1) amortised.
    """

    __slots__ = ("_events", "peak", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._events: deque[float] = deque()
        self.peak = 0

    def add(self, t: float) -> int:
        """Record one event at time ``t`` (not earlier than the previous one); returns ``peak``."""
        events = self._events
        events.append(t)
        horizon = t - self.window
        while events[0] <= horizon:
            events.popleft()
        if len(events) > self.peak:
            self.peak = len(events)
        return self.peak


@dataclass(slots=True, kw_only=True)
class TaskRecord:
    """One task the simulator created, with the fate it drew at creation.

    ``created`` is on the simulator's clock (the event loop's), ``created_at`` the wall-clock
    ISO-8601 string the API reports. The task is finished at ``created + latency``.
    """

    task_id: str
    prompt: str
    request: dict[str, Any]  # the normalised request, echoed by GET /v1/status
    created: float
    created_at: str
    latency: float
    final_status: str  # "completed" or "failed"
    error_message: str | None
    videos: int  # how many video URLs a completed task lists
    credits: int  # consumed_credits once finished: 40, or 0 for a failed task
    unknown_status: str | None = None  # status string reported while unfinished, if odd
    ambiguous: bool = False  # the creating POST was answered with a dropped connection
    # The xAI dialect's own facts (left at their defaults by the reseller's tasks):
    model: str = ""  # the model that runs the request
    duration: int = 0  # seconds of video asked for, and generated
    images: int = 0  # input images billed
    table_ticks: int = 0  # what the price table says the request costs
    cost_ticks: int = 0  # what the vendor bills and reports (usage.cost_in_usd_ticks)
    error_code: str | None = None  # error.code of a failed request
    moderated: bool = False  # done, but the output was blocked by moderation (no url)
    pending_200: bool = False  # pending answered with HTTP 200 rather than 202

    @property
    def finished(self) -> float:
        """Clock time at which the task reaches its final status."""
        return self.created + self.latency


@dataclass(kw_only=True)
class SimStats:
    """Live counters. Mutated by the simulator as requests arrive; read them at any time."""

    #: All arrivals by endpoint: generate, status, files (video downloads), upload (xai files)
    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)  # HTTP status -> responses sent
    unauthorized: int = 0  # refusals of the key served (401, xAI's 400): count against no one
    rate_limited: int = 0  # 429s served, storms included
    storms: int = 0  # 429 storms started
    max_window: dict[str, int] = field(default_factory=dict)  # token label -> peak requests
    tasks_created: int = 0
    credits_charged: int = 0  # final consumed_credits of every task created
    ticks_charged: int = 0  # xai: cost_in_usd_ticks billed for every request created
    uploads: int = 0  # xai: files stored by POST /v1/files
    tasks_by_prompt: Counter[str] = field(default_factory=Counter)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    ambiguous_prompts: list[str] = field(default_factory=list)
    dropped_before: int = 0  # connections reset before the request was acted on
    refused_windows: int = 0  # outages during which new connections were refused
    faults: Counter[str] = field(default_factory=Counter)  # fault name -> times it fired
    #: Arrivals per endpoint per tick: a tick is a 60th of the rate window (one second of a
    #: 60 s window; compressed with it), counted from ``started``, the first API request.
    timeline: dict[str, Counter[int]] = field(default_factory=dict)
    tick: float = 1.0
    started: float | None = None

    def arrival(self, endpoint: str, now: float) -> None:
        """Count one API request in the timeline."""
        if self.started is None:
            self.started = now
        ticks = self.timeline.setdefault(endpoint, Counter())
        ticks[int((now - self.started) / self.tick)] += 1

    def max_window_for(self, token: str) -> int:
        """Peak requests of ``token`` in any rate window (0 when it sent none)."""
        return self.max_window.get(token_label(token), 0)

    @property
    def peak_window(self) -> int:
        """The largest ``max_window`` over all tokens."""
        return max(self.max_window.values(), default=0)

    def duplicate_prompts(self) -> dict[str, int]:
        """Prompts that were paid for more than once, with their task counts."""
        return {prompt: n for prompt, n in self.tasks_by_prompt.items() if n > 1}

    def to_json(self, *, with_tasks: bool = True) -> dict[str, Any]:
        """A JSON-ready copy (``GET /_sim/stats``); ``with_tasks=False`` omits the task list."""
        data: dict[str, Any] = {
            "requests": dict(self.requests),
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "unauthorized": self.unauthorized,
            "rate_limited": self.rate_limited,
            "storms": self.storms,
            "max_window": dict(self.max_window),
            "peak_window": self.peak_window,
            "tasks_created": self.tasks_created,
            "credits_charged": self.credits_charged,
            "ticks_charged": self.ticks_charged,
            "uploads": self.uploads,
            "tasks_by_prompt": dict(self.tasks_by_prompt),
            "duplicate_prompts": self.duplicate_prompts(),
            "ambiguous_prompts": list(self.ambiguous_prompts),
            "dropped_before": self.dropped_before,
            "refused_windows": self.refused_windows,
            "faults": dict(self.faults),
        }
        if with_tasks:
            data["tasks"] = {task_id: asdict(rec) for task_id, rec in self.tasks.items()}
            data["tick"] = self.tick
            data["started"] = self.started
            data["timeline"] = {
                endpoint: {str(tick): n for tick, n in sorted(ticks.items())}
                for endpoint, ticks in self.timeline.items()
            }
        return data
