"""Rows about to be sent whose request was already generated under another key.

A row's key survives edits elsewhere in the sheet, but not a change of its own identity: an
id column renamed (``id`` -> ``ref``), re-typed (``0007`` -> ``7``) or filled in afterwards
gives every row a new key, and each would be paid for again. Before anything is sent the
valid rows are compared, by request (prompt, mode, ratio, images, normalised as for keys),
with the rows of the state whose task was created; a match under another key is held back
with an error (``--allow-regenerate`` sends it anyway, with a warning).

The same holds across states (:func:`hold_elsewhere`): a row whose request was generated in
another manifest's state (a copy of the sheet, ``briefs (1).csv``) is held with an error that
names where it was made; the per-user record of generated requests
(``batchgen.state.generated``) finds them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batchgen.manifest.model import Manifest, ManifestRow, Problem, display_path
from batchgen.manifest.values import identity_request, request_key
from batchgen.models import JobSpec

__all__ = ["Elsewhere", "Generated", "hold_elsewhere", "hold_regenerations", "regenerations"]

#: The request of a state row whose task was created (``Store.generated_requests``).
Generated = JobSpec


def regenerations(manifest: Manifest, generated: Iterable[Generated]) -> dict[str, tuple[str, int]]:
    """Manifest key -> (state key, state row) for every valid row whose request was already
    generated under another key, when its own key was never generated and the other key is
    no longer in the manifest (its identity changed)."""
    rows = list(generated)
    keys = {spec.key for spec in rows}
    # Only rows the state has never generated can be regenerations; a re-run of an unchanged
    # manifest has none, and then no request is hashed at all.
    candidates = [spec for spec in manifest.valid if spec.key not in keys]
    if not candidates:
        return {}
    by_request: dict[str, tuple[str, int]] = {}
    for old in rows:
        by_request.setdefault(request_key(**identity_request(old)), (old.key, old.row))
    present = {row.key for row in manifest.rows}
    found: dict[str, tuple[str, int]] = {}
    for spec in candidates:
        hit = by_request.get(request_key(**identity_request(spec)))
        # An old key still in the manifest means this row is a second copy of a row that
        # kept its identity (a deliberate duplicate, already warned about), not a renamed one.
        if hit is not None and hit[0] != spec.key and hit[0] not in present:
            found[spec.key] = hit
    return found


def hold_regenerations(
    manifest: Manifest, generated: Iterable[Generated], *, allow: bool
) -> tuple[Manifest, list[Problem]]:
    """``manifest`` with every regeneration (see :func:`regenerations`) made invalid, or,
    with ``allow``, kept with a warning; and the problems added."""
    found = regenerations(manifest, generated)
    if not found:
        return manifest, []
    added: list[Problem] = []
    rows: list[ManifestRow] = []
    for row in manifest.rows:
        hit = found.get(row.key) if row.valid else None
        if hit is None:
            rows.append(row)
            continue
        problem = _problem(manifest, row, hit, allow)
        added.append(problem)
        spec = row.spec if allow else None
        rows.append(dataclasses.replace(row, spec=spec, problems=(*row.problems, problem)))
    held = dataclasses.replace(manifest, rows=rows, problems=[*manifest.problems, *added])
    return held, added


def _problem(manifest: Manifest, row: ManifestRow, hit: tuple[str, int], allow: bool) -> Problem:
    old_key, old_row = hit
    said = (
        f"same request as row {old_row} (key {old_key}), already generated in this state "
        f"under another key (was the id column renamed, re-typed or filled in?); "
    )
    said += (
        "sent again as asked (--allow-regenerate)"
        if allow
        else "not sent, so it is not paid for twice; --allow-regenerate sends it"
    )
    return Problem(
        path=display_path(manifest.path),
        row=row.row,
        column=None,
        value=None,
        message=said,
        severity="warning" if allow else "error",
    )


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """Where a request was already generated: the other manifest (its path), its row as Excel
    shows it, the task id and when (UTC), when known."""

    manifest: str
    row: int
    task_id: str | None
    at: dt.datetime | None


def hold_elsewhere(
    manifest: Manifest, found: Mapping[str, Elsewhere], *, allow: bool
) -> tuple[Manifest, list[Problem]]:
    """``manifest`` with every row whose key is in ``found`` (generated under another
    manifest) made invalid with an error naming where, or, with ``allow``
    (``--allow-regenerate``), kept with a warning; and the problems added."""
    if not found:
        return manifest, []
    added: list[Problem] = []
    rows: list[ManifestRow] = []
    for row in manifest.rows:
        hit = found.get(row.key) if row.valid else None
        if hit is None:
            rows.append(row)
            continue
        problem = Problem(
            path=display_path(manifest.path),
            row=row.row,
            column=None,
            value=None,
            message=_made_elsewhere(hit, allow),
            severity="warning" if allow else "error",
        )
        added.append(problem)
        spec = row.spec if allow else None
        rows.append(dataclasses.replace(row, spec=spec, problems=(*row.problems, problem)))
    held = dataclasses.replace(manifest, rows=rows, problems=[*manifest.problems, *added])
    return held, added


def _made_elsewhere(hit: Elsewhere, allow: bool) -> str:
    task = f"task {hit.task_id}" if hit.task_id else "task of unknown outcome"
    when = f", {hit.at:%Y-%m-%d %H:%M} UTC" if hit.at is not None else ""
    said = (
        f"same request as row {hit.row} of {hit.manifest} ({task}{when}), already generated "
        f"there (is this sheet a copy of it?); "
    )
    return said + (
        "sent again as asked (--allow-regenerate)"
        if allow
        else "not sent, so it is not paid for twice; --allow-regenerate sends it"
    )
