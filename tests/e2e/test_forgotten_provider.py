"""A forgotten ``--provider`` is named as such, not only as its symptoms.

Seen in a new user's trial: ``XAI_API_KEY=... batchgen run clips.csv`` (a manifest whose
state was made with xAI) said only "no API token: set GROKIMAGINE_API_TOKEN", and
``batchgen validate clips.csv`` listed "mode is empty" and "'9:16' is not a GrokImagine ratio"
for every row. Both now say that the state was made with the provider 'xai', and how to ask
for it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from batchgen.app.run import run_batch
from batchgen.cli.main import main
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.errors import ExitCode
from batchgen.providers.token import TokenNames, load_token
from batchgen.simulator import SimConfig

pytestmark = pytest.mark.e2e


def _manifest(path: Path, ratio: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "ratio"])
        writer.writerow(["a", "a fox", ratio])
    return path


@pytest.mark.parametrize(("made_with", "forgot"), [("xai", "grokimagine"), ("grokimagine", "xai")])
async def test_a_forgotten_provider_is_named(
    simulator_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    made_with: str,
    forgot: str,
) -> None:
    tokens = frozenset({DEMO_TOKEN})
    if made_with == "xai":
        sim = await simulator_factory(SimConfig(provider="xai", tokens=tokens, rps=1000))
        extra: dict[str, Any] = {"provider": "xai", "rps": 1000}
    else:
        sim = await simulator_factory(SimConfig(tokens=tokens, rpm=100_000))
        extra = {"rpm": 100_000, "default_mode": "fun"}
    manifest = _manifest(tmp_path / "clips.csv", "9:16" if made_with == "xai" else "1:1")
    out = tmp_path / "out"
    settings = Settings.from_options(
        base_url=sim.url, out_dir=out, first_poll=0.02, limiter="none", **extra
    )
    token = load_token({"T": DEMO_TOKEN}, names=TokenNames("T", "T_FILE"))
    assert await run_batch([manifest], settings, token, command="t", install_signals=False) == 0
    for name in ("GROKIMAGINE_API_TOKEN", "XAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.setenv("XAI_API_KEY" if made_with == "xai" else "GROKIMAGINE_API_TOKEN", "k")
    hint = f"made with the provider '{made_with}'"

    # run without the provider: its token is missing, and the reason is said
    args = ["run", str(manifest), "--out", str(out), "--base-url", sim.url]
    if forgot == "xai":
        args += ["--provider", "xai"]
    assert main(args) == ExitCode.USAGE
    said = capsys.readouterr().err
    assert "no API token" in said and hint in said and f"--provider {made_with}" in said

    # validate without the provider: the same line, above the rows' problems
    args = ["validate", str(manifest), "--out", str(out)]
    if forgot == "xai":
        args += ["--provider", "xai"]
    main(args)
    shown = capsys.readouterr().out
    assert hint in shown and f"--provider {made_with}" in shown, shown
