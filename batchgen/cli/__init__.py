"""The command line: argument parsing, the configuration file, one handler per command.

``main`` is the console script's entry point; ``commands`` holds one ``configure_<command>``
function per command; ``options`` the shared option groups and their value parsers;
``config_file`` reads ``batchgen.toml``; ``settings`` turns parsed options into Settings.
This is the top of the import graph: nothing in batchgen imports from here.
"""

from __future__ import annotations

from batchgen.cli.main import build_parser, main, parse_args
from batchgen.cli.options import EXIT_MEANINGS, parse_duration
from batchgen.cli.settings import settings_from_args

__all__ = [
    "EXIT_MEANINGS",
    "build_parser",
    "main",
    "parse_args",
    "parse_duration",
    "settings_from_args",
]
