"""The end of a run, per manifest: its line in the state, then its results and gallery."""

from __future__ import annotations

import logging

from batchgen.app.reporting import rewrite_reports
from batchgen.config import Settings
from batchgen.engine.manifest_run import ManifestRun
from batchgen.output.reports import record_run_counts, reports_current
from batchgen.state.protocol import ManifestStore

__all__ = ["close_run", "record_run", "write_results"]

log = logging.getLogger("batchgen")


def close_run(
    store: ManifestStore,
    run_id: int,
    run: ManifestRun,
    *,
    code: int,
    outcome: str,
    requests: int,
    rate_limited: int,
) -> None:
    """Write run ``run_id``'s line in ``store``: end time, exit code, outcome and counts.

    Quick (two committed statements), so it runs before the results are rebuilt and again
    when a second signal ends the process. May be called twice: the last call wins.
    OSError and DiskFullError pass through.
    """
    counters = run.counters
    record_run_counts(store, run_id, submitted=counters.submitted, downloaded=counters.downloaded)
    store.finish_run(
        run_id,
        outcome=outcome,
        exit_code=code,
        requests=requests,
        rate_limited=rate_limited,
        credits=counters.credits,
    )


def write_results(store: ManifestStore, run: ManifestRun, *, settings: Settings) -> None:
    """Rebuild ``run``'s results and gallery unless nothing changed (OSError passes through)."""
    if reports_current(store, run.out_dir):
        log.info(
            "%s: no row changed; results left as they were (batchgen report rewrites them)",
            run.name,
        )
        return
    # no poster frames at the end of a run (about 2 ms of decoding per video): the page shows
    # the browser's own first frame, and ``batchgen report`` makes them
    rewrite_reports(store, run.out_dir, name=run.name, settings=settings, make_posters=False)


def record_run(
    store: ManifestStore,
    run_id: int,
    run: ManifestRun,
    *,
    code: int,
    outcome: str,
    requests: int,
    rate_limited: int,
    settings: Settings,
) -> None:
    """Close run ``run_id`` in ``store`` and rebuild the results unless nothing changed.

    OSError and DiskFullError pass through: the caller decides what a full disk means.
    """
    close_run(
        store,
        run_id,
        run,
        code=code,
        outcome=outcome,
        requests=requests,
        rate_limited=rate_limited,
    )
    write_results(store, run, settings=settings)
