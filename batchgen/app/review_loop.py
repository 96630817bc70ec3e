"""The review loop at the start of a run: decisions read back, regenerations planned, and the
manifest (with its variants) folded into the state.

:func:`sync_with_review` replaces a bare ``store.sync_manifest`` call:

1. what a person typed in the previous ``results.xlsx`` is read, matched by key (see
   :func:`batchgen.output.review.read_review`) and stored in the state, so the results
   writer may rewrite the workbook without losing it: the ``decision`` column and the
   columns a person added (:func:`absorb_review`; a workbook that cannot be matched row by
   row is kept aside under a dated name first);
2. each ``regenerate`` not yet acted on becomes one new variant of its row
   (``<row key>#v<n>``, n one above every variant the row ever had), its lineage recorded;
   an approved or rejected job is never regenerated, nor one whose row left the manifest;
3. variants the state holds beyond the row's count (sent before the count was lowered, or
   regenerations) stay listed under their row, then the manifest is synced and the prompt
   templates recorded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from batchgen.manifest.load import Manifest
from batchgen.manifest.variants import with_variants
from batchgen.models import JobStatus, split_variant, variant_key
from batchgen.output.ledger import LedgerRow, write_ledger
from batchgen.output.reports import (
    PERSON_COLUMNS_META,
    WORKBOOK_STAMP_META,
    keep_aside,
    owned_header,
    workbook_stamp,
)
from batchgen.output.results import XLSX_NAME
from batchgen.output.review import DecisionsRead, read_decisions, read_review
from batchgen.providers.descriptor import format_usd, unit_named
from batchgen.state.protocol import ManifestStore
from batchgen.state.rows import SyncReport

__all__ = [
    "absorb_review",
    "ledger_report",
    "pending_regenerations",
    "plan_regenerations",
    "sync_with_review",
]

log = logging.getLogger("batchgen")

#: A job in one of these has a video (or a final failure) a person can judge.
_SETTLED = frozenset(
    {JobStatus.DOWNLOADED, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.DOWNLOAD_FAILED}
)


def absorb_review(store: ManifestStore, out_dir: Path) -> int:
    """Store what a person typed in ``out_dir/results.xlsx``: its decisions and the columns
    they added (with their values, by key); returns how many decisions changed.

    A workbook unchanged since batchgen wrote it is not read (a 100,000-row one takes a
    while). One that cannot be matched row by row (or cannot be read, or holds a sheet a
    person added) is copied aside under a dated name before anything rewrites it, with a
    warning naming the copy (once per edit); what a workbook that cannot be matched holds is
    then not read (the state keeps what it had), and each later run says so again until the
    workbook is fixed or rewritten (a decision left in it would otherwise be ignored
    silently).
    Other warnings (a value that is not a decision) are logged.
    """
    path = out_dir / XLSX_NAME
    stamp = workbook_stamp(out_dir)
    if not stamp or stamp == store.get_meta(WORKBOOK_STAMP_META):
        return 0
    known = {job.key for job in store.iter_jobs()}
    found = read_review(path, known, owned_header(store))
    if stamp != store.get_meta(_ASIDE_STAMP_META):  # one copy per edit, however many runs
        _keep_aside_if_needed(path, found)
        store.set_meta(_ASIDE_STAMP_META, stamp)
    if found.refused:
        if stamp == store.get_meta(_REFUSED_STAMP_META):
            log.warning(
                "%s; still: fix the workbook, or copy from the one kept aside", found.refused
            )
        store.set_meta(_REFUSED_STAMP_META, stamp)
        return 0  # read again by every run until it is fixed or rewritten, and said each time
    for warning in found.warnings:
        log.warning("%s", warning)
    changed = store.record_decisions(found.decisions)
    if found.columns is not None:
        before = store.get_meta(PERSON_COLUMNS_META)
        store.set_meta(PERSON_COLUMNS_META, found.columns.to_json())
        if found.columns.names and found.columns.to_json() != before:
            log.info(
                "%s: read the column(s) a person added to %s: %s; kept at every rewrite",
                _name(store, out_dir),
                XLSX_NAME,
                found.columns.describe(),
            )
    store.set_meta(WORKBOOK_STAMP_META, stamp)  # read once per edit
    if changed:
        log.info("%s: %d decision(s) read from the results", _name(store, out_dir), changed)
    return changed


#: The workbook (by stamp) last copied aside, and last refused: a refused workbook is read,
#: and its refusal said, at every run until a person fixes it or a rewrite replaces it.
_ASIDE_STAMP_META = "results_xlsx_aside_stamp"
_REFUSED_STAMP_META = "results_xlsx_refused_stamp"


def _name(store: ManifestStore, out_dir: Path) -> str:
    """The manifest's file name for a log line (as the run's other lines name it)."""
    recorded = store.get_meta("manifest_path")
    return Path(recorded).name if recorded else out_dir.name


def _keep_aside(path: Path, why: str) -> None:
    try:
        aside = keep_aside(path)
    except OSError as exc:
        log.error("%s; and it could not be copied aside (%s)", why, exc)
        return
    log.warning("%s; the workbook is kept aside as %s, nothing of it is overwritten", why, aside)


def _keep_aside_if_needed(path: Path, found: DecisionsRead) -> None:
    """Copy the workbook aside when a rewrite would lose what a person put in it."""
    if found.refused:
        _keep_aside(path, found.refused)
    elif found.sheets:
        names = ", ".join(repr(name) for name in found.sheets)
        _keep_aside(path, f"{path}: the sheet(s) {names} a person added are not rewritten")


def plan_regenerations(store: ManifestStore, manifest: Manifest) -> list[str]:
    """Record one new variant per ``regenerate`` not yet acted on; returns the new keys."""
    planned, said = _regenerations(store, manifest, store.decisions())
    for level, message in said:
        log.log(level, "%s", message)
    for new, origin in planned:
        store.add_regeneration(new, origin)
    if planned:
        log.info("%s: %d take(s) to regenerate", manifest.path.name, len(planned))
    return [new for new, _ in planned]


def pending_regenerations(store: ManifestStore, manifest: Manifest) -> list[str]:
    """The keys of the variants the next run would add for ``regenerate`` decisions, the
    decisions of ``results.xlsx`` beside the state included; writes nothing (``validate``)."""
    decisions = store.decisions()
    stamp = workbook_stamp(store.path.parent)
    if stamp and stamp != store.get_meta(WORKBOOK_STAMP_META):
        known = {job.key for job in store.iter_jobs()}
        found = read_decisions(store.path.parent / XLSX_NAME, known)
        for key, decision in found.decisions.items():
            if decision is None:
                decisions.pop(key, None)
            else:
                decisions[key] = decision
    return [new for new, _ in _regenerations(store, manifest, decisions)[0]]


def _regenerations(
    store: ManifestStore, manifest: Manifest, decisions: dict[str, str]
) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    """(new key, key it regenerates) per ``regenerate`` in ``decisions`` not yet acted on,
    and (log level, message) for those left aside."""
    wanted = [k for k, d in decisions.items() if d == "regenerate"]
    if not wanted:
        return [], []
    done = store.regenerated()
    rows = {row.key: row for row in manifest.rows if row.spec is not None}
    highest: dict[str, int] = defaultdict(int)
    statuses: dict[str, JobStatus] = {}
    for job in store.iter_jobs():
        row_key, number = split_variant(job.key)
        highest[row_key] = max(highest[row_key], number)
        statuses[job.key] = job.status
    for key in store.origins():
        row_key, number = split_variant(key)
        highest[row_key] = max(highest[row_key], number)
    for row in manifest.rows:
        row_key, number = split_variant(row.key)
        highest[row_key] = max(highest[row_key], number)
    made: list[tuple[str, str]] = []
    said: list[tuple[int, str]] = []
    name = manifest.path.name
    for key in sorted(wanted, key=lambda k: split_variant(k)):
        if key in done:
            continue
        row_key = split_variant(key)[0]
        if row_key not in rows:
            said.append(
                (
                    logging.WARNING,
                    f"{name}: {key} is marked regenerate, but its row is no longer in the "
                    "manifest (or is invalid); not regenerated",
                )
            )
            continue
        if statuses.get(key) not in _SETTLED:
            said.append(
                (
                    logging.INFO,
                    f"{name}: {key} is marked regenerate but has no result yet; waiting for it",
                )
            )
            continue
        highest[row_key] += 1
        made.append((variant_key(row_key, highest[row_key]), key))
    return made, said


def sync_with_review(store: ManifestStore, manifest: Manifest, out_dir: Path) -> SyncReport:
    """Decisions, regenerations, then ``store.sync_manifest`` with every variant listed."""
    absorb_review(store, out_dir)
    plan_regenerations(store, manifest)
    extra: dict[str, set[int]] = defaultdict(set)
    for key in store.kept_keys():
        row_key, number = split_variant(key)
        if number > 1:
            extra[row_key].add(number)
    manifest = with_variants(manifest, extra)
    report = store.sync_manifest(manifest.columns, manifest.rows)
    templates = {row.key: row.template for row in manifest.rows if row.template is not None}
    if templates:
        store.record_templates(templates)
    return report


def ledger_report(store: ManifestStore, out_dir: Path) -> str:
    """Write ledger.csv and claims.csv from the state; one line saying what they hold.

    The ledger's credits are checked against the state's own total (what ``status`` and the
    Summary sheet show); a difference is said in the line, never hidden.
    """
    jobs = {job.key: LedgerRow(job.row, job.prompt, job.price) for job in store.iter_jobs()}
    unit = unit_named(store.get_meta("billing_unit"))
    totals = write_ledger(
        out_dir, tasks=store.task_log(), attempts=store.attempts(), jobs=jobs, unit=unit
    )
    if unit.credits:
        money = (
            f"{totals.credits} credits reported, {totals.charged} counted as charged, "
            f"{totals.charged_but_failed} charged but failed, {totals.ambiguous} submits of "
            f"unknown outcome, {totals.possible} credits possibly charged"
        )
    else:
        money = (
            f"{format_usd(unit.usd(totals.credits))} reported, "
            f"{format_usd(unit.usd(totals.charged))} counted as charged, "
            f"{totals.charged_but_failed} charged but failed, {totals.ambiguous} submits of "
            f"unknown outcome, {format_usd(unit.usd(totals.possible))} possibly charged"
        )
    line = (
        f"wrote {out_dir / 'ledger.csv'} ({totals.tasks} tasks, {money}) and claims.csv "
        f"({totals.claims} claims)"
    )
    spend = store.spend()
    if (spend.charged, spend.possible) != (totals.charged, totals.possible):
        line += (
            f"; WARNING: the state counts {spend.charged} charged and {spend.possible} "
            "possibly charged"
        )
    return line
