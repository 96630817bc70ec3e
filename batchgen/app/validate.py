"""``batchgen validate`` (and ``run --dry-run``): every problem of the manifests, then the plan.

``validate`` reads manifests without calling the API: it lists every problem (a picture URL
the vendor could not use among them: each is fetched once, see :mod:`batchgen.app.pictures`),
then plans the run (rows to submit, credits, dollars, an honest duration at the tier's request
limit and the generations' latency, what a budget covers).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batchgen.app.copies import check_copies
from batchgen.app.pictures import check_manifest_pictures
from batchgen.app.plan import (
    ASSUMED_LATENCY_S,
    REQUESTS_PER_TASK,
    BudgetPlan,
    Plan,
    plan_budget,
    plan_manifest,
    plural,
)
from batchgen.app.provider import provider_of
from batchgen.app.reporting import JSON_VERSION, existing_state, provider_mismatch
from batchgen.app.review_loop import pending_regenerations
from batchgen.config import BudgetScope, ManifestSettings, Settings
from batchgen.errors import ManifestError, UsageError
from batchgen.manifest.identity import Generated, hold_regenerations
from batchgen.manifest.load import Manifest, find_manifests, no_manifest_message, read_manifest
from batchgen.manifest.model import Problem, safe
from batchgen.models import Job, JobStatus, request_changes
from batchgen.output.naming import NameTemplate, name_notes
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import ProviderInfo, format_usd
from batchgen.state.factory import open_store
from batchgen.state.protocol import ManifestStore
from batchgen.state.schema import changed_note

__all__ = [
    "ASSUMED_LATENCY_S",
    "REQUESTS_PER_TASK",
    "Plan",
    "ValidationResult",
    "format_report",
    "plan_manifest",
    "plural",
    "validate_exit_code",
    "validate_manifests",
    "validate_paths",
    "validation_json",
]

#: Problems listed per manifest in a report; the rest are counted.
MAX_LISTED_PROBLEMS = 50


def validate_exit_code(plans: Iterable[Plan], errors: Sequence[ManifestError]) -> int:
    """2 when a file is unusable, else 1 when some row is invalid, else 0."""
    if errors:
        return 2
    return 1 if any(plan.invalid for plan in plans) else 0


# --- the report --------------------------------------------------------------------------------


def format_report(
    manifests_and_plans: Sequence[tuple[Manifest, Plan]],
    errors: Sequence[ManifestError],
    *,
    max_problems: int = MAX_LISTED_PROBLEMS,
    budget: BudgetPlan | None = None,
) -> str:
    """A readable report: per manifest its problems as a table, then its plan; then the
    files that could not be read; then totals when there are several manifests, and the
    budget they share (``budget``: None when no budget is set)."""
    blocks = [_manifest_block(m, p, max_problems, budget) for m, p in manifests_and_plans]
    if errors:
        lines = ["Could not read:"] + [f"  {safe(str(e), 500)}" for e in errors]
        blocks.append("\n".join(lines))
    if len(manifests_and_plans) > 1:
        blocks.append(_totals([p for _, p in manifests_and_plans]))
        if budget is not None:
            blocks.append(_budget_block(budget, [p for _, p in manifests_and_plans]))
    return "\n\n".join(blocks) + "\n"


def _manifest_block(
    manifest: Manifest, plan: Plan, max_problems: int, budget: BudgetPlan | None = None
) -> str:
    title = safe(str(manifest.path), 300)
    if manifest.sheet is not None:
        title += f" (sheet '{safe(manifest.sheet)}')"
    lines = [title]
    if manifest.problems:
        lines += _problem_table(manifest, max_problems)
    else:
        lines.append("  no problems found")
    lines += [f"  warning: {note}" for note in plan.notes]
    lines.append("")
    lines += _plan_lines(plan, budget)
    return "\n".join(lines)


def _problem_table(manifest: Manifest, max_problems: int) -> list[str]:
    shown = manifest.problems[:max_problems]
    cells = [
        (
            "" if p.row is None else str(p.row),
            "" if p.column is None else safe(p.column, 24),
            p.severity,
            p.message,
        )
        for p in shown
    ]
    head = ("row", "column", "severity", "problem")
    widths = [max(len(head[i]), *(len(c[i]) for c in cells)) for i in range(3)]
    lines = [
        _table_line(head, widths),
        _table_line((*("-" * w for w in widths), "-------"), widths),
    ]
    lines += [_table_line(c, widths) for c in cells]
    hidden = len(manifest.problems) - len(shown)
    if hidden:
        lines.append(f"  ... and {plural(hidden, 'more problem')} not listed")
    return lines


def _table_line(cells: tuple[str, ...], widths: list[int]) -> str:
    row, column, severity, message = cells
    return (
        f"  {row.rjust(widths[0])}  {column.ljust(widths[1])}  "
        f"{severity.ljust(widths[2])}  {message}"
    ).rstrip()


def _plan_lines(plan: Plan, budget: BudgetPlan | None = None) -> list[str]:
    rows = f"{plan.rows:,}: {plan.valid:,} valid, {plan.invalid:,} invalid"
    if plan.skipped:
        rows += f", {plan.skipped:,} hidden (skipped)"
    rows += f"; {plural(plan.takes, 'take')}"
    if plan.done:
        rows += f", {plan.done:,} already done"
    if plan.regenerate:
        rows += f"; {plural(plan.regenerate, 'take')} to regenerate (review decisions)"
    lines = [
        f"  rows           {rows}",
        f"  to submit      {plural(plan.to_submit, 'generation')}",
        f"  cost           {_cost(plan)}",
        f"  duration       {_time_line(plan)}",
    ]
    if budget is not None and budget.manifests > 1:
        lines.append(
            f"  budget         about {plan.budget_covers or 0:,} of {plan.to_submit:,} "
            f"generations: the run's one budget is shared by its {budget.manifests} manifests "
            "(see Budget below)"
        )
    elif budget is not None:
        lines.append(f"  budget         {_budget_amount(budget)}; this manifest alone uses it")
    elif plan.budget_covers is not None:
        budget_text = plan.unit.show(plan.max_credits or 0)
        budget_text = budget_text.split(" (")[0] if plan.unit.credits else budget_text
        lines.append(
            f"  budget         {budget_text} cover{'s' if not plan.unit.credits else ''} "
            f"{plan.budget_covers:,} of {plan.to_submit:,} generations"
        )
    return lines


def _cost(plan: Plan) -> str:
    """``80 credits (40 each), about $0.80`` or ``$3.20 ($0.40 to $0.80 each)``."""
    unit = plan.unit
    each = ""
    if len(plan.prices) == 1:
        each = unit.show(plan.prices[0]).split(" (")[0] + " each"
    elif plan.prices:
        low, high = (unit.show(p).split(" (")[0] for p in (plan.prices[0], plan.prices[-1]))
        each = f"{low} to {high} each"
    if unit.credits:
        each = f" ({each.replace(' credits each', ' each')})" if each else ""
        return f"{plural(plan.credits, 'credit')}{each}, about ${plan.usd:,.2f}"
    return f"{format_usd(plan.usd)} ({each})" if each else format_usd(plan.usd)


def _tier(rpm: int, tiers: Mapping[str, int] | None = None) -> str:
    names = [name for name, limit in (tiers or {}).items() if limit == rpm]
    if names:
        return f"the {names[0]} tier ({rpm:,} requests/min)"
    if rpm % 60 == 0 and rpm < 600:
        return f"{rpm // 60:,} request{'s' if rpm != 60 else ''}/s"
    return f"{rpm:,} requests/min"


def _budget_amount(budget: BudgetPlan) -> str:
    """``2,000 credits (~$20.00) for this run: they cover 50 of 60 generations``, or with
    scope ``total``, what earlier runs spent and what is left."""
    amount = budget.amount(budget.credits)
    if budget.unit.credits:
        amount += f" (~${budget.usd:,.2f})"
    covers = f"{budget.covers:,} of {budget.to_submit:,} generations"
    if budget.scope is BudgetScope.TOTAL:
        return (
            f"{amount} for these manifests' runs together (--budget-scope total): earlier "
            f"runs spent {budget.amount(budget.spent_before, named=False)}, the "
            f"{budget.amount(budget.left, named=False)} left cover {covers}"
        )
    return f"{amount} for this run (--budget-scope run): they cover {covers}"


def _budget_block(budget: BudgetPlan, plans: Sequence[Plan]) -> str:
    """Which manifests share the budget and how much of it each may use."""
    shares = ", ".join(
        f"{plan.path.name} about {share:,}"
        for plan, share in zip(plans, budget.shares, strict=True)
    )
    text = (
        f"Budget: {_budget_amount(budget)} ({shares}). One budget for the whole run, not one "
        f"per manifest: its {budget.manifests} manifests share it. Takes are sent from each "
        "manifest in turn, so while several have takes to send they spend it about equally; "
        "any of them may use what the others leave. Another batchgen run (another cron "
        "line) has a budget of its own."
    )
    return textwrap.fill(text, width=96, subsequent_indent="  ", break_on_hyphens=False)


def _time_line(plan: Plan) -> str:
    """``about 25 min at the free tier (100 requests/min) if generations take ~1 min each``."""
    if not plan.to_submit:
        return "nothing to generate"
    taken = f"~{_about(plan.latency_s / 60)} each"
    if plan.latency_samples:
        taken += f", as {plural(plan.latency_samples, 'earlier generation')} took"
    return (
        f"about {_about(plan.estimated_minutes)} at {_tier(plan.rpm, dict(plan.tiers))} "
        f"if generations take {taken} (at least {_duration(plan.min_minutes)}: "
        f"{REQUESTS_PER_TASK} requests per generation)"
    )


def _about(minutes: float) -> str:
    """An estimate, rounded as people say it: ``40 s``, ``3 min``, ``2 h 5 min``."""
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} s"
    whole = round(minutes)
    hours, mins = divmod(whole, 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def _totals(plans: list[Plan]) -> str:
    to_submit = sum(p.to_submit for p in plans)
    credits = sum(p.credits for p in plans)
    usd = sum(p.usd for p in plans)
    minutes = sum(p.min_minutes for p in plans)
    credited = all(p.unit.credits for p in plans)
    cost = f"{plural(credits, 'credit')}, about ${usd:,.2f}" if credited else format_usd(usd)
    return (
        f"Total: {plural(len(plans), 'manifest')}, {sum(p.valid for p in plans):,} valid and "
        f"{sum(p.invalid for p in plans):,} invalid rows, "
        f"{plural(to_submit, 'generation')} to submit, "
        f"{cost}, at least {_duration(minutes)} "
        "(the request limit is shared by the whole account)"
    )


def _duration(minutes: float) -> str:
    seconds = round(minutes * 60)
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    mins, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min {secs} s" if secs else f"{mins} min"


# --- one call for the CLI ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationResult:
    """Everything ``batchgen validate`` prints and returns."""

    results: list[tuple[Manifest, Plan]] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    report: str = ""
    exit_code: int = 0
    budget: BudgetPlan | None = None


def validate_paths(
    paths: Sequence[Path],
    *,
    rpm: int,
    manifest_settings: ManifestSettings | None = None,
    max_credits: int | None = None,
    done_keys: Callable[[Path], Collection[str]] | None = None,
    latencies: Callable[[Path], Sequence[float]] | None = None,
    notes: Callable[[Path, Manifest], Sequence[str]] | None = None,
    generated: Callable[[Path], Iterable[Generated]] | None = None,
    name_template: str | None = None,
    regenerations: Callable[[Path, Manifest], Sequence[str]] | None = None,
    budget_scope: BudgetScope = BudgetScope.RUN,
    spent: Callable[[Path], int] | None = None,
    pictures: Callable[[Path, Manifest], Manifest] | None = None,
    copies: Callable[[Path, Manifest], Manifest] | None = None,
    provider: ProviderInfo | None = None,
) -> ValidationResult:
    """Read, validate and plan every manifest under ``paths``; build the report.

    Each manifest is read as ``manifest_settings`` say (sheet, hidden rows, defaults,
    variants, prompt template; default: as it is), and rows asking for a request generated
    under another key are held unless ``manifest_settings.allow_regenerate``.

    ``done_keys(path)`` returns the keys already downloaded for a manifest (from its state,
    when there is one), ``latencies(path)`` its earlier generations' durations in seconds,
    ``notes(path, manifest)`` warnings about the manifest against its state, and
    ``generated(path)`` the requests its state already generated, so that rows asking for
    one of them under another key are reported as ``run`` would hold them (see
    :mod:`batchgen.manifest.identity`). A file that cannot be read is collected as an
    error, not raised. ``name_template`` (``--name-template``) is checked as ``run`` checks
    it: a malformed one, or one naming a column a manifest lacks, is a file-wide error with
    ``run``'s message (exit 2); rows whose video would get a hashed name are warnings.
    ``regenerations(path, manifest)`` are the keys of the takes a run would add for the
    review's ``regenerate`` decisions (:func:`batchgen.app.review_loop.pending_regenerations`).
    With ``max_credits``, the run's one budget is planned over every manifest
    (:func:`batchgen.app.plan.plan_budget`): ``budget_scope`` says what it counts and
    ``spent(path)`` the credits earlier runs of a manifest spent (scope ``total``).
    ``pictures(path, manifest)`` returns the manifest with the rows whose picture fails its
    check made invalid (:func:`batchgen.app.pictures.check_manifest_pictures`).
    ``provider`` (None: the default) decides what a row may ask for and what it costs;
    ``max_credits`` is the budget in its billing unit.
    ``copies(path, manifest)`` is the manifest as ``run`` would send it when it is a copy,
    a rename or a hard link of another (:func:`batchgen.app.copies.check_copies`); it runs
    before the other callbacks.
    """
    info = provider or DEFAULT
    reading = manifest_settings or ManifestSettings()
    results: list[tuple[Manifest, Plan]] = []
    errors: list[ManifestError] = []
    names_wrong = False
    try:
        files = find_manifests(paths)
    except ManifestError as exc:
        files, errors = [], [exc]
    if not files and not errors:
        return ValidationResult(report=no_manifest_message(paths) + "\n", exit_code=2)
    for path in files:
        try:
            manifest = read_manifest(path, reading, info)
        except ManifestError as exc:
            errors.append(exc)
            continue
        if copies is not None:
            manifest = copies(path, manifest)
        if generated is not None:
            allow = reading.allow_regenerate
            manifest, _ = hold_regenerations(manifest, generated(path), allow=allow)
        if name_template:
            manifest, wrong = _check_names(manifest, name_template)
            names_wrong = names_wrong or wrong
        if pictures is not None:
            manifest = pictures(path, manifest)
        done = done_keys(path) if done_keys is not None else ()
        plan = plan_manifest(
            manifest,
            done_keys=done,
            rpm=rpm,
            max_credits=max_credits,
            latencies=latencies(path) if latencies is not None else (),
            notes=notes(path, manifest) if notes is not None else (),
            regenerate=len(regenerations(path, manifest)) if regenerations is not None else 0,
            unit=info.unit,
            tiers={k: v for k, v in info.limits.tiers.items() if info.limits.window == 60.0},
        )
        results.append((manifest, plan))
    budget = None
    if max_credits is not None and results:
        before = 0
        if budget_scope is BudgetScope.TOTAL and spent is not None:
            before = sum(spent(plan.path) for _, plan in results)
        budget = plan_budget(
            [plan for _, plan in results], credits=max_credits, scope=budget_scope,
            spent_before=before, unit=info.unit,
        )  # fmt: skip
        results = [
            (manifest, replace(plan, budget_covers=share))
            for (manifest, plan), share in zip(results, budget.shares, strict=True)
        ]
    plans = [plan for _, plan in results]
    return ValidationResult(
        results=results,
        errors=errors,
        report=format_report(results, errors, budget=budget),
        exit_code=2 if names_wrong else validate_exit_code(plans, errors),
        budget=budget,
    )


def _check_names(manifest: Manifest, template: str) -> tuple[Manifest, bool]:
    """``manifest`` with the problems of ``template`` for it added (see ``validate_paths``),
    and whether the template is unusable for it."""
    shown = str(manifest.path)  # as the user gave it; run's message names the file
    try:
        parsed = NameTemplate.parse(template)
        parsed.check_columns(manifest.columns, manifest.path.name)
    except UsageError as exc:
        found = [Problem(path=shown, row=None, column=None, value=template, message=str(exc))]
        return replace(manifest, problems=found + manifest.problems), True
    jobs = [
        Job(key=r.spec.key, row=r.row, prompt=r.spec.prompt, mode=r.spec.mode, ratio=r.spec.ratio,
            user=r.user)
        for r in manifest.rows
        if r.valid and r.spec is not None
    ]  # fmt: skip
    notes = [
        Problem(path=shown, row=job.row, column=None, value=None, message=note, severity="warning")
        for job, note in name_notes(parsed, jobs)
    ]
    in_order = sorted(manifest.problems + notes, key=lambda p: -1 if p.row is None else p.row)
    return replace(manifest, problems=in_order), False


def validate_manifests(
    paths: Sequence[Path], settings: Settings, *, as_json: bool = False
) -> tuple[str, int]:
    """The ``validate`` report (text or JSON) and its exit code: 0 all valid, 1 some
    invalid, 2 unusable. UsageError for a budget the provider cannot take (``--max-credits``
    with a provider that bills dollars) or an unknown provider or tier."""
    info = provider_of(settings)
    api = settings.api
    requests, window = info.limits.resolve(
        rpm=api.rpm, rps=api.rps, tier=api.tier, window=api.rate_window
    )
    budget = info.unit.limit(
        max_credits=settings.limits.max_credits, max_usd=settings.limits.max_usd
    )
    checked: dict[str, str | None] = {}  # each picture URL is fetched once
    out = settings.output.out_dir
    aliases: dict[Path, Path] = {}  # manifest -> the state of the one it was renamed from

    def from_state(path: Path, read: Any, empty: Any) -> Any:
        return _from_state(out, path, read, empty, aliases.get(path))

    def copies(path: Path, manifest: Manifest) -> Manifest:
        own = existing_state(out, path)
        keys = {spec.key for spec in from_state(path, _generated_requests, [])}
        held, alias = check_copies(
            out, path, manifest, own_state=own, own_generated=keys,
            allow=settings.manifest.allow_regenerate,
        )  # fmt: skip
        if alias is not None:
            aliases[path] = alias.state
        hint = provider_mismatch(out, path, info.name)  # run would refuse it (exit 2)
        if hint is None:
            return held
        said = Problem(path=str(path), row=None, column=None, value=None, message=hint,
                       severity="warning")  # fmt: skip
        return replace(held, problems=[said, *held.problems])

    result = validate_paths(
        list(paths),
        provider=info,
        rpm=max(1, round(requests * 60 / window)),
        manifest_settings=settings.manifest,
        max_credits=budget,
        done_keys=lambda path: from_state(path, lambda s: s.done_keys(), set()),
        latencies=lambda path: from_state(path, lambda s: s.latency_samples(), []),
        notes=lambda path, manifest: _edited_rows(settings.output.out_dir, path, manifest),
        generated=lambda path: from_state(path, _generated_requests, []),
        name_template=settings.output.name_template,
        regenerations=lambda path, manifest: from_state(
            path, lambda s: pending_regenerations(s, manifest), []
        ),
        budget_scope=settings.limits.budget_scope,
        spent=lambda path: from_state(path, lambda s: s.spend().total, 0),
        pictures=lambda path, manifest: check_manifest_pictures(
            manifest, settings, sent=from_state(path, _sent_keys, set()), known=checked
        ),
        copies=copies,
    )
    if as_json:
        return json.dumps(validation_json(result), indent=2, ensure_ascii=False), result.exit_code
    return result.report, result.exit_code


def _from_state(
    out_dir: Path | None, manifest: Path, read: Any, empty: Any, state: Path | None = None
) -> Any:
    """``read(store)`` of the manifest's state (``state`` when given), else ``empty``."""
    state = state or existing_state(out_dir, manifest)
    if state is None:
        return empty
    with open_store(state) as store:
        return read(store)


#: A job in one of these has a task in flight or a video: its pictures are not sent again.
_SENT = frozenset(
    {
        JobStatus.SUBMITTING,
        JobStatus.SUBMITTED,
        JobStatus.RUNNING,
        JobStatus.COMPLETED,
        JobStatus.DOWNLOADED,
        JobStatus.DOWNLOAD_FAILED,
    }
)


def _sent_keys(store: ManifestStore) -> set[str]:
    return {job.key for job in store.iter_jobs() if job.status in _SENT}


def _generated_requests(store: ManifestStore) -> list[Generated]:
    return list(store.generated_requests())


#: A row in one of these follows the manifest: nothing was sent for its request yet.
_UNSENT = frozenset({JobStatus.PENDING, JobStatus.INVALID, JobStatus.SKIPPED})


def _edited_rows(out_dir: Path | None, path: Path, manifest: Manifest) -> list[str]:
    """Rows edited in the manifest after their request was sent, one note each naming every
    field that changed with its value then and now (they keep their video: nothing is sent
    again on its own). Every request field is compared (``models.request_changes``)."""
    state = existing_state(out_dir, path)
    if state is None:
        return []
    current = {spec.key: spec for spec in manifest.valid}
    notes = []
    with open_store(state) as store:
        for job in store.iter_jobs(in_manifest_only=True):
            spec = current.get(job.key)
            if spec is None or job.status in _UNSENT:
                continue
            changes = request_changes(job.spec(), spec)
            if changes:
                notes.append(changed_note(spec.row, job.key, job.status, changes))
    return notes


def _plan_json(manifest: Manifest, plan: Plan) -> dict[str, Any]:
    return {
        "path": str(plan.path),
        "sheet": manifest.sheet,
        "rows": plan.rows,
        "valid": plan.valid,
        "invalid": plan.invalid,
        "takes": plan.takes,
        "regenerate": plan.regenerate,
        "already_done": plan.done,
        "to_submit": plan.to_submit,
        "credits": plan.credits if plan.unit.credits else None,
        "usd": round(plan.usd, 6),
        "requests_per_minute": plan.rpm,
        "minimum_minutes": round(plan.min_minutes, 2),
        "estimated_minutes": round(plan.estimated_minutes, 2),
        "generation_seconds": round(plan.latency_s, 1),
        "generation_seconds_learned_from": plan.latency_samples,
        "budget_credits": plan.max_credits if plan.unit.credits else None,
        "budget_usd": None if plan.max_credits is None else plan.unit.usd(plan.max_credits),
        "budget_covers": plan.budget_covers,
        "problems": [
            {"row": p.row, "column": p.column, "severity": p.severity, "message": p.message}
            for p in manifest.problems
        ],
        "warnings": list(plan.notes),
    }


def validation_json(result: ValidationResult) -> dict[str, Any]:
    """The ``validate --json`` document (keys listed in docs/reference.md)."""
    plans = [plan for _, plan in result.results]
    return {
        "version": JSON_VERSION,
        "exit_code": result.exit_code,
        "manifests": [_plan_json(m, p) for m, p in result.results],
        "unreadable": [_error_json(e) for e in result.errors],
        "totals": {
            "to_submit": sum(p.to_submit for p in plans),
            "credits": sum(p.credits for p in plans)
            if all(p.unit.credits for p in plans)
            else None,
            "usd": round(sum(p.usd for p in plans), 6),
            "minimum_minutes": round(sum(p.min_minutes for p in plans), 2),
        },
        "budget": _budget_json(result.budget),
    }


def _budget_json(budget: BudgetPlan | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {
        "credits": budget.credits if budget.unit.credits else None,
        "usd": budget.usd,
        "scope": budget.scope.value,
        "shared_by": budget.manifests,
        "spent_before": budget.spent_before,
        "covers": budget.covers,
    }


def _error_json(error: ManifestError) -> dict[str, str]:
    return {"path": str(error.path), "error": error.reason}
