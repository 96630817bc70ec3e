"""``batchgen report``: results, gallery (and with ``--ledger`` the ledger and claims) rebuilt
from each manifest's state alone (no network, no token).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchgen.app.reporting import existing_state, out_dir_shown, rewrite_reports
from batchgen.app.review_loop import ledger_report
from batchgen.config import Settings
from batchgen.errors import StateError
from batchgen.manifest.load import find_manifests
from batchgen.models import JobStatus
from batchgen.output.sidecar import restore_sidecars
from batchgen.providers.descriptor import unit_named
from batchgen.state.factory import open_store

__all__ = ["rebuild_reports"]


def rebuild_reports(
    paths: Sequence[Path], settings: Settings, *, ledger: bool = False
) -> list[str]:
    """Rewrite results.xlsx/.csv and index.html of each manifest from its state alone (and
    any video's sidecar that a power cut left missing or empty); with ``ledger``, also
    ledger.csv and claims.csv (see :mod:`batchgen.output.ledger`)."""
    lines = []
    for path in find_manifests(list(paths)):
        state = existing_state(settings.output.out_dir, path)
        if state is None and not path.exists():
            raise StateError(f"{path}: no such file or folder")
        if state is None:
            where = out_dir_shown(settings.output.out_dir, path)
            raise StateError(f"{path.name}: no state in {where}; run it first")
        with open_store(state) as store:
            rewrite_reports(store, state.parent, name=path.name, settings=settings)
            downloaded = store.iter_jobs((JobStatus.DOWNLOADED,))
            unit = unit_named(store.get_meta("billing_unit"))
            if restored := restore_sidecars(state.parent, downloaded, unit):
                lines.append(f"{path.name}: wrote {restored} missing sidecar(s) again")
            if ledger:
                lines.append(f"{path.name}: {ledger_report(store, state.parent)}")
        lines.append(f"{path.name}: wrote {state.parent / 'results.xlsx'}, results.csv, index.html")
    return lines
