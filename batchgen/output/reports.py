"""Write every output of a manifest from its state: results sheets and the gallery.

A new output format is one more call in :func:`write_reports`.
"""

from __future__ import annotations

from pathlib import Path

from batchgen import __version__
from batchgen.config import Settings
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise, write_results
from batchgen.state.store import StateStore

__all__ = ["reports_current", "write_reports"]


def write_reports(store: StateStore, out_dir: Path, *, name: str, settings: Settings) -> None:
    """Rebuild results.xlsx, results.csv and index.html from the state alone."""
    summary = summarise(store.iter_jobs(), store.runs(), manifest=name, version=__version__)
    write_results(
        out_dir,
        columns=store.columns(),
        jobs=store.iter_jobs(),
        summary=summary,
        csv_escape=settings.csv_escape,
    )
    write_gallery(out_dir, jobs=store.iter_jobs(), summary=summary)
    store.set_meta(_REPORTS_META, store.fingerprint())


_REPORTS_META = "reports_fingerprint"
_REPORT_FILES = ("results.xlsx", "results.csv", "index.html")


def reports_current(store: StateStore, out_dir: Path) -> bool:
    """True when the reports on disk were written from exactly this state of the rows.

    A no-op re-run of a 100,000-row manifest then costs seconds instead of the minute that
    rewriting the sheets takes; the Summary sheet keeps the last run that changed something.
    """
    if not all((out_dir / name).exists() for name in _REPORT_FILES):
        return False
    return store.get_meta(_REPORTS_META) == store.fingerprint()
