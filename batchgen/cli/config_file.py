"""The configuration file (``batchgen.toml``): read once, checked whole, applied per command.

Every subcommand reads it; each value is checked with the same rules as on the command line
(type, range, choices), whichever command defines the option, so a bad value is one clear
line naming the file, the key and what is accepted (UsageError, exit 2), for every command.
A command then takes the options it knows as defaults (the command line wins) and ignores
the other commands' options. A key that is no command's option is an error, and so is the
API token.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from batchgen.errors import UsageError
from batchgen.providers.catalog import PROVIDERS

__all__ = ["apply_config", "load_config"]

_SECRET_KEYS = frozenset(
    {"token", "api_token", "api_key", "key"}
    | {info.token_env.lower() for info in PROVIDERS.values()}
)


def load_config(path: Path | None, *, default: Path) -> dict[str, Any]:
    """The options of the configuration file ``path`` (else ``default``, if it exists), by
    name with ``-`` as ``_``; UsageError when the file cannot be read or is not TOML."""
    explicit = path is not None
    path = path or default
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


def apply_config(
    parser: argparse.ArgumentParser, argv: Sequence[str], config: dict[str, Any], path: Path
) -> None:
    """Check every value of the file with the command line's rules, then give the command
    the ones it knows as defaults; options of other commands are ignored."""
    secrets = _SECRET_KEYS & config.keys()
    if secrets:
        raise UsageError(
            f"{path}: the API token does not belong in a configuration file "
            f"({', '.join(sorted(secrets))}); use "
            + ", ".join(info.token_env for info in PROVIDERS.values())
            + " or --token-file"
        )
    options = _config_options(parser)
    unknown = sorted(k for k in config if k not in options)
    if unknown:
        names = ", ".join(k.replace("_", "-") for k in unknown)
        raise UsageError(f"{path}: unknown option(s): {names} (not an option of any command)")
    values = {k: _coerce(options[k], v, path, k) for k, v in config.items()}
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = _subparser(parser, command)
    if sub is None:
        return
    own = {a.dest for a in sub._actions}
    sub.set_defaults(**{options[k].dest: v for k, v in values.items() if options[k].dest in own})


#: Options that name a file or a command, not a setting: never read from the file.
_NOT_CONFIG = frozenset({"help", "config", "version", "command", "manifests", "path"})


def _config_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option of every command, by its long name (``-`` as ``_``) and by its dest."""
    found: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for option in sub._actions:
                    if option.dest in _NOT_CONFIG or not option.option_strings:
                        continue
                    for name in option.option_strings:
                        if name.startswith("--"):
                            found.setdefault(name[2:].replace("-", "_"), option)
                    found.setdefault(option.dest, option)
    return found


def _subparser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


def _coerce(action: argparse.Action, value: Any, path: Path, key: str) -> Any:
    """``value`` from the file, checked and converted as the command line would; UsageError
    naming the file, the key and what is accepted."""
    name = key.replace("_", "-")
    if action.nargs == 0:  # a flag: true or false
        if not isinstance(value, bool):
            raise UsageError(f"{path}: {name} = {value!r}: use true or false")
        if isinstance(action.const, bool):  # store_true / store_false
            return action.const if value else (not action.const)
        raise UsageError(f"{path}: {name} cannot be set in the configuration file")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UsageError(f"{path}: {name} = {value!r}: expected {_accepted(action)}")
    converted: Any = str(value)
    if action.type is not None:
        try:
            convert: Callable[[str], Any] = action.type  # type: ignore[assignment]
            converted = convert(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            detail = str(exc) or "not valid"
            if not isinstance(value, str) and getattr(action.type, "__name__", "") == (
                "parse_duration"
            ):
                detail += f' (in quotes in the file: {name} = "{value}h")'
            raise UsageError(f"{path}: {name} = {value!r}: {detail}") from None
    if action.choices is not None and converted not in action.choices:
        raise UsageError(f"{path}: {name} = {value!r}: use {_accepted(action)}")
    if isinstance(converted, Path) and not converted.expanduser().is_absolute():
        # a folder or file named in the file is relative to the file, not to where the
        # command is started from (cron starts it in $HOME)
        converted = path.parent / converted
    return converted


def _accepted(action: argparse.Action) -> str:
    if action.choices is not None:
        return " or ".join(repr(str(c)) for c in action.choices)
    kind = getattr(action.type, "__name__", "")
    if kind in ("int", "_positive_int"):
        return "a whole number"
    if kind == "float":
        return "a number"
    if kind == "positive_usd":
        return "an amount of US dollars, like 2.50"
    if kind == "parse_duration":
        return "a duration with a unit, like 5s, 90m or 6h (in quotes)"
    return "text"
