"""The commands that only read: ``validate``, ``status`` and ``report`` (no network, no token)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from pathlib import Path

from batchgen.app.validate import validate_paths
from batchgen.config import Settings
from batchgen.errors import StateError
from batchgen.manifest.identity import Generated
from batchgen.manifest.load import find_manifests
from batchgen.models import NEEDS_ATTENTION, USD_PER_CREDIT, JobStatus
from batchgen.output.reports import write_reports
from batchgen.state.store import STATE_FILE, StateStore, state_path_for

__all__ = ["existing_state", "rebuild_reports", "status_report", "validate_manifests"]

_ATTENTION_SHOWN = 20


def existing_state(out_dir: Path, manifest: Path) -> Path | None:
    """The manifest's state file, if a run ever made one (never creates it)."""
    path = state_path_for(out_dir, manifest)
    return path if path.name == STATE_FILE and path.exists() else None


def validate_manifests(paths: Sequence[Path], settings: Settings) -> tuple[str, int]:
    """The ``validate`` report and its exit code: 0 all valid, 1 some invalid, 2 unusable."""
    result = validate_paths(
        list(paths),
        rpm=settings.rpm,
        sheet=settings.sheet,
        default_mode=settings.default_mode,
        default_ratio=settings.default_ratio,
        max_credits=settings.max_credits,
        done_keys=lambda path: _done_keys(settings.out_dir, path),
        include_hidden=settings.include_hidden,
        generated=lambda path: _generated(settings.out_dir, path),
        allow_regenerate=settings.allow_regenerate,
    )
    return result.report, result.exit_code


def _generated(out_dir: Path, manifest: Path) -> list[Generated]:
    state = existing_state(out_dir, manifest)
    if state is None:
        return []
    with StateStore.open(state) as store:
        return list(store.generated_requests())


def _done_keys(out_dir: Path, manifest: Path) -> set[str]:
    state = existing_state(out_dir, manifest)
    if state is None:
        return set()
    with StateStore.open(state) as store:
        return store.done_keys()


def status_report(paths: Sequence[Path], settings: Settings) -> tuple[str, int]:
    """What each manifest's state says; exit 0 when every row is downloaded, else 1."""
    blocks, code = [], 0
    for path in find_manifests(list(paths)):
        state = existing_state(settings.out_dir, path)
        if state is None:
            blocks.append(f"{path.name}: never run (no state in {settings.out_dir})")
            code = max(code, 1)
            continue
        with StateStore.open(state) as store:
            text, complete = _status_block(path, store)
        blocks.append(text)
        code = max(code, 0 if complete else 1)
    return "\n\n".join(blocks), code


def _status_block(path: Path, store: StateStore) -> tuple[str, bool]:
    counts = store.counts(in_manifest_only=True)
    total = sum(counts.values())
    credits = store.credits_consumed()
    lines = [f"{path.name}: {total} rows ({store.path})"]
    lines += [
        f"  {status.value:<16}{counts[status]:>8}" for status in JobStatus if counts.get(status)
    ]
    lines.append(f"  credits spent    {credits:>8}  (~${credits * USD_PER_CREDIT:,.2f})")
    lines.extend(_last_run_lines(store))
    lines.extend(_attention_lines(store))
    done = counts.get(JobStatus.DOWNLOADED, 0) + counts.get(JobStatus.SKIPPED, 0)
    return "\n".join(lines), done == total


def _last_run_lines(store: StateStore) -> list[str]:
    last = store.last_run()
    if last is None:
        return ["  last run         never"]
    ended = last.ended_at or last.started_at
    outcome = last.outcome or "did not finish (killed or still running)"
    return [f"  last run         {_when(ended)}: {outcome} (exit {last.exit_code})"]


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _attention_lines(store: StateStore) -> list[str]:
    jobs = store.iter_jobs(NEEDS_ATTENTION, in_manifest_only=True)
    rows = list(itertools.islice(jobs, _ATTENTION_SHOWN))
    if not rows:
        return []
    lines = ["  needs attention:"]
    for job in rows:
        reason = job.error_message or job.error_kind or ""
        lines.append(f"    row {job.row}: {job.status.value}: {reason}")
    return lines


def rebuild_reports(paths: Sequence[Path], settings: Settings) -> list[str]:
    """Rewrite results.xlsx/.csv and index.html of each manifest from its state alone."""
    lines = []
    for path in find_manifests(list(paths)):
        state = existing_state(settings.out_dir, path)
        if state is None:
            raise StateError(f"{path.name}: no state in {settings.out_dir}; run it first")
        with StateStore.open(state) as store:
            write_reports(store, state.parent, name=path.name, settings=settings)
        lines.append(f"{path.name}: wrote {state.parent / 'results.xlsx'}, results.csv, index.html")
    return lines
