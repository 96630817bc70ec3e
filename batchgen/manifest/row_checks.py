"""Judge a raw table row by row: normalise the request, list every problem, give each row a key.

Per-row work is kept small (cached mode/ratio parsing, one regex per check) so that a
100,000-row manifest validates in about a second.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from batchgen.config import ManifestSettings
from batchgen.manifest.columns import OPTIONAL_FIELDS, ColumnMap, column_letter
from batchgen.manifest.layout import check_width, column_names, hidden_note
from batchgen.manifest.model import (
    MAX_CELL_CHARS,
    Manifest,
    ManifestRow,
    Problem,
    as_text,
    display_path,
    safe,
    show,
)
from batchgen.manifest.pictures_cells import PictureCells
from batchgen.manifest.prompt_template import fill_prompt
from batchgen.manifest.table import CellIssue, RawTable
from batchgen.manifest.values import (
    choices_text,
    id_problem,
    identity_request,
    normalise_default,
    normalise_id,
    parse_duration_cell,
    parse_mode,
    parse_ratio,
    parse_word,
    prompt_problem,
    request_key,
)
from batchgen.models import JobSpec
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import ProviderInfo

__all__ = ["HIDDEN_REASON", "build_manifest"]

#: The status note of a row hidden in the sheet, in the state and the results.
HIDDEN_REASON = (
    "hidden in the sheet (by a filter or by hand), so not sent; --include-hidden sends it"
)

# --- rows --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Checked:
    """What one row's checks produced, before its key is known."""

    number: int
    user: dict[str, Any]
    prompt_raw: str
    prompt: str
    mode: str
    ratio: str
    images: tuple[str, ...]
    digests: tuple[str, ...]
    duration: int | None
    resolution: str | None
    model: str | None
    row_id: str  # "" when there is none, or when it is unusable (too long...)
    problems: list[Problem]
    hidden: bool = False  # hidden in the sheet and not included: skipped, never sent
    template: str | None = None  # the prompt template the prompt was filled from


class _RowChecker:
    """Checks rows of one table; holds what every row shares."""

    def __init__(
        self,
        path: Path,
        table: RawTable,
        names: dict[int, str],
        keep: list[int] | None,
        defaults: tuple[str | None, str | None],
        template: str | None = None,
        info: ProviderInfo = DEFAULT,
    ) -> None:
        self.shown = display_path(path)
        self.info = info
        self.pictures = PictureCells(path.parent, info)
        self.cols: ColumnMap = table.columns
        self.issues = table.issues
        self.names = names
        self.order = [names[i] for i in sorted(names)]
        self.keep = keep
        self.default_mode, self.default_ratio = defaults
        self.template = template  # --prompt-template, for rows whose prompt cell is empty
        self.request = table.columns.request_columns()
        self.hidden_no_value = 0  # formulas without results outside the request columns

    def problem(self, number: int, column: int | None, value: Any, message: str) -> Problem:
        """An error at ``number``/``column`` of this file."""
        return Problem(
            path=self.shown,
            row=number,
            column=self.name(column),
            value=None if value is None else safe(value),
            message=message,
        )

    def warning(self, number: int, column: int | None, value: Any, message: str) -> Problem:
        """A warning at ``number``/``column`` of this file."""
        return replace(self.problem(number, column, value, message), severity="warning")

    def formula_warning(self, number: int, prompt: str) -> Problem:
        """A warning for a prompt that reads like a spreadsheet formula."""
        return Problem(
            path=self.shown,
            row=number,
            column=self.name(self.cols.prompt),
            value=safe(prompt),
            message=(
                "prompt starts with '=' like a spreadsheet formula; it will be sent as this "
                "text, not as the formula's result"
            ),
            severity="warning",
        )

    def name(self, column: int | None) -> str | None:
        """The display name of raw column ``column``."""
        if column is None:
            return None
        return self.names.get(column, f"column {column_letter(column)}")

    def user(self, values: list[Any]) -> dict[str, Any]:
        """The row's values under the header names, in order."""
        if self.keep is None:
            return dict(zip(self.order, values, strict=True))
        return {name: values[i] for name, i in zip(self.order, self.keep, strict=True)}

    def check(self, number: int, values: list[Any]) -> _Checked:
        """Every problem of one row, and its normalised request."""
        problems: list[Problem] = []
        prompt_raw = as_text(values[self.cols.prompt])
        prompt = prompt_raw.strip().replace("\r\n", "\n").replace("\r", "\n")
        user = self.user(values)
        filled = fill_prompt(prompt, user, default=self.template, own=self.name(self.cols.prompt))
        problems.extend(self._template_problem(number, *found) for found in filled.problems)
        prompt = filled.prompt
        if not filled.problems:
            self.add(problems, number, self.cols.prompt, prompt_raw, prompt_problem(prompt))
        if prompt.startswith("="):
            problems.append(self.formula_warning(number, prompt_raw))
        mode = self.resolve(problems, number, values, "mode")
        ratio = self.resolve(problems, number, values, "ratio")
        model = self.word(problems, number, values, "model", self.cols.model)
        resolution = self.word(problems, number, values, "resolution", self.cols.resolution, model)
        duration = self.duration(problems, number, values)
        images, digests = self.images(problems, number, values)
        row_id = ""
        if self.cols.id is not None:
            row_id = normalise_id(values[self.cols.id])
            message = id_problem(row_id)
            if message is not None:
                self.add(problems, number, self.cols.id, row_id, message)
                row_id = ""
        if any(isinstance(v, str) and len(v) > MAX_CELL_CHARS for v in values):
            self.too_long(problems, number, values)
        issues = self.issues.get(number)
        if issues:
            problems = self.with_issues(number, issues, problems)
        return _Checked(
            number=number,
            user=user,
            prompt_raw=prompt_raw,
            prompt=prompt,
            mode=mode,
            ratio=ratio,
            images=images,
            digests=digests,
            duration=duration,
            resolution=resolution,
            model=model,
            row_id=row_id,
            problems=problems,
            template=filled.template,
        )

    def _template_problem(
        self, number: int, column: str | None, value: str | None, message: str
    ) -> Problem:
        shown = column if column is not None else self.name(self.cols.prompt)
        return Problem(path=self.shown, row=number, column=shown, value=value, message=message)

    def add(
        self, problems: list[Problem], number: int, column: int, value: Any, message: str | None
    ) -> None:
        """Append an error when ``message`` says there is one."""
        if message is not None:
            problems.append(self.problem(number, column, value, message))

    def resolve(self, problems: list[Problem], number: int, values: list[Any], kind: str) -> str:
        """The row's mode or ratio: its own, else the default (``--default-...``, else the
        provider's); raw text when invalid; "" for a field the provider has no word for."""
        field = self.info.field(kind)
        if field is None:
            return ""
        column = self.cols.mode if kind == "mode" else self.cols.ratio
        raw = None if column is None else values[column]
        label = self.info.label
        parse = parse_mode if kind == "mode" else parse_ratio
        parsed, message = parse(raw, field.values, label)
        if parsed is not None:
            return parsed
        if message is not None:
            problems.append(self.problem(number, column, raw, message))
            return as_text(raw).strip()
        default = self.default_mode if kind == "mode" else self.default_ratio
        if default is not None:
            return default
        if field.default is not None:
            return str(field.default)
        message = (
            f"{kind} is empty and no default is set; write {choices_text(field.values)} "
            f"or set a default (--default-{kind})"
        )
        problems.append(self.problem(number, column, None, message))
        return ""

    def word(
        self,
        problems: list[Problem],
        number: int,
        values: list[Any],
        kind: str,
        column: int | None,
        model: str | None = None,
    ) -> str | None:
        """An optional word field (``model``, ``resolution``): the cell's value, checked
        against the provider's values (for ``model`` when they depend on it); None when the
        cell is empty (the provider's default applies)."""
        field = self.info.field(kind)
        if field is None or column is None:
            return None
        raw = values[column]
        effective = model or str(self.info.field_default("model") or "")
        allowed = field.allowed(effective)
        label = self.info.label
        if effective in field.by_model:
            label = f"{self.info.label} ({effective})"
        parsed, message = parse_word(raw, allowed, label, kind)
        if message is not None:
            problems.append(self.problem(number, column, raw, message))
        return parsed

    def duration(self, problems: list[Problem], number: int, values: list[Any]) -> int | None:
        """The row's duration in seconds (None: the provider's default)."""
        field = self.info.field("duration")
        column = self.cols.duration
        if field is None or column is None or field.low is None or field.high is None:
            return None
        raw = values[column]
        parsed, message = parse_duration_cell(raw, field.low, field.high, self.info.label)
        if message is not None:
            problems.append(self.problem(number, column, raw, message))
        return parsed

    def images(
        self, problems: list[Problem], number: int, values: list[Any]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Every picture of the row, in column order (URLs, share links rewritten or refused,
        local files resolved and checked), and their digests (see ``PictureCells``)."""
        found = self.pictures.row([(column, values[column]) for column in self.cols.images])
        for column, value, message, severity in found.problems:
            problem = self.problem(number, column, value, message)
            problems.append(problem if severity == "error" else replace(problem, severity=severity))
        return found.images, found.digests

    def too_long(self, problems: list[Problem], number: int, values: list[Any]) -> None:
        """An error for every cell longer than a spreadsheet cell may be."""
        for column, value in enumerate(values):
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS and column in self.names:
                message = (
                    f"the cell holds {len(value):,} characters; a spreadsheet cell holds at "
                    f"most {MAX_CELL_CHARS:,}, so the results could not keep it: shorten it"
                )
                problems.append(self.problem(number, column, value, message))

    def with_issues(
        self, number: int, issues: list[CellIssue], problems: list[Problem]
    ) -> list[Problem]:
        """The reader's issues first; a cell they flag needs no second message."""
        found = [self.issue_problem(number, issue) for issue in issues]
        first = [p for p in found if p is not None]
        flagged = {p.column for p in first if p.column is not None}
        return first + [p for p in problems if p.column not in flagged]

    def issue_problem(self, number: int, issue: CellIssue) -> Problem | None:
        """The problem a reader's cell issue amounts to (None when harmless)."""
        column = issue.column
        if issue.kind == "merged":
            message = (
                f"cells {issue.detail} are merged; unmerge them and give every row its own value"
            )
            return self.problem(number, column, None, message)
        if issue.kind == "extra_cells":
            return self.problem(number, None, None, issue.detail)
        if issue.kind == "outside_table":
            return self.warning(number, None, None, issue.detail)
        if column not in self.request:
            self.hidden_no_value += issue.kind == "no_value"
            return None
        formula = show("=" + issue.detail, 80) if issue.detail else "in this cell"
        if issue.kind == "no_value":
            message = (
                f"the formula {formula} has no saved result (the file was written by a "
                "program that does not calculate formulas); open and save it in Excel or "
                "LibreOffice, or type the value"
            )
            return self.problem(number, column, None, message)
        if issue.kind == "hyperlink_label":
            message = (
                f"the formula {formula} shows a label, and its link is not written in the "
                "formula as text; put the URL itself in the cell"
            )
            return self.problem(number, column, None, message)
        message = f"the cell shows the error {show(issue.detail)}; fix the formula or the value"
        return self.problem(number, column, issue.detail, message)


# --- the whole table -----------------------------------------------------------------------------


def build_manifest(
    path: Path,
    table: RawTable,
    settings: ManifestSettings | None = None,
    provider: ProviderInfo = DEFAULT,
) -> Manifest:
    """Validate every row of ``table`` for ``provider`` and give each a key. Never raises
    for a bad row.

    Request columns the provider has no field for (``duration`` for the reseller, ``mode``
    for xAI) are the user's own: carried untouched, with a note. Each valid row is priced
    with the provider's price (``ManifestRow.price``).

    Rows hidden in the sheet are checked and keyed like the others (so un-hiding one never
    changes a key) but, unless ``include_hidden``, marked skipped and their problems left
    out. ``settings.default_mode`` / ``default_ratio`` fill empty mode / ratio cells and
    ``prompt_template`` rows whose prompt cell is empty (see
    :mod:`batchgen.manifest.prompt_template`). Raises ManifestError when the results of the
    table could not be written (more columns than a sheet holds once batchgen's result
    columns are added).
    """
    settings = settings or ManifestSettings()
    include_hidden, prompt_template = settings.include_hidden, settings.prompt_template
    defaults = tuple(
        normalise_default(kind, value, _values(provider, kind), provider.label)
        for kind, value in (("mode", settings.default_mode), ("ratio", settings.default_ratio))
    )
    dropped = _drop_unaccepted(table, provider)
    names, keep, notes = column_names(table)
    check_width(path, names)
    notes.extend(_unaccepted_notes(dropped, provider, names))
    pair = (defaults[0], defaults[1])
    checker = _RowChecker(path, table, names, keep, pair, prompt_template, provider)
    checked = [checker.check(number, values) for number, values in table.rows]
    if table.hidden:
        for item in checked:
            item.hidden = not include_hidden and item.number in table.hidden
        notes.append(hidden_note(sorted(table.hidden), include_hidden, table.sheet))
    if not table.rows:
        notes.append(f"has a header (row {table.header_row}) but no data rows: nothing to do")
    rows = _assign_keys(checker, checked, provider)
    if checker.hidden_no_value:
        notes.append(
            f"{checker.hidden_no_value:,} formula cells outside the request columns have no "
            "saved result and are carried as empty; open and save the file in Excel or "
            "LibreOffice to fill them"
        )
    file_problems = [
        Problem(
            path=checker.shown, row=None, column=None, value=None, message=n, severity="warning"
        )
        for n in table.notes + notes
    ]
    problems = file_problems + [p for row in rows if row.skipped is None for p in row.problems]
    columns = checker.order
    return Manifest(path=path, sheet=table.sheet, columns=columns, rows=rows, problems=problems)


def _values(info: ProviderInfo, kind: str) -> tuple[str, ...]:
    field = info.field(kind)
    return field.values if field is not None else ()


def _drop_unaccepted(table: RawTable, info: ProviderInfo) -> dict[str, int]:
    """Forget the request role of columns the provider has no field for (they stay the
    user's columns); the roles dropped and their columns."""
    cols, dropped = table.columns, {}
    for role in OPTIONAL_FIELDS:
        column = getattr(cols, role)
        if info.field(role) is None and column is not None:
            dropped[role] = column
    if dropped:
        kept = dataclasses.replace(cols)
        for role in dropped:
            setattr(kept, role, None)
        table.columns = kept
    return dropped


def _unaccepted_notes(
    dropped: dict[str, int], info: ProviderInfo, names: dict[int, str]
) -> list[str]:
    return [
        f"column {show(names.get(column, role))} is not sent: {info.label} has no {role}; "
        "it is kept as your own column"
        for role, column in dropped.items()
    ]


def _assign_keys(
    checker: _RowChecker, checked: list[_Checked], info: ProviderInfo
) -> list[ManifestRow]:
    """Keys in file order: ``id:<id>``, else the request hash plus ``#n`` for repeats."""
    first_id: dict[str, int] = {}
    seen_hash: dict[str, tuple[int, int]] = {}  # hash -> (occurrences so far, first row)
    rows: list[ManifestRow] = []
    for item in checked:
        key = ""
        if item.row_id:
            if item.row_id in first_id:
                message = (
                    f"id {show(item.row_id)} is already used by row {first_id[item.row_id]}; "
                    "ids must be unique"
                )
                item.problems.append(
                    checker.problem(item.number, checker.cols.id, item.row_id, message)
                )
            else:
                first_id[item.row_id] = item.number
                key = f"id:{item.row_id}"
        spec = _spec(item, "")
        if not key:
            base = request_key(**identity_request(spec))
            count, first = seen_hash.get(base, (0, item.number))
            seen_hash[base] = (count + 1, first)
            key = base if count == 0 else f"{base}#{count + 1}"
            duplicate = count and not item.row_id and not item.hidden
            if duplicate and not any(p.is_error for p in item.problems):
                item.problems.append(_duplicate_warning(checker, item.number, first))
        rows.append(_row(item, key, info))
    return rows


def _duplicate_warning(checker: _RowChecker, number: int, first: int) -> Problem:
    return Problem(
        path=checker.shown,
        row=number,
        column=None,
        value=None,
        message=(
            f"same request as row {first} (prompt, mode, ratio and images); it will be "
            "generated again as a job of its own. Delete it, or give the rows ids if both "
            "are meant"
        ),
        severity="warning",
    )


def _spec(item: _Checked, key: str) -> JobSpec:
    return JobSpec(
        key=key,
        row=item.number,
        prompt=item.prompt,
        mode=item.mode,
        ratio=item.ratio,
        images=item.images,
        duration=item.duration,
        resolution=item.resolution,
        model=item.model,
        image_digests=item.digests if any(item.digests) else (),
    )


def _row(item: _Checked, key: str, info: ProviderInfo) -> ManifestRow:
    errors = any(p.severity == "error" for p in item.problems)
    spec = None if errors else _spec(item, key)
    return ManifestRow(
        row=item.number,
        key=key,
        user=item.user,
        spec=spec,
        prompt=item.prompt_raw,
        problems=tuple(item.problems),
        skipped=HIDDEN_REASON if item.hidden else None,
        template=item.template,
        price=None if spec is None else info.price_of(spec),
    )
