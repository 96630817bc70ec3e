"""What every command that writes or reads a manifest's results needs: where its state is, which
of its columns hold the prompt, mode and ratio, and the rewrite of its results and gallery.

Below ``run``, ``report``, ``status`` and ``validate`` alike, so that none of them imports
another. ``--json`` documents carry ``JSON_VERSION`` (it changes if a key ever changes meaning).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchgen.app.review_loop import absorb_review
from batchgen.config import Settings
from batchgen.errors import StateConflictError
from batchgen.manifest.columns import role_of
from batchgen.output.reports import write_reports
from batchgen.state.location import STATE_FILE, default_out_dir, recorded, state_path_for
from batchgen.state.protocol import ManifestStore
from batchgen.state.registry import Registry, locate_state

__all__ = [
    "JSON_VERSION",
    "column_of",
    "existing_state",
    "out_dir_shown",
    "prompt_column",
    "provider_mismatch",
    "rewrite_reports",
    "row_label",
]

#: The version of the ``--json`` documents' layout. 2: ``status`` counts ``rows`` of the
#: sheet and ``takes`` apart (``rows`` counted takes in 1).
JSON_VERSION = 2


def existing_state(out_dir: Path | None, manifest: Path) -> Path | None:
    """The manifest's state file, if a run ever made one (never creates it): under
    ``out_dir``, else wherever the per-user registry says it lives. ``out_dir`` None (no
    ``--out``): where ``run`` would find it (:func:`batchgen.state.registry.locate_state`)."""
    if out_dir is None:
        try:
            path = locate_state(None, manifest, registry=Registry())
        except StateConflictError:
            return None
        return path if path.exists() else None
    path = state_path_for(out_dir, manifest)
    if path.name == STATE_FILE and path.exists():
        return path
    known = Registry().lookup(manifest)
    return known if known is not None and known.exists() else None


def provider_mismatch(out_dir: Path | None, manifest: Path, chosen: str) -> str | None:
    """A line for a manifest whose state was made with another provider than ``chosen`` (a
    forgotten ``--provider``), else None. Reads the state without changing it."""
    state = existing_state(out_dir, manifest)
    made_with = None if state is None else recorded(state, "provider")
    if made_with is None or made_with == chosen:
        return None
    return (
        f"the state of {manifest.name} was made with the provider {made_with!r}, not "
        f'{chosen!r}: add --provider {made_with} (or provider = "{made_with}" in '
        "batchgen.toml)"
    )


def out_dir_shown(out_dir: Path | None, manifest: Path) -> Path:
    """The output directory a new state of ``manifest`` would get, for messages."""
    return default_out_dir(manifest) if out_dir is None else out_dir


def prompt_column(columns: Sequence[str]) -> str | None:
    """The header among ``columns`` that holds the prompt, or None."""
    return column_of(columns, "prompt")


def column_of(columns: Sequence[str], role: str) -> str | None:
    """The first header among ``columns`` whose role (``prompt``, ``mode``, ``ratio``, ``id``
    or ``images``; see :mod:`batchgen.manifest.columns`) is ``role``, or None."""
    return next((name for name in columns if role_of(name) == role), None)


def rewrite_reports(
    store: ManifestStore,
    out_dir: Path,
    *,
    name: str,
    settings: Settings,
    make_posters: bool = True,
) -> None:
    """``write_reports`` of ``store`` into ``out_dir``, telling it which of the manifest's
    columns hold the prompt, the mode and the ratio (found by header, as the manifest is).
    ``make_posters``: whether missing poster frames are made (``report``), or the gallery
    uses those already made (``run``: decoding every new video is kept off the run).

    What a person typed into results.xlsx since it was last read (during a long run too) is
    read into the state first (:func:`batchgen.app.review_loop.absorb_review`)."""
    absorb_review(store, out_dir)
    columns = store.columns()
    prompt = prompt_column(columns)
    write_reports(
        store,
        out_dir,
        name=name,
        settings=settings,
        prompt_column=prompt,
        mode_column=column_of(columns, "mode"),
        ratio_column=column_of(columns, "ratio"),
        make_posters=make_posters,
    )


def row_label(row: int, key: str) -> str:
    """``row 2 (id spring-01)`` for a row with an id, ``row 2`` otherwise."""
    return f"row {row} (id {key[3:]})" if key.startswith("id:") else f"row {row}"
