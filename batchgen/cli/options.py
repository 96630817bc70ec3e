"""The command line's options and help text, grouped as people look for them: essentials,
budget and deadline, API and token, tuning. Every option says its default; the epilog names
the token variables and every exit code (``batchgen.errors.ExitCode``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from batchgen.config import (
    BudgetScope,
    Settings,
    parse_size,
)
from batchgen.engine.pacing.limiter import LIMITER_HELP, limiter_option
from batchgen.errors import ExitCode
from batchgen.providers.catalog import DEFAULT, PROVIDERS

_DEFAULTS = Settings()  # each default is written once, in config.Settings

__all__ = [
    "ALLOW_PRIVATE_HELP",
    "CONFIG_FILE",
    "EXIT_MEANINGS",
    "REPORT_EXITS",
    "SIMULATE_EXITS",
    "STATUS_EXITS",
    "TEMPLATE_EXITS",
    "VALIDATE_EXITS",
    "HelpFormatter",
    "Parser",
    "add_budget_options",
    "add_command",
    "add_common",
    "add_manifest_options",
    "add_provider_option",
    "add_run_options",
    "add_tier_options",
    "epilog",
    "format_duration",
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


def format_duration(seconds: float) -> str:
    """A duration as :func:`parse_duration` reads it back: ``600.0`` -> ``10m``, ``5400`` ->
    ``1h30m``, ``0.5`` -> ``0.5s``, ``0`` -> ``0``; what ``--help`` shows as a default."""
    if seconds <= 0:
        return "0"
    parts, rest = [], float(seconds)
    for unit in ("d", "h", "m"):
        whole, rest = divmod(rest, _UNITS[unit])
        if whole:
            parts.append(f"{int(whole)}{unit}")
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)


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


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a hint, never the usage block.

    A cron log then shows ``batchgen run: error: argument --max-runtime: '5' has no unit...``
    as its last lines, not after 23 lines of usage. ``help_hint`` names the command whose
    help to read (the top-level parser reports the sub-command's unrecognised arguments).
    """

    help_hint: str | None = None

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and where the options are listed; exit 2."""
        hint = self.help_hint or self.prog
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n(see '{hint} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's table as written and adds ``(default: X)`` to every option whose
    help does not already say its default (flags, options without one and empty defaults
    such as ``frozenset()`` excepted); a duration's default is written as it is typed
    (``10m``, never ``600.0``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or not _has_default(action.default):
            return text
        if action.type is parse_duration and isinstance(action.default, int | float):
            return text + f" (default: {format_duration(action.default)})"
        return text + " (default: %(default)s)"


def _has_default(value: Any) -> bool:
    """True for a default worth showing: not None, a flag's bool, zero or an empty value."""
    if value is None or isinstance(value, bool) or value is argparse.SUPPRESS:
        return False
    if isinstance(value, str | bytes | tuple | list | set | frozenset | dict):
        return bool(value)
    return value != 0


#: What each exit code of ``run`` (and ``demo``) means (``errors.ExitCode`` holds the numbers).
EXIT_MEANINGS: dict[int, str] = {
    ExitCode.OK: "every row downloaded",
    ExitCode.ATTENTION: "some rows failed, are invalid or unknown: read the Failed sheet",
    ExitCode.USAGE: "usage, configuration, unreadable manifest or state conflict; nothing sent",
    ExitCode.AUTH: "the API refused the token: fix the variable or file the message names",
    ExitCode.LOCKED: "another batchgen run holds this manifest",
    ExitCode.STOPPED_EARLY: "stopped by the budget or the deadline; a re-run continues",
    ExitCode.OUTAGE: "the API could not be reached; a re-run continues",
    ExitCode.DISK_FULL: "stopped: a disk is full (credits may be spent); free space, re-run",
    ExitCode.SIGINT: "interrupted by Ctrl-C (SIGINT); a re-run continues",
    ExitCode.SIGTERM: "stopped by SIGTERM; a re-run continues",
    ExitCode.READER_GONE: "the reader of the output went away (as with `| head`); any command",
}
#: The exit codes of the other commands: each help lists its own command's, never run's.
VALIDATE_EXITS: dict[int, str] = {
    ExitCode.OK: "every row is valid",
    ExitCode.ATTENTION: "some rows are invalid (listed); the others would be sent",
    ExitCode.USAGE: "a manifest cannot be read, or a bad option or file-name template",
}
TEMPLATE_EXITS: dict[int, str] = {
    ExitCode.OK: "the template was written",
    ExitCode.USAGE: "the file exists already, is not .xlsx, or its folder is missing",
}
REPORT_EXITS: dict[int, str] = {
    ExitCode.OK: "the results were written",
    ExitCode.USAGE: "a manifest has no state (run it first), or a bad option",
    ExitCode.DISK_FULL: "a disk is full: free space, then run report again",
}
STATUS_EXITS: dict[int, str] = {
    ExitCode.OK: "every row of every manifest is downloaded",
    ExitCode.ATTENTION: "some rows are not downloaded yet, or need attention",
    ExitCode.USAGE: "a manifest named does not exist, or a bad option",
}
SIMULATE_EXITS: dict[int, str] = {
    ExitCode.OK: "stopped with Ctrl-C",
    ExitCode.USAGE: "a bad option, or the port is taken",
}


def epilog(
    exits: Mapping[int, str] = EXIT_MEANINGS, *, token: bool = True, config: bool = True
) -> str:
    """A command's help epilog: every provider's token variables (``token``: commands that
    send requests), the command's own exit codes, and (``config``) where options may also
    be set."""
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in exits.items())
    parts = []
    if token:
        parts.append(
            "API token (never in a file given by --config):\n"
            + "\n".join(
                f"  --provider {info.name}: {info.token_env} (the token), {info.token_file_env} "
                f"(a file holding it, readable by you alone; or --token-file), "
                f"{info.base_url_env} (the API's address; or --base-url)"
                for info in PROVIDERS.values()
            )
        )
    parts.append(f"exit codes:\n{codes}")
    if config:
        parts.append("Every option can also be set in ./batchgen.toml (docs/configuration.md).")
    return "\n\n".join(parts)


def add_common(p: argparse.ArgumentParser, group: Any = None) -> None:
    """--out, -q, -v and --config, on ``p`` (or in ``group``)."""
    g = group or p
    g.add_argument(
        "--out",
        type=Path,
        default=_DEFAULTS.output.out_dir,
        help="output folder (default: where the manifest's state already is, wherever you run "
        "from; for a new manifest, an 'outputs' folder beside it)",
    )
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


def add_provider_option(g: Any) -> None:
    """--provider: which vendor's rules, prices and API (docs/providers.md)."""
    g.add_argument(
        "--provider",
        choices=list(PROVIDERS),
        help=f"the video vendor (default: {DEFAULT.name}; see docs/providers.md)",
    )


def add_tier_options(g: Any) -> None:
    """--tier, --rpm or --rps: the account's request limit (default: the provider's)."""
    tier = g.add_mutually_exclusive_group()
    tiers = sorted({tier for info in PROVIDERS.values() for tier in info.limits.tiers})
    tier.add_argument(
        "--tier",
        choices=tiers,
        help="the account's tier, for a provider that has tiers (default: "
        + "; ".join(
            f"{info.label} {info.limits.default_tier}"
            for info in PROVIDERS.values()
            if info.limits.tiers
        )
        + ")",
    )
    tier.add_argument("--rpm", type=_positive_int, help="a custom requests-per-minute limit")
    tier.add_argument(
        "--rps",
        type=_positive_int,
        help="a custom requests-per-second limit (xAI allows 1 per second per team)",
    )


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
    add_provider_option(essentials)
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
        "--base-url",
        help="API address (default: the provider's variable, else its own address: "
        + "; ".join(f"{i.base_url_env} or {i.default_base_url}" for i in PROVIDERS.values())
        + ")",
    )
    api.add_argument(
        "--token-file",
        type=Path,
        help="read the API token from this file, readable by you alone (default: the "
        "provider's token-file variable, else its token variable: "
        + "; ".join(f"{i.token_file_env}, {i.token_env}" for i in PROVIDERS.values())
        + ")",
    )
    api.add_argument(
        "--account",
        metavar="NAME",
        help="name of the vendor account: runs with the same name share one rate-limit "
        "window, whatever their token (default: the window is keyed by API and token)",
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
    commands: Any,
    name: str,
    summary: str,
    description: str | None = None,
    *,
    exits: Mapping[int, str] = EXIT_MEANINGS,
    token: bool = True,
    config: bool = True,
) -> argparse.ArgumentParser:
    """A sub-command with the shared help layout and its own epilog (see :func:`epilog`)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog=epilog(exits, token=token, config=config),
        formatter_class=HelpFormatter,
    )
    return parser
