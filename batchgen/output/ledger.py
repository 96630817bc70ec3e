"""The bill, reconciled per task: ``ledger.csv`` and ``claims.csv`` (``batchgen report --ledger``).

``ledger.csv`` has one line per task the vendor created for the manifest, over every run
(tasks of rows sent again and of rows since deleted included), plus one line per submit whose
answer was lost (``ambiguous`` = yes, no task id: the vendor may or may not have created,
and charged, a task; counted as possibly charged, at its row's price). Columns:
``LEDGER_COLUMNS``; ``consumed_credits`` is what the vendor reported for the task (0 while
it has not finished), ``charged_credits`` what batchgen's spend counts it at (the reported
figure, else the row's price), both in credits for a provider that bills credits and blank
otherwise; ``reported_usd`` and ``charged_usd`` are the same in US dollars, for every
provider; ``charged_but_failed`` is yes for a failed task that reported a cost.

``claims.csv`` lists what a person could raise with the vendor's support, with the ids and
times support asks for (``CLAIM_COLUMNS``), one line per claim, ``reason`` being:

- ``failed_but_charged``: the task failed and still reported credits;
- ``credits_above_expected``: the task reported more than its row's price (40 credits a
  generation for the reseller; seconds x rate + pictures for a vendor billing dollars);
- ``possible_duplicate``: a submit's answer was lost and the row was later sent again; if the
  vendor created a task for the lost answer, it is a duplicate charge (the task id of the
  resend is given; the lost one's time is ``submitted_at``).

Both files are written atomically, UTF-8 with a BOM; text cells starting with ``= + - @``
get a leading ``'`` as in results.csv. The totals (:class:`LedgerTotals`) are the same sums the
Summary sheet and ``batchgen status`` show.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from batchgen.atomic import atomic_path
from batchgen.models import AttemptKind, AttemptOutcome, split_variant
from batchgen.providers.descriptor import CREDIT, BillingUnit

__all__ = [
    "AMBIGUOUS_OUTCOMES",
    "CLAIMS_NAME",
    "CLAIM_COLUMNS",
    "LEDGER_COLUMNS",
    "LEDGER_NAME",
    "LedgerRow",
    "LedgerTotals",
    "RowOf",
    "build_claims",
    "build_ledger",
    "write_ledger",
]

LEDGER_NAME = "ledger.csv"
CLAIMS_NAME = "claims.csv"
LEDGER_COLUMNS: tuple[str, ...] = (
    "row",
    "key",
    "variant",
    "task_id",
    "submitted_at",
    "status",
    "consumed_credits",
    "charged_credits",
    "reported_usd",
    "charged_usd",
    "charged_but_failed",
    "ambiguous",
    "error_message",
)
CLAIM_COLUMNS: tuple[str, ...] = (
    "reason",
    "row",
    "key",
    "variant",
    "task_id",
    "submitted_at",
    "completed_at",
    "status",
    "consumed_credits",
    "reported_usd",
    "prompt",
    "detail",
)


class RowOf(Protocol):
    """What the ledger needs of a key's job: its row number, prompt and price (in the
    state's billing unit; None: not priced). A ``Job`` has all three."""

    @property
    def row(self) -> int: ...

    @property
    def prompt(self) -> str: ...

    @property
    def price(self) -> int | None: ...


class LedgerRow(NamedTuple):
    """A job as the ledger needs it: a few dozen bytes where a ``Job`` takes kilobytes, so
    the ledger of a 100,000-row state does not hold every row."""

    row: int
    prompt: str
    price: int | None


#: Submit outcomes (in the state's attempt history) that may have created an unseen task.
AMBIGUOUS_OUTCOMES = frozenset({AttemptOutcome.AMBIGUOUS, AttemptOutcome.INTERRUPTED})
_FAILED = frozenset({"failed", "rejected"})
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over the ledger: tasks with an id, credits they reported, credits counted as
    charged, charged failures, submits of unknown outcome (and the credits they may have
    cost), and claims."""

    tasks: int
    credits: int
    charged: int
    charged_but_failed: int
    ambiguous: int
    possible: int
    claims: int
    unit: BillingUnit = CREDIT  # what credits, charged and possible count


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def build_ledger(
    tasks: Sequence[Mapping[str, Any]],
    attempts: Iterable[Mapping[str, Any]],
    jobs: Mapping[str, RowOf],
    unit: BillingUnit = CREDIT,
) -> list[dict[str, Any]]:
    """Ledger lines (``LEDGER_COLUMNS``) by submission time, from the state's ``task_log()``,
    ``attempts()`` and jobs by key; money in ``unit`` (the state's billing unit)."""
    lines = [_task_line(task, jobs, unit) for task in tasks]
    for attempt in attempts:
        if attempt["kind"] == AttemptKind.SUBMIT and attempt["outcome"] in AMBIGUOUS_OUTCOMES:
            lines.append(_ambiguous_line(attempt, jobs))
    lines.sort(key=lambda line: (*_order(line), line["task_id"]))
    return lines


def _order(line: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """Lines by time, then by row and take as numbers (row 2 before row 10 within a second;
    a key of a job the state no longer has, with no row, after the others)."""
    row = line["row"] if isinstance(line["row"], int) else 1 << 62
    return line["submitted_at"], row, line["variant"], line["key"]


def _task_line(
    task: Mapping[str, Any], jobs: Mapping[str, RowOf], unit: BillingUnit
) -> dict[str, Any]:
    key = task["key"]
    credits = int(task["consumed_credits"] or 0)
    charged = int(task.get("charged_credits") or 0)
    failed = task["status"] in _FAILED
    return {
        "row": _row(jobs, key),
        "key": key,
        "variant": split_variant(key)[1],
        "task_id": task["task_id"],
        "submitted_at": _when(task["submitted_at"]),
        "status": task["status"],
        "consumed_credits": credits if unit.credits else "",
        "charged_credits": charged if unit.credits else "",
        "reported_usd": _usd(unit, credits),
        "charged_usd": _usd(unit, charged),
        "units": (credits, charged),
        "charged_but_failed": _yes(failed and credits > 0),
        "ambiguous": "no",
        "error_message": task["error_message"] or "",
    }


def _ambiguous_line(attempt: Mapping[str, Any], jobs: Mapping[str, RowOf]) -> dict[str, Any]:
    key = attempt["key"]
    return {
        "row": _row(jobs, key),
        "key": key,
        "variant": split_variant(key)[1],
        "task_id": "",
        "submitted_at": _when(attempt["at"]),
        "status": "answer lost",
        "consumed_credits": "",
        "charged_credits": "",
        "reported_usd": "",
        "charged_usd": "",
        "units": (0, 0),
        "price": _price(jobs, key),
        "charged_but_failed": "no",
        "ambiguous": "yes",
        "error_message": attempt["message"] or "",
    }


def _usd(unit: BillingUnit, amount: int) -> str:
    return f"{unit.usd(amount):.6f}".rstrip("0").rstrip(".") if amount else "0"


def _price(jobs: Mapping[str, RowOf], key: str) -> int:
    job = jobs.get(key)
    return 0 if job is None or job.price is None else job.price


def _row(jobs: Mapping[str, RowOf], key: str) -> int | str:
    job = jobs.get(key)
    return "" if job is None else job.row


def build_claims(
    tasks: Sequence[Mapping[str, Any]],
    attempts: Iterable[Mapping[str, Any]],
    jobs: Mapping[str, RowOf],
    unit: BillingUnit = CREDIT,
) -> list[dict[str, Any]]:
    """Claim lines (``CLAIM_COLUMNS``) from the state's ``task_log()`` and ``attempts()``."""
    claims: list[dict[str, Any]] = []
    for task in tasks:
        credits = int(task["consumed_credits"] or 0)
        price = int(task.get("price") or 0)
        if task["status"] in _FAILED and credits > 0:
            why = task["error_message"] or "no message"
            claims.append(
                _claim("failed_but_charged", task, jobs, f"failed ({why}); charged", unit)
            )
        if price and credits > price:
            detail = (
                f"reported {unit.show(credits)}; this generation was expected to cost "
                f"{unit.show(price)}"
            )
            claims.append(_claim("credits_above_expected", task, jobs, detail, unit))
    for attempt in attempts:
        if attempt["kind"] == AttemptKind.SUBMIT and attempt["outcome"] in AMBIGUOUS_OUTCOMES:
            resend = _resend(attempt, tasks)
            if resend is not None:
                claims.append(_duplicate(attempt, resend, jobs, unit))
    claims.sort(key=lambda claim: (*_order(claim), claim["reason"]))
    return claims


def _claim(
    reason: str,
    task: Mapping[str, Any],
    jobs: Mapping[str, RowOf],
    detail: str,
    unit: BillingUnit = CREDIT,
) -> dict[str, Any]:
    key = task["key"]
    job = jobs.get(key)
    return {
        "reason": reason,
        "row": _row(jobs, key),
        "key": key,
        "variant": split_variant(key)[1],
        "task_id": task["task_id"],
        "submitted_at": _when(task["submitted_at"]),
        "completed_at": _when(task["completed_at"]),
        "status": task["status"],
        "consumed_credits": int(task["consumed_credits"] or 0) if unit.credits else "",
        "reported_usd": _usd(unit, int(task["consumed_credits"] or 0)),
        "prompt": "" if job is None else job.prompt,
        "detail": detail,
    }


def _resend(
    attempt: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first task of the same job sent after the lost answer, if any."""
    later = [
        t
        for t in tasks
        if t["key"] == attempt["key"]
        and t["submitted_at"] is not None
        and t["submitted_at"] > attempt["at"]
    ]
    return min(later, key=lambda t: t["submitted_at"], default=None)


def _duplicate(
    attempt: Mapping[str, Any],
    resend: Mapping[str, Any],
    jobs: Mapping[str, RowOf],
    unit: BillingUnit = CREDIT,
) -> dict[str, Any]:
    lost = _when(attempt["at"])
    detail = (
        f"the answer to the submit at {lost} was lost ({attempt['message'] or 'no answer'}); "
        f"the row was sent again as task {resend['task_id']} at "
        f"{_when(resend['submitted_at'])}. A task created at the earlier time is a duplicate"
    )
    claim = _claim("possible_duplicate", resend, jobs, detail, unit)
    claim["submitted_at"] = lost
    return claim


def totals(
    ledger: Sequence[Mapping[str, Any]],
    claims: Sequence[Mapping[str, Any]],
    unit: BillingUnit = CREDIT,
) -> LedgerTotals:
    """The sums of a ledger and its claims, in ``unit``."""
    tasks = [line for line in ledger if line["task_id"]]
    lost = [line for line in ledger if line["ambiguous"] == "yes"]
    return LedgerTotals(
        tasks=len(tasks),
        credits=sum(line["units"][0] for line in tasks),
        charged=sum(line["units"][1] for line in tasks),
        charged_but_failed=sum(line["charged_but_failed"] == "yes" for line in tasks),
        ambiguous=len(lost),
        possible=sum(line["price"] for line in lost),
        claims=len(claims),
        unit=unit,
    )


def _field(value: Any) -> str:
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_CSV_TRIGGERS):
        return "'" + text
    return text


def _write(path: Path, columns: Sequence[str], lines: Iterable[Mapping[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for line in lines:
            writer.writerow([_field(line[name]) for name in columns])


def write_ledger(
    out_dir: Path,
    *,
    tasks: Sequence[Mapping[str, Any]],
    attempts: Iterable[Mapping[str, Any]],
    jobs: Mapping[str, RowOf],
    unit: BillingUnit = CREDIT,
) -> LedgerTotals:
    """Write ``out_dir/ledger.csv`` and ``out_dir/claims.csv``; returns the totals."""
    attempts = list(attempts)
    ledger = build_ledger(tasks, attempts, jobs, unit)
    claims = build_claims(tasks, attempts, jobs, unit)
    _write(out_dir / LEDGER_NAME, LEDGER_COLUMNS, ledger)
    _write(out_dir / CLAIMS_NAME, CLAIM_COLUMNS, claims)
    return totals(ledger, claims, unit)
