"""Typed, frozen configuration. Built once by the CLI and passed down explicitly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEMO_TOKEN",
    "TIERS",
    "TOKEN_ENV",
    "RetryPolicy",
    "Settings",
    "Timeouts",
    "parse_size",
]

DEFAULT_BASE_URL = "https://grokimagineapi.com"
TOKEN_ENV = "GROKIMAGINE_API_TOKEN"
TOKEN_FILE_ENV = "GROKIMAGINE_API_TOKEN_FILE"
BASE_URL_ENV = "GROKIMAGINE_BASE_URL"
DEMO_TOKEN = "demo-token"

#: Requests per minute, per account, all endpoints together.
TIERS: dict[str, int] = {"free": 100, "pro": 1000, "enterprise": 5000}


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds. The submit read timeout is generous on purpose: a slow vendor that still
    answers is far better than a POST whose outcome is unknown."""

    connect: float = 10.0
    submit_read: float = 120.0
    status_read: float = 30.0
    download_read: float = 60.0


#: Fraction of the rpm limit left unused (the one default of ``--safety-margin`` and Throttle).
DEFAULT_SAFETY_MARGIN = 0.03


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient failures are retried. See ``batchgen.engine.throttle.backoff``."""

    max_attempts: int = 5  # tries of one step of one row: see batchgen.engine.retry
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5  # fraction of the delay drawn at random


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a run needs to know. The token is deliberately not a field."""

    base_url: str = DEFAULT_BASE_URL
    rpm: int = TIERS["free"]
    safety_margin: float = DEFAULT_SAFETY_MARGIN  # fraction of the limit left unused
    out_dir: Path = Path("outputs")
    sheet: str | None = None
    include_hidden: bool = False  # send rows hidden in the sheet (and read hidden sheets)
    allow_regenerate: bool = False  # send rows whose request was generated under another key
    default_mode: str | None = None
    default_ratio: str | None = None
    variants: int | None = None  # variants of rows that leave the variants cell empty
    prompt_template: str | None = None  # prompt of rows that leave the prompt cell empty
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    download_concurrency: int = 4
    max_in_flight: int = 10_000  # tasks submitted but not finished, across manifests
    task_deadline: float = 3600.0  # seconds a task may stay unfinished before it is reported
    retry_failed: bool = False
    resubmit_unknown: bool = False
    max_credits: int | None = None
    budget_scope: str = "run"  # "run" or "total"
    max_runtime: float | None = None  # seconds
    grace: float = 600.0  # seconds of polling and downloading after the deadline
    notify_url: str | None = None
    csv_escape: bool = True
    progress: bool | None = None  # None: bars when stderr is a terminal
    heartbeat: float = 60.0  # seconds between progress lines when there are no bars
    stop_timeout: float = 10.0  # seconds requests in flight get to finish after a signal
    first_poll: float = 5.0  # seconds before the first poll, until latencies are learned
    max_poll_lag: float = 600.0  # seconds a due poll may yield to submissions
    rate_window: float = 60.0  # seconds the vendor counts the rpm limit over
    # whose window the rpm limit is counted in: "local" (every process of this user on this
    # host with the same API and token), "none" (this process alone), or "redis://HOST:PORT/DB"
    limiter: str = "local"
    outage_timeout: float = 600.0  # seconds without a successful API request: stop (exit 6)
    connect_window: float = 30.0  # seconds a run's first requests may fail to connect at all
    max_answer_bytes: int = 1_000_000  # largest API answer read (bytes)
    max_urls_per_task: int = 20  # more video URLs than this in one task: a protocol error
    rebind_base_url: bool = False  # let a state made against another API URL be used
    new_state: bool = False  # start a fresh state although the manifest has one elsewhere
    demo: bool = False  # the embedded simulator: own folder, no registry, simulated credits
    # downloads and file names (README "Limits" and "File names")
    max_video_size: int | None = None  # bytes per video (None: 4 GiB); bigger bodies refused
    allow_private_urls: bool = False  # fetch videos from loopback/private addresses too
    name_template: str | None = None  # e.g. "{campaign}/{id}_{n}"; None: the row key


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
