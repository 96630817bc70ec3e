"""Variants: several generations ("takes") of one manifest row, each a job of its own.

A row asks for N variants with a ``variants`` column (headers ``variants``, ``variant
count``, ``takes``), or ``--variants N`` for rows that leave it empty; 1 by default, at most
:data:`MAX_VARIANTS`. Variant 1 keeps the row's key, so a manifest that never used variants
keeps its state; variant n > 1 is ``<row key>#v<n>``. Raising N later adds only the missing
keys; lowering it drops the unsent ones, and an app may keep the sent ones listed under the
row with :func:`with_variants` (nothing already generated is ever deleted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from batchgen.errors import UsageError
from batchgen.manifest.columns import normalise_header
from batchgen.manifest.model import Manifest, ManifestRow, Problem, as_text, display_path, show
from batchgen.models import split_variant, variant_key

__all__ = [
    "MAX_VARIANTS",
    "VARIANT_HEADERS",
    "check_variants_option",
    "expand_variants",
    "split_variant",
    "variant_key",
    "with_variants",
]

#: Most variants one row may ask for (cell or ``--variants``); regenerations may add more.
MAX_VARIANTS = 10
#: Headers of the variants column, as compared after ``normalise_header``.
VARIANT_HEADERS = ("variants", "variant count", "takes")


def check_variants_option(value: int | None) -> int:
    """``--variants`` as a count; UsageError outside 1..MAX_VARIANTS."""
    if value is None:
        return 1
    if not 1 <= value <= MAX_VARIANTS:
        raise UsageError(f"--variants must be between 1 and {MAX_VARIANTS}, not {value}")
    return value


def _variant_column(columns: Iterable[str]) -> str | None:
    return next((c for c in columns if normalise_header(c) in VARIANT_HEADERS), None)


def _count(value: Any, default: int) -> tuple[int, str | None]:
    """The row's variant count, or (default, what is wrong)."""
    if isinstance(value, bool):
        return default, f"{show(value)} is not a number of variants"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = as_text(value).strip()
    if not text:
        return default, None
    if not text.isdecimal():
        return default, f"{show(value)} is not a number of variants; write 1 to {MAX_VARIANTS}"
    number = int(text)
    if not 1 <= number <= MAX_VARIANTS:
        return default, f"{number} variants asked; write 1 to {MAX_VARIANTS}"
    return number, None


def expand_variants(manifest: Manifest, *, default: int | None = None) -> Manifest:
    """``manifest`` with each valid row repeated once per variant (keys as above).

    ``default`` is ``--variants`` (None: 1). A bad variants cell makes its row invalid (a
    problem naming the row and column); an invalid row is never expanded.
    """
    fallback = check_variants_option(default)
    column = _variant_column(manifest.columns)
    if column is None and fallback == 1:
        return manifest
    rows: list[ManifestRow] = []
    added: list[Problem] = []
    taken = {row.key for row in manifest.rows}
    for row in manifest.rows:
        count, message = _count(row.user.get(column) if column else None, fallback)
        if message is not None:
            problem = _problem(manifest, row, column, message)
            added.append(problem)
            row = dataclasses.replace(row, spec=None, problems=(*row.problems, problem))
        rows.append(row)
        if row.spec is not None:
            rows.extend(_more(manifest, row, range(2, count + 1), taken, added))
    return _rebuilt(manifest, rows, added)


def with_variants(manifest: Manifest, extra: Mapping[str, Iterable[int]]) -> Manifest:
    """``manifest`` plus variants the state holds beyond the asked count.

    ``extra`` maps a row key to variant numbers to list under that row (regenerations, and
    variants already generated before the count was lowered). Unknown or invalid rows and
    numbers already present are ignored.
    """
    present = {row.key for row in manifest.rows}
    rows: list[ManifestRow] = []
    for row in manifest.rows:
        rows.append(row)
        numbers = sorted(set(extra.get(row.key, ())))
        if row.spec is not None and split_variant(row.key)[1] == 1 and numbers:
            wanted = [n for n in numbers if n > 1 and variant_key(row.key, n) not in present]
            rows.extend(_more(manifest, row, wanted, present, []))
    return dataclasses.replace(manifest, rows=_grouped(rows))


def _more(
    manifest: Manifest,
    row: ManifestRow,
    numbers: Iterable[int],
    taken: set[str],
    problems: list[Problem],
) -> list[ManifestRow]:
    assert row.spec is not None
    more = []
    for number in numbers:
        key = variant_key(row.key, number)
        if key in taken:
            message = f"variant {number} would have the key {show(key)}, which another row has"
            problems.append(_problem(manifest, row, None, message))
            continue
        taken.add(key)
        spec = dataclasses.replace(row.spec, key=key)
        more.append(dataclasses.replace(row, key=key, spec=spec, problems=()))
    return more


def _grouped(rows: list[ManifestRow]) -> list[ManifestRow]:
    """Rows in file order, each row's variants after it by number (stable)."""
    order = {id(row): index for index, row in enumerate(rows)}
    return sorted(rows, key=lambda r: (r.row, split_variant(r.key)[1], order[id(r)]))


def _problem(manifest: Manifest, row: ManifestRow, column: str | None, message: str) -> Problem:
    value = None if column is None else as_text(row.user.get(column))
    return Problem(
        path=display_path(manifest.path), row=row.row, column=column, value=value, message=message
    )


def _rebuilt(manifest: Manifest, rows: list[ManifestRow], added: list[Problem]) -> Manifest:
    problems = sorted([*manifest.problems, *added], key=lambda p: (p.row is not None, p.row or 0))
    return dataclasses.replace(manifest, rows=rows, problems=problems)
