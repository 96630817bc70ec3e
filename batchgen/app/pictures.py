"""Pictures are checked before money is spent: ``run`` holds, and ``validate`` reports, every
row whose picture URL fails :mod:`batchgen.engine.downloads.picture_check`.

Only picture URLs are fetched (a local picture is the manifest reader's to check), and only
rows that may still be sent are checked (``run``: the pending rows once the manifest is
synced and failed rows requeued; ``validate``: the valid rows with no task in flight or
video), each URL once per run whatever the number of rows and manifests that name it. A
held row is ``invalid`` with a message naming its column, the URL and what came back; the
next run checks it again, so fixing the cell (or the server) is all it takes.
``--skip-image-check`` turns the check off (a network where the vendor reaches pictures that
this machine cannot).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from typing import Any

from batchgen.app.provider import provider_of
from batchgen.app.reporting import column_of
from batchgen.config import Settings
from batchgen.engine.download_stage import policy_for
from batchgen.engine.downloads.picture_check import PictureRules, check_pictures, is_web_url
from batchgen.manifest.model import Manifest, ManifestRow, Problem, as_text, display_path, show
from batchgen.models import JobStatus
from batchgen.state.protocol import ManifestStore

__all__ = ["check_manifest_pictures", "hold_bad_pictures", "picture_rules"]

log = logging.getLogger("batchgen")

#: What the results and the log say of a held row, after ``column 'images': ``.
HELD = (
    "the picture {url} {problem}; the row is held, not sent (fix the cell and run again; "
    "--skip-image-check sends without checking)"
)


def picture_rules(settings: Settings) -> PictureRules:
    """The vendor's picture rules for this run; private addresses (and plain http on them)
    only where the video downloads allow them (an API on one, or ``--allow-private-urls``)."""
    info = provider_of(settings)
    return PictureRules(
        formats=info.picture_formats,
        max_bytes=info.picture_max_bytes,
        allow_private=policy_for(settings).allow_private,
    )


def _column(user: Mapping[str, Any], columns: Sequence[str], url: str) -> str:
    """The column whose cell holds ``url`` (else the first images column, else ``images``)."""
    found = next((name for name, value in user.items() if url in as_text(value)), None)
    return found or column_of(columns, "images") or "images"


def _first_problem(images: Sequence[str], problems: Mapping[str, str]) -> tuple[str, str] | None:
    return next(((url, problems[url]) for url in images if url in problems), None)


async def hold_bad_pictures(stores: Sequence[tuple[str, ManifestStore]], settings: Settings) -> int:
    """``run``: check the pictures of every pending row of every ``(name, store)`` at once and
    hold the rows whose picture fails (logged, one line each); returns how many were held."""
    if settings.manifest.skip_image_check:
        return 0
    waiting = {
        name: [
            job
            for job in store.iter_jobs((JobStatus.PENDING,), in_manifest_only=True)
            if job.images
        ]
        for name, store in stores
    }
    urls = [url for jobs in waiting.values() for job in jobs for url in job.images]
    urls = [url for url in urls if is_web_url(url)]
    if not urls:
        return 0
    problems = await check_pictures(urls, picture_rules(settings))
    held = 0
    for name, store in stores:
        columns = store.columns()
        reasons = {}
        for job in waiting[name]:
            bad = _first_problem(job.images, problems)
            if bad is None:
                continue
            url, problem = bad
            why = f"column {show(_column(job.user, columns, url))}: " + HELD.format(
                url=show(url, 200), problem=problem
            )
            reasons[job.key] = why
            log.error("%s: row %d: %s", name, job.row, why)
        held += store.hold(reasons)
    return held


def check_manifest_pictures(
    manifest: Manifest,
    settings: Settings,
    *,
    sent: Collection[str] = (),
    known: MutableMapping[str, str | None] | None = None,
) -> Manifest:
    """``validate``: ``manifest`` with every valid row whose picture fails made invalid (a
    problem naming the row, the column and what came back), rows whose key is in ``sent``
    (a task in flight or a video) left alone. ``known`` (url -> problem, None when fine) is
    the cache shared by the manifests of one ``validate``: each URL is fetched once."""
    if settings.manifest.skip_image_check:
        return manifest
    known = {} if known is None else known
    rows = [r for r in manifest.rows if r.valid and r.spec and r.key not in sent]
    missing = [
        url for r in rows if r.spec for url in r.spec.images if is_web_url(url) and url not in known
    ]
    if missing:
        found = asyncio.run(check_pictures(missing, picture_rules(settings)))
        known.update({url: found.get(url) for url in missing})
    problems = {url: why for url, why in known.items() if why is not None}
    added: dict[str, Problem] = {}
    for row in rows:
        bad = _first_problem(row.spec.images if row.spec else (), problems)
        if bad is not None:
            added[row.key] = _problem(manifest, row, *bad)
    if not added:
        return manifest
    held = [
        dataclasses.replace(r, spec=None, problems=(*r.problems, added[r.key]))
        if r.key in added
        else r
        for r in manifest.rows
    ]
    found_problems = sorted(
        [*manifest.problems, *dict.fromkeys(added.values())],
        key=lambda p: -1 if p.row is None else p.row,
    )
    return dataclasses.replace(manifest, rows=held, problems=found_problems)


def _problem(manifest: Manifest, row: ManifestRow, url: str, problem: str) -> Problem:
    return Problem(
        path=display_path(manifest.path),
        row=row.row,
        column=_column(row.user, manifest.columns, url),
        value=url,
        message=HELD.format(url=show(url, 200), problem=problem),
    )
