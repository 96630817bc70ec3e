"""Retry policy as data plus one pure decision: no I/O here, so it is tested without waiting.

``decide(step, outcome, attempt, hint, ...)`` says what to do after one failed step of one row:
retry after a delay, give up on the row, leave it for the user, or leave it for the next run
because the deadline comes first. The rules, in order:

1. an *ambiguous* submit (maybe created, maybe charged) is never retried: the user decides;
2. *permanent*, *protocol* and *gone* outcomes are final for the row;
3. *not sent* and *rate limited* are retried without counting an attempt (nothing happened
   at the vendor; the outage rule and the deadline bound them); after
   ``RATE_LIMITED_PER_ATTEMPT`` times the step's limit of 429s a row is left for the next run;
4. *transient* outcomes are retried until the step's limit, ``attempt_limit(step, policy)``;
5. a retry waits ``max(backoff with jitter, the server's hint)``; if that wait would end after
   the time left, the row is left as it is for the next run (the deadline always wins).

What ``RetryPolicy.max_attempts`` means, written here and only here (every caller asks
``attempt_limit``; none multiplies or reinterprets the setting):

* **it is how many times one step of one row is tried** when the step keeps failing
  transiently. A submit: up to ``max_attempts`` POSTs that failed without creating a task,
  and up to ``max_attempts`` tasks created for the row that failed transiently (the row's
  ``attempts``; ``--retry-failed`` then decides). A download: ``max_attempts`` failed
  fetches of one video (a cut that added bytes is progress, not a failure).
* **a poll** is the exception, named: a task in flight is asked about many times over its
  life and a failed status request costs nothing, so the polls of one task may fail
  ``POLLS_PER_ATTEMPT x max_attempts`` times in a run; then the task stays submitted and the
  next run asks again.
* **429s** count ``RATE_LIMITED_PER_ATTEMPT x`` the step's limit (rule 3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from batchgen.config import RetryPolicy
from batchgen.models import AttemptKind, ErrorKind

__all__ = [
    "PERMANENT",
    "POLLS_PER_ATTEMPT",
    "RATE_LIMITED_PER_ATTEMPT",
    "TRANSIENT",
    "Action",
    "Decision",
    "Outcome",
    "Step",
    "attempt_limit",
    "backoff_delay",
    "decide",
    "task_error_kind",
]

TRANSIENT = ErrorKind.TRANSIENT
PERMANENT = ErrorKind.PERMANENT

#: Failed polls of one task per run, per unit of ``max_attempts`` (see the module docs).
POLLS_PER_ATTEMPT = 3
#: 429s in a row per unit of a step's limit before the row is left for the next run.
RATE_LIMITED_PER_ATTEMPT = 4

# Task error messages the vendor contract documents as worth a retry, and nothing else: an
# automatic retry costs 40 credits, so a message we do not recognise counts as permanent.
_TRANSIENT_HINTS = ("network error", "try again later", "build failed")


#: The kind of request that failed: the same words a row's history uses for its steps.
Step = AttemptKind


class Outcome(StrEnum):
    """What a failed request proved (see ``providers/submit_table.py`` for a submit)."""

    NOT_SENT = "not sent"  # the connection never carried it
    RATE_LIMITED = "rate limited"  # 429
    TRANSIENT = "transient"  # 5xx on a GET, a cut answer, a timeout on a GET
    AMBIGUOUS = "ambiguous"  # a submit that may have created a task
    PERMANENT = "permanent"  # the vendor refused the request itself
    PROTOCOL = "protocol"  # an answer that cannot be used
    GONE = "gone"  # the vendor does not know the task


class Action(StrEnum):
    """What to do with the row."""

    RETRY = "retry"
    GIVE_UP = "give up"  # final for this row (its status says why)
    ASK_USER = "ask user"  # unknown: only --resubmit-unknown sends it again
    LEAVE = "leave"  # stop trying this run; the next run continues


@dataclass(frozen=True, slots=True)
class Decision:
    """``action`` and, for a retry, the ``delay`` in seconds; ``reason`` in plain words."""

    action: Action
    delay: float = 0.0
    reason: str = ""


def attempt_limit(step: Step, policy: RetryPolicy) -> int:
    """How many transient failures of ``step`` one row meets before ``decide`` gives up:
    ``policy.max_attempts``, and ``POLLS_PER_ATTEMPT`` times that for the polls of one task
    in one run (the module docs say why)."""
    return policy.max_attempts * (POLLS_PER_ATTEMPT if step is Step.POLL else 1)


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
    return _delay(attempt, policy, (rng or random).random(), hint)


def _delay(attempt: int, policy: RetryPolicy, draw: float, hint: float | None) -> float:
    base = min(policy.max_delay, policy.base_delay * 2 ** max(0, attempt - 1))
    return max(base * (1.0 - policy.jitter * draw), hint or 0.0)


def decide(
    step: Step,
    outcome: Outcome,
    attempt: int,
    hint: float | None,
    *,
    policy: RetryPolicy,
    time_left: float | None = None,
    draw: float = 0.5,
) -> Decision:
    """What to do after ``attempt`` (counted from 1) of ``step`` ended in ``outcome``.

    ``policy`` is the run's own ``RetryPolicy``, as configured: the step's limit comes from
    ``attempt_limit`` (never pass a policy with ``max_attempts`` scaled).

    ``hint`` is the server's requested pause in seconds (None: none); ``time_left`` the
    seconds until the run's deadline (None: no deadline); ``draw`` in [0, 1) the jitter.
    """
    if outcome is Outcome.AMBIGUOUS:
        return Decision(Action.ASK_USER, reason="the vendor may have created (and charged) it")
    if outcome in (Outcome.PERMANENT, Outcome.PROTOCOL, Outcome.GONE):
        return Decision(Action.GIVE_UP, reason=f"{outcome.value}: trying again cannot help")
    limit = attempt_limit(step, policy)
    if outcome is Outcome.TRANSIENT and attempt >= limit:
        return Decision(Action.GIVE_UP, reason=f"gave up after {attempt} attempts")
    if outcome is Outcome.RATE_LIMITED and attempt >= RATE_LIMITED_PER_ATTEMPT * limit:
        return Decision(Action.LEAVE, reason=f"rate limited {attempt} times; left for the next run")
    delay = _delay(attempt, policy, draw, hint)
    if time_left is not None and delay >= time_left:
        return Decision(
            Action.LEAVE,
            delay,
            f"the next {step.value} would wait {delay:.0f} s, past the deadline; "
            "left for the next run",
        )
    return Decision(Action.RETRY, delay)


def task_error_kind(message: str | None) -> ErrorKind:
    """Whether a failed task is worth generating again on its own (the contract's list).

    Messages we do not recognise count as permanent: a retry costs 40 credits, and
    ``--retry-failed`` is there for the rows a person decides to try again.
    """
    text = (message or "").lower()
    return TRANSIENT if any(hint in text for hint in _TRANSIENT_HINTS) else PERMANENT
