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
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchgen import __version__
from batchgen.app.cli_options import (
    CONFIG_FILE,
    EXIT_MEANINGS,
    HelpFormatter,
    add_budget_options,
    add_command,
    add_common,
    add_manifest_options,
    add_run_options,
    add_tier_options,
    epilog,
    json_option,
    parse_duration,
)
from batchgen.app.config_file import apply_config, load_config
from batchgen.config import (
    TIERS,
    RetryPolicy,
    Settings,
)
from batchgen.errors import BatchgenError, ExitCode
from batchgen.logs import configure_logging, hide_url_password, mask_secret

__all__ = ["EXIT_MEANINGS", "build_parser", "main", "parse_duration", "settings_from_args"]

log = logging.getLogger("batchgen")

EXAMPLE_MANIFEST = Path("manifests/example.csv")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="batchgen",
        description="Generate videos in bulk from a spreadsheet, resumably. "
        "Start with: batchgen template my.xlsx, then batchgen validate my.xlsx.",
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batchgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = add_command(commands, "run", "generate every row of the manifests (resumes)")
    run.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_run_options(run)
    run.set_defaults(handler=_cmd_run)

    demo = add_command(commands, "demo", "run the example manifest against the simulator")
    demo.add_argument("manifests", nargs="*", type=Path, metavar="MANIFEST")
    add_run_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    validate = add_command(
        commands, "validate", "check manifests and show the plan (no network, no token)"
    )
    validate.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(validate)
    add_manifest_options(validate)
    add_tier_options(validate)
    add_budget_options(validate)
    validate.add_argument(
        "--name-template",
        metavar="TEMPLATE",
        help="check video file names as run would make them (see run --help, README 'File names')",
    )
    json_option(validate)
    validate.set_defaults(handler=_cmd_validate)

    template = add_command(commands, "template", "write a starter manifest (.xlsx)")
    template.add_argument("path", type=Path, metavar="PATH.xlsx")
    template.set_defaults(handler=_cmd_template, quiet=0, verbose=0, config=None)

    report = add_command(commands, "report", "rebuild results and gallery from the state")
    report.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(report)
    report.add_argument(
        "--no-csv-escape",
        dest="csv_escape",
        action="store_false",
        help="do not prefix CSV cells starting with = + - @ with a quote",
    )
    report.add_argument(
        "--ledger",
        action="store_true",
        help="also write ledger.csv (every task ever created) and claims.csv",
    )
    report.set_defaults(handler=_cmd_report)

    status = add_command(commands, "status", "what the state says, without any network")
    status.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST_OR_FOLDER")
    add_common(status)
    json_option(status)
    status.set_defaults(handler=_cmd_status)

    simulate = add_command(commands, "simulate", "serve the local GrokImagine simulator")
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
#: Settings options that are not copied as they are: worked out from other options.
_DERIVED = frozenset({"rpm", "max_credits", "base_url"})


def settings_from_args(args: argparse.Namespace, *, base_url: str | None = None) -> Settings:
    """Build the frozen Settings from parsed options: every option named like a setting is
    copied (``Settings.from_options`` routes it to its group); the rest are worked out."""
    values: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.option_names() and name not in _DERIVED
    }
    values["out_dir"] = args.out
    if getattr(args, "rpm", None) or getattr(args, "tier", None):
        values["rpm"] = args.rpm or TIERS[args.tier]
    values["max_credits"] = _credit_limit(args)
    if hasattr(args, "max_attempts"):
        values["retry"] = RetryPolicy(max_attempts=args.max_attempts)
    if base_url is not None:
        values["base_url"] = base_url
    return Settings.from_options(**values)


def _credit_limit(args: argparse.Namespace) -> int | None:
    limits = []
    if getattr(args, "max_credits", None):
        limits.append(int(args.max_credits))
    if getattr(args, "max_usd", None) is not None:  # above zero: checked by its option type
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
            shown.append(hide_url_password(arg))
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
    for line in rebuild_reports(args.manifests, settings, ledger=args.ledger):
        print(line)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from batchgen.app.commands import status_report

    text, code = status_report(args.manifests, settings_from_args(args), as_json=args.json)
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
