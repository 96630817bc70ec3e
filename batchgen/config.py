"""Typed, frozen configuration. Built once by the CLI and passed down explicitly.

``Settings`` holds one frozen group per concern (API, run limits, polling, downloads, output,
manifest reading, state); every default is written once, here, and the command line takes
its defaults from these classes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_TIER",
    "DEMO_TOKEN",
    "TIERS",
    "ApiSettings",
    "BudgetScope",
    "DownloadSettings",
    "ManifestSettings",
    "OutputSettings",
    "PollingSettings",
    "RetryPolicy",
    "RunLimits",
    "Settings",
    "StateSettings",
    "Timeouts",
    "parse_size",
]

DEMO_TOKEN = "demo-token"

# The simulator's (it stands for the reseller, and imports no provider): its base-URL
# variable and the reseller's tiers. Everything else reads them from the provider's data
# (``providers.grokimagine.GROKIMAGINE``).
BASE_URL_ENV = "GROKIMAGINE_BASE_URL"
TIERS: dict[str, int] = {"free": 100, "pro": 1000, "enterprise": 5000}
DEFAULT_TIER = "free"


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds. The submit read timeout is generous on purpose: a slow vendor that still
    answers is far better than a POST whose outcome is unknown."""

    connect: float = 10.0
    submit_read: float = 120.0
    status_read: float = 30.0
    download_read: float = 60.0


#: Fraction of the rpm limit left unused (the one default of the settings and of Throttle).
DEFAULT_SAFETY_MARGIN = 0.03


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient failures are retried. See ``batchgen.engine.pacing.throttle.backoff``."""

    max_attempts: int = 5  # tries of one step of one row: see batchgen.engine.retry
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5  # fraction of the delay drawn at random


class BudgetScope(StrEnum):
    """What ``--max-credits`` counts."""

    RUN = "run"  # this run's spend alone
    TOTAL = "total"  # this run's spend plus earlier runs' on the same manifests


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """The vendor, its address, its rate limit and how its answers are read.

    ``provider`` names a registered provider (None: the default one); ``base_url`` empty
    means the provider's own address. The rate limit is the provider's limit model unless
    ``rps``, ``rpm`` or ``tier`` says otherwise (``LimitModel.resolve``).
    """

    provider: str | None = None
    base_url: str = ""
    rpm: int | None = None  # requests per rate_window (a minute unless set)
    rps: int | None = None  # requests per second (a provider that limits per second)
    tier: str | None = None  # a named tier of the provider's limit model
    account: str | None = None  # names the shared window (None: keyed by API and token)
    safety_margin: float = DEFAULT_SAFETY_MARGIN  # fraction of the limit left unused
    rate_window: float | None = None  # seconds the limit is counted over (None: provider's)
    # whose window the limit is counted in: "local" (every process of this user on this
    # host with the same API and account or token), "none" (this process alone), or
    # "redis://HOST:PORT/DB" (checked by ``batchgen.engine.pacing.limiter.check_limiter``)
    limiter: str = "local"
    timeouts: Timeouts = field(default_factory=Timeouts)
    outage_timeout: float = 600.0  # seconds without a successful API request: stop (exit 6)
    connect_window: float = 30.0  # seconds a run's first requests may fail to connect at all
    max_answer_bytes: int = 1_000_000  # largest API answer read (bytes)
    max_urls_per_task: int = 20  # more video URLs than this in one task: a protocol error


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLimits:
    """What a run may spend, how long it may take, and which rows it sends again."""

    max_credits: int | None = None  # only for a provider that bills in credits
    max_usd: float | None = None  # the budget in US dollars, for every provider
    budget_scope: BudgetScope = BudgetScope.RUN  # text ("run", "total") is accepted too
    max_runtime: float | None = None  # seconds
    grace: float = 600.0  # seconds of polling and downloading after the deadline
    task_deadline: float = 3600.0  # seconds a task may stay unfinished before it is reported
    max_in_flight: int = 10_000  # tasks submitted but not finished, across manifests
    stop_timeout: float = 10.0  # seconds requests in flight get to finish after a signal
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_failed: bool = False
    resubmit_unknown: bool = False

    def __post_init__(self) -> None:
        # the command line and batchgen.toml give the scope as text; ValueError if unknown
        object.__setattr__(self, "budget_scope", BudgetScope(self.budget_scope))


@dataclass(frozen=True, slots=True, kw_only=True)
class PollingSettings:
    """When a task's status is asked for."""

    first_poll: float = 5.0  # seconds before the first poll, until latencies are learned
    max_poll_lag: float = 600.0  # seconds a due poll may yield to submissions


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadSettings:
    """How videos are fetched (README "Limits")."""

    download_concurrency: int = 4  # videos fetched at once
    max_video_size: int | None = None  # bytes per video (None: 4 GiB); bigger bodies refused
    allow_private_urls: bool = False  # fetch videos from loopback/private addresses too


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSettings:
    """Where results go and what the user sees while a run works (README "File names")."""

    # None (no --out): the folder of the manifest's existing state (the registry knows it),
    # else outputs/ beside the manifest (batchgen.state.location.default_out_dir)
    out_dir: Path | None = None
    name_template: str | None = None  # e.g. "{campaign}/{id}_{n}"; None: the row key
    csv_escape: bool = True
    notify_url: str | None = None
    progress: bool | None = None  # None: bars when stderr is a terminal
    heartbeat: float = 60.0  # seconds between progress lines when there are no bars


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestSettings:
    """How manifests are read and which of their rows are sent."""

    sheet: str | None = None
    include_hidden: bool = False  # send rows hidden in the sheet (and read hidden sheets)
    allow_regenerate: bool = False  # send rows whose request was generated under another key
    default_mode: str | None = None
    default_ratio: str | None = None
    variants: int | None = None  # variants of rows that leave the variants cell empty
    prompt_template: str | None = None  # prompt of rows that leave the prompt cell empty
    skip_image_check: bool = False  # send rows without fetching their pictures first


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSettings:
    """Which state a run opens."""

    rebind_base_url: bool = False  # let a state made against another API URL be used
    new_state: bool = False  # start a fresh state although the manifest has one elsewhere
    demo: bool = False  # the embedded simulator: own folder, no registry, simulated credits


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a run needs to know, by concern. The token is deliberately not a field.

    Each option lives in exactly one group under the name the command line and
    ``batchgen.toml`` use (``--max-poll-lag`` is ``settings.polling.max_poll_lag``); build
    from those flat names with :meth:`from_options`.
    """

    api: ApiSettings = field(default_factory=ApiSettings)
    limits: RunLimits = field(default_factory=RunLimits)
    polling: PollingSettings = field(default_factory=PollingSettings)
    downloads: DownloadSettings = field(default_factory=DownloadSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    manifest: ManifestSettings = field(default_factory=ManifestSettings)
    state: StateSettings = field(default_factory=StateSettings)

    @classmethod
    def from_options(cls, **options: Any) -> Settings:
        """Settings from flat option names (``rpm=1000, out_dir=Path("x")``), each routed
        to its group; the rest keep their defaults. TypeError for a name that is no setting."""
        return cls().with_options(**options)

    def with_options(self, **options: Any) -> Settings:
        """A copy with the flat options ``options`` changed (see :meth:`from_options`)."""
        unknown = sorted(set(options) - _GROUP_OF.keys())
        if unknown:
            raise TypeError(f"not a setting: {', '.join(unknown)}")
        changes: dict[str, dict[str, Any]] = {}
        for name, value in options.items():
            changes.setdefault(_GROUP_OF[name], {})[name] = value
        groups = {g: dataclasses.replace(getattr(self, g), **v) for g, v in changes.items()}
        return dataclasses.replace(self, **groups)

    @staticmethod
    def option_names() -> frozenset[str]:
        """Every flat option name :meth:`from_options` accepts."""
        return frozenset(_GROUP_OF)

    @staticmethod
    def group_of(option: str) -> str:
        """The name of the group holding ``option`` (``"max_poll_lag"`` -> ``"polling"``);
        KeyError for a name that is no setting."""
        return _GROUP_OF[option]


def _groups() -> dict[str, str]:
    """Each flat option name -> the name of its group in Settings."""
    found: dict[str, str] = {}
    for group in dataclasses.fields(Settings):
        for option in dataclasses.fields(getattr(Settings(), group.name)):
            if option.name in found:
                raise AssertionError(f"{option.name} is in two groups of Settings")
            found[option.name] = group.name
    return found


_GROUP_OF = _groups()


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from ``4GB``, ``500MB``, ``1.5G`` or plain bytes (units are powers of 1024).

    ValueError for anything else, or a size that is not above zero.
    """
    match = _SIZE.fullmatch(str(text).strip())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size like 500MB or 4GB")
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024**power)
