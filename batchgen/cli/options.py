"""The command line's options and help text, grouped as people look for them: essentials,
budget and deadline, API and token, tuning. Every option says its default; the epilog names
the token variables and every exit code (``batchgen.errors.ExitCode``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from batchgen.config import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_TIER,
    TIERS,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    BudgetScope,
    Settings,
    parse_size,
)
from batchgen.engine.pacing.limiter import LIMITER_HELP, limiter_option
from batchgen.errors import ExitCode

_DEFAULTS = Settings()  # each default is written once, in config.Settings

__all__ = [
    "ALLOW_PRIVATE_HELP",
    "CONFIG_FILE",
    "EXIT_MEANINGS",
    "HelpFormatter",
    "add_budget_options",
    "add_command",
    "add_common",
    "add_manifest_options",
    "add_run_options",
    "add_tier_options",
    "epilog",
    "json_option",
    "parse_duration",
    "positive_usd",
]

CONFIG_FILE = "batchgen.toml"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_FORMS = "5s, 90m, 6h or 1h30m"


def parse_duration(text: str) -> float:
    """Seconds from ``6h``, ``90m``, ``1h30m`` or ``45s`` (units s, m, h, d); ``0`` alone
    needs no unit. A bare number such as ``5`` is refused (it could mean seconds or hours),
    and so is a negative one; both raise ``argparse.ArgumentTypeError`` with a plain message."""
    cleaned = str(text).strip().replace(" ", "")
    if cleaned.startswith("-"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: must be a positive duration like {_DURATION_FORMS}"
        )
    if re.fullmatch(r"0+(?:\.0*)?", cleaned):
        return 0.0
    if re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", cleaned):
        raise argparse.ArgumentTypeError(
            f"{text!r} has no unit: write {cleaned}s, {cleaned}m or {cleaned}h "
            "(seconds, minutes or hours)"
        )
    matches = list(_DURATION.finditer(cleaned))
    if not matches or "".join(m.group(0) for m in matches) != cleaned:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like {_DURATION_FORMS}")
    return sum(float(m.group(1)) * _UNITS[m.group(2).lower()] for m in matches)


def positive_usd(text: str) -> float:
    """A dollar amount above zero (``2.50``, ``$2.50``); ``argparse.ArgumentTypeError`` with a
    plain message otherwise."""
    cleaned = str(text).strip().removeprefix("$")
    try:
        value = float(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an amount of US dollars, like 25 or 2.50"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be an amount above zero, like 2.50")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, like 5") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number above zero")
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written and adds ``(default: X)`` to every option whose
    help does not already say its default (flags and options without one excepted)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, True, argparse.SUPPRESS, 0, [])
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


#: What each exit code means, for the epilog (``errors.ExitCode`` holds the numbers).
EXIT_MEANINGS: dict[int, str] = {
    ExitCode.OK: "every row downloaded",
    ExitCode.ATTENTION: "some rows failed, are invalid or unknown: read the Failed sheet",
    ExitCode.USAGE: "usage, configuration, unreadable manifest or state conflict; nothing sent",
    ExitCode.AUTH: f"the API refused the token: fix {TOKEN_ENV}",
    ExitCode.LOCKED: "another batchgen run holds this manifest",
    ExitCode.STOPPED_EARLY: "stopped by the budget or the deadline; a re-run continues",
    ExitCode.OUTAGE: "the API could not be reached; a re-run continues",
    ExitCode.DISK_FULL: "stopped: a disk is full (credits may be spent); free space, re-run",
    ExitCode.SIGINT: "interrupted by Ctrl-C (SIGINT); a re-run continues",
    ExitCode.SIGTERM: "stopped by SIGTERM; a re-run continues",
}


def epilog() -> str:
    """The token variables and the exit-code table, for every command's help."""
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_MEANINGS.items())
    return (
        "API token (never in a file given by --config):\n"
        f"  {TOKEN_ENV}        the token itself\n"
        f"  {TOKEN_FILE_ENV}   a file holding it, readable by you alone (or --token-file)\n"
        f"  {BASE_URL_ENV}         the API's address (or --base-url)\n\n"
        f"exit codes:\n{codes}\n\n"
        "Every option can also be set in ./batchgen.toml (docs/configuration.md)."
    )


def add_common(p: argparse.ArgumentParser, group: Any = None) -> None:
    """--out, -q, -v and --config, on ``p`` (or in ``group``)."""
    g = group or p
    g.add_argument("--out", type=Path, default=_DEFAULTS.output.out_dir, help="output folder")
    g.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and errors")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="debug lines: why a request waits, why a row is skipped (never the token)",
    )
    g.add_argument("--config", type=Path, help=f"configuration file (default: ./{CONFIG_FILE})")


def add_manifest_options(g: Any) -> None:
    """--sheet, --default-mode, --default-ratio, --include-hidden, --allow-regenerate,
    --variants, --skip-image-check and --prompt-template."""
    g.add_argument(
        "--sheet",
        help="XLSX sheet to read (default: the active sheet if visible with a prompt column, "
        "else the first visible one that has one)",
    )
    g.add_argument("--default-mode", help="mode for rows that leave it empty (fun, normal, spicy)")
    g.add_argument("--default-ratio", help="ratio for rows that leave it empty (2:3, 3:2, 1:1)")
    g.add_argument(
        "--include-hidden",
        action="store_true",
        help="also send rows hidden in the sheet (and read hidden sheets)",
    )
    g.add_argument(
        "--allow-regenerate",
        action="store_true",
        help="send rows whose request was already generated under another key (pays again)",
    )
    g.add_argument(
        "--variants",
        type=_positive_int,
        help="generations per row for rows that leave the variants column empty (default 1, "
        "at most 10)",
    )
    g.add_argument(
        "--skip-image-check",
        action="store_true",
        help="do not fetch picture URLs before sending their rows (for a network where the "
        "vendor reaches pictures this machine cannot); see docs/pictures.md",
    )
    g.add_argument(
        "--prompt-template",
        metavar="TEXT",
        help="prompt for rows that leave it empty; {column} takes that column's value, "
        "{{ and }} are literal braces",
    )


def add_tier_options(g: Any) -> None:
    """--tier or --rpm: the account's request limit."""
    tier = g.add_mutually_exclusive_group()
    tier.add_argument(
        "--tier",
        choices=sorted(TIERS),
        default=DEFAULT_TIER,
        help="the account's tier: its rpm limit",
    )
    tier.add_argument("--rpm", type=_positive_int, help="a custom requests-per-minute limit")


def add_budget_options(g: Any) -> None:
    """--max-credits, --max-usd and --budget-scope."""
    g.add_argument("--max-credits", type=_positive_int, help="stop submitting at this many credits")
    g.add_argument(
        "--max-usd", type=positive_usd, help="stop submitting at this estimated spend, USD"
    )
    g.add_argument(
        "--budget-scope",
        choices=[scope.value for scope in BudgetScope],  # text: argparse shows them as is
        default=_DEFAULTS.limits.budget_scope,
        help="count the budget per run, or with earlier runs' spend",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Every option of ``run`` and ``demo``, in four groups."""
    essentials = p.add_argument_group("essentials")
    add_common(p, essentials)
    add_tier_options(essentials)
    add_manifest_options(essentials)
    essentials.add_argument(
        "--retry-failed", action="store_true", help="also send rows that failed for good again"
    )
    essentials.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="send again rows whose submit outcome was lost (may pay twice)",
    )
    essentials.add_argument(
        "--new-state",
        action="store_true",
        help="start a fresh state although this manifest has one elsewhere, or its output "
        "folder holds results without one (every row is paid for again)",
    )
    essentials.add_argument(
        "--dry-run",
        action="store_true",
        help="check the manifests and show the plan, as validate does; send nothing",
    )
    essentials.add_argument(
        "--name-template",
        metavar="TEMPLATE",
        help="video file names from the row's columns, e.g. '{campaign}/{id}_{n}' "
        "(default: the row key, e.g. id_spring-01_1.mp4); see docs/downloads.md",
    )
    bars = essentials.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="progress bars (default: only on a terminal)",
    )
    bars.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )

    budget = p.add_argument_group("budget and deadline")
    add_budget_options(budget)
    budget.add_argument(
        "--max-runtime",
        type=parse_duration,
        help="stop submitting after e.g. 6h or 90m (a unit is required: 5s, 90m, 6h)",
    )
    budget.add_argument(
        "--grace",
        type=parse_duration,
        default=_DEFAULTS.limits.grace,
        help="polling and downloading allowed after --max-runtime, e.g. 10m",
    )
    budget.add_argument(
        "--outage-timeout",
        type=parse_duration,
        default=_DEFAULTS.api.outage_timeout,
        help="stop (exit 6) when no API request has succeeded for this long, e.g. 90s or 10m "
        "(30 s when no request of the run ever got through)",
    )

    api = p.add_argument_group("API and token")
    api.add_argument(
        "--base-url", help=f"API address (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})"
    )
    api.add_argument(
        "--token-file",
        type=Path,
        help=f"read the API token from this file, readable by you alone (default: "
        f"${TOKEN_FILE_ENV}, else ${TOKEN_ENV})",
    )
    api.add_argument("--notify-url", help="POST a JSON summary (Slack-compatible) here at the end")
    api.add_argument(
        "--limiter", type=limiter_option, default=_DEFAULTS.api.limiter, help=LIMITER_HELP
    )
    api.add_argument(
        "--rebind-base-url",
        action="store_true",
        help="use a state made against another API base URL (the same service, moved)",
    )
    api.add_argument(
        "--max-answer-bytes",
        type=_positive_int,
        default=_DEFAULTS.api.max_answer_bytes,
        help="largest API answer read; a larger one is refused, never buffered",
    )
    api.add_argument(
        "--max-urls-per-task",
        type=_positive_int,
        default=_DEFAULTS.api.max_urls_per_task,
        help="more video URLs than this in one task is a protocol error for its row",
    )

    tuning = p.add_argument_group("tuning")
    tuning.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=_DEFAULTS.limits.retry.max_attempts,
        help="tries per transient step",
    )
    tuning.add_argument(
        "--download-concurrency",
        type=_positive_int,
        default=_DEFAULTS.downloads.download_concurrency,
        help="videos fetched at once",
    )
    tuning.add_argument(
        "--max-video-size",
        type=parse_size,
        metavar="SIZE",
        help="largest video accepted, e.g. 500MB or 8GB (default 4GB); bigger ones are refused",
    )
    tuning.add_argument(
        "--allow-private-urls",
        action="store_true",
        help=ALLOW_PRIVATE_HELP,
    )
    tuning.add_argument(
        "--no-csv-escape",
        dest="csv_escape",
        action="store_false",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    tuning.add_argument(
        "--heartbeat",
        type=parse_duration,
        default=_DEFAULTS.output.heartbeat,
        help="time between progress lines when there are no bars, e.g. 30s",
    )
    tuning.add_argument(
        "--first-poll",
        type=parse_duration,
        default=_DEFAULTS.polling.first_poll,
        help="wait before a task's first status poll, until latencies are learned, e.g. 5s",
    )
    tuning.add_argument(
        "--max-poll-lag",
        type=parse_duration,
        default=_DEFAULTS.polling.max_poll_lag,
        help="how long a due status poll may wait while submissions use the budget, e.g. 10m",
    )
    tuning.add_argument(
        "--rate-window",
        type=parse_duration,
        default=_DEFAULTS.api.rate_window,
        help="window the vendor counts the rpm limit over, e.g. 60s (the benchmark shrinks it)",
    )


#: ``--allow-private-urls``, on ``run``, ``demo`` and ``validate``.
ALLOW_PRIVATE_HELP = (
    "also fetch videos, and accept pictures, from loopback/private addresses and plain http "
    "on them (default: only when the API itself is on one, e.g. the simulator)"
)


def json_option(p: argparse.ArgumentParser) -> None:
    """--json: one JSON document instead of text."""
    p.add_argument(
        "--json", action="store_true", help="print one JSON document (keys in docs/reference.md)"
    )


def add_command(
    commands: Any, name: str, summary: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A sub-command with the shared help layout and epilog."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )
    return parser
