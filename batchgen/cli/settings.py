"""From parsed options to the frozen :class:`~batchgen.config.Settings` every command takes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from batchgen.config import RetryPolicy, Settings
from batchgen.errors import UsageError
from batchgen.paths import name_problem

__all__ = ["settings_from_args"]

#: Settings options that are not copied as they are: worked out from other options.
_DERIVED = frozenset({"base_url"})


def settings_from_args(args: argparse.Namespace, *, base_url: str | None = None) -> Settings:
    """Build the frozen Settings from parsed options: every option named like a setting is
    copied (``Settings.from_options`` routes it to its group); the rest are worked out. The
    provider's own rules (its rate limit, its billing unit for the budget) are applied by
    the command, from ``provider``."""
    values: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if name in Settings.option_names() and name not in _DERIVED
    }
    values["out_dir"] = args.out
    problem = None if args.out is None else name_problem(Path(args.out))
    if problem is not None:
        raise UsageError(f"the output folder (--out) {problem}")
    if hasattr(args, "max_attempts"):
        values["retry"] = RetryPolicy(max_attempts=args.max_attempts)
    if base_url is not None:
        values["base_url"] = base_url
    return Settings.from_options(**values)
