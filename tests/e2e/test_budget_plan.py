"""Issue 25, item 7: the plan says which manifests share a budget and how much each may use.

The listed case: ``--max-usd 1`` over a folder of two manifests is one budget for both, one
submit each; ``validate`` (and ``run --dry-run``) now says so, and a real run does what the
plan said.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.records import write_briefs

from batchgen.app.plan import share_budget
from batchgen.app.run import run_batch
from batchgen.cli import main, parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN
from batchgen.errors import ExitCode
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator
from batchgen.state.store import StateStore


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "briefs"
    folder.mkdir()
    write_briefs(folder / "a.csv", 5)
    write_briefs(folder / "b.csv", 5)
    return folder


def _validate(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(["validate", *argv])
    return capsys.readouterr().out


def test_one_usd_over_two_manifests_is_one_budget_one_take_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    text = " ".join(_validate(capsys, str(folder), "--max-usd", "1").split())
    assert "Budget: 100 credits (~$1.00) for this run (--budget-scope run)" in text
    assert "they cover 2 of 10 generations (a.csv about 1, b.csv about 1)" in text
    assert "One budget for the whole run, not one per manifest: its 2 manifests share it" in text
    assert "Another batchgen run (another cron line) has a budget of its own" in text
    assert text.count("budget about 1 of 5 generations: the run's one budget is shared") == 2
    document = json.loads(_validate(capsys, str(folder), "--max-usd", "1", "--json"))
    assert document["budget"] == {
        "credits": 100, "usd": 1.0, "scope": "run", "shared_by": 2, "spent_before": 0,
        "covers": 2,
    }  # fmt: skip
    assert [m["budget_covers"] for m in document["manifests"]] == [1, 1]
    # run --dry-run shows the same plan
    main(["run", str(folder), "--max-usd", "1", "--dry-run"])
    assert "a.csv about 1, b.csv about 1" in " ".join(capsys.readouterr().out.split())


async def test_the_run_spends_the_budget_as_the_plan_said(
    tmp_path: Path, simulator: Simulator
) -> None:
    folder = _folder(tmp_path)
    out = tmp_path / "out"
    ns = parse_args(
        ["run", str(folder), "--out", str(out), "--max-usd", "1", "--first-poll", "0.05s"]
    )
    settings = settings_from_args(ns, base_url=simulator.url)
    code = await run_batch(
        ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )
    assert code == ExitCode.STOPPED_EARLY
    for name in ("a", "b"):
        with StateStore.open(out / name / "state.sqlite") as store:
            assert store.spend().charged == 40, name  # one take each, as planned


async def test_scope_total_counts_earlier_spend_and_one_manifest_says_it_is_alone(
    tmp_path: Path, simulator: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_briefs(tmp_path / "solo.csv", 10)
    out = str(tmp_path / "out")
    ns = parse_args(["run", str(manifest), "--out", out, "--max-credits", "80"])
    settings = settings_from_args(ns, base_url=simulator.url).with_options(first_poll=0.05)
    await run_batch(ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False)
    # two takes done (80 credits): eight left to send
    text = " ".join(_validate(capsys, str(manifest), "--out", out, "--max-credits", "200").split())
    assert "budget 200 credits (~$2.00) for this run (--budget-scope run): they cover 5 of 8" in (
        text
    )
    assert "this manifest alone uses it" in text and "Budget:" not in text
    args = [str(manifest), "--out", out, "--max-credits", "200", "--budget-scope", "total"]
    text = " ".join(_validate(capsys, *args).split())
    assert (
        "200 credits (~$2.00) for these manifests' runs together (--budget-scope total): "
        "earlier runs spent 80, the 120 left cover 3 of 8 generations"
    ) in text


@pytest.mark.parametrize(
    ("to_submit", "covers", "shares"),
    [
        ([5, 5], 2, [1, 1]),  # the listed case
        ([5, 1, 3], 6, [3, 1, 2]),  # what one leaves goes to the others; the first get more
        ([2, 0, 9], 50, [2, 0, 9]),  # more than enough
        ([4, 4], 0, [0, 0]),
        ([3, 3, 3], 7, [3, 2, 2]),
    ],
)
def test_shares_follow_the_round_robin(
    to_submit: list[int], covers: int, shares: list[int]
) -> None:
    assert share_budget(to_submit, covers) == shares
