"""Reading a state: rows by key, by status and by page, counts, spend, history.

Pages follow the ``(in_manifest, row_num, key)`` index with a keyset cursor, so reading 100,000
rows never holds more than one page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from typing import Any

from batchgen.errors import StateError
from batchgen.models import Job, JobSpec, JobStatus
from batchgen.state.job_columns import (
    JOB_COLUMNS,
    iso,
    job_from,
    parse_ts,
    spec_columns,
    spec_from,
)
from batchgen.state.rows import dicts, qmarks
from batchgen.state.schema import SPEND_SQL
from batchgen.state.spend import Spend
from batchgen.state.sqlite import SqliteBase, translating

__all__ = ["Queries"]

S = JobStatus
_FIRST = (-(2**63), "")  # keyset cursor before every row
#: The statuses of a row whose task was created or may have been, as SQL.
_GENERATED_SQL = "('submitted', 'running', 'completed', 'downloaded', 'download_failed', 'unknown')"


class Queries(SqliteBase):
    """Read-only questions about the rows (part of the state store)."""

    @translating
    def get(self, key: str) -> Job:
        """The row with this key; StateError if there is none."""
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?"
        found = self._conn.execute(sql, (key,)).fetchone()
        if found is None:
            raise StateError(f"{self.path}: no row with key {key!r}")
        return job_from(found)

    def iter_jobs(
        self,
        statuses: Collection[JobStatus] | None = None,
        *,
        in_manifest_only: bool = False,
        updated_since: dt.datetime | None = None,
        batch: int = 1000,
    ) -> Iterator[Job]:
        """Rows in the manifest by row number, then deleted rows by row; ``batch`` at a time.
        ``statuses``: only rows in one of them; ``updated_since``: only rows whose
        ``updated_at`` is at or after it (filtered in SQL: the rows left out are never built)."""
        where, params = "", []
        if statuses is not None:
            params = sorted({JobStatus(s).value for s in statuses})
            # unary + keeps the planner on the (in_manifest, row) index that the pages follow
            where = f"AND +status IN ({qmarks(len(params))})"
        if updated_since is not None:
            where += " AND updated_at >= ?"  # fixed-width UTC text: text order is time order
            params.append(iso(updated_since))
        for flag in (1,) if in_manifest_only else (1, 0):
            cursor = _FIRST
            while page := self._page(where, [flag, *params, *cursor, batch]):
                yield from map(job_from, page)
                cursor = (page[-1][1], page[-1][0])

    @translating
    def _page(self, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE in_manifest = ? {where} "
            "AND (row_num, key) > (?, ?) ORDER BY row_num, key LIMIT ?"
        )
        return self._conn.execute(sql, params).fetchall()

    @translating
    def next_pending(self, limit: int, *, after_row: int = 0) -> list[Job]:
        """Up to ``limit`` in-manifest PENDING rows with row > ``after_row``, by row."""
        # +in_manifest: walk the (status, row) index; on a resumed run most rows are done
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND +in_manifest = 1 "
            "AND row_num > ? ORDER BY row_num, key LIMIT ?"
        )
        return [job_from(r) for r in self._conn.execute(sql, (after_row, limit))]

    @translating
    def counts(self, *, in_manifest_only: bool = False) -> dict[JobStatus, int]:
        """Jobs (takes) per status; every status is present, zero when empty."""
        where = "WHERE in_manifest = 1" if in_manifest_only else ""
        sql = f"SELECT status, count(*) FROM jobs {where} GROUP BY status"
        result = dict.fromkeys(JobStatus, 0)
        result.update({JobStatus(s): n for s, n in self._conn.execute(sql)})
        return result

    @translating
    def row_count(self, *, in_manifest_only: bool = False) -> int:
        """How many rows of the sheet the jobs belong to (a row's takes count once)."""
        where = "WHERE in_manifest = 1" if in_manifest_only else ""
        sql = f"SELECT COUNT(DISTINCT row_num) FROM jobs {where}"
        (count,) = self._conn.execute(sql).fetchone()
        return int(count)

    @translating
    def fingerprint(self) -> str:
        """Changes whenever any row or the manifest's columns change (cheap: one scan)."""
        count, latest = self._conn.execute("SELECT COUNT(*), MAX(updated_at) FROM jobs").fetchone()
        return f"{count}|{latest}|{self.get_meta('columns')}"

    @translating
    def spend(self) -> Spend:
        """Credits charged / committed to tasks in flight / possibly charged (unknown)."""
        charged, committed, possible = self._conn.execute(SPEND_SQL).fetchone()
        return Spend(int(charged), int(committed), int(possible))

    def credits_consumed(self) -> int:
        """Credits charged for every task this state ever finished, requeued ones included
        (never below 40 a task)."""
        return self.spend().charged

    @translating
    def latency_samples(self, limit: int = 2000) -> list[float]:
        """Seconds from submission to completion of finished tasks, most recent first."""
        sql = (
            "SELECT submitted_at, completed_at FROM jobs WHERE status IN (?, ?) "
            "AND submitted_at IS NOT NULL AND completed_at IS NOT NULL "
            "ORDER BY completed_at DESC LIMIT ?"
        )
        rows = self._conn.execute(sql, (S.COMPLETED.value, S.DOWNLOADED.value, limit))
        spans = (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a) for a, b in rows)
        return [s.total_seconds() for s in spans if s >= dt.timedelta(0)]

    @translating
    def done_keys(self) -> set[str]:
        """Keys of rows whose videos are all on disk."""
        sql = "SELECT key FROM jobs WHERE status = ?"
        return {r[0] for r in self._conn.execute(sql, (S.DOWNLOADED.value,))}

    @translating
    def generated_requests(self) -> list[JobSpec]:
        """The request of every row whose task was created or may have been (submitted and
        after, ``unknown``): read-only, for the check that a row about to be sent is not one
        already paid for under another key."""
        sql = f"SELECT {spec_columns()} FROM jobs WHERE status IN {_GENERATED_SQL}"
        return [spec_from(r) for r in self._conn.execute(sql)]

    @translating
    def generated_keys(self) -> set[str]:
        """The keys of the rows :meth:`generated_requests` returns, without their requests
        (a finished 100,000-row state answers in a fraction of the time)."""
        sql = f"SELECT key FROM jobs WHERE status IN {_GENERATED_SQL}"
        return {r[0] for r in self._conn.execute(sql)}

    @translating
    def attempts(self, key: str | None = None) -> list[dict[str, Any]]:
        """Attempt history (of one row, or all), oldest first; ``at`` is a datetime."""
        sql = "SELECT id, key, at, kind, outcome, message, task_id FROM attempts"
        one = key is not None
        rows = self._conn.execute(
            sql + (" WHERE key = ?" if one else "") + " ORDER BY id", (key,) if one else ()
        )
        return [a | {"at": parse_ts(a["at"])} for a in dicts(rows)]
