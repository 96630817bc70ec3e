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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchgen import __version__
from batchgen.app.config_file import apply_config, load_config
from batchgen.config import TIERS, RetryPolicy, Settings
from batchgen.errors import BatchgenError, UsageError
from batchgen.logs import configure_logging, mask_secret

__all__ = ["build_parser", "main", "parse_duration", "settings_from_args"]

log = logging.getLogger("batchgen")

CONFIG_FILE = "batchgen.toml"
EXAMPLE_MANIFEST = Path("manifests/example.csv")
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


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", type=Path, default=Path("outputs"), help="output folder (default: outputs)"
    )
    p.add_argument("-q", "--quiet", action="count", default=0, help="only warnings and errors")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug detail")
    p.add_argument("--config", type=Path, help=f"configuration file (default: ./{CONFIG_FILE})")


def _add_manifest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sheet", help="XLSX sheet to read (default: the first with a prompt column)")
    p.add_argument("--default-mode", help="mode for rows that leave it empty (fun, normal, spicy)")
    p.add_argument("--default-ratio", help="ratio for rows that leave it empty (2:3, 3:2, 1:1)")
    p.add_argument(
        "--include-hidden",
        action="store_true",
        help="also send rows hidden in the sheet (and read hidden sheets)",
    )
    p.add_argument(
        "--allow-regenerate",
        action="store_true",
        help="send rows whose request was already generated under another key (pays again)",
    )


def _add_limit_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tier", choices=sorted(TIERS), default="free", help="account tier")
    group.add_argument("--rpm", type=_positive_int, help="custom requests-per-minute limit")
    p.add_argument("--max-credits", type=_positive_int, help="stop submitting at this many credits")
    p.add_argument("--max-usd", type=float, help="stop submitting at this estimated spend")
    p.add_argument(
        "--budget-scope",
        choices=("run", "total"),
        default="run",
        help="count the budget per run (default) or with earlier runs' spend",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    _add_manifest_options(p)
    _add_limit_options(p)
    p.add_argument("--base-url", help="API URL (default: $GROKIMAGINE_BASE_URL or the vendor's)")
    p.add_argument("--token-file", type=Path, help="read the API token from this file (mode 600)")
    p.add_argument("--retry-failed", action="store_true", help="also retry permanent failures")
    p.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="send again rows whose submit outcome was lost (may pay twice)",
    )
    p.add_argument("--max-runtime", type=parse_duration, help="stop submitting after e.g. 6h")
    p.add_argument(
        "--grace", type=parse_duration, default=600.0, help="polling time after the deadline"
    )
    p.add_argument("--max-attempts", type=_positive_int, default=5, help="tries per transient step")
    p.add_argument("--download-concurrency", type=_positive_int, default=4)
    p.add_argument("--notify-url", help="POST a JSON summary (Slack-compatible) here at the end")
    p.add_argument(
        "--no-csv-escape",
        dest="csv_escape",
        action="store_false",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    p.add_argument(
        "--heartbeat",
        type=parse_duration,
        default=60.0,
        help="seconds between progress lines when there are no bars (default 60)",
    )
    p.add_argument(
        "--first-poll",
        type=parse_duration,
        default=5.0,
        help="seconds before a task's first status poll, until latencies are learned",
    )
    p.add_argument(
        "--max-poll-lag",
        type=parse_duration,
        default=600.0,
        help="how long a due status poll may wait while submissions use the budget (default 10m)",
    )
    p.add_argument(
        "--rate-window",
        type=parse_duration,
        default=60.0,
        help="seconds the vendor counts the rpm limit over (default 60; the benchmark shrinks it)",
    )
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None)
    bars.add_argument("--no-progress", dest="progress", action="store_false")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="batchgen", description="Generate videos in bulk from a spreadsheet, resumably."
    )
    parser.add_argument("--version", action="version", version=f"batchgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="generate every row of the manifests")
    run.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    _add_common(run)
    _add_run_options(run)
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser("demo", help="run the example manifest against the simulator")
    demo.add_argument("manifests", nargs="*", type=Path, metavar="MANIFEST")
    _add_common(demo)
    _add_run_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    validate = commands.add_parser(
        "validate", help="check manifests and show the plan (no network)"
    )
    validate.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    _add_common(validate)
    _add_manifest_options(validate)
    _add_limit_options(validate)
    validate.set_defaults(handler=_cmd_validate)

    template = commands.add_parser("template", help="write a starter manifest (.xlsx)")
    template.add_argument("path", type=Path)
    template.set_defaults(handler=_cmd_template, quiet=0, verbose=0, config=None)

    report = commands.add_parser("report", help="rebuild results and gallery from the state")
    report.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    _add_common(report)
    report.add_argument("--no-csv-escape", dest="csv_escape", action="store_false")
    report.set_defaults(handler=_cmd_report)

    status = commands.add_parser("status", help="what the state says, without any network")
    status.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST")
    _add_common(status)
    status.set_defaults(handler=_cmd_status)

    simulate = commands.add_parser("simulate", help="serve the local GrokImagine simulator")
    from batchgen.simulator import add_simulate_arguments

    add_simulate_arguments(simulate)
    simulate.set_defaults(handler=_cmd_simulate, quiet=0, verbose=0, config=None)
    return parser


# ---------------------------------------------------------------- configuration file
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with ``batchgen.toml`` values as defaults."""
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    config = load_config(known.config, default=Path(CONFIG_FILE))
    if config:
        apply_config(parser, argv, config, known.config or Path(CONFIG_FILE))
    return parser.parse_args(argv)


# ---------------------------------------------------------------- settings
def settings_from_args(args: argparse.Namespace, *, base_url: str | None = None) -> Settings:
    """Build the frozen Settings from parsed options."""
    rpm = getattr(args, "rpm", None) or TIERS[getattr(args, "tier", "free") or "free"]
    values: dict[str, Any] = {"rpm": rpm, "out_dir": args.out}
    for name in (
        "sheet",
        "include_hidden",
        "allow_regenerate",
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
    settings = settings_from_args(args)
    return asyncio.run(run_demo(manifests, settings, command=args.command_line))


def _cmd_validate(args: argparse.Namespace) -> int:
    from batchgen.app.commands import validate_manifests

    settings = settings_from_args(args)
    text, code = validate_manifests(args.manifests, settings)
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

    text, code = status_report(args.manifests, Settings(out_dir=args.out))
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
        args.command_line = _command_line(argv)
        configure_logging(min(args.verbose, 1) - min(args.quiet, 1))
        return int(args.handler(args))
    except BatchgenError as exc:
        print(f"batchgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("batchgen: interrupted", file=sys.stderr)
        return 130
