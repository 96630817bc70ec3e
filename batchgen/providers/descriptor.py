"""A provider described by data: what it accepts, what it costs, how it limits, what it says.

One :class:`ProviderInfo` per vendor, declared in the vendor's own module and registered with
one line in :mod:`batchgen.providers.catalog`. Everything outside ``providers/`` that needs to
know a vendor's rules reads them from here: ``validate`` and the manifest reader (the request
fields, their values, ranges and defaults), the plan, the budget, the ledger and the results
(the price and the billing unit), the throttle (the limit model), the commands (the token
variable, the token-file variable, the default base URL). No module outside ``providers/``
names a vendor, a price or a token variable.

Money is counted in whole *units* of the provider's :class:`BillingUnit`: a credit for a vendor
that bills in credits, a micro-dollar (10^-6 USD) for one that bills in dollars, so every sum
is an exact integer and a sub-cent price per input image is still exact.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from batchgen.errors import UsageError

if TYPE_CHECKING:
    from batchgen.config import Timeouts
    from batchgen.models import JobSpec
    from batchgen.providers.base import Provider
    from batchgen.providers.ratelimit import RateInfo
    from batchgen.providers.token import Token

__all__ = [
    "CREDIT",
    "CREDIT_BILLING",
    "MICRO_USD",
    "UNITS",
    "Billing",
    "BillingUnit",
    "ClientOptions",
    "LimitModel",
    "LocalImages",
    "Price",
    "ProviderInfo",
    "RequestField",
    "SpendLike",
    "StatusWords",
    "format_usd",
    "unit_named",
]

_MICRO = 1_000_000


def format_usd(usd: float) -> str:
    """``$0.40``, ``$0.402`` or ``$1,234.50``: cents always, sub-cent digits only when there."""
    text = f"{usd:,.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


class SpendLike(Protocol):
    """Three sums in a provider's units (``state.spend.Spend`` is one)."""

    @property
    def charged(self) -> int: ...
    @property
    def committed(self) -> int: ...
    @property
    def possible(self) -> int: ...


@dataclass(frozen=True, slots=True)
class BillingUnit:
    """What one unit of a provider's money is: its name and its worth in micro-dollars.

    ``credits`` is True for a vendor that bills in credits: its figures are shown in credits
    and in USD, and ``--max-credits`` applies; otherwise only USD is shown and
    ``--max-credits`` is refused.
    """

    name: str  # the name the state records ("credit", "usd")
    micro_usd: int  # what one unit is worth, in 10^-6 USD
    credits: bool

    def usd(self, amount: int) -> float:
        """``amount`` units in USD."""
        return amount * self.micro_usd / _MICRO

    def show(self, amount: int) -> str:
        """``40 credits (~$0.40)`` or ``$0.40``."""
        if self.credits:
            return f"{amount:,} credits (~{format_usd(self.usd(amount))})"
        return format_usd(self.usd(amount))

    def limit(self, *, max_credits: int | None, max_usd: float | None) -> int | None:
        """The budget in units: the smaller of ``--max-credits`` and ``--max-usd`` (rounded
        down, so the budget in USD is never exceeded). UsageError for ``--max-credits`` with
        a provider that does not bill in credits."""
        limits: list[int] = []
        if max_credits is not None:
            if not self.credits:
                raise UsageError(
                    "--max-credits: this provider bills in US dollars, not credits; "
                    "give the budget with --max-usd"
                )
            limits.append(int(max_credits))
        if max_usd is not None:
            micro = Decimal(str(max_usd)) * _MICRO
            limits.append(int(micro // self.micro_usd))
        return min(limits) if limits else None

    def spend_text(self, spend: SpendLike) -> str:
        """``charged $0.80, committed in flight $0.40, possibly charged $0.00 ($1.20 at most)``
        (credits first for a vendor that bills credits)."""
        total = spend.charged + spend.committed + spend.possible
        if self.credits:
            return (
                f"credits charged {spend.charged}, committed in flight {spend.committed}, "
                f"possibly charged {spend.possible} (~{format_usd(self.usd(total))} at most)"
            )
        return (
            f"charged {format_usd(self.usd(spend.charged))}, committed in flight "
            f"{format_usd(self.usd(spend.committed))}, possibly charged "
            f"{format_usd(self.usd(spend.possible))} ({format_usd(self.usd(total))} at most)"
        )

    def spend_fields(self, spend: SpendLike) -> dict[str, float | int]:
        """The three figures for a JSON document: in USD always, in credits when billed so."""
        fields: dict[str, float | int] = {}
        if self.credits:
            fields.update(
                credits_charged=spend.charged,
                credits_committed=spend.committed,
                credits_possibly_charged=spend.possible,
            )
        fields.update(
            usd_charged=round(self.usd(spend.charged), 6),
            usd_committed=round(self.usd(spend.committed), 6),
            usd_possibly_charged=round(self.usd(spend.possible), 6),
        )
        return fields


#: A reseller's credit: $0.01 (the GrokImagine contract: "40 credits (about 0.40 USD)").
CREDIT = BillingUnit(name="credit", micro_usd=10_000, credits=True)
#: One millionth of a US dollar: the unit of a vendor that bills in dollars.
MICRO_USD = BillingUnit(name="usd", micro_usd=1, credits=False)
#: Units by the name a state records.
UNITS: Mapping[str, BillingUnit] = {unit.name: unit for unit in (CREDIT, MICRO_USD)}


@dataclass(frozen=True, slots=True)
class Billing:
    """How the engine counts a provider's money: in ``unit``, each finished task at the
    vendor's reported figure when plausible, else at its row's price (never below the price
    with ``floor``: a contract that fixes the price)."""

    unit: BillingUnit
    floor: bool = False
    plausible_factor: int = 100

    def settle(self, estimate: int, reported: int | None) -> int:
        """What a finished task counts as (``estimate``: its row's price)."""
        if reported is None or reported <= 0:
            return estimate
        if estimate > 0 and reported > self.plausible_factor * estimate:
            return estimate
        return max(reported, estimate) if self.floor else reported


#: The engine's billing when it is not told: credits, the price fixed by the contract.
CREDIT_BILLING = Billing(CREDIT, floor=True)


def unit_named(name: str | None) -> BillingUnit:
    """The unit a state recorded (meta ``billing_unit``); a state written before providers
    were data holds credits."""
    return UNITS.get(name or CREDIT.name, CREDIT)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestField:
    """One request field a provider accepts, as a manifest column sets it.

    ``name`` is the :class:`~batchgen.models.JobSpec` field; ``wire`` the vendor's name for it.
    ``values`` lists the accepted values (empty: any in ``low``..``high`` for a number);
    ``by_model`` narrows them for a model (a resolution only one model offers). ``default``
    is what the vendor uses when the field is not sent; ``required`` fields have none, and a
    row without one (and without a ``--default-...``) is invalid.
    """

    name: str
    wire: str
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    default: str | int | None = None
    required: bool = False
    by_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unit: str = ""  # "s" for a duration, shown in messages

    def allowed(self, model: str | None = None) -> tuple[str, ...]:
        """The values accepted with ``model`` (or at all)."""
        if model is not None and model in self.by_model:
            return self.by_model[model]
        return self.values

    def describe(self, model: str | None = None) -> str:
        """``1:1, 16:9 or 9:16`` / ``1 to 15 s``: what a message lists as allowed."""
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}{' ' + self.unit if self.unit else ''}"
        values = self.allowed(model)
        return ", ".join(values[:-1]) + (" or " if len(values) > 1 else "") + values[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalImages:
    """Whether an ``images`` cell may name a local file, and within which limits.

    ``max_bytes`` bounds a file; one above ``inline_below`` bytes is uploaded (Files API)
    rather than sent inline as a base64 data URI. ``types`` are the formats checked by their
    leading bytes.
    """

    max_bytes: int
    inline_below: int
    types: tuple[str, ...] = ("jpeg", "png", "webp")


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """What one task costs, in the provider's units.

    ``per_task`` is a flat price; ``per_second`` is keyed ``(model, resolution)`` and
    multiplied by the duration; ``per_image`` is added per input image. ``floor``: the vendor's
    reported figure never lowers the estimate (a contract that fixes the price); otherwise a
    plausible reported figure replaces it (:class:`Billing`).
    """

    per_task: int = 0
    per_second: Mapping[tuple[str, str], int] = field(default_factory=dict)
    per_image: int = 0
    per_image_by_model: Mapping[str, int] = field(default_factory=dict)
    floor: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitModel:
    """How the vendor limits requests: ``requests`` per ``window`` seconds, per account.

    ``tiers`` names the per-account limits a plan buys (empty: one limit for everybody).
    ``status_calls_count``: whether a status request counts against the limit (when the
    vendor does not say, it is assumed to).
    """

    requests: int
    window: float
    tiers: Mapping[str, int] = field(default_factory=dict)
    default_tier: str | None = None
    status_calls_count: bool = True

    @property
    def per(self) -> str:
        """``minute`` or ``second``: how the limit is stated."""
        return "second" if self.window <= 1.0 else "minute"

    def resolve(
        self,
        *,
        rpm: int | None = None,
        rps: int | None = None,
        tier: str | None = None,
        window: float | None = None,
    ) -> tuple[int, float]:
        """``(requests, window seconds)`` the throttle enforces: ``rps`` per ``window`` (a
        second), else ``rpm`` per ``window`` (a minute), else the named ``tier``, else this
        model's limit (``window`` compresses time in the benchmark).
        UsageError for a tier the provider does not have."""
        if rps is not None:
            return rps, window or 1.0
        if rpm is not None:
            return rpm, window or 60.0
        if tier is not None:
            if tier not in self.tiers:
                known = ", ".join(self.tiers) or "none: its limit is the same for everybody"
                raise UsageError(f"--tier {tier}: this provider's tiers are {known}")
            return self.tiers[tier], window or self.window
        return self.requests, window or self.window

    def describe(self) -> str:
        """``100 requests per minute (tiers: free 100, pro 1000, enterprise 5000)``."""
        unit = "second" if self.window <= 1.0 else f"{self.window:g} s"
        unit = "minute" if self.window == 60.0 else unit
        text = f"{self.requests} request{'s' if self.requests != 1 else ''} per {unit}"
        if self.tiers:
            text += " (tiers: " + ", ".join(f"{k} {v}" for k, v in self.tiers.items()) + ")"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusWords:
    """A provider's closed status vocabulary: which word means what.

    ``running`` words are waiting words that also say the task is being worked on. A word in
    none of these sets is unknown: logged once, treated as waiting until the task deadline.
    """

    done: frozenset[str]
    failed: frozenset[str]
    waiting: frozenset[str]
    running: frozenset[str] = frozenset()
    expired: frozenset[str] = frozenset()

    def known(self) -> frozenset[str]:
        """Every word of the vocabulary."""
        return self.done | self.failed | self.waiting | self.running | self.expired


#: Called with every response's rate information and HTTP status (the throttle listens).
ResponseHook = Callable[["RateInfo", int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """What a provider's client is built from (``ProviderInfo.open``)."""

    base_url: str
    token: Token
    timeouts: Timeouts
    on_response: ResponseHook | None = None
    max_answer_bytes: int = 1_000_000
    max_urls: int = 20
    time_left: Callable[[], float | None] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderInfo:
    """One video vendor as data (see the module docs); ``open`` builds its client."""

    name: str  # what --provider and batchgen.toml's provider = say
    label: str  # how messages name it
    token_env: str
    token_file_env: str
    base_url_env: str
    default_base_url: str
    fields: tuple[RequestField, ...]
    price: Price
    unit: BillingUnit
    limits: LimitModel
    words: StatusWords
    link_lifetime: float | None  # seconds a result link lives (None: not documented)
    images_max: int | None  # input images per request (None: not limited)
    local_images: LocalImages | None  # None: images must be public URLs
    open: Callable[[ClientOptions], contextlib.AbstractAsyncContextManager[Provider]]
    #: What a picture URL must be, checked before paying (``app/pictures.py``): its formats
    #: and its largest size in bytes.
    picture_formats: tuple[str, ...]
    picture_max_bytes: int
    docs: str = ""  # one line for ``docs/providers.md`` and --help
    #: ``fields`` by name: :meth:`field` is asked a few times for every row of a manifest
    _by_name: dict[str, RequestField] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    @property
    def billing(self) -> Billing:
        """How the engine counts this provider's money."""
        return Billing(self.unit, floor=self.price.floor)

    def field(self, name: str) -> RequestField | None:
        """The request field called ``name``, if this provider accepts it."""
        return self._by_name.get(name)

    def field_default(self, name: str) -> str | int | None:
        """The vendor's default for the field ``name`` (None: no such field, or no default)."""
        found = self.field(name)
        return None if found is None else found.default

    def value(self, spec: JobSpec, name: str) -> Any:
        """The value ``spec`` asks for ``name``: its own, else the provider's default."""
        own = getattr(spec, name, None)
        if own not in (None, ""):
            return own
        found = self.field(name)
        return None if found is None else found.default

    def price_of(self, spec: JobSpec) -> int:
        """What ``spec`` is expected to cost, in units: flat + seconds x rate + images."""
        model = str(self.value(spec, "model") or "")
        per_image = self.price.per_image_by_model.get(model, self.price.per_image)
        price = self.price.per_task + per_image * len(spec.images)
        if self.price.per_second:
            resolution = str(self.value(spec, "resolution") or "")
            seconds = int(self.value(spec, "duration") or 0)
            rate = self.price.per_second.get((model, resolution))
            if rate is None:  # a pairing without a price: the dearest known, never zero
                rate = max(self.price.per_second.values())
            price += math.ceil(seconds * rate)
        return price
