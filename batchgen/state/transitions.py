"""Moving rows through the status machine (:data:`batchgen.state.schema.ALLOWED`), one
guarded and committed ``UPDATE`` at a time, and the bulk requeues a person asks for.

Every transition is ``UPDATE ... WHERE key=? AND status IN (...)`` in autocommit mode, so it is
its own committed transaction; zero rows changed raises :class:`TransitionError`. A row's
history (the ``attempts`` table) is written in the same transaction as the transition it
explains. The :data:`~batchgen.state.schema.REQUEUE` edges may pay again, so only the
``requeue_*`` helpers take them, on the user's word.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from batchgen.errors import TransitionError
from batchgen.models import JobStatus
from batchgen.state.job_columns import SETTABLE
from batchgen.state.rows import qmarks
from batchgen.state.schema import (
    ALLOWED,
    ATTEMPT_SQL,
    FRESH,
    INTERRUPTED,
    REDOABLE,
    REQUEUE,
    Attempt,
)
from batchgen.state.sqlite import SqliteBase, translating

__all__ = ["Transitions"]

S = JobStatus


class Transitions(SqliteBase):
    """The only code that changes a row's status (part of the state store)."""

    @translating
    def transition(
        self,
        key: str,
        to: JobStatus,
        *,
        expect: Collection[JobStatus] | None = None,
        attempt: Attempt | None = None,
        **fields: Any,
    ) -> None:
        """Move one row to ``to`` and set ``fields``, committed; TransitionError if refused.

        ``attempt`` is appended to the row's history in the same transaction (one commit).

        ``expect`` narrows the allowed sources (it may not widen them). Automatic: to
        SUBMITTING adds one to ``attempts`` and back to PENDING (the POST created nothing)
        takes it away again, so ``attempts`` counts the submits that created, or may have
        created, a task: the ones a retry limit should count. To SUBMITTED sets
        ``submitted_at`` to now; to COMPLETED/FAILED/REJECTED sets ``completed_at`` to now
        unless it is already set.
        Nothing is cleared unless the caller passes the field (e.g. ``error_kind=None``).
        """
        to = JobStatus(to)
        sources = self._sources(to, expect)
        unknown = sorted(fields.keys() - SETTABLE.keys())
        if unknown:
            raise TypeError(f"transition() got unknown fields: {', '.join(unknown)}")
        now = self._now()
        values = {"status": to.value, "updated_at": now}
        values |= {name: SETTABLE[name](value) for name, value in fields.items()}
        sets = [f"{name} = ?" for name in values]
        params: list[Any] = list(values.values())
        if to is S.SUBMITTING:
            sets.append("attempts = attempts + 1")
        if to is S.PENDING:
            sets.append("attempts = max(attempts - 1, 0)")
        if to is S.SUBMITTED and "submitted_at" not in fields:
            sets.append("submitted_at = ?")
            params.append(now)
        if to in (S.COMPLETED, S.FAILED, S.REJECTED) and "completed_at" not in fields:
            sets.append("completed_at = COALESCE(completed_at, ?)")  # a re-download keeps it
            params.append(now)
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE key = ? AND status IN "
        sql += f"({qmarks(len(sources))})"
        with self._durability(full=to not in REDOABLE):
            if attempt is None:
                changed = self._conn.execute(sql, [*params, key, *sources]).rowcount
            else:
                with self._transaction() as c:
                    changed = c.execute(sql, [*params, key, *sources]).rowcount
                    if changed:
                        c.execute(ATTEMPT_SQL, (key, now, *attempt.cleaned()))
        if changed == 0:
            raise TransitionError(self._refusal(key, to, sources))

    @staticmethod
    def _sources(to: JobStatus, expect: Collection[JobStatus] | None) -> list[str]:
        allowed = ALLOWED[to]
        if expect is None:
            return sorted(allowed)
        wanted = {JobStatus(s) for s in expect}
        if not wanted <= allowed:
            bad = ", ".join(sorted(wanted - allowed))
            raise ValueError(f"{to} may not follow {bad}; see batchgen.state.store.ALLOWED")
        return sorted(wanted)

    def _refusal(self, key: str, to: JobStatus, sources: list[str]) -> str:
        found = self._conn.execute("SELECT status FROM jobs WHERE key = ?", (key,)).fetchone()
        if found is None:
            return f"cannot move row {key!r} to {to}: there is no such row in {self.path}"
        allowed = ", ".join(sources) or "nothing (only a manifest sync sets it)"
        return f"cannot move row {key!r} to {to}: it is {found[0]}; {to} may follow {allowed}"

    # ---------------------------------------------------------------- start-of-run recovery
    @translating
    def recover_interrupted(self) -> int:
        """SUBMITTING rows (their process died mid-POST) become UNKNOWN; returns how many."""
        assert S.SUBMITTING in ALLOWED[S.UNKNOWN]
        now = self._now()
        with self._transaction() as c:
            c.execute(
                "INSERT INTO attempts (key, at, kind, outcome, message, task_id) SELECT key, ?, "
                "'submit', 'interrupted', ?, NULL FROM jobs WHERE status = 'submitting'",
                (now, INTERRUPTED),
            )
            moved = c.execute(
                "UPDATE jobs SET status = 'unknown', error_kind = 'ambiguous', "
                "error_message = ?, updated_at = ? WHERE status = 'submitting'",
                (INTERRUPTED, now),
            ).rowcount
        return int(moved)

    @translating
    def hold(self, held: Mapping[str, str]) -> int:
        """PENDING rows -> INVALID before anything is sent, ``key -> why`` (a picture that
        failed its check): not sent, not paid. The next manifest sync makes such a row
        pending again, as it does any invalid row the manifest now holds valid, and it is
        checked again. Returns how many rows were held (a row no longer pending is left)."""
        sql = (
            "UPDATE jobs SET status = 'invalid', error_kind = 'invalid', error_message = ?, "
            "updated_at = ? WHERE key = ? AND status = 'pending'"
        )
        now = self._now()
        with self._transaction() as c:
            return sum(c.execute(sql, (why, now, key)).rowcount for key, why in held.items())

    @translating
    def requeue_unknown(self) -> int:
        """UNKNOWN and LOST -> PENDING (``--resubmit-unknown``: the user accepts paying twice)."""
        with self._transaction():
            return self._requeue(S.UNKNOWN, "") + self._requeue(S.LOST, "")

    @translating
    def requeue_failed(self, *, include_permanent: bool, max_attempts: int) -> int:
        """Transient failures with attempts left -> PENDING; with ``include_permanent``
        (``--retry-failed``) every other FAILED and REJECTED row too, attempts reset to 0."""
        transient = "AND error_kind = 'transient' AND attempts < ?"
        with self._transaction():
            moved = self._requeue(S.FAILED, transient, max_attempts)
            if include_permanent:
                moved += self._requeue(S.FAILED, "", fresh=", attempts = 0")
                moved += self._requeue(S.REJECTED, "", fresh=", attempts = 0")
        return moved

    @translating
    def retry_transient(self, key: str, max_attempts: int) -> bool:
        """This row, if FAILED transiently with attempts left, -> PENDING (an in-run retry)."""
        where = "AND error_kind = 'transient' AND attempts < ? AND key = ?"
        return self._requeue(S.FAILED, where, max_attempts, key) == 1

    def _requeue(self, source: JobStatus, where: str, *args: Any, fresh: str = "") -> int:
        """Bulk REQUEUE edge; rows deleted from the manifest are left alone (they would cost)."""
        assert source in REQUEUE[S.PENDING]
        sql = f"UPDATE jobs SET {FRESH}{fresh} WHERE status = ? AND in_manifest = 1 {where}"
        return int(self._conn.execute(sql, (self._now(), source.value, *args)).rowcount)

    @translating
    def requeue_downloads(self) -> int:
        """DOWNLOAD_FAILED -> COMPLETED: the URLs are kept, so the next run only downloads."""
        assert S.DOWNLOAD_FAILED in ALLOWED[S.COMPLETED]
        sql = "UPDATE jobs SET status = 'completed', updated_at = ? WHERE status = ?"
        return int(self._conn.execute(sql, (self._now(), S.DOWNLOAD_FAILED.value)).rowcount)
