"""What an answer to ``POST /v1/generate`` proves: the one money table, first match wins.

The vendor has no idempotency key and no endpoint that lists tasks, so a task created by a
POST whose answer we cannot read is found by nobody: resending that POST may pay twice. The
rule (Stripe's idempotency docs call a 500 "indeterminate"; Replicate never retries a POST):
only two things prove that no task was created, and only then is a row sent again on its own:

* the connection never carried the request (refused, DNS, TLS, connect timeout), or
* the vendor's own JSON error with a 4xx status (or a 4xx ``code`` in its body): 400 and kin
  (the row is refused for good), 401 (the token: the run stops), 429 (the rate limiter
  refused it before any work: sent again after the pause it asked for).

Everything else that was sent without yielding a task id is *ambiguous*: the row becomes
``unknown`` and waits for ``--resubmit-unknown``. That includes every 5xx, with or without
the vendor's JSON, and a bare ``503``: a 500 is raised by code that may already have stored
the task, and a 502/503/504 page comes from a gateway that may have forwarded the request
before it gave up (Envoy answers 503 "upstream reset" after forwarding; 504 is a timeout
after forwarding by definition). It also includes a 200 whose body is cut short, is HTML,
or holds no task id, and a 4xx page that is not the vendor's JSON (a proxy's page proves
nothing about the vendor). An answer that carries a task id proves creation whatever else
it says (``"code": 500`` beside a ``task_id``): the id is recorded and polled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["SUBMIT_TABLE", "Proof", "Rule", "SubmitAnswer", "decide_submit"]


class Proof(StrEnum):
    """What one POST's answer proves about the vendor's side."""

    CREATED = "created"  # a task id came back: record it, poll it, never resend
    RETRY = "retry"  # proven not created, and worth sending again (after any pause)
    REFUSED = "refused"  # proven not created, and the request itself is wrong: do not resend
    AUTH = "auth"  # proven not created: the token was refused; stop the run
    AMBIGUOUS = "ambiguous"  # maybe created, maybe charged: never resend without the user


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitAnswer:
    """What came back for one POST, already parsed (``providers.answers``).

    ``sent`` is False when the connection never carried the request. ``status`` is the HTTP
    status (None: the request left and no answer came back). ``vendor_json`` is True when the
    whole body arrived and is the vendor's JSON envelope (an object with ``code``,
    ``message`` or ``error``). ``code`` is that body's ``code`` as a whole number, if any.
    """

    sent: bool = True
    status: int | None = None
    vendor_json: bool = False
    code: int | None = None
    task_id: str | None = None

    @property
    def effective(self) -> int | None:
        """The status that counts: the body's code wins when it signals an error."""
        if self.code is not None and self.code >= 400:
            return self.code
        return self.status


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table: when ``applies``, the answer proves ``proof`` because ``why``."""

    name: str
    applies: Callable[[SubmitAnswer], bool]
    proof: Proof
    why: str


def _in(low: int, high: int, value: int | None) -> bool:
    return value is not None and low <= value <= high


SUBMIT_TABLE: tuple[Rule, ...] = (
    Rule(
        "task id",
        lambda a: a.task_id is not None,
        Proof.CREATED,
        "the answer names a task: whatever else it says, that task exists and is polled",
    ),
    Rule(
        "never sent",
        lambda a: not a.sent,
        Proof.RETRY,
        "the connection never carried the request (refused, DNS, TLS, connect timeout)",
    ),
    Rule(
        "no answer",
        lambda a: a.status is None,
        Proof.AMBIGUOUS,
        "the request left but no answer came back (reset, timeout, cut off): the vendor may "
        "have created the task",
    ),
    Rule(
        "token refused",
        lambda a: a.status == 401 or a.effective == 401,
        Proof.AUTH,
        "401: nothing is created for a refused token",
    ),
    Rule(
        "rate limited",
        lambda a: a.status == 429 or a.effective == 429,
        Proof.RETRY,
        "429: the rate limiter refused the request before any work",
    ),
    Rule(
        "vendor 4xx",
        lambda a: a.vendor_json and _in(400, 499, a.effective),
        Proof.REFUSED,
        "the vendor's own JSON error with a 4xx: the request was refused",
    ),
    Rule(
        "anything else",
        lambda a: True,
        Proof.AMBIGUOUS,
        "no proof that nothing was created (a 5xx, a 2xx without a task id, a body that "
        "could not be read): the vendor may have created the task",
    ),
)


def decide_submit(answer: SubmitAnswer) -> Rule:
    """The first rule of :data:`SUBMIT_TABLE` that applies (the last one always does)."""
    return next(rule for rule in SUBMIT_TABLE if rule.applies(answer))
