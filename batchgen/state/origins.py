"""Where a job came from and what a person thought of it; every task ever created.

Three additive tables (migration 3, :data:`batchgen.state.origins_sql.ORIGINS_MIGRATION`) and the
:class:`OriginRecords` methods :class:`~batchgen.state.store.StateStore` inherits:

- ``job_origin``: per job key, the prompt template its prompt was filled from and, for a
  variant made by a ``regenerate`` decision, the key of the job it replaces (lineage).
- ``decisions``: per job key, ``approve`` / ``reject`` / ``regenerate`` as read back from the
  results workbook, so a rewritten workbook never loses them.
- ``task_log``: one line per task id the vendor ever gave, kept current by a trigger on
  ``jobs``: a row sent again (``--retry-failed``, a transient retry) gets a fresh task and its
  earlier task keeps its line, with the status and ``consumed_credits`` it ended with.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from batchgen.errors import StateError
from batchgen.state.job_columns import parse_ts
from batchgen.state.origins_sql import TASK_FIELDS as _TASK_FIELDS
from batchgen.state.rows import dicts
from batchgen.state.schema import CHARGED_SQL
from batchgen.state.sqlite import SqliteBase

__all__ = ["OriginRecords"]

#: The values of the results workbook's Decision column.


class OriginRecords(SqliteBase):
    """Methods over the three tables above (part of the state store)."""

    def _run(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc

    def record_templates(self, templates: Mapping[str, str]) -> None:
        """Remember the prompt template of each key (``{key: template}``), committed."""
        now = self._now()
        sql = (
            "INSERT INTO job_origin (key, template, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET template = excluded.template "
            "WHERE template IS NOT excluded.template"
        )
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(sql, ((k, t, now) for k, t in templates.items()))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc

    def add_regeneration(self, key: str, replaces: str) -> None:
        """Record that the job ``key`` (a new variant) replaces the job ``replaces``."""
        sql = (
            "INSERT INTO job_origin (key, replaces, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET replaces = excluded.replaces"
        )
        self._run(sql, (key, replaces, self._now()))

    def origins(self) -> dict[str, tuple[str | None, str | None]]:
        """``{key: (template, replaces)}`` of every job that has either."""
        rows = self._run("SELECT key, template, replaces FROM job_origin")
        return {key: (template, replaces) for key, template, replaces in rows}

    def regenerated(self) -> set[str]:
        """Keys some later variant replaces (their ``regenerate`` was acted on)."""
        rows = self._run("SELECT replaces FROM job_origin WHERE replaces IS NOT NULL")
        return {r[0] for r in rows}

    def kept_keys(self) -> list[str]:
        """Keys a manifest sync must keep listed: sent jobs and regenerations."""
        sql = (
            "SELECT key FROM jobs WHERE status NOT IN ('pending', 'invalid') "
            "UNION SELECT key FROM job_origin WHERE replaces IS NOT NULL"
        )
        return [r[0] for r in self._run(sql)]

    def record_decisions(self, decisions: Mapping[str, str | None]) -> int:
        """Store each key's decision (None clears it); returns how many changed.

        A changed job's ``updated_at`` moves too, so the reports are rewritten.
        """
        now, changed = self._now(), 0
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                current = self.decisions()
                for key, decision in decisions.items():
                    if current.get(key) == decision:
                        continue
                    changed += 1
                    if decision is None:
                        self._conn.execute("DELETE FROM decisions WHERE key = ?", (key,))
                    else:
                        self._conn.execute(
                            "INSERT INTO decisions VALUES (?, ?, ?) ON CONFLICT (key) DO "
                            "UPDATE SET decision = excluded.decision, decided_at = ?",
                            (key, decision, now, now),
                        )
                    self._conn.execute("UPDATE jobs SET updated_at = ? WHERE key = ?", (now, key))
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc
        return changed

    def decisions(self) -> dict[str, str]:
        """``{key: decision}`` of every job a person decided on."""
        return {k: d for k, d in self._run("SELECT key, decision FROM decisions")}

    def task_log(self) -> list[dict[str, Any]]:
        """Every task the vendor ever gave this state, by submission time; times parsed.

        ``charged_credits`` is what the state's spend counts the task at, in the state's
        billing unit (the reported figure, else its ``price``; never below the price for a
        provider whose contract fixes it: ``batchgen.state.schema.CHARGED_SQL``).
        """
        sql = (
            f"SELECT {_TASK_FIELDS}, price, {CHARGED_SQL} AS charged_credits FROM task_log "
            "ORDER BY submitted_at, task_id"
        )
        rows = dicts(self._run(sql))
        for row in rows:
            for name in ("submitted_at", "completed_at", "updated_at"):
                row[name] = parse_ts(row[name])
        return rows
