"""The ``runs`` table: one line per run of batchgen over a manifest."""

from __future__ import annotations

from batchgen.errors import StateError
from batchgen.models import RunInfo
from batchgen.state.job_columns import parse_ts
from batchgen.state.rows import dicts
from batchgen.state.sqlite import SqliteBase, translating

__all__ = ["RunRecords"]


class RunRecords(SqliteBase):
    """When each run started and ended, and what it did (part of the state store)."""

    @translating
    def start_run(self, *, command: str, version: str) -> int:
        """Record the start of a run; returns its id."""
        sql = "INSERT INTO runs (started_at, command, version) VALUES (?, ?, ?)"
        run_id = self._conn.execute(sql, (self._now(), command, version)).lastrowid
        assert run_id is not None
        return run_id

    @translating
    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        exit_code: int,
        requests: int,
        rate_limited: int,
        credits: int,
    ) -> None:
        """Record how a run ended."""
        sql = (
            "UPDATE runs SET ended_at = ?, outcome = ?, exit_code = ?, requests = ?, "
            "rate_limited = ?, credits = ? WHERE run_id = ?"
        )
        params = (self._now(), outcome, exit_code, requests, rate_limited, credits, run_id)
        if self._conn.execute(sql, params).rowcount == 0:
            raise StateError(f"{self.path}: no run {run_id}")

    @translating
    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        rows = dicts(self._conn.execute("SELECT * FROM runs ORDER BY run_id"))
        return [
            RunInfo(**r | {n: parse_ts(r[n]) for n in ("started_at", "ended_at")}) for r in rows
        ]

    def last_run(self) -> RunInfo | None:
        """The most recent run, or None."""
        runs = self.runs()
        return runs[-1] if runs else None
