"""Issue 25, item 9: what ``--help`` and a bad option show a person (or a cron log).

Defaults read as they are typed, each command lists its own exit codes, and a bad option is
one line of error and a pointer to ``--help``, never the usage block first.
"""

from __future__ import annotations

import pytest

from batchgen.cli import main
from batchgen.cli.options import format_duration, parse_duration


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    return capsys.readouterr().err.splitlines()


def test_duration_defaults_are_shown_with_their_unit(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "run")
    assert "600.0" not in text and "(default: 60.0)" not in text and "(default: 5.0)" not in text
    assert "e.g. 10m (default: 10m)" in text  # --grace
    assert "use the budget, e.g. 10m (default: 10m)" in text  # --max-poll-lag
    assert "e.g. 30s (default: 1m)" in text  # --heartbeat
    assert "latencies are learned, e.g. 5s (default: 5s)" in text  # --first-poll


@pytest.mark.parametrize("seconds", [0.0, 0.5, 5.0, 60.0, 90.0, 600.0, 5400.0, 86400.0, 93784.0])
def test_a_shown_duration_reads_back_as_the_same_seconds(seconds: float) -> None:
    shown = format_duration(seconds)
    assert parse_duration(shown) == seconds
    assert shown in {"0", "0.5s", "5s", "1m", "1m30s", "10m", "1h30m", "1d", "1d2h3m4s"}


def test_empty_defaults_are_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "simulate")
    assert "frozenset()" not in text
    assert "(default: ())" not in text and "(default: )" not in text
    assert "(default: 127.0.0.1)" in text  # a real default still is


@pytest.mark.parametrize(
    ("command", "own", "not_theirs"),
    [
        ("template", "0 the template was written", "every row downloaded"),
        ("validate", "1 some rows are invalid", "another batchgen run holds"),
        ("status", "0 every row of every manifest is downloaded", "stopped by SIGTERM"),
        ("report", "2 a manifest has no state", "the API refused the token"),
        ("simulate", "0 stopped with Ctrl-C", "read the Failed sheet"),
    ],
)
def test_each_command_lists_its_own_exit_codes(
    capsys: pytest.CaptureFixture[str], command: str, own: str, not_theirs: str
) -> None:
    text = _help(capsys, command)
    assert own in text and not_theirs not in text
    assert "GROKIMAGINE_API_TOKEN_FILE" not in text  # no token: these send no request


def test_run_still_lists_every_exit_code_and_the_token_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys, "run")
    assert "143 stopped by SIGTERM" in text and "GROKIMAGINE_API_TOKEN_FILE" in text


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["run", "--max-runtime", "5", "x.csv"],
            "batchgen run: error: argument --max-runtime: '5' has no unit",
        ),
        (["run", "--bogus", "x.csv"], "batchgen: error: unrecognized arguments: --bogus"),
        (["status"], "batchgen status: error: the following arguments are required"),
        (["frob"], "batchgen: error: argument COMMAND: invalid choice: 'frob'"),
    ],
)
def test_a_bad_option_is_one_line_and_a_hint_without_the_usage_block(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    lines = _refused(capsys, argv)
    assert len(lines) == 2, lines
    assert lines[0].startswith(error)
    command = argv[0] if argv[0] in ("run", "status") else None
    assert lines[1] == f"(see 'batchgen{' ' + command if command else ''} --help')"
    assert not any(line.startswith("usage:") for line in lines)
