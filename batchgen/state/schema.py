"""The state's schema and status machine: what a row may become, and the SQL behind it.

:mod:`batchgen.state.store` is the only user; it re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from batchgen.models import (
    AttemptKind,
    AttemptOutcome,
    FieldChange,
    JobStatus,
    describe_changes,
    made_when,
)
from batchgen.state.job_columns import REQUEST_COLUMNS, SPEC_JSON_SQL, spec_json_sql
from batchgen.state.origins_sql import ORIGINS_MIGRATION, PROVIDER_MIGRATION
from batchgen.state.rows import INCOMING_COLUMNS
from batchgen.text import clean_text

__all__ = [
    "ALLOWED",
    "ATTEMPT_SQL",
    "CHANGED",
    "CHARGED_SQL",
    "EVER_SUBMITTED_SQL",
    "FRESH",
    "INTERRUPTED",
    "MIGRATIONS",
    "NOW_INVALID",
    "REDOABLE",
    "REQUEUE",
    "SPEND_SQL",
    "SYNC_SQL",
    "Attempt",
    "Move",
    "changed_note",
]

S = JobStatus

#: The status machine: target status -> the statuses a row may be in to move there.
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.SUBMITTING}),  # transient submit error: nothing was created
    S.SUBMITTING: frozenset({S.PENDING}),
    S.SUBMITTED: frozenset({S.SUBMITTING}),
    S.RUNNING: frozenset({S.SUBMITTED, S.RUNNING}),
    S.COMPLETED: frozenset({S.SUBMITTED, S.RUNNING, S.DOWNLOAD_FAILED, S.COMPLETED}),
    S.DOWNLOADED: frozenset({S.COMPLETED}),
    # the task failed; or its submit gave up after transient errors (nothing was created)
    S.FAILED: frozenset({S.SUBMITTED, S.RUNNING, S.SUBMITTING, S.PENDING}),
    S.REJECTED: frozenset({S.SUBMITTING}),
    S.UNKNOWN: frozenset({S.SUBMITTING}),
    S.LOST: frozenset({S.SUBMITTED, S.RUNNING}),  # the vendor said it does not know the task
    S.DOWNLOAD_FAILED: frozenset({S.COMPLETED}),
    # final words of the vendor; a fresh status call for an expired link may say "expired"
    S.EXPIRED: frozenset({S.SUBMITTED, S.RUNNING, S.COMPLETED, S.DOWNLOAD_FAILED}),
    S.MODERATED: frozenset({S.SUBMITTED, S.RUNNING}),
    S.INVALID: frozenset(),  # only sync_manifest decides validity (and ``hold``, before sending)
    S.SKIPPED: frozenset(),  # only sync_manifest decides (a row hidden in the sheet)
}
#: Targets whose commit may skip the fsync: if a power cut loses one, the row falls back to
#: the step before and the next run repeats a poll or a download (free), never a submit.
REDOABLE = frozenset(
    {S.RUNNING, S.COMPLETED, S.FAILED, S.DOWNLOADED, S.DOWNLOAD_FAILED, S.EXPIRED, S.MODERATED}
)

#: Edges taken only by the bulk requeue helpers (``--retry-failed``, ``--resubmit-unknown``):
#: they may pay again, so :meth:`StateStore.transition` refuses them.
REQUEUE: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.FAILED, S.REJECTED, S.UNKNOWN, S.LOST, S.EXPIRED, S.MODERATED}),
}

#: Numbered schema migrations; statements are separated by ";" (never inside a literal;
#: a trigger's body may hold one: statements are split where ``sqlite3.complete_statement``).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE jobs (
        key TEXT PRIMARY KEY, row_num INTEGER NOT NULL,
        prompt TEXT NOT NULL, mode TEXT NOT NULL, ratio TEXT NOT NULL,
        images TEXT NOT NULL DEFAULT '[]', user_values TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL, in_manifest INTEGER NOT NULL DEFAULT 1, task_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, consumed_credits INTEGER NOT NULL DEFAULT 0,
        earlier_credits INTEGER NOT NULL DEFAULT 0, error_kind TEXT, error_message TEXT,
        video_urls TEXT NOT NULL DEFAULT '[]', files TEXT NOT NULL DEFAULT '[]',
        file_sizes TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
        submitted_at TEXT, completed_at TEXT, updated_at TEXT NOT NULL);
    CREATE INDEX jobs_status_row ON jobs (status, row_num, key);
    CREATE INDEX jobs_manifest_row ON jobs (in_manifest, row_num, key);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL REFERENCES jobs (key), at TEXT NOT NULL,
        kind TEXT NOT NULL, outcome TEXT NOT NULL, message TEXT, task_id TEXT);
    CREATE INDEX attempts_key ON attempts (key, id);
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,
        command TEXT NOT NULL, version TEXT NOT NULL, outcome TEXT, exit_code INTEGER,
        requests INTEGER NOT NULL DEFAULT 0, rate_limited INTEGER NOT NULL DEFAULT 0,
        credits INTEGER NOT NULL DEFAULT 0)
    """,
    # 2: the possibly-charged spend of earlier unknown submits of a requeued row
    """
    ALTER TABLE jobs ADD COLUMN earlier_possible INTEGER NOT NULL DEFAULT 0
    """,
    ORIGINS_MIGRATION,  # 3: templates, lineage, decisions, one line per task (additive)
    # 4: a sent row's request as the manifest asks for it now, when edited (Job.request_now)
    """
    ALTER TABLE jobs ADD COLUMN request_now TEXT NOT NULL DEFAULT '{}'
    """,
    PROVIDER_MIGRATION,  # 5: duration, resolution, model, pictures' digests; prices per row
)

ATTEMPT_SQL = (
    "INSERT INTO attempts (key, at, kind, outcome, message, task_id) VALUES (?, ?, ?, ?, ?, ?)"
)


class Attempt(NamedTuple):
    """One entry of a row's history (``StateStore.transition(..., attempt=...)``)."""

    kind: AttemptKind
    outcome: AttemptOutcome
    message: str | None = None
    task_id: str | None = None

    def cleaned(self) -> Attempt:
        """This entry with its message made safe to store (``batchgen.text.clean_text``)."""
        if self.message is None:
            return self
        return self._replace(message=clean_text(self.message, limit=2000))


class Move(NamedTuple):
    """One transition asked of ``StateStore.transition_many`` (the arguments of
    ``StateStore.transition``: the row's key, its target status, the sources it narrows to,
    the history entry written with it, and the fields set)."""

    key: str
    to: JobStatus
    fields: Mapping[str, Any] = MappingProxyType({})
    expect: Collection[JobStatus] | None = None
    attempt: Attempt | None = None


INTERRUPTED = (
    "the previous run stopped while this row's request was being sent; the vendor may have "
    "created (and charged) a task. Re-run with --resubmit-unknown to send it again."
)
#: A row of this state whose submit may have reached an API (a task id, a submit time, a POST
#: in flight or of unknown outcome, or credits carried over): such a state has sent requests.
EVER_SUBMITTED_SQL = (
    "SELECT 1 FROM jobs WHERE task_id IS NOT NULL OR submitted_at IS NOT NULL "
    f"OR status IN ('{S.SUBMITTING.value}', '{S.UNKNOWN.value}') "
    "OR earlier_credits > 0 OR earlier_possible > 0 LIMIT 1"
)

CHANGED = (
    "{label}: {changes}; it keeps its video: to make a new take with the new values, mark it "
    "regenerate in results.xlsx (Decision) and run again (docs/edits.md)"
)
NOW_INVALID = "row {row} (id {key}) is now invalid ({why}); the earlier task stands."


def changed_note(row: int, key: str, status: str, changes: tuple[FieldChange, ...]) -> str:
    """:data:`CHANGED` for the sent row ``key`` (its status ``status``) at sheet row ``row``
    whose request fields ``changes`` were edited since (see ``models.request_changes``)."""
    # "row 2 (id spring-01)", as the user typed the id; a row without one is its row alone
    label = f"row {row} (id {key[3:]})" if key.startswith("id:") else f"row {row}"
    return CHANGED.format(label=label, changes=describe_changes(changes, made_when(status)))


#: What a row is expected to cost, in the state's billing unit (set by the manifest sync from
#: the provider's price; a state older than prices per row is filled when its provider is bound).
PRICE = "IFNULL(price, 0)"
#: Whether the vendor's figure never lowers the estimate (meta ``price_floor``; a state older
#: than providers as data belongs to a vendor whose contract fixes the price: yes).
_FLOOR = "COALESCE((SELECT value = '1' FROM meta WHERE key = 'price_floor'), 1)"
#: What one row's current task counts as charged (SQL over a ``jobs`` row): the vendor's
#: reported figure when there is one (never below the estimate with a floor), else the estimate.
CHARGED_SQL = (
    f"CASE WHEN (task_id IS NOT NULL OR submitted_at IS NOT NULL) "
    f"AND status IN ('completed', 'downloaded', 'failed', "
    f"'download_failed', 'lost', 'expired', 'moderated') THEN "
    f"CASE WHEN consumed_credits <= 0 THEN {PRICE} WHEN {_FLOOR} "
    f"THEN max(consumed_credits, {PRICE}) ELSE consumed_credits END ELSE 0 END"
)
# A requeued row starts a fresh task: its spend moves to earlier_credits (a task was created)
# or earlier_possible (an unknown submit: maybe created), so totals stay true.
FRESH = (
    "status = 'pending', task_id = NULL, error_kind = NULL, error_message = NULL, "
    "video_urls = '[]', submitted_at = NULL, completed_at = NULL, "
    f"earlier_credits = earlier_credits + {CHARGED_SQL}, "
    f"earlier_possible = earlier_possible + CASE WHEN status = 'unknown' THEN {PRICE} ELSE 0 END, "
    "consumed_credits = 0, updated_at = ?, "
    # sent again with another request: priced again (``Store.fill_prices``) before it is sent
    "price = CASE WHEN request_now = '{}' THEN price ELSE NULL END, "
    # sent again: with the request the manifest asks for now, if it was edited since
    + ", ".join(
        f"{c.name} = CASE WHEN request_now = '{{}}' THEN {c.name} "
        f"ELSE json_extract(request_now, '$.{c.name}') END"
        for c in REQUEST_COLUMNS
    )
    + ", request_now = '{}'"
)
SPEND_SQL = (
    f"SELECT COALESCE(SUM({CHARGED_SQL} + earlier_credits), 0), "
    f"COALESCE(SUM(CASE WHEN status IN ('submitting', 'submitted', 'running') "
    f"THEN {PRICE} ELSE 0 END), 0), "
    f"COALESCE(SUM(CASE WHEN status = 'unknown' THEN {PRICE} ELSE 0 END + earlier_possible), 0) "
    "FROM jobs"
)

# The request's columns (from the JobSpec declaration: see batchgen.state.job_columns).
_REQ = [c.name for c in REQUEST_COLUMNS]
_J_REQ = ", ".join(f"j.{n}" for n in _REQ)
_I_REQ = ", ".join(f"i.{n}" for n in _REQ)
_JOBS_REQ = ", ".join(f"jobs.{n}" for n in _REQ)
_SET_REQ = ", ".join(f"{n} = i.{n}" for n in _REQ)
_INCOMING = ", ".join(n for n, _ in INCOMING_COLUMNS)
_J_SPEC = spec_json_sql("j")
# A sent row's current request, when the manifest (valid now) asks for another one.
_NOW = (
    f"CASE WHEN i.status = 'pending' AND ({_I_REQ}) IS NOT ({_JOBS_REQ}) "
    f"THEN {SPEC_JSON_SQL} ELSE '{{}}' END"
)

SYNC_SQL = {
    "temp": "CREATE TEMP TABLE IF NOT EXISTS incoming ("
    + ", ".join(f"{n} {t}" for n, t in INCOMING_COLUMNS)
    + ")",
    "warnings": f"""SELECT i.row_num, i.key, i.status, i.error_message, j.status,
        {_J_SPEC}, {SPEC_JSON_SQL}
        FROM incoming i JOIN jobs j ON j.key = i.key
        WHERE j.status NOT IN ('pending', 'invalid', 'skipped')
        AND ({_I_REQ}) IS NOT ({_J_REQ})
        ORDER BY i.row_num, i.key""",
    # Not yet sent: the manifest is the truth, request and validity included.
    "refresh": f"""UPDATE jobs SET row_num = i.row_num, user_values = i.user_values,
        in_manifest = 1, {_SET_REQ}, request_now = '{{}}',
        status = i.status, price = i.price,
        error_kind = CASE WHEN i.status IN ('invalid', 'skipped') THEN i.error_kind
            WHEN jobs.status IN ('invalid', 'skipped') THEN NULL ELSE jobs.error_kind END,
        error_message = CASE WHEN i.status IN ('invalid', 'skipped') THEN i.error_message
            WHEN jobs.status IN ('invalid', 'skipped') THEN NULL ELSE jobs.error_message END,
        updated_at = ?
        FROM incoming i WHERE jobs.key = i.key
        AND jobs.status IN ('pending', 'invalid', 'skipped')
        AND ((jobs.row_num, jobs.user_values, jobs.in_manifest, {_JOBS_REQ}, jobs.status,
              jobs.request_now, jobs.price)
             IS NOT (i.row_num, i.user_values, 1, {_I_REQ}, i.status, '{{}}', i.price)
             OR (i.status IN ('invalid', 'skipped')
                 AND jobs.error_message IS NOT i.error_message))""",
    # Already sent: the task stands, only the row's place and the user's columns follow, and
    # the request the row asks for now is kept beside the one sent when they differ.
    "relabel": f"""UPDATE jobs SET row_num = i.row_num, user_values = i.user_values,
        in_manifest = 1, request_now = {_NOW}, updated_at = ?
        FROM incoming i WHERE jobs.key = i.key
        AND jobs.status NOT IN ('pending', 'invalid', 'skipped')
        AND (jobs.row_num, jobs.user_values, jobs.in_manifest, jobs.request_now)
            IS NOT (i.row_num, i.user_values, 1, {_NOW})
        """,
    "gone": """UPDATE jobs SET in_manifest = 0, updated_at = ? WHERE in_manifest = 1
        AND key NOT IN (SELECT key FROM incoming)""",
    "insert": f"""INSERT INTO jobs ({_INCOMING}, created_at, updated_at)
        SELECT {_INCOMING}, ?1, ?1 FROM incoming WHERE key NOT IN (SELECT key FROM jobs)""",
    "fill": f"INSERT INTO incoming ({_INCOMING}) VALUES ({', '.join('?' * len(INCOMING_COLUMNS))})",
}
