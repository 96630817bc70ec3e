"""Retry policy as data plus pure decisions: no I/O here, so it is tested without waiting."""

from __future__ import annotations

import random

from batchgen.config import RetryPolicy

__all__ = ["PERMANENT", "TRANSIENT", "backoff_delay", "task_error_kind"]

TRANSIENT = "transient"
PERMANENT = "permanent"

# Vendor error messages that say "try again" (documented examples and their obvious kin).
_TRANSIENT_HINTS = (
    "network error",
    "try again later",
    "build failed",
    "timeout",
    "timed out",
    "temporar",
    "internal error",
    "server error",
    "overloaded",
    "unavailable",
    "without any video",
)


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    hint: float | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Exponential with jitter, capped at ``policy.max_delay``, and never shorter than the
    server's own hint (Retry-After / X-RateLimit-Reset).
    """
    draw = (rng or random).random()
    base = min(policy.max_delay, policy.base_delay * 2 ** max(0, attempt - 1))
    delay = base * (1.0 - policy.jitter * draw)
    return max(delay, hint or 0.0)


def task_error_kind(message: str | None) -> str:
    """Whether a failed task is worth generating again.

    Messages we do not recognise count as permanent: a retry costs 40 credits, and
    ``--retry-failed`` is there for the rows a person decides to try again.
    """
    text = (message or "").lower()
    return TRANSIENT if any(hint in text for hint in _TRANSIENT_HINTS) else PERMANENT
