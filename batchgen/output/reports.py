"""Write every output of a manifest from its state: results sheets and the gallery.

A new output format is one more call in :func:`write_reports`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from batchgen import __version__
from batchgen.config import Settings
from batchgen.models import USD_PER_CREDIT, RunInfo
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise, write_results
from batchgen.state.store import StateStore

__all__ = ["record_run_counts", "reports_current", "write_reports"]

_RUN_COUNTS = "run_counts:{}"


def record_run_counts(store: StateStore, run_id: int, *, submitted: int, downloaded: int) -> None:
    """Keep what one run submitted and downloaded, for the ``Runs`` sheet."""
    counts = {"submitted": submitted, "downloaded": downloaded}
    store.set_meta(_RUN_COUNTS.format(run_id), json.dumps(counts))


def _runs(store: StateStore) -> list[RunInfo]:
    runs = []
    for run in store.runs():
        raw = store.get_meta(_RUN_COUNTS.format(run.run_id))
        counts = json.loads(raw) if raw else {}
        runs.append(
            dataclasses.replace(
                run,
                submitted=int(counts.get("submitted", 0)),
                downloaded=int(counts.get("downloaded", 0)),
            )
        )
    return runs


def write_reports(
    store: StateStore,
    out_dir: Path,
    *,
    name: str,
    settings: Settings,
    prompt_column: str | None = None,
) -> None:
    """Rebuild results.xlsx, results.csv and index.html from the state alone.

    ``prompt_column`` names the manifest column holding the prompt (None: unknown), so that
    rows whose prompt changed after generation show the prompt their video was made from.
    """
    summary = summarise(store.iter_jobs(), _runs(store), manifest=name, version=__version__)
    spend = store.spend()  # charged / committed / possibly charged, never below 40 a task
    summary = dataclasses.replace(
        summary,
        credits=spend.charged,
        committed=spend.committed,
        possible=spend.possible,
        usd=round(spend.total * USD_PER_CREDIT, 2),
    )
    write_results(
        out_dir,
        columns=store.columns(),
        jobs=store.iter_jobs(),
        summary=summary,
        csv_escape=settings.csv_escape,
        prompt_column=prompt_column,
    )
    write_gallery(out_dir, jobs=store.iter_jobs(), summary=summary, prompt_column=prompt_column)
    store.set_meta(_REPORTS_META, store.fingerprint())


_REPORTS_META = "reports_fingerprint"
_REPORT_FILES = ("results.xlsx", "results.csv", "index.html")


def reports_current(store: StateStore, out_dir: Path) -> bool:
    """True when the reports on disk were written from exactly this state of the rows.

    A no-op re-run of a 100,000-row manifest then costs seconds instead of the time that
    rewriting the sheets takes; the Summary sheet keeps the last run that changed something.
    """
    if not all((out_dir / name).exists() for name in _REPORT_FILES):
        return False
    return store.get_meta(_REPORTS_META) == store.fingerprint()
