"""Budget messages of a real ``batchgen run``: a budget below one generation, a reached budget."""

from __future__ import annotations

from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import Cli, write_manifest
from helpers.simulators import MakeSim


async def test_a_budget_below_one_generation_says_so_and_sends_nothing(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 3)
    result = await Cli(tmp_path, sim).run("run", "briefs.csv", "--rpm", "5000", "--max-usd", "0.1")
    assert result.code == 5, result.stderr
    assert (
        "the budget of 10 credits (~$0.10, this run) is less than one generation (40 credits): "
        "nothing was sent" in result.stderr
    ), result.stderr
    assert sim.stats.tasks_created == 0


async def test_a_reached_budget_states_limit_scope_and_what_is_counted(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_manifest(tmp_path / "briefs.csv", 6)
    cli = Cli(tmp_path, sim)
    await cli.run("run", "briefs.csv", "--rpm", "5000", "--max-credits", "80")
    again = await cli.run(
        "run", "briefs.csv", "--rpm", "5000", "--max-credits", "160", "--budget-scope", "total"
    )
    assert again.code == 5, again.stderr
    assert (
        "the budget of 160 credits (~$1.60, this run and earlier runs) is reached: credits "
        "charged " in again.stderr
    ), again.stderr
    assert "(~$1.60 at most); no new submissions this run" in again.stderr
