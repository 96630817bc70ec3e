"""The provider in a state, in tokens and on the command line: a state belongs to one provider,
a token message names its source, a budget is taken in the provider's unit."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from helpers.records import StubRow

from batchgen.app.run import run_batch
from batchgen.cli.main import main
from batchgen.config import DEMO_TOKEN, Settings
from batchgen.engine.pacing.limiter import window_name
from batchgen.errors import StateConflictError, UsageError
from batchgen.models import JobSpec, JobStatus
from batchgen.providers.descriptor import CREDIT, MICRO_USD
from batchgen.providers.token import GROKIMAGINE_TOKEN, TokenNames, load_token
from batchgen.providers.xai import XAI_TOKEN
from batchgen.simulator import SimConfig
from batchgen.state.store import StateStore


def _manifest(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "ratio"])
        writer.writerow(["a", "a fox", "1:1"])
    return path


def _names() -> TokenNames:
    return TokenNames("T", "T_FILE")


async def test_a_state_belongs_to_its_provider_and_another_refuses_with_a_way_out(
    simulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", DEMO_TOKEN)
    tokens = frozenset({DEMO_TOKEN})
    reseller = await simulator_factory(SimConfig(tokens=tokens, time_scale=0.01, rpm=100_000))
    xai = await simulator_factory(
        SimConfig(provider="xai", tokens=tokens, time_scale=0.01, rps=1000)
    )
    settings = Settings.from_options(
        base_url=reseller.url, out_dir=tmp_path / "out", first_poll=0.02, limiter="none",
        rpm=100_000, default_mode="fun",
    )  # fmt: skip
    manifest = _manifest(tmp_path / "briefs.csv")
    token = load_token({"T": DEMO_TOKEN}, names=_names())
    assert await run_batch([manifest], settings, token, command="t", install_signals=False) == 0
    other = settings.with_options(provider="xai", base_url=xai.url, rps=1000)
    with pytest.raises(StateConflictError) as caught:
        await run_batch([manifest], other, token, command="t", install_signals=False)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "'grokimagine'" in message and "--provider grokimagine" in message
    assert "--out ANOTHER_FOLDER --new-state" in message
    assert xai.stats.tasks_created == 0


def test_a_state_older_than_providers_is_the_resellers_with_its_prices(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        spec = JobSpec(key="k2", row=2, prompt="p", mode="fun", ratio="1:1")
        row = StubRow(row=2, key="k2", user={}, spec=spec, prompt="p", price=None)
        store.sync_manifest(["prompt"], [row])
        store.transition("k2", JobStatus.SUBMITTING)
        store.transition("k2", JobStatus.SUBMITTED, task_id="t1")
        assert store.spend().committed == 0  # not priced yet: what an old state holds
        with pytest.raises(StateConflictError):
            store.bind_provider(
                "xai", unit="usd", floor=False, price_of=lambda s: 1, legacy="grokimagine"
            )
        store.bind_provider(
            "grokimagine", unit="credit", floor=True, price_of=lambda s: 40, legacy="grokimagine"
        )
        assert store.spend().committed == 40 and store.get_meta("provider") == "grokimagine"


def test_a_state_that_never_sent_anything_moves_to_another_provider(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        store.bind_provider("grokimagine", unit="credit", floor=True, price_of=lambda s: 40,
                            legacy="grokimagine")  # fmt: skip
        store.bind_provider("xai", unit="usd", floor=False, price_of=lambda s: 1, legacy="x")
        assert (store.get_meta("provider"), store.get_meta("billing_unit")) == ("xai", "usd")


# ---------------------------------------------------------------- tokens
def test_every_token_names_the_source_it_came_from(tmp_path: Path) -> None:
    assert load_token({"XAI_API_KEY": "k1"}, names=XAI_TOKEN).source == "XAI_API_KEY"
    path = tmp_path / "key"
    path.write_text("k2\n")
    path.chmod(0o600)
    by_option = load_token({"XAI_API_KEY": "k1"}, path, names=XAI_TOKEN)
    assert (by_option.reveal(), by_option.source) == ("k2", f"the token file {path} (--token-file)")
    by_variable = load_token({"GROKIMAGINE_API_TOKEN_FILE": str(path)})
    assert by_variable.source == f"the token file {path} ($GROKIMAGINE_API_TOKEN_FILE)"
    assert "k2" not in repr(by_variable) and "k2" not in by_variable.source


@pytest.mark.parametrize(
    ("names", "wanted"),
    [
        (GROKIMAGINE_TOKEN, ("GROKIMAGINE_API_TOKEN", "GROKIMAGINE_API_TOKEN_FILE",
                             "--token-file")),
        (XAI_TOKEN, ("XAI_API_KEY", "XAI_API_KEY_FILE", "--token-file")),
    ],
)  # fmt: skip
def test_the_no_token_message_lists_every_way_to_give_one(
    names: Any, wanted: tuple[str, ...]
) -> None:
    with pytest.raises(UsageError) as caught:
        load_token({}, names=names)
    assert all(way in str(caught.value) for way in wanted)


def test_run_reads_the_providers_own_token_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    monkeypatch.setenv("GROKIMAGINE_API_TOKEN", "sk-cli-test-s3cret-value")
    manifest = _manifest(tmp_path / "briefs.csv")
    code = main(["run", str(manifest), "--provider", "xai", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no API token: set XAI_API_KEY" in capsys.readouterr().err


# ---------------------------------------------------------------- budget and figures
def test_max_credits_with_a_provider_billing_dollars_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "sk-cli-test-s3cret-value")
    manifest = _manifest(tmp_path / "briefs.csv")
    code = main(
        ["run", str(manifest), "--provider", "xai", "--max-credits", "100", "--out", str(tmp_path)]
    )
    assert code == 2
    assert "bills in US dollars, not credits; give the budget with --max-usd" in (
        capsys.readouterr().err
    )
    assert main(["validate", str(manifest), "--provider", "xai", "--max-credits", "100"]) == 2


def test_budgets_are_exact_in_each_unit() -> None:
    assert CREDIT.limit(max_credits=None, max_usd=1.005) == 100  # never above $1.005
    assert CREDIT.limit(max_credits=90, max_usd=1.0) == 90
    assert MICRO_USD.limit(max_credits=None, max_usd=0.952) == 952_000
    assert MICRO_USD.show(952_000) == "$0.952" and CREDIT.show(40) == "40 credits (~$0.40)"


def test_validate_plans_xai_in_dollars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [["prompt", "ratio", "duration", "resolution"], ["a", "9:16", "6", "480p"],
             ["b", "16:9", "10", "720p"]]
        )  # fmt: skip
    assert main(["validate", str(path), "--provider", "xai", "--max-usd", "0.5", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["manifests"][0]
    assert (plan["credits"], plan["usd"], plan["budget_covers"]) == (None, 1.0, 1)
    assert plan["requests_per_minute"] == 60  # 1 request per second
    assert main(["validate", str(path), "--provider", "xai"]) == 0
    out = capsys.readouterr().out
    assert "cost           $1.00 ($0.30 to $0.70 each)" in out
    assert "at 1 request/s" in out


def test_the_shared_window_is_keyed_by_the_account_when_named() -> None:
    plain = Settings.from_options(base_url="https://api.x.ai")
    named = plain.with_options(account="marketing")
    assert window_name(plain, "tok-a") != window_name(plain, "tok-b")  # as before
    assert window_name(named, "tok-a") == window_name(named, "tok-b")  # one team, one window
    assert window_name(named, "tok-a") != window_name(named.with_options(account="x"), "tok-a")
