"""Messages a new user meets first: durations need a unit, bad values say the option, the
value and what is accepted (command line and batchgen.toml alike), a refused token names the
API's host, and a budget stop says its limit, scope and what is already counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.api_client import SPEC, client
from helpers.cli_runner import SIM_DEFAULTS
from helpers.simulators import MakeSim

from batchgen.cli import main
from batchgen.errors import AuthError

__all__ = ["SIM_DEFAULTS"]  # the simulator options make_sim reads


def _usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """stderr of ``batchgen ARGV``, which must end with exit 2 and no traceback."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--max-runtime", "5", "argument --max-runtime: '5' has no unit: write 5s, 5m or 5h"),
        ("--grace", "10", "argument --grace: '10' has no unit: write 10s, 10m or 10h"),
        ("--heartbeat", "30", "argument --heartbeat: '30' has no unit"),
        ("--max-runtime=", "-5m", "argument --max-runtime: '-5m': must be a positive duration"),
        ("--grace=", "-1h", "argument --grace: '-1h': must be a positive duration"),
        ("--max-usd", "abc", "argument --max-usd: 'abc' is not an amount of US dollars"),
        ("--max-usd", "-3", "argument --max-usd: '-3': must be an amount above zero"),
    ],
)
def test_a_bad_value_on_the_command_line_names_option_value_and_form(
    capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    # "--max-runtime=-5m": argparse reads "-5m" after a space as an option (its own message)
    words = [option + value] if option.endswith("=") else [option, value]
    err = _usage_error(capsys, ["run", "x.csv", *words])
    assert expected in err, err
    assert "invalid float value" not in err and "expected one argument" not in err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "max-runtime = 5",
            "batchgen.toml: max-runtime = 5: '5' has no unit: write 5s, 5m or 5h",
        ),
        ('grace = "10"', "batchgen.toml: grace = '10': '10' has no unit"),
        (
            'max-usd = "lots"',
            "batchgen.toml: max-usd = 'lots': 'lots' is not an amount of US dollars",
        ),
        ("max-usd = -1.5", "batchgen.toml: max-usd = -1.5: '-1.5': must be an amount above zero"),
    ],
)
def test_a_bad_value_in_the_file_names_file_key_value_and_form(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    line: str,
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batchgen.toml").write_text(line + "\n", encoding="utf-8")
    err = _usage_error(capsys, ["validate", "m.csv"])
    assert expected in err and "could not convert" not in err, err


def test_a_bare_number_in_the_file_shows_the_quoted_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "batchgen.toml").write_text("max-runtime = 6\n", encoding="utf-8")
    assert 'max-runtime = "6h"' in _usage_error(capsys, ["run", "m.csv"])


async def test_a_refused_token_names_the_api_host_not_the_token(make_sim: MakeSim) -> None:
    sim = await make_sim()
    async with client(sim, token="wrong-token-value") as api:
        with pytest.raises(AuthError) as caught:
            await api.submit(SPEC)
    text = str(caught.value)
    assert f"the API at {api.host} refused the token (HTTP 401" in text
    assert api.host.startswith("127.0.0.1:") and "wrong-token-value" not in text
