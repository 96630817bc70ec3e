"""A new user's trial of ``validate`` after real runs: the plan counts the takes a run adds for
regenerate, and leaves out what a run would not act on; nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import Cli, store_of
from helpers.sheets import mark, write_rows
from helpers.simulators import MakeSim

# ---------------------------------------------------------------- regenerate decisions


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_validate_counts_the_takes_a_run_adds_for_regenerate(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_rows(tmp_path / "var2.csv", [[i, f"shot {i}", "fun", "1:1", "", "", ""] for i in "ab"])
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "var2.csv")).code == 0
    out = tmp_path / "outputs" / "var2"
    xlsx = out / "results.xlsx"
    mark(xlsx, {"id:b": "Regen"})
    before = {p.name: _digest(p) for p in (xlsx, out / "state.sqlite") if p.exists()}
    text = await cli.run("validate", "var2.csv")
    assert "to submit      1 generation" in text.stdout, text.stdout
    assert "40 credits" in text.stdout and "1 take to regenerate" in text.stdout
    document = json.loads((await cli.run("validate", "var2.csv", "--json")).stdout)
    (plan,) = document["manifests"]
    assert (plan["to_submit"], plan["credits"], plan["regenerate"]) == (1, 40, 1)
    assert document["totals"]["credits"] == 40
    # read-only: neither the workbook nor the state changed, no decision was recorded
    assert {p.name: _digest(p) for p in (xlsx, out / "state.sqlite") if p.exists()} == before
    with store_of(tmp_path, "var2") as store:
        assert store.decisions() == {} and not store.regenerated()
    assert (await cli.run("run", "var2.csv")).code == 0
    assert sim.stats.tasks_created == 3  # the run did what validate said: one more task


async def test_validate_leaves_out_regenerates_a_run_would_not_act_on(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    rows = [["a", "shot a", "fun", "1:1", "", "", "2"], ["c", "shot c", "fun", "1:1", "", "", ""]]
    write_rows(tmp_path / "m.csv", rows)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "m.csv")).code == 0
    # a variant's take marked "redo", and a row then deleted from the manifest marked too
    mark(tmp_path / "outputs" / "m" / "results.xlsx", {"id:a#v2": "redo", "id:c": "regenerate"})
    write_rows(tmp_path / "m.csv", rows[:1])
    document = json.loads((await cli.run("validate", "m.csv", "--json")).stdout)
    (plan,) = document["manifests"]
    assert (plan["regenerate"], plan["to_submit"], plan["credits"]) == (1, 1, 40)
    assert (await cli.run("run", "m.csv")).code == 0
    assert sim.stats.tasks_created == 4  # 3 first, then only id:a#v3
