"""Command line: parse arguments, build Settings, call one library function, map errors.

Every option of ``run`` (and the others) may also come from ``batchgen.toml`` in the working
directory, or the file given by ``--config``; the command line wins. The API token never comes
from that file: only from ``GROKIMAGINE_API_TOKEN`` or a token file only its owner can read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import shlex
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from batchgen import __version__
from batchgen.config import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    TIERS,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    RetryPolicy,
    Settings,
)
from batchgen.errors import BatchgenError, ExitCode, UsageError
from batchgen.logs import configure_logging, mask_secret

__all__ = ["EXIT_MEANINGS", "build_parser", "main", "parse_duration", "settings_from_args"]

log = logging.getLogger("batchgen")

CONFIG_FILE = "batchgen.toml"
EXAMPLE_MANIFEST = Path("manifests/example.csv")
_SECRET_KEYS = frozenset({"token", "api_token", "grokimagine_api_token"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``6h``, ``90m``, ``1h30m``, ``45s`` or plain seconds."""
    cleaned = str(text).strip().replace(" ", "")
    matches = list(_DURATION.finditer(cleaned))
    if not matches or "".join(m.group(0) for m in matches) != cleaned:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 6h, 90m or 1h30m")
    return sum(float(m.group(1)) * _UNITS[m.group(2).lower()] for m in matches)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above zero")
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
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
    ExitCode.USAGE: "usage, configuration or unreadable manifest; nothing was sent",
    ExitCode.AUTH: f"the API refused the token: fix {TOKEN_ENV}",
    ExitCode.LOCKED: "another batchgen run holds this manifest",
    ExitCode.STOPPED_EARLY: "stopped by the budget or the deadline; a re-run continues",
    ExitCode.SIGINT: "interrupted by Ctrl-C (SIGINT); a re-run continues",
    ExitCode.SIGTERM: "stopped by SIGTERM; a re-run continues",
}


def _epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_MEANINGS.items())
    return (
        "API token (never in a file given by --config):\n"
        f"  {TOKEN_ENV}        the token itself\n"
        f"  {TOKEN_FILE_ENV}   a file holding it, readable by you alone (or --token-file)\n"
        f"  {BASE_URL_ENV}         the API's address (or --base-url)\n\n"
        f"exit codes:\n{codes}\n\n"
        "Every option can also be set in ./batchgen.toml (see the README)."
    )


def _add_common(p: argparse.ArgumentParser, group: Any = None) -> None:
    g = group or p
    g.add_argument("--out", type=Path, default=Path("outputs"), help="output folder")
    g.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and errors")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="debug lines: why a request waits, why a row is skipped (never the token)",
    )
    g.add_argument("--config", type=Path, help=f"configuration file (default: ./{CONFIG_FILE})")


def _add_manifest_options(g: Any) -> None:
    g.add_argument("--sheet", help="XLSX sheet to read (default: the first with a prompt column)")
    g.add_argument("--default-mode", help="mode for rows that leave it empty (fun, normal, spicy)")
    g.add_argument("--default-ratio", help="ratio for rows that leave it empty (2:3, 3:2, 1:1)")


def _add_tier_options(g: Any) -> None:
    tier = g.add_mutually_exclusive_group()
    tier.add_argument(
        "--tier", choices=sorted(TIERS), default="free", help="the account's tier: its rpm limit"
    )
    tier.add_argument("--rpm", type=_positive_int, help="a custom requests-per-minute limit")


def _add_budget_options(g: Any) -> None:
    g.add_argument("--max-credits", type=_positive_int, help="stop submitting at this many credits")
    g.add_argument("--max-usd", type=float, help="stop submitting at this estimated spend, USD")
    g.add_argument(
        "--budget-scope",
        choices=("run", "total"),
        default="run",
        help="count the budget per run, or with earlier runs' spend",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    essentials = p.add_argument_group("essentials")
    _add_common(p, essentials)
    _add_tier_options(essentials)
    _add_manifest_options(essentials)
    essentials.add_argument(
        "--retry-failed", action="store_true", help="also send rows that failed for good again"
    )
    essentials.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="send again rows whose submit outcome was lost (may pay twice)",
    )
    essentials.add_argument(
        "--dry-run",
        action="store_true",
        help="check the manifests and show the plan, as validate does; send nothing",
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
    _add_budget_options(budget)
    budget.add_argument(
        "--max-runtime", type=parse_duration, help="stop submitting after e.g. 6h or 90m"
    )
    budget.add_argument(
        "--grace",
        type=parse_duration,
        default=600.0,
        help="seconds of polling and downloading allowed after --max-runtime",
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

    tuning = p.add_argument_group("tuning")
    tuning.add_argument(
        "--max-attempts", type=_positive_int, default=5, help="tries per transient step"
    )
    tuning.add_argument(
        "--download-concurrency", type=_positive_int, default=4, help="videos fetched at once"
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
        default=60.0,
        help="seconds between progress lines when there are no bars",
    )
    tuning.add_argument(
        "--first-poll",
        type=parse_duration,
        default=5.0,
        help="seconds before a task's first status poll, until latencies are learned",
    )
    tuning.add_argument(
        "--max-poll-lag",
        type=parse_duration,
        default=600.0,
        help="seconds a due status poll may wait while submissions use the budget",
    )
    tuning.add_argument(
        "--rate-window",
        type=parse_duration,
        default=60.0,
        help="seconds the vendor counts the rpm limit over (the benchmark shrinks it)",
    )


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print one JSON document (keys in the README)"
    )


def _command(
    commands: Any, name: str, summary: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog=_epilog(),
        formatter_class=_HelpFormatter,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="batchgen",
        description="Generate videos in bulk from a spreadsheet, resumably. "
        "Start with: batchgen template my.xlsx, then batchgen validate my.xlsx.",
        epilog=_epilog(),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batchgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _command(commands, "run", "generate every row of the manifests (resumes)")
    run.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    _add_run_options(run)
    run.set_defaults(handler=_cmd_run)

    demo = _command(commands, "demo", "run the example manifest against the simulator")
    demo.add_argument("manifests", nargs="*", type=Path, metavar="MANIFEST")
    _add_run_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    validate = _command(
        commands, "validate", "check manifests and show the plan (no network, no token)"
    )
    validate.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    _add_common(validate)
    _add_manifest_options(validate)
    _add_tier_options(validate)
    _add_budget_options(validate)
    _json_option(validate)
    validate.set_defaults(handler=_cmd_validate)

    template = _command(commands, "template", "write a starter manifest (.xlsx)")
    template.add_argument("path", type=Path, metavar="PATH.xlsx")
    template.set_defaults(handler=_cmd_template, quiet=0, verbose=0, config=None)

    report = _command(commands, "report", "rebuild results and gallery from the state")
    report.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    _add_common(report)
    report.add_argument(
        "--no-csv-escape",
        dest="csv_escape",
        action="store_false",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    report.set_defaults(handler=_cmd_report)

    status = _command(commands, "status", "what the state says, without any network")
    status.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    _add_common(status)
    _json_option(status)
    status.set_defaults(handler=_cmd_status)

    simulate = _command(commands, "simulate", "serve the local GrokImagine simulator")
    from batchgen.simulator import add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(handler=_cmd_simulate, quiet=0, verbose=0, config=None)
    return parser


# ---------------------------------------------------------------- configuration file
def _load_config(path: Path | None) -> dict[str, Any]:
    explicit = path is not None
    path = path or Path(CONFIG_FILE)
    if not path.exists():
        if explicit:
            raise UsageError(f"the configuration file {path} does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the configuration file {path}: {exc}") from None
    table = data.get("batchgen", data)
    if not isinstance(table, dict):
        raise UsageError(f"{path}: expected options at the top level or under [batchgen]")
    return {str(k).replace("-", "_"): v for k, v in table.items()}


def _apply_config(
    parser: argparse.ArgumentParser, argv: Sequence[str], config: dict[str, Any], path: Path
) -> None:
    secrets = _SECRET_KEYS & config.keys()
    if secrets:
        raise UsageError(
            f"{path}: the API token does not belong in a configuration file "
            f"({', '.join(sorted(secrets))}); use GROKIMAGINE_API_TOKEN or --token-file"
        )
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = _subparser(parser, command)
    if sub is None:
        return
    known = {action.dest: action for action in sub._actions}
    unknown = sorted(k for k in config if k not in known)
    if unknown:
        raise UsageError(f"{path}: unknown option(s): {', '.join(unknown)}")
    sub.set_defaults(**{k: _coerce(known[k], v, path) for k, v in config.items()})


def _subparser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


def _coerce(action: argparse.Action, value: Any, path: Path) -> Any:
    if action.type is None or isinstance(value, bool):
        return value
    try:
        convert: Callable[[str], Any] = action.type  # type: ignore[assignment]
        return convert(str(value))
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise UsageError(f"{path}: option {action.dest}: {exc}") from None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with ``batchgen.toml`` values as defaults."""
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    config = _load_config(known.config)
    if config:
        _apply_config(parser, argv, config, known.config or Path(CONFIG_FILE))
    return parser.parse_args(argv)


# ---------------------------------------------------------------- settings
def settings_from_args(args: argparse.Namespace, *, base_url: str | None = None) -> Settings:
    """Build the frozen Settings from parsed options."""
    rpm = getattr(args, "rpm", None) or TIERS[getattr(args, "tier", "free") or "free"]
    values: dict[str, Any] = {"rpm": rpm, "out_dir": args.out}
    for name in (
        "sheet",
        "default_mode",
        "default_ratio",
        "budget_scope",
        "retry_failed",
        "resubmit_unknown",
        "max_runtime",
        "grace",
        "download_concurrency",
        "notify_url",
        "csv_escape",
        "progress",
        "heartbeat",
        "first_poll",
        "max_poll_lag",
        "rate_window",
    ):
        if hasattr(args, name):
            values[name] = getattr(args, name)
    values["max_credits"] = _credit_limit(args)
    if hasattr(args, "max_attempts"):
        values["retry"] = RetryPolicy(max_attempts=args.max_attempts)
    if base_url is not None:
        values["base_url"] = base_url
    return Settings(**values)


def _credit_limit(args: argparse.Namespace) -> int | None:
    limits = []
    if getattr(args, "max_credits", None):
        limits.append(int(args.max_credits))
    if getattr(args, "max_usd", None) is not None:
        if args.max_usd <= 0:
            raise UsageError("--max-usd must be above zero")
        limits.append(round(args.max_usd * 100))  # 1 credit = 0.01 USD
    return min(limits) if limits else None


def _command_line(argv: Sequence[str]) -> str:
    """The command as typed, minus values that may hold secrets (webhook URLs)."""
    shown, hide_next = [], False
    for arg in argv:
        if hide_next:
            shown.append("***")
            hide_next = False
        elif arg == "--notify-url":
            shown.append(arg)
            hide_next = True
        elif arg.startswith("--notify-url="):
            shown.append("--notify-url=***")
        else:
            shown.append(arg)
    return shlex.join(["batchgen", *shown])


# ---------------------------------------------------------------- commands
def _cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _cmd_validate(args)
    from batchgen.app.run import run_batch
    from batchgen.providers.grokimagine import check_transport, load_token, resolve_base_url

    base_url = resolve_base_url(args.base_url)
    check_transport(base_url)
    token = load_token(token_file=args.token_file)
    mask_secret(token.reveal())
    settings = settings_from_args(args, base_url=base_url)
    return asyncio.run(run_batch(args.manifests, settings, token, command=args.command_line))


def _cmd_demo(args: argparse.Namespace) -> int:
    from batchgen.app.demo import run_demo

    manifests = args.manifests or [EXAMPLE_MANIFEST]
    if args.dry_run:
        args.manifests = manifests
        return _cmd_validate(args)
    settings = settings_from_args(args)
    return asyncio.run(run_demo(manifests, settings, command=args.command_line))


def _cmd_validate(args: argparse.Namespace) -> int:
    from batchgen.app.commands import validate_manifests

    settings = settings_from_args(args)
    as_json = getattr(args, "json", False)
    text, code = validate_manifests(args.manifests, settings, as_json=as_json)
    print(text)
    return code


def _cmd_template(args: argparse.Namespace) -> int:
    from batchgen.app.validate import write_template

    write_template(args.path)
    print(f"wrote {args.path}: fill in one row per video, then run: batchgen validate {args.path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from batchgen.app.commands import rebuild_reports

    settings = settings_from_args(args)
    for line in rebuild_reports(args.manifests, settings):
        print(line)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from batchgen.app.commands import status_report

    text, code = status_report(args.manifests, Settings(out_dir=args.out), as_json=args.json)
    print(text)
    return code


def _cmd_simulate(args: argparse.Namespace) -> int:
    from batchgen.simulator import config_from_args, serve

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config_from_args(args), args.host, args.port))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``batchgen`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        if args.command is None:  # "batchgen" alone: the help, not an error
            build_parser().print_help()
            return ExitCode.OK
        args.command_line = _command_line(argv)
        configure_logging(min(args.verbose, 1) - min(args.quiet, 1))
        return int(args.handler(args))
    except BatchgenError as exc:
        print(f"batchgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("batchgen: interrupted", file=sys.stderr)
        return 130
