"""The SQL of the state's additive tables for templates, lineage, decisions and the task log
(see :mod:`batchgen.state.origins`); kept apart so the schema can list it as a migration."""

from __future__ import annotations

__all__ = ["ORIGINS_MIGRATION", "PROVIDER_MIGRATION", "TASK_FIELDS"]

TASK_FIELDS = (
    "task_id, key, submitted_at, status, consumed_credits, error_kind, error_message, "
    "completed_at, updated_at"
)
NEW_FIELDS = ", ".join(f"NEW.{name.strip()}" for name in TASK_FIELDS.split(","))
UPDATES = ", ".join(
    f"{name} = excluded.{name}"
    for name in ("status", "consumed_credits", "error_kind", "error_message", "completed_at")
)

ORIGINS_MIGRATION = f"""
    CREATE TABLE job_origin (
        key TEXT PRIMARY KEY, template TEXT, replaces TEXT, created_at TEXT NOT NULL);
    CREATE INDEX job_origin_replaces ON job_origin (replaces);
    CREATE TABLE decisions (
        key TEXT PRIMARY KEY, decision TEXT NOT NULL, decided_at TEXT NOT NULL);
    CREATE TABLE task_log (
        task_id TEXT PRIMARY KEY, key TEXT NOT NULL, submitted_at TEXT, status TEXT NOT NULL,
        consumed_credits INTEGER NOT NULL DEFAULT 0, error_kind TEXT, error_message TEXT,
        completed_at TEXT, updated_at TEXT NOT NULL);
    CREATE INDEX task_log_key ON task_log (key);
    CREATE TRIGGER task_log_track AFTER UPDATE OF status, task_id, consumed_credits ON jobs
        WHEN NEW.task_id IS NOT NULL BEGIN
        INSERT INTO task_log ({TASK_FIELDS}) VALUES ({NEW_FIELDS})
        ON CONFLICT (task_id) DO UPDATE SET {UPDATES}, updated_at = excluded.updated_at;
    END;
    INSERT INTO task_log ({TASK_FIELDS}) SELECT {TASK_FIELDS} FROM jobs
        WHERE task_id IS NOT NULL
"""

#: Migration 4's task log keeps each task's expected price too (the ledger's estimate).
_TASK_FIELDS_4 = TASK_FIELDS + ", price"
_NEW_FIELDS_4 = ", ".join(f"NEW.{name.strip()}" for name in _TASK_FIELDS_4.split(","))

PROVIDER_MIGRATION = f"""
    ALTER TABLE jobs ADD COLUMN duration INTEGER;
    ALTER TABLE jobs ADD COLUMN resolution TEXT;
    ALTER TABLE jobs ADD COLUMN model TEXT;
    ALTER TABLE jobs ADD COLUMN image_digests TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN price INTEGER;
    ALTER TABLE task_log ADD COLUMN price INTEGER;
    DROP TRIGGER task_log_track;
    CREATE TRIGGER task_log_track AFTER UPDATE OF status, task_id, consumed_credits, price
        ON jobs WHEN NEW.task_id IS NOT NULL BEGIN
        INSERT INTO task_log ({_TASK_FIELDS_4}) VALUES ({_NEW_FIELDS_4})
        ON CONFLICT (task_id) DO UPDATE SET {UPDATES}, price = excluded.price,
            updated_at = excluded.updated_at;
    END
"""
