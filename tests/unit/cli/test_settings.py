"""Settings: grouped by concern, each default written once, built from the flat option names
the command line and batchgen.toml use; closed vocabularies are enums."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest
from helpers.paths import REPO

from batchgen.cli import build_parser, main, parse_args, settings_from_args
from batchgen.config import BudgetScope, RetryPolicy, Settings

#: Options of the commands that are not settings (or reach Settings under another name).
NOT_SETTINGS = frozenset(
    {
        "help",
        "quiet",
        "verbose",
        "config",
        "out",  # -> out_dir
        "tier",  # -> rpm
        "max_usd",  # -> max_credits
        "max_attempts",  # -> retry
        "token_file",
        "dry_run",
        "json",
        "ledger",
    }
)
COMMANDS = ("run", "demo", "validate", "report", "status")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: action.choices[name] for name in COMMANDS}
    raise AssertionError("no sub-commands")


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


# ---------------------------------------------------------------- each default written once
@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_without_options_has_exactly_the_settings_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Each default is written once (config's groups): no command restates one. (Moved here
    from test_cli_misc, where it checked ``run`` alone.)"""
    monkeypatch.chdir(tmp_path)  # no batchgen.toml around
    settings = settings_from_args(parse_args([command, "sheet.csv"]))
    defaults = Settings()
    differ = [
        f"{group.name}.{option.name}"
        for group in dataclasses.fields(Settings)
        for option in dataclasses.fields(getattr(defaults, group.name))
        if getattr(getattr(settings, group.name), option.name)
        != getattr(getattr(defaults, group.name), option.name)
    ]
    assert differ == []


def test_the_throttle_default_margin_is_the_settings_one() -> None:
    from batchgen.engine.pacing.throttle import Throttle

    margin = Settings().api.safety_margin
    assert Throttle(100).usable == Throttle(100, margin=margin).usable
    assert Throttle(100).usable != Throttle(100, margin=margin + 0.01).usable


def _literal_defaults(path: Path) -> list[str]:
    """``default=<literal>`` keywords in ``path``, other than "no value" ones."""
    found = []
    calls = [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
    ]
    for node in (keyword for call in calls for keyword in call.keywords):
        if node.arg == "default":
            value = node.value
            if isinstance(value, ast.Constant) and value.value not in (None, False, True, 0):
                found.append(f"{path.name}:{node.value.lineno}: {value.value!r}")
            elif not isinstance(value, ast.Constant):
                source = ast.unparse(value)
                if not source.startswith(("_DEFAULTS.", "DEFAULT_")):
                    found.append(f"{path.name}:{node.value.lineno}: {source}")
    return found


def test_the_command_line_writes_no_default_of_its_own() -> None:
    """Every option's default is read from config (``_DEFAULTS = Settings()`` or a DEFAULT_
    constant); a literal there would be a second copy of a setting's default."""
    files = [
        REPO / "batchgen/cli/main.py",
        REPO / "batchgen/cli/commands.py",
        REPO / "batchgen/cli/options.py",
    ]
    assert [line for path in files for line in _literal_defaults(path)] == []


def test_the_literal_default_check_catches_a_second_copy(tmp_path: Path) -> None:
    source = tmp_path / "options.py"
    source.write_text(
        'p.add_argument("--tier", default="free")\n'
        'p.add_argument("--grace", default=_DEFAULTS.limits.grace)\n'
        'p.add_argument("--max-attempts", default=RetryPolicy().max_attempts)\n'
        'p.add_argument("-q", default=0)\n',
        encoding="utf-8",
    )
    assert _literal_defaults(source) == [
        "options.py:1: 'free'",
        "options.py:3: RetryPolicy().max_attempts",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_default_is_the_setting_default(command: str) -> None:
    """Option by option (not only through settings_from_args): the parser's default is the
    one of the setting of the same name."""
    defaults = Settings()
    parsed = vars(_subparsers()[command].parse_args(["m.csv"]))
    for name, default in parsed.items():
        if name in Settings.option_names() and default is not None:
            group = Settings.group_of(name)
            assert default == getattr(getattr(defaults, group), name), name
    assert defaults.limits.retry.max_attempts == RetryPolicy().max_attempts


# ---------------------------------------------------------------- from_options
def test_every_command_line_option_routes_to_one_group_field() -> None:
    seen: set[str] = set()
    for parser in _subparsers().values():
        for action in _options(parser):
            if action.dest in NOT_SETTINGS:
                continue
            assert action.dest in Settings.option_names(), f"--{action.dest}: not a setting"
            seen.add(action.dest)
            # a value no default equals (the scope is parsed): it must land in the group
            value = BudgetScope.TOTAL if action.dest == "budget_scope" else object()
            group = Settings.group_of(action.dest)
            settings = Settings.from_options(**{action.dest: value})
            assert getattr(getattr(settings, group), action.dest) is value
    assert {"rpm", "budget_scope", "limiter", "progress", "csv_escape"} <= seen


def test_each_option_name_is_in_exactly_one_group() -> None:
    names = [
        option.name
        for group in dataclasses.fields(Settings)
        for option in dataclasses.fields(getattr(Settings(), group.name))
    ]
    assert len(names) == len(set(names)) == len(Settings.option_names())
    assert Settings.group_of("max_poll_lag") == "polling"
    assert Settings.group_of("budget_scope") == "limits"


@pytest.mark.parametrize("name", ["colour", "api", "maxcredits", "max-credits"])
def test_from_options_refuses_a_name_that_is_no_setting(name: str) -> None:
    with pytest.raises(TypeError, match=f"not a setting: {name}"):
        Settings.from_options(rpm=5, **{name: 1})


def test_with_options_changes_only_the_groups_named() -> None:
    base = Settings()
    changed = base.with_options(first_poll=0.5, out_dir=Path("elsewhere"))
    assert changed.polling.first_poll == 0.5 and changed.output.out_dir == Path("elsewhere")
    assert changed.api is base.api and changed.limits is base.limits
    assert base.polling.first_poll == 5.0  # frozen: the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.api.rpm = 5  # type: ignore[misc]


# ---------------------------------------------------------------- BudgetScope
@pytest.mark.parametrize(
    ("text", "scope"), [("run", BudgetScope.RUN), ("total", BudgetScope.TOTAL)]
)
def test_the_budget_scope_is_an_enum_from_the_command_line(text: str, scope: BudgetScope) -> None:
    args = build_parser().parse_args(["validate", "m.csv", "--budget-scope", text])
    assert settings_from_args(args).limits.budget_scope is scope


def test_the_budget_scope_choices_come_from_the_enum(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--budget-scope {run,total}" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["budget-scope", "budget_scope"])
def test_the_budget_scope_is_an_enum_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batchgen.toml").write_text(f'{key} = "total"\n', encoding="utf-8")
    assert settings_from_args(parse_args(["run", "m.csv"])).limits.budget_scope is (
        BudgetScope.TOTAL
    )
    # the command line wins over the file
    args = parse_args(["run", "m.csv", "--budget-scope", "run"])
    assert settings_from_args(args).limits.budget_scope is BudgetScope.RUN


def test_a_library_caller_gets_the_enum_or_a_value_error() -> None:
    assert Settings.from_options(budget_scope="total").limits.budget_scope is BudgetScope.TOTAL
    with pytest.raises(ValueError, match="'forever' is not a valid BudgetScope"):
        Settings.from_options(budget_scope="forever")
