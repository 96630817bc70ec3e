"""The commands that only read: ``validate``, ``status`` and ``report`` (no network, no token).

``validate --json`` and ``status --json`` print one JSON document whose keys are stable
(``JSON_VERSION`` changes if one ever has to change meaning); the README lists them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchgen.app.review import absorb_decisions, ledger_report, pending_regenerations
from batchgen.app.validate import Plan, ValidationResult, plural, validate_paths
from batchgen.config import Settings
from batchgen.errors import ManifestError, StateError
from batchgen.manifest.columns import role_of
from batchgen.manifest.identity import Generated
from batchgen.manifest.load import Manifest, find_manifests
from batchgen.manifest.model import as_text
from batchgen.manifest.prompt_template import fill_prompt
from batchgen.models import NEEDS_ATTENTION, USD_PER_CREDIT, Job, JobStatus, RunInfo
from batchgen.output.cells import PromptNow
from batchgen.output.reports import write_reports
from batchgen.output.results import prompt_used
from batchgen.state.backend import open_store
from batchgen.state.protocol import ManifestStore
from batchgen.state.registry import Registry
from batchgen.state.store import STATE_FILE, state_path_for

__all__ = [
    "JSON_VERSION",
    "column_of",
    "existing_state",
    "prompt_column",
    "rebuild_reports",
    "rewrite_reports",
    "row_label",
    "status_report",
    "validate_manifests",
]

#: The version of the ``--json`` documents' layout.
JSON_VERSION = 1
_ATTENTION_SHOWN = 20


def existing_state(out_dir: Path, manifest: Path) -> Path | None:
    """The manifest's state file, if a run ever made one (never creates it): under
    ``out_dir``, else wherever the per-user registry says it lives."""
    path = state_path_for(out_dir, manifest)
    if path.name == STATE_FILE and path.exists():
        return path
    known = Registry().lookup(manifest)
    return known if known is not None and known.exists() else None


def prompt_column(columns: Sequence[str]) -> str | None:
    """The header among ``columns`` that holds the prompt, or None."""
    return column_of(columns, "prompt")


def column_of(columns: Sequence[str], role: str) -> str | None:
    """The first header among ``columns`` whose role (``prompt``, ``mode``, ``ratio``, ``id``
    or ``images``; see :mod:`batchgen.manifest.columns`) is ``role``, or None."""
    return next((name for name in columns if role_of(name) == role), None)


def rewrite_reports(store: ManifestStore, out_dir: Path, *, name: str, settings: Settings) -> None:
    """``write_reports`` of ``store`` into ``out_dir``, telling it which of the manifest's
    columns hold the prompt, the mode and the ratio (found by header, as the manifest is)."""
    columns = store.columns()
    prompt = prompt_column(columns)
    write_reports(
        store,
        out_dir,
        name=name,
        settings=settings,
        prompt_column=prompt,
        mode_column=column_of(columns, "mode"),
        ratio_column=column_of(columns, "ratio"),
        prompt_now=_prompt_now(prompt, store.origins(), settings.manifest.prompt_template),
    )


def _prompt_now(
    column: str | None, origins: Mapping[str, tuple[str | None, str | None]], default: str | None
) -> PromptNow:
    """What a row would send now: its prompt cell (or, when empty, the prompt template last
    recorded for its key, else ``default``) filled from its cells, as ``validate`` does."""

    def now(job: Job) -> str | None:
        cell = job.user.get(column) if column else None
        if cell is None:
            return None
        template = origins.get(job.key, (None, None))[0] or default
        return fill_prompt(as_text(cell), job.user, default=template, own=column).prompt

    return now


def row_label(row: int, key: str) -> str:
    """``row 2 (id spring-01)`` for a row with an id, ``row 2`` otherwise."""
    return f"row {row} (id {key[3:]})" if key.startswith("id:") else f"row {row}"


# --- validate -------------------------------------------------------------------------------


def validate_manifests(
    paths: Sequence[Path], settings: Settings, *, as_json: bool = False
) -> tuple[str, int]:
    """The ``validate`` report (text or JSON) and its exit code: 0 all valid, 1 some
    invalid, 2 unusable."""
    result = validate_paths(
        list(paths),
        rpm=settings.api.rpm,
        sheet=settings.manifest.sheet,
        default_mode=settings.manifest.default_mode,
        default_ratio=settings.manifest.default_ratio,
        variants=settings.manifest.variants,
        prompt_template=settings.manifest.prompt_template,
        max_credits=settings.limits.max_credits,
        done_keys=lambda path: _from_state(
            settings.output.out_dir, path, lambda s: s.done_keys(), set()
        ),
        latencies=lambda path: _from_state(
            settings.output.out_dir, path, lambda s: s.latency_samples(), []
        ),
        notes=lambda path, manifest: _changed_prompts(settings.output.out_dir, path, manifest),
        include_hidden=settings.manifest.include_hidden,
        generated=lambda path: _from_state(settings.output.out_dir, path, _generated_requests, []),
        allow_regenerate=settings.manifest.allow_regenerate,
        name_template=settings.output.name_template,
        regenerations=lambda path, manifest: _from_state(
            settings.output.out_dir, path, lambda s: pending_regenerations(s, manifest), []
        ),
    )
    if as_json:
        return json.dumps(validation_json(result), indent=2, ensure_ascii=False), result.exit_code
    return result.report, result.exit_code


def _from_state(out_dir: Path, manifest: Path, read: Any, empty: Any) -> Any:
    state = existing_state(out_dir, manifest)
    if state is None:
        return empty
    with open_store(state) as store:
        return read(store)


def _generated_requests(store: ManifestStore) -> list[Generated]:
    return list(store.generated_requests())


def _changed_prompts(out_dir: Path, path: Path, manifest: Manifest) -> list[str]:
    """Rows whose prompt was edited after their video was generated (they keep the video)."""
    state = existing_state(out_dir, path)
    if state is None:
        return []
    current = {spec.key: spec for spec in manifest.valid}
    notes = []
    with open_store(state) as store:
        for job in store.iter_jobs(in_manifest_only=True):
            spec = current.get(job.key)
            if spec is not None and prompt_used(replace(job, user={"p": spec.prompt}), "p"):
                notes.append(
                    f"{row_label(spec.row, job.key)}: the prompt changed after its video was "
                    "made; the video shows the earlier prompt (see 'Prompt used' in the "
                    "results). Give the row a new id to generate it again."
                )
    return notes


def _plan_json(manifest: Manifest, plan: Plan) -> dict[str, Any]:
    return {
        "path": str(plan.path),
        "sheet": manifest.sheet,
        "rows": plan.rows,
        "valid": plan.valid,
        "invalid": plan.invalid,
        "takes": plan.takes,
        "regenerate": plan.regenerate,
        "already_done": plan.done,
        "to_submit": plan.to_submit,
        "credits": plan.credits,
        "usd": plan.usd,
        "requests_per_minute": plan.rpm,
        "minimum_minutes": round(plan.min_minutes, 2),
        "estimated_minutes": round(plan.estimated_minutes, 2),
        "generation_seconds": round(plan.latency_s, 1),
        "generation_seconds_learned_from": plan.latency_samples,
        "budget_credits": plan.max_credits,
        "budget_covers": plan.budget_covers,
        "problems": [
            {"row": p.row, "column": p.column, "severity": p.severity, "message": p.message}
            for p in manifest.problems
        ],
        "warnings": list(plan.notes),
    }


def validation_json(result: ValidationResult) -> dict[str, Any]:
    """The ``validate --json`` document (keys listed in the README)."""
    plans = [plan for _, plan in result.results]
    return {
        "version": JSON_VERSION,
        "exit_code": result.exit_code,
        "manifests": [_plan_json(m, p) for m, p in result.results],
        "unreadable": [_error_json(e) for e in result.errors],
        "totals": {
            "to_submit": sum(p.to_submit for p in plans),
            "credits": sum(p.credits for p in plans),
            "usd": round(sum(p.usd for p in plans), 2),
            "minimum_minutes": round(sum(p.min_minutes for p in plans), 2),
        },
    }


def _error_json(error: ManifestError) -> dict[str, str]:
    return {"path": str(error.path), "error": error.reason}


# --- status ---------------------------------------------------------------------------------


def status_report(
    paths: Sequence[Path], settings: Settings, *, as_json: bool = False
) -> tuple[str, int]:
    """What each manifest's state says; exit 0 when every row is downloaded, else 1 (2 when
    a manifest named does not exist)."""
    entries, code = [], 0
    for path in find_manifests(list(paths)):
        entry = _status_entry(path, settings.output.out_dir)
        entries.append(entry)
        code = max(code, _status_code(entry))
    if as_json:
        document = {"version": JSON_VERSION, "exit_code": code, "manifests": entries}
        return json.dumps(document, indent=2, ensure_ascii=False, default=str), code
    return "\n\n".join(_status_text(entry) for entry in entries), code


def _status_code(entry: dict[str, Any]) -> int:
    if entry["state"] == "missing":
        return 2
    return 0 if entry["state"] == "ok" and entry["complete"] else 1


def _status_entry(path: Path, out_dir: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"manifest": str(path), "name": path.name}
    state = existing_state(out_dir, path)
    if state is None:
        entry["state"] = "never run" if path.exists() else "missing"
        entry["out_dir"] = str(out_dir)
        return entry
    with open_store(state) as store:
        counts = store.counts(in_manifest_only=True)
        spend = store.spend()
        last = store.last_run()
        attention = list(
            itertools.islice(
                store.iter_jobs(NEEDS_ATTENTION, in_manifest_only=True), _ATTENTION_SHOWN
            )
        )
        total = sum(counts.values())
        entry |= {
            "state": "ok",
            "state_file": str(store.path),
            "rows": total,
            "counts": {status.value: counts.get(status, 0) for status in JobStatus},
            "complete": counts.get(JobStatus.DOWNLOADED, 0) + counts.get(JobStatus.SKIPPED, 0)
            == total,
            "credits": spend.charged,
            "credits_committed": spend.committed,
            "credits_possibly_charged": spend.possible,
            "usd": round(spend.total * USD_PER_CREDIT, 2),
            "last_run": _run_json(last),
            "needs_attention": [_attention_json(job) for job in attention],
        }
    return entry


def _run_json(run: RunInfo | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "exit_code": run.exit_code,
        "outcome": run.outcome,
    }


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _attention_json(job: Job) -> dict[str, Any]:
    return {
        "row": job.row,
        "key": job.key,
        "status": job.status.value,
        "error": job.error_message or job.error_kind,
    }


def _status_text(entry: dict[str, Any]) -> str:
    name = entry["name"]
    if entry["state"] == "missing":
        return f"{entry['manifest']}: no such file or folder"
    if entry["state"] == "never run":
        return f"{name}: never run (no state in {entry['out_dir']})"
    lines = [f"{name}: {plural(entry['rows'], 'row')} ({entry['state_file']})"]
    lines += [f"  {status:<16}{n:>8}" for status, n in entry["counts"].items() if n]
    for label, key, meaning in (
        ("credits charged", "credits", "tasks finished, at least 40 each"),
        ("committed", "credits_committed", "tasks in flight"),
        ("possibly charged", "credits_possibly_charged", "submits of unknown outcome"),
    ):
        credits = entry[key]
        lines.append(f"  {label:<16}{credits:>8}  (~${credits * USD_PER_CREDIT:,.2f}; {meaning})")
    lines.append(_last_run_line(entry["last_run"]))
    if entry["needs_attention"]:
        lines.append("  needs attention:")
        for item in entry["needs_attention"]:
            where = row_label(item["row"], item["key"])
            lines.append(f"    {where}: {item['status']}: {item['error'] or ''}".rstrip())
    return "\n".join(lines)


def _last_run_line(run: dict[str, Any] | None) -> str:
    if run is None:
        return "  last run         never"
    ended = run["ended_at"] or run["started_at"]
    when = ended.replace("T", " ")[:16] + " UTC"
    outcome = run["outcome"] or "did not finish (killed or still running)"
    return f"  last run         {when}: {outcome} (exit {run['exit_code']})"


# --- report ---------------------------------------------------------------------------------


def rebuild_reports(
    paths: Sequence[Path], settings: Settings, *, ledger: bool = False
) -> list[str]:
    """Rewrite results.xlsx/.csv and index.html of each manifest from its state alone;
    with ``ledger``, also ledger.csv and claims.csv (see :mod:`batchgen.output.ledger`)."""
    lines = []
    for path in find_manifests(list(paths)):
        state = existing_state(settings.output.out_dir, path)
        if state is None and not path.exists():
            raise StateError(f"{path}: no such file or folder")
        if state is None:
            raise StateError(f"{path.name}: no state in {settings.output.out_dir}; run it first")
        with open_store(state) as store:
            absorb_decisions(store, state.parent)  # the workbook is about to be rewritten
            rewrite_reports(store, state.parent, name=path.name, settings=settings)
            if ledger:
                lines.append(f"{path.name}: {ledger_report(store, state.parent)}")
        lines.append(f"{path.name}: wrote {state.parent / 'results.xlsx'}, results.csv, index.html")
    return lines
