"""One identity for a manifest's requests across all its states: copies, renames, hard links.

A state knows only its own rows, so a manifest under another path (a browser's re-download
``briefs (1).csv``, a rename to ``briefs-final.csv``, a hard link, a file of the same content)
would start a second state and pay for every row again. The per-user record of generated
requests (:mod:`batchgen.state.generated`) closes that gap:

* **a rename or a hard link continues the existing state**: when a manifest has no state of
  its own yet and rows of it were generated under another manifest path that is now the same
  file (a hard link) or is gone (a rename), the run uses that state and says so
  (:func:`find_alias`);
* **a copy's already-generated rows are held**: a row whose request was generated in another
  manifest's state (which still says so, or is gone) is not sent, with a message naming the
  manifest, its row, the task and when, unless ``--allow-regenerate`` (:func:`hold_copies`);
* the record is kept current: a run writes its state's generated rows into it before anything
  is sent and at its end (:func:`record_state`), and each row as it is generated
  (:class:`TaskRecorder`): its intent in the same turn as the state's commit of it, before
  its POST leaves, and its task id as that is committed. A kill at any point after a row's
  intent therefore leaves the row in the record, and its state says whether it was sent.

``validate`` shows the same (:func:`check_copies`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchgen.errors import StateConflictError
from batchgen.manifest.identity import Elsewhere, hold_elsewhere
from batchgen.manifest.model import Manifest, Problem, display_path
from batchgen.manifest.values import request_key
from batchgen.models import Job, JobSpec
from batchgen.state.generated import GENERATED, Generation, GenerationRecord, still_generated
from batchgen.state.job_columns import iso
from batchgen.state.location import default_out_dir, manifest_identity, state_path_for
from batchgen.state.protocol import ManifestStore
from batchgen.state.registry import Registry

__all__ = [
    "Alias",
    "TaskRecorder",
    "check_copies",
    "find_alias",
    "hold_copies",
    "record_state",
    "state_or_alias",
]

log = logging.getLogger("batchgen")


def request_id(spec: JobSpec) -> str:
    """A row's request identity (as the in-state check compares them)."""
    return request_key(**spec.request())


@dataclass(frozen=True, slots=True)
class Alias:
    """This manifest is another one under a new path: ``how`` ("a hard link of", "renamed
    from"), that manifest's path and its state file."""

    how: str
    manifest: str
    state: Path

    def describe(self, name: str) -> str:
        """The log line: which state the run continues, and why."""
        gone = " (it is no longer there)" if self.how == "renamed from" else ""
        return f"{name} is {self.how} {self.manifest}{gone}: continuing its state at {self.state}"


def find_alias(record: GenerationRecord, path: Path, specs: Sequence[JobSpec]) -> Alias | None:
    """The state of another manifest path that ``path`` is the same file as (a hard link) or
    was renamed from (that path is gone), judged by the rows generated from it; or None."""
    me = manifest_identity(path)
    hits = record.find({request_id(spec) for spec in specs}, other_than=None)
    counts: dict[tuple[str, str], int] = {}
    for hit in hits:
        if hit.manifest != me:
            counts[(hit.manifest, hit.state)] = counts.get((hit.manifest, hit.state), 0) + 1
    for (manifest, state), _ in sorted(counts.items(), key=lambda item: -item[1]):
        if not Path(state).is_file():
            continue
        other = Path(manifest)
        if not other.exists():
            return Alias("renamed from", manifest, Path(state))
        try:
            if os.path.samefile(other, path):
                return Alias("a hard link of", manifest, Path(state))
        except OSError:
            continue
    return None


def state_or_alias(
    out_dir: Path | None,
    path: Path,
    specs: Sequence[JobSpec],
    *,
    registry: Registry | None,
    record: GenerationRecord | None,
    new_state: bool,
) -> Alias | None:
    """The alias whose state a run of ``path`` under ``out_dir`` (None: no ``--out``)
    continues, when ``path`` has no state of its own (none under ``out_dir`` or beside the
    manifest, none in the registry); else None (the registry's rules apply). Raises
    StateConflictError when that state is under another output folder, as for a manifest
    whose state lives elsewhere."""
    if record is None or new_state:
        return None
    if state_path_for(out_dir or default_out_dir(path), path).exists():
        return None
    if registry is not None and registry.lookup(path) is not None:
        return None
    alias = find_alias(record, path, specs)
    if alias is None or out_dir is None:  # no --out: the state goes on where it is
        return alias
    if alias.state.parent.parent.resolve() != Path(out_dir).resolve():
        raise StateConflictError(
            f"{alias.describe(path.name).split(':')[0]}, whose state is at {alias.state}, not "
            f"under {out_dir}. Run with --out {alias.state.parent.parent} to continue it; "
            "--new-state starts another one (every row already made is held unless "
            "--allow-regenerate)"
        )
    return alias


def _generation(job: Job, state: str, manifest: str) -> Generation:
    return Generation(
        request_id(job.spec()), state, manifest, job.key, job.row, job.task_id, job.submitted_at
    )


def record_state(record: GenerationRecord, store: ManifestStore, path: Path) -> None:
    """Write the rows ``store`` generated (since the last time) into ``record``: only the
    rows updated at or after the newest one recorded are read from the state, so a run that
    changed nothing reads the few rows of that last moment and rewrites nothing."""
    state, manifest = str(store.path.resolve()), manifest_identity(path)
    since = _moment(record.synced_through(state))
    newest, found = since, []
    for job in store.iter_jobs(GENERATED, updated_since=since):
        found.append(_generation(job, state, manifest))
        if job.updated_at is not None and (newest is None or job.updated_at > newest):
            newest = job.updated_at
    record.add(found)
    if newest is not None and newest != since:
        record.mark_synced(state, iso(newest))


def _moment(stamp: str | None) -> dt.datetime | None:
    """The time ``synced_through`` wrote (ISO text), or None (then every row is read)."""
    try:
        return None if stamp is None else dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None


class TaskRecorder:
    """What the engine tells as rows are generated (``ManifestRun.on_generated``: a row's
    intent, task id None, before its POST; its task id once committed), written into the record
    by :meth:`flush` once per state commit (``CommitGroup.after_commit``), in one transaction.
    Never raises (the record warns once when it cannot be used)."""

    def __init__(self, record: GenerationRecord, store: ManifestStore, path: Path) -> None:
        self.record = record
        self.state, self.manifest = str(store.path.resolve()), manifest_identity(path)
        self._told: list[Generation] = []

    def __call__(self, job: Job, task_id: str | None) -> None:
        """Note ``job`` as generated (``task_id`` None: its POST is about to leave)."""
        told = _generation(job, self.state, self.manifest)
        self._told.append(dataclasses.replace(told, task_id=task_id))

    def flush(self) -> None:
        """Write what was told since the last flush."""
        told, self._told = self._told, []
        self.record.add(told)


def _elsewhere(
    record: GenerationRecord, state: str | None, specs: Iterable[JobSpec]
) -> dict[str, Elsewhere]:
    """Row key -> where its request was generated, for each of ``specs`` made under another
    state (which still says so, or is gone); a key match first, then one hit per row."""
    candidates = list(specs)
    by_request: dict[str, list[JobSpec]] = {}
    for spec in candidates:
        by_request.setdefault(request_id(spec), []).append(spec)
    hits = record.find(by_request, other_than=state)
    confirmed: dict[str, set[str] | None] = {}
    for hit in hits:
        if hit.state not in confirmed:
            keys = [h.key for h in hits if h.state == hit.state]
            confirmed[hit.state] = still_generated(Path(hit.state), keys)
    live = [
        h
        for h in hits
        if (confirmed[h.state] is None and h.task_id) or h.key in (confirmed[h.state] or ())
    ]
    found: dict[str, Elsewhere] = {}
    used: set[int] = set()
    for same_key in (True, False):
        for index, hit in enumerate(live):
            if index in used:
                continue
            for spec in by_request.get(hit.request, []):
                if spec.key in found or (same_key and spec.key != hit.key):
                    continue
                found[spec.key] = Elsewhere(hit.manifest, hit.row, hit.task_id, hit.at)
                used.add(index)
                break
    return found


def hold_copies(
    manifest: Manifest,
    record: GenerationRecord,
    store: ManifestStore,
    *,
    own: set[str],
    allow: bool,
) -> Manifest:
    """``manifest`` with the rows generated under another manifest held (see module docs);
    the rows this state generated itself (keys ``own``) are never held."""
    candidates = [spec for spec in manifest.valid if spec.key not in own]
    if not candidates:
        return manifest
    found = _elsewhere(record, str(store.path.resolve()), candidates)
    held, _ = hold_elsewhere(manifest, found, allow=allow)
    return held


def check_copies(
    out_dir: Path | None,
    path: Path,
    manifest: Manifest,
    *,
    own_state: Path | None,
    own_generated: set[str],
    allow: bool,
) -> tuple[Manifest, Alias | None]:
    """What ``run`` would do, for ``validate``: the alias whose state it would continue (its
    message added as a warning), else ``manifest`` with its copies' rows held. Never writes."""
    record = GenerationRecord()
    try:
        alias = None
        if own_state is None:
            try:
                alias = state_or_alias(
                    out_dir, path, manifest.valid, registry=Registry(), record=record,
                    new_state=False,
                )  # fmt: skip
            except StateConflictError as exc:
                return _with_note(manifest, str(exc)), None
        if alias is not None:
            return _with_note(manifest, alias.describe(path.name)), alias
        state = str(own_state.resolve()) if own_state is not None else None
        candidates = [spec for spec in manifest.valid if spec.key not in own_generated]
        held, _ = hold_elsewhere(manifest, _elsewhere(record, state, candidates), allow=allow)
        return held, None
    finally:
        record.close()


def _with_note(manifest: Manifest, text: str) -> Manifest:
    note = Problem(
        path=display_path(manifest.path),
        row=None,
        column=None,
        value=None,
        message=text,
        severity="warning",
    )
    return dataclasses.replace(manifest, problems=[note, *manifest.problems])
