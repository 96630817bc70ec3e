"""The plan of one manifest's run for ``batchgen validate``: rows, takes, cost, time."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from batchgen.config import BudgetScope
from batchgen.errors import UsageError
from batchgen.manifest.load import Manifest
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import BillingUnit, format_usd

__all__ = [
    "ASSUMED_LATENCY_S",
    "REQUESTS_PER_TASK",
    "BudgetPlan",
    "Plan",
    "plan_budget",
    "plan_manifest",
    "plural",
    "share_budget",
]

#: Each generation costs at least one submit and one status request.
REQUESTS_PER_TASK = 2
#: How long a generation is assumed to take when no earlier run of the manifest measured it.
ASSUMED_LATENCY_S = 60.0


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 generation``, ``2 generations``, ``1,000 rows``."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What running a manifest would do and cost, worked out without the network.

    ``rows``, ``valid``, ``invalid`` and ``skipped`` count rows of the sheet; ``takes`` the
    videos its valid rows ask for (a row with variants asks for several), ``regenerate`` the
    takes the next run adds for ``regenerate`` decisions in the review. ``done`` counts
    takes already downloaded in the state; ``to_submit`` the takes to generate;
    ``min_minutes`` is the least time the run needs at ``rpm`` requests per minute (two
    requests per generation at least); ``credits`` is the cost in the provider's billing
    ``unit`` (credits, or micro-dollars: each row at its price), ``usd`` the same in dollars;
    ``budget_covers`` is how many generations ``max_credits`` (the budget, in the same unit)
    pays for, in file order (None: no budget). ``latency_s`` is how long one generation
    takes (learned from ``latency_samples`` earlier ones, or ``ASSUMED_LATENCY_S`` when 0);
    ``notes`` are warnings about the manifest against its state
    (e.g. a prompt edited after generation).
    """

    path: Path
    rows: int
    valid: int
    invalid: int
    done: int
    to_submit: int
    credits: int
    usd: float
    min_minutes: float
    budget_covers: int | None
    rpm: int
    max_credits: int | None = None
    unit: BillingUnit = DEFAULT.unit
    prices: tuple[int, ...] = ()  # the distinct prices of the rows to submit
    tiers: tuple[tuple[str, int], ...] = ()  # the provider's named limits (per minute)
    warnings: int = 0
    latency_s: float = ASSUMED_LATENCY_S
    latency_samples: int = 0
    notes: tuple[str, ...] = ()

    @property
    def estimated_minutes(self) -> float:
        """The likely duration: the request limit's floor, or one batch of submits plus one
        generation, whichever is longer (the README's lower bound, minutes)."""
        if not self.to_submit:
            return 0.0
        return max(self.min_minutes, self.to_submit / self.rpm + self.latency_s / 60)

    skipped: int = 0  # rows hidden in the sheet, not sent
    takes: int = 0
    regenerate: int = 0


def plan_manifest(
    manifest: Manifest,
    *,
    done_keys: Collection[str] = (),
    rpm: int,
    max_credits: int | None = None,
    latencies: Sequence[float] = (),
    notes: Sequence[str] = (),
    regenerate: int = 0,
    unit: BillingUnit = DEFAULT.unit,
    tiers: Mapping[str, int] | None = None,
) -> Plan:
    """Plan the run of ``manifest``, skipping rows whose key is in ``done_keys``.

    ``rpm`` is the request limit per minute; ``max_credits`` the budget in ``unit`` (the
    provider's billing unit). Each row costs its price (``ManifestRow.price``).

    ``latencies`` are earlier generations' durations in seconds (their median becomes the
    plan's ``latency_s``); ``notes`` are carried into the report as warnings; ``regenerate``
    takes (the variants a run adds for review decisions) are submitted on top of the rows'.
    """
    if rpm <= 0:
        raise UsageError(f"the request limit must be a positive number, not {rpm}")
    done_set = done_keys if isinstance(done_keys, set | frozenset) else set(done_keys)
    valid = manifest.valid
    done = sum(1 for spec in valid if spec.key in done_set)
    to_submit = len(valid) - done + regenerate
    prices = [
        row.price or 0
        for row in manifest.rows
        if row.valid and row.spec is not None and row.spec.key not in done_set
    ]
    if regenerate:  # a regenerated take costs what its row costs: the dearest, to be safe
        dearest = max((row.price or 0 for row in manifest.rows if row.valid), default=0)
        prices += [dearest] * regenerate
    credits = sum(prices)
    covers = None if max_credits is None else _covered(prices, max(max_credits, 0))
    return Plan(
        path=manifest.path,
        rows=len({row.row for row in manifest.rows}),
        valid=len({spec.row for spec in valid}),
        invalid=len({row.row for row in manifest.invalid}),
        skipped=len({row.row for row in manifest.skipped}),
        takes=len(valid),
        regenerate=regenerate,
        done=done,
        to_submit=to_submit,
        credits=credits,
        usd=round(unit.usd(credits), 6),
        min_minutes=REQUESTS_PER_TASK * to_submit / rpm,
        budget_covers=covers,
        rpm=rpm,
        max_credits=max_credits,
        unit=unit,
        prices=tuple(sorted(set(prices))),
        tiers=tuple((DEFAULT.limits.tiers if tiers is None else tiers).items()),
        warnings=len(manifest.warnings) + len(notes),
        latency_s=_median(latencies) if latencies else ASSUMED_LATENCY_S,
        latency_samples=len(latencies),
        notes=tuple(notes),
    )


def _covered(prices: Sequence[int], budget: int) -> int:
    """How many of ``prices``, sent in order, fit in ``budget``."""
    spent = count = 0
    for price in prices:
        if spent + price > budget:
            break
        spent += price
        count += 1
    return count


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetPlan:
    """What ``--max-credits`` / ``--max-usd`` pays for in one run, over every manifest of it.

    One budget per ``batchgen run``, never one per manifest: the run's ``manifests`` share it
    (another ``batchgen run``, such as a second cron line, has its own). ``scope`` says what
    it counts (``run``: this run's spend; ``total``: also ``spent_before``, the credits
    earlier runs of these manifests charged, committed or possibly charged). ``covers`` is how
    many generations it pays for (40 credits each) of ``to_submit``; ``shares`` how many of
    each manifest's, in order (the engine takes a take from each manifest in turn, see
    :func:`share_budget`).
    """

    credits: int  # the budget, in ``unit`` (the provider's billing unit)
    scope: BudgetScope
    manifests: int
    spent_before: int
    to_submit: int
    covers: int
    shares: tuple[int, ...]
    unit: BillingUnit = DEFAULT.unit

    @property
    def usd(self) -> float:
        """The budget in USD."""
        return round(self.unit.usd(self.credits), 6)

    def amount(self, units: int, *, named: bool = True) -> str:
        """``2,000 credits`` (``2,000`` unless ``named``) or ``$20.00``: ``units`` as this
        budget's unit is shown."""
        if self.unit.credits:
            return f"{units:,} credits" if named else f"{units:,}"
        return format_usd(self.unit.usd(units))

    @property
    def left(self) -> int:
        """Credits left for this run once earlier spend is counted (scope ``total``)."""
        return max(0, self.credits - self.spent_before)


def share_budget(to_submit: Sequence[int], covers: int) -> list[int]:
    """How many of ``covers`` generations each manifest gets when they are taken from each
    manifest in turn (the engine's round robin) until the budget runs out: equal shares while
    several have takes to send, and what one leaves goes to the others; the first manifests
    get the remainder. ``sum`` of the result is ``min(covers, sum(to_submit))``."""
    if covers <= 0:
        return [0] * len(to_submit)
    if covers >= sum(to_submit):
        return list(to_submit)
    low, high = 0, max(to_submit)  # the largest level L with sum(min(n, L)) <= covers
    while low < high:
        level = (low + high + 1) // 2
        if sum(min(n, level) for n in to_submit) <= covers:
            low = level
        else:
            high = level - 1
    shares = [min(n, low) for n in to_submit]
    extra = covers - sum(shares)
    for index, n in enumerate(to_submit):
        if extra and n > low:
            shares[index] += 1
            extra -= 1
    return shares


def plan_budget(
    plans: Sequence[Plan],
    *,
    credits: int,
    scope: BudgetScope,
    spent_before: int = 0,
    unit: BillingUnit = DEFAULT.unit,
) -> BudgetPlan:
    """The run's one budget over ``plans``, in ``unit`` (``spent_before`` counts only with
    scope ``total``). A generation counts at the plans' average price."""
    before = spent_before if scope is BudgetScope.TOTAL else 0
    to_submit = [plan.to_submit for plan in plans]
    cost = sum(plan.credits for plan in plans)
    each = max(1, -(-cost // max(1, sum(to_submit))))  # the average price, rounded up
    covers = min(sum(to_submit), max(0, credits - before) // each)
    return BudgetPlan(
        unit=unit,
        credits=credits,
        scope=scope,
        manifests=len(plans),
        spent_before=before,
        to_submit=sum(to_submit),
        covers=covers,
        shares=tuple(share_budget(to_submit, covers)),
    )
