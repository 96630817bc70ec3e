"""Moving rows through the status machine (:data:`batchgen.state.schema.ALLOWED`), one
guarded and committed ``UPDATE`` at a time or a group of them in one commit, and the bulk
requeues a person asks for.

Every transition is ``UPDATE ... WHERE key=? AND status IN (...)``; zero rows changed raises
:class:`TransitionError`. :meth:`Transitions.transition` commits one (autocommit mode: its own
transaction); :meth:`Transitions.transition_many` commits several in one transaction, so a
burst of rows costs one commit (and one fsync) instead of one each, while each move is still
guarded on its own and a refused one changes nothing of the others. A row's history (the
``attempts`` table) is written in the same transaction as the transition it explains. The
:data:`~batchgen.state.schema.REQUEUE` edges may pay again, so only the ``requeue_*`` helpers
take them, on the user's word.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
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
    Move,
)
from batchgen.state.sqlite import SqliteBase, translating

__all__ = ["Transitions"]

S = JobStatus


@functools.lru_cache(maxsize=256)
def _update_sql(to: JobStatus, names: tuple[str, ...], sources: int) -> tuple[str, int]:
    """The guarded UPDATE moving a row to ``to`` and setting ``names`` (its parameters: the
    status, now, the fields in order, now again ``stamps`` times, the key, the ``sources``);
    and ``stamps``. Kept per shape: a run moves thousands of rows the same few ways."""
    sets = ["status = ?", "updated_at = ?", *(f"{name} = ?" for name in names)]
    stamps = 0
    if to is S.SUBMITTING:
        sets.append("attempts = attempts + 1")
    if to is S.PENDING:
        sets.append("attempts = max(attempts - 1, 0)")
    if to is S.SUBMITTED and "submitted_at" not in names:
        sets.append("submitted_at = ?")
        stamps += 1
    if to in (S.COMPLETED, S.FAILED, S.REJECTED) and "completed_at" not in names:
        sets.append("completed_at = COALESCE(completed_at, ?)")  # a re-download keeps it
        stamps += 1
    sql = f"UPDATE jobs SET {', '.join(sets)} WHERE key = ? AND status IN ({qmarks(sources)})"
    return sql, stamps


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
        with self._durability(full=JobStatus(to) not in REDOABLE):
            if attempt is None:  # one statement: autocommit is its transaction
                refusal = self._move(Move(key, to, fields, expect))
            else:
                with self._transaction():
                    refusal = self._move(Move(key, to, fields, expect, attempt))
        if refusal is not None:
            raise TransitionError(refusal)

    @translating
    def transition_many(self, moves: Sequence[Move]) -> list[str | None]:
        """Commit ``moves`` (each as :meth:`transition` would) in one transaction.

        Returns, per move, None when it was made, or why it was refused (the message of the
        TransitionError :meth:`transition` raises; a refused move changes nothing, the others
        are still made). The commit is fsynced unless every target is :data:`REDOABLE`.
        TypeError/ValueError for a move that asks for an unknown field or source, before
        anything is written; StateError as :meth:`transition`.
        """
        if not moves:
            return []
        for move in moves:  # a malformed move is a bug: refuse the batch before writing
            self._sources(JobStatus(move.to), move.expect)
            self._check_fields(move.fields)
        now = self._now()
        with (
            self._durability(full=any(JobStatus(m.to) not in REDOABLE for m in moves)),
            self._transaction(),
        ):
            return [self._move(move, now) for move in moves]

    @staticmethod
    def _check_fields(fields: Mapping[str, Any]) -> None:
        unknown = sorted(fields.keys() - SETTABLE.keys())
        if unknown:
            raise TypeError(f"transition() got unknown fields: {', '.join(unknown)}")

    def _move(self, move: Move, now: str | None = None) -> str | None:
        """Execute one guarded move (inside the caller's transaction, or autocommitted) at
        ``now`` (default: the clock's); None when made, else why it was refused."""
        to = JobStatus(move.to)
        sources = self._sources(to, move.expect)
        fields = move.fields
        self._check_fields(fields)
        now = now or self._now()
        names = tuple(fields)
        params: list[Any] = [to.value, now, *(SETTABLE[n](fields[n]) for n in names)]
        sql, stamps = _update_sql(to, names, len(sources))
        changed = self._conn.execute(sql, [*params, *[now] * stamps, move.key, *sources]).rowcount
        if changed == 0:
            return self._refusal(move.key, to, sources)
        if move.attempt is not None:
            self._conn.execute(ATTEMPT_SQL, (move.key, now, *move.attempt.cleaned()))
        return None

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
