"""Issue 25, item 9: ledger.csv and claims.csv list rows in number order (row 2 before 10)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from batchgen.models import Job, JobStatus
from batchgen.output.ledger import build_claims, build_ledger

SECOND = dt.datetime(2025, 3, 1, 9, 30, 5, tzinfo=dt.UTC)


def _task(key: str, number: int, *, credits: int = 40, status: str = "done") -> dict[str, Any]:
    return {
        "key": key,
        "task_id": f"t{number}",
        "submitted_at": SECOND + dt.timedelta(microseconds=number),  # one burst, one second
        "completed_at": SECOND,
        "status": status,
        "consumed_credits": credits,
        "charged_credits": credits,
        "price": 40,  # what the task was expected to cost (task_log's price)
        "error_message": None,
    }


def _jobs(keys: dict[str, int]) -> dict[str, Job]:
    return {
        key: Job(key=key, row=row, prompt="p", mode="fun", ratio="1:1", status=JobStatus.DOWNLOADED)
        for key, row in keys.items()
    }


def test_a_burst_of_submits_in_one_second_is_listed_by_row_number() -> None:
    keys = {f"row:{row}": row for row in (10, 2, 11, 3)}
    tasks = [_task(key, n) for n, key in enumerate(keys)]
    lines = build_ledger(tasks, [], _jobs(keys))
    assert [line["row"] for line in lines] == [2, 3, 10, 11]


def test_takes_of_a_row_follow_it_by_number_and_claims_too() -> None:
    keys = {"id:a#v10": 2, "id:b": 10, "id:a#v2": 2, "id:a": 2}
    tasks = [_task(key, n, credits=80) for n, key in enumerate(keys)]  # every one a claim
    lines = build_ledger(tasks, [], _jobs(keys))
    assert [line["key"] for line in lines] == ["id:a", "id:a#v2", "id:a#v10", "id:b"]
    claims = build_claims(tasks, [], _jobs(keys))
    assert [claim["key"] for claim in claims] == ["id:a", "id:a#v2", "id:a#v10", "id:b"]
