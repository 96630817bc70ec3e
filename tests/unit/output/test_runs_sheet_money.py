"""The Runs sheet of results.xlsx shows each run's spend in the provider's unit: ``Credits
charged`` for a provider that bills credits and blank for one that bills dollars (as the
Results sheet and the ledger do), ``Cost (USD)`` for every provider."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.records import finished_run

from batchgen.models import RunInfo
from batchgen.output.results import summarise, write_results
from batchgen.output.workbook import RUNS_HEADER
from batchgen.providers.catalog import PROVIDERS

T0 = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def runs_sheet(tmp_path: Path, name: str, runs: list[RunInfo]) -> list[dict[str, Any]]:
    """The Runs sheet's lines, by header, of a workbook of provider ``name`` with ``runs``."""
    summary = summarise([], runs, manifest="m.csv", version="1", unit=PROVIDERS[name].unit)
    xlsx, _ = write_results(tmp_path, columns=["prompt"], jobs=[], summary=summary)
    rows = list(openpyxl.load_workbook(xlsx)["Runs"].iter_rows(values_only=True))
    assert rows[0] == RUNS_HEADER
    return [dict(zip(RUNS_HEADER, row, strict=True)) for row in rows[1:]]


@pytest.mark.parametrize(
    ("name", "spent", "credits", "usd"),
    [
        ("xai", 1_602_000, None, 1.602),  # micro-dollars: no credits to show
        ("grokimagine", 160, 160, 1.6),
    ],
)
def test_a_runs_spend_is_shown_in_the_providers_unit(
    tmp_path: Path, name: str, spent: int, credits: int | None, usd: float
) -> None:
    run = finished_run(1, T0, 60, "batchgen run m.csv", requests=12, credits=spent)
    (line,) = runs_sheet(tmp_path, name, [run])
    assert (line["Credits charged"], line["Cost (USD)"]) == (credits, usd)
    assert line["Requests"] == 12


def test_every_run_of_a_dollar_billed_state_leaves_credits_blank(tmp_path: Path) -> None:
    """A run that spent nothing, one killed before its end and one that spent: each has its
    dollars and no credits (a 0 would read as "free", a figure as credits)."""
    runs = [
        finished_run(1, T0, 30, "first", credits=0),
        RunInfo(run_id=2, started_at=T0 + dt.timedelta(hours=1), credits=202_000),
        finished_run(3, T0 + dt.timedelta(hours=2), 30, "third", credits=7_000_000),
    ]
    lines = runs_sheet(tmp_path, "xai", runs)
    assert [line["Credits charged"] for line in lines] == [None, None, None]
    assert [line["Cost (USD)"] for line in lines] == [0, 0.202, 7]
