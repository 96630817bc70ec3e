"""The ``batchgen`` entry point: parse arguments (with ``batchgen.toml``), run one command's
handler, map errors to exit codes.

Every option of ``run`` (and the others) may also come from ``batchgen.toml`` in the working
directory, or the file given by ``--config``; the command line wins. The API token never comes
from that file: only from the provider's token variable or a token file only its owner
can read.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from batchgen import __version__
from batchgen.cli.commands import COMMANDS
from batchgen.cli.config_file import apply_config, load_config
from batchgen.cli.options import CONFIG_FILE, HelpFormatter, Parser, epilog
from batchgen.errors import BatchgenError, ExitCode
from batchgen.logs import configure_logging, hide_url_password

__all__ = ["build_parser", "main", "parse_args"]

log = logging.getLogger("batchgen")


def build_parser() -> Parser:
    """The whole command line: the top-level options, then each command's ``configure_*``."""
    parser = Parser(
        prog="batchgen",
        description="Generate videos in bulk from a spreadsheet, resumably. "
        "Start with: batchgen template my.xlsx, then batchgen validate my.xlsx.",
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batchgen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for configure in COMMANDS:
        configure(commands)
    return parser


# ---------------------------------------------------------------- configuration file
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with ``batchgen.toml`` values as defaults."""
    parser = build_parser()
    parser.help_hint = _command_prog(parser, argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    config = load_config(known.config, default=Path(CONFIG_FILE))
    if config:
        apply_config(parser, argv, config, known.config or Path(CONFIG_FILE))
    return parser.parse_args(argv)


_COMMAND_NAMES = frozenset(c.__name__.removeprefix("configure_") for c in COMMANDS)


def _command_prog(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """``batchgen run`` when ``argv`` names the command ``run``: whose help an error points
    to (None: the top level's)."""
    command = next((word for word in argv if not word.startswith("-")), None)
    return f"{parser.prog} {command}" if command in _COMMAND_NAMES else None


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
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _reader_gone()
    except BatchgenError as exc:
        print(f"batchgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("batchgen: interrupted", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """The reader of standard output went away (``batchgen status | head``): no traceback,
    nothing more written there; 141 as a shell reports a command ended by SIGPIPE. The
    recipe of Python's ``signal`` documentation ("Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitCode.READER_GONE
