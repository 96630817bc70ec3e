"""``batchgen status``: what each manifest's state says, as text or ``--json`` (no network)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchgen.app.plan import plural
from batchgen.app.reporting import JSON_VERSION, existing_state, out_dir_shown, row_label
from batchgen.config import Settings
from batchgen.manifest.load import find_manifests
from batchgen.models import NEEDS_ATTENTION, Job, JobStatus, RunInfo
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import format_usd, unit_named
from batchgen.state.factory import open_store

__all__ = ["status_report"]

_ATTENTION_SHOWN = 20


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


def _status_entry(path: Path, out_dir: Path | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"manifest": str(path), "name": path.name}
    state = existing_state(out_dir, path)
    if state is None:
        entry["state"] = "never run" if path.exists() else "missing"
        entry["out_dir"] = str(out_dir_shown(out_dir, path))
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
        unit = unit_named(store.get_meta("billing_unit"))
        entry |= {
            "state": "ok",
            "state_file": str(store.path),
            "rows": store.row_count(in_manifest_only=True),
            "takes": total,
            "counts": {status.value: counts.get(status, 0) for status in JobStatus},
            "complete": counts.get(JobStatus.DOWNLOADED, 0) + counts.get(JobStatus.SKIPPED, 0)
            == total,
            "provider": store.get_meta("provider") or DEFAULT.name,
            "billing": "credits" if unit.credits else "usd",
            "credits": spend.charged if unit.credits else None,
            "credits_committed": spend.committed if unit.credits else None,
            "credits_possibly_charged": spend.possible if unit.credits else None,
            "usd_charged": round(unit.usd(spend.charged), 6),
            "usd_committed": round(unit.usd(spend.committed), 6),
            "usd_possibly_charged": round(unit.usd(spend.possible), 6),
            "usd": round(unit.usd(spend.total), 6),
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
    lines = [
        f"{name}: {plural(entry['rows'], 'row')}, {plural(entry['takes'], 'take')} "
        f"({entry['state_file']})",
        "  takes by status:",
    ]
    lines += [f"  {status:<16}{n:>8}" for status, n in entry["counts"].items() if n]
    credits = entry["billing"] == "credits"
    for label, key, meaning in (
        ("credits charged" if credits else "charged", "charged", "tasks finished"),
        ("committed", "committed", "tasks in flight"),
        ("possibly charged", "possibly_charged", "submits of unknown outcome"),
    ):
        usd = format_usd(entry[f"usd_{key}"])
        if credits:
            amount = entry["credits" if key == "charged" else f"credits_{key}"]
            lines.append(f"  {label:<16}{amount:>8}  (~{usd}; {meaning})")
        else:
            lines.append(f"  {label:<16}{usd:>8}  ({meaning})")
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
    code = "" if run["exit_code"] is None else f" (exit {run['exit_code']})"
    return f"  last run         {when}: {outcome}{code}"
