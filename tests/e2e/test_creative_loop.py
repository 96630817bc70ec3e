"""The creative-ops loop end to end against the simulator: variants, prompt templates,
decisions read back from results.xlsx and regenerated, and the reconciled bill.

Runs are real ``python -m batchgen`` subprocesses (``Cli`` from helpers.cli_runner).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import openpyxl
import pytest
from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import Cli, store_of
from helpers.gallery_pages import records
from helpers.sheets import mark, results_rows, write_rows
from helpers.simulators import MakeSim

from batchgen.models import JobStatus
from batchgen.simulator import Fault, Simulator


def problem_line(report: str, row: int, column: str) -> str:
    """The line of ``validate``'s table for ``row`` and ``column`` (fails if there is none)."""
    for line in report.splitlines():
        cells = line.split()
        if cells[:2] == [str(row), column] and "error" in cells:
            return line
    raise AssertionError(f"no error at row {row}, column {column} in:\n{report}")


def sent_prompts(sim: Simulator) -> list[str]:
    return sorted(record.prompt for record in sim.stats.tasks.values())


# ---------------------------------------------------------------- variants
async def test_variants_raised_then_lowered_across_runs(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    manifest = tmp_path / "takes.csv"
    write_rows(
        manifest,
        [
            ["a", "a lamp", "fun", "1:1", "", "", "2"],
            ["b", "a cup", "fun", "1:1", "", "", ""],  # takes --variants
            ["c", "a vase", "fun", "1:1", "", "", "1"],
        ],
    )
    cli = Cli(tmp_path, sim)
    first = await cli.run("run", "takes.csv", "--variants", "3")
    assert first.code == 0, first.stderr
    assert sim.stats.tasks_created == 2 + 3 + 1
    out = tmp_path / "outputs" / "takes"
    rows = results_rows(out)
    keys = [(r["id"], r["key"], r["variant"]) for r in rows]
    assert keys == [
        ("a", "id:a", "1"),
        ("a", "id:a#v2", "2"),
        ("b", "id:b", "1"),
        ("b", "id:b#v2", "2"),
        ("b", "id:b#v3", "3"),
        ("c", "id:c", "1"),
    ]
    assert all(r["status"] == "downloaded" and r["files"] for r in rows)
    assert len({r["task_id"] for r in rows}) == 6  # one task each
    assert all(r["prompt_sent"] == "" for r in rows)  # no template: no copy of the prompt
    assert len({r["files"] for r in rows}) == 6  # and files of its own
    cards = [(c["row"], c["take"], c["takes"]) for c in records(out)]
    assert cards == [(2, 1, 2), (2, 2, 2), (3, 1, 3), (3, 2, 3), (3, 3, 3), (4, 1, 1)]

    # raise a to 4: only v3 and v4 are generated; lower b to 1 (no --variants): nothing goes
    write_rows(
        manifest,
        [
            ["a", "a lamp", "fun", "1:1", "", "", "4"],
            ["b", "a cup", "fun", "1:1", "", "", "1"],
            ["c", "a vase", "fun", "1:1", "", "", ""],
        ],
    )
    second = await cli.run("run", "takes.csv")
    assert second.code == 0, second.stderr
    assert sim.stats.tasks_created == 6 + 2
    assert sent_prompts(sim).count("a lamp") == 4 and sent_prompts(sim).count("a cup") == 3
    rows = results_rows(out)
    by_key = {r["key"]: r for r in rows}
    assert {"id:a#v3", "id:a#v4"} <= by_key.keys()
    # b's generated variants stay listed under their row, files and all, not "deleted"
    for key in ("id:b#v2", "id:b#v3"):
        assert by_key[key]["status"] == "downloaded" and by_key[key]["row"] == "3"
        assert (out / by_key[key]["files"].splitlines()[0]).exists()
    assert [r["key"] for r in rows][:4] == ["id:a", "id:a#v2", "id:a#v3", "id:a#v4"]


async def test_variants_cell_out_of_range_is_a_row_problem(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_rows(
        tmp_path / "bad.csv",
        [
            ["a", "a lamp", "fun", "1:1", "", "", "11"],
            ["b", "a cup", "fun", "1:1", "", "", "two"],
            ["c", "a vase", "fun", "1:1", "", "", "2"],
        ],
    )
    cli = Cli(tmp_path, sim)
    checked = await cli.run("validate", "bad.csv")
    assert checked.code == 1
    assert "1 to 10" in problem_line(checked.stdout, 2, "variants")
    assert "'two'" in problem_line(checked.stdout, 3, "variants")
    result = await cli.run("run", "bad.csv")
    assert result.code == 1  # the bad rows are invalid; the good one still runs, twice
    assert sent_prompts(sim) == ["a vase", "a vase"]
    too_many = await cli.run("run", "bad.csv", "--variants", "50")
    assert too_many.code == 2 and "--variants" in too_many.stderr


# ---------------------------------------------------------------- prompt templates
async def test_prompt_template_filled_and_missing_column_reported(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_rows(
        tmp_path / "tpl.csv",
        [
            ["a", "{product} on a {surface}, {{soft}} light", "fun", "1:1", "lamp", "desk", ""],
            ["b", "{product} on {colour} cloth", "fun", "1:1", "cup", "", ""],  # no such column
            ["c", "{product} on a {surface}", "fun", "1:1", "vase", "", ""],  # empty value
            ["d", "", "fun", "1:1", "bowl", "shelf", ""],  # takes --prompt-template
        ],
    )
    cli = Cli(tmp_path, sim)
    template = ("--prompt-template", "{Product} resting on a {SURFACE}")
    checked = await cli.run("validate", "tpl.csv", *template)
    assert checked.code == 1
    assert "{colour}" in problem_line(checked.stdout, 3, "prompt")
    assert "is empty" in problem_line(checked.stdout, 4, "surface")
    result = await cli.run("run", "tpl.csv", *template)
    assert result.code == 1
    assert sent_prompts(sim) == ["bowl resting on a shelf", "lamp on a desk, {soft} light"]
    rows = {r["id"]: r for r in results_rows(tmp_path / "outputs" / "tpl")}
    assert rows["a"]["prompt"] == "{product} on a {surface}, {{soft}} light"  # as typed
    assert rows["a"]["prompt_template"] == "{product} on a {surface}, {{soft}} light"
    assert rows["a"]["prompt_sent"] == "lamp on a desk, {soft} light"
    assert rows["d"]["prompt_template"] == "{Product} resting on a {SURFACE}"
    assert rows["d"]["prompt_sent"] == "bowl resting on a shelf"
    assert rows["b"]["status"] == "invalid"


async def test_template_identity_is_the_filled_request(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    header = ["prompt", "mode", "ratio", "product"]
    manifest = tmp_path / "ident.csv"
    write_rows(manifest, [["a {product}", "fun", "1:1", "lamp"]], header)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "ident.csv")).code == 0
    # the same filled request, typed out: same key, nothing sent again
    write_rows(manifest, [["a lamp", "fun", "1:1", "lamp"]], header)
    assert (await cli.run("run", "ident.csv")).code == 0
    assert sim.stats.tasks_created == 1
    # another value in the column: another request, another job
    write_rows(manifest, [["a {product}", "fun", "1:1", "cup"]], header)
    assert (await cli.run("run", "ident.csv")).code == 0
    assert sent_prompts(sim) == ["a cup", "a lamp"]


# ---------------------------------------------------------------- decisions
async def test_decisions_read_back_regenerate_and_cost_per_keeper(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    manifest = tmp_path / "review.csv"
    write_rows(
        manifest,
        [[i, f"shot {i}", "fun", "1:1", "", "", ""] for i in ("a", "b", "c", "d")],
    )
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "review.csv")).code == 0
    out = tmp_path / "outputs" / "review"
    xlsx = out / "results.xlsx"
    book = openpyxl.load_workbook(xlsx)
    validations = book["Results"].data_validations.dataValidation
    assert validations and validations[0].formula1 == '"approve,reject,regenerate"'
    # sorted differently by the person, with a column of their own
    marks = {"id:a": "approve", "id:b": "Regenerate", "id:c": "reject", "id:d": "approve"}
    mark(xlsx, marks, shuffle=True)
    second = await cli.run("run", "review.csv")
    assert second.code == 0, second.stderr
    assert sent_prompts(sim).count("shot b") == 2 and sim.stats.tasks_created == 5
    rows = {r["key"]: r for r in results_rows(out)}
    assert rows["id:b#v2"]["replaces"] == "id:b" and rows["id:b#v2"]["status"] == "downloaded"
    assert {k: rows[k]["decision"] for k in marks} == {
        "id:a": "approve",
        "id:b": "regenerate",
        "id:c": "reject",
        "id:d": "approve",
    }  # kept through the rewrite of results.xlsx
    # the other cells the person overwrote were not read: the sheet is the state's again
    assert {rows[k]["status"] for k in marks} == {"downloaded"}
    assert rows["id:a"]["prompt"] == "shot a"
    summary = dict(openpyxl.load_workbook(xlsx)["Summary"].iter_rows(values_only=True))
    assert summary["Approved videos (Decision: approve)"] == 2
    assert summary["Credits per approved video (cost per keeper)"] == 5 * 40 / 2
    # the same sheet read again: nothing regenerated twice, approved rows never
    third = await cli.run("run", "review.csv")
    assert third.code == 0 and sim.stats.tasks_created == 5
    # a regenerate on the new variant makes v3, replacing v2
    mark(xlsx, {"id:b#v2": "regenerate"})
    assert (await cli.run("run", "review.csv")).code == 0
    rows = {r["key"]: r for r in results_rows(out)}
    assert rows["id:b#v3"]["replaces"] == "id:b#v2" and sim.stats.tasks_created == 6


async def test_decisions_from_a_workbook_that_cannot_be_matched_are_ignored(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_rows(tmp_path / "one.csv", [["a", "shot a", "fun", "1:1", "", "", ""]])
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "one.csv")).code == 0
    xlsx = tmp_path / "outputs" / "one" / "results.xlsx"
    book = openpyxl.load_workbook(xlsx)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    sheet.cell(row=2, column=header.index("Decision") + 1, value="regenerate")
    sheet.append([None] * header.index("Key") + ["id:someone-else"])  # not this manifest's
    book.save(xlsx)
    result = await cli.run("run", "one.csv")
    assert result.code == 0
    assert "decisions and notes not read" in result.stderr and "id:someone-else" in result.stderr
    assert "kept aside as" in result.stderr
    assert sim.stats.tasks_created == 1
    # report also reads decisions before rewriting the workbook (here: none, so none lost)
    assert (await cli.run("report", "one.csv")).code == 0
    with store_of(tmp_path, "one") as store:
        assert store.decisions() == {}
        assert store.counts()[JobStatus.DOWNLOADED] == 1


@pytest.mark.parametrize("value", ["maybe", "regenerate please"])
async def test_a_value_that_is_not_a_decision_is_reported_and_left(
    make_sim: MakeSim, tmp_path: Path, value: str
) -> None:
    sim = await make_sim()
    write_rows(tmp_path / "v.csv", [["a", "shot a", "fun", "1:1", "", "", ""]])
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "v.csv")).code == 0
    mark(tmp_path / "outputs" / "v" / "results.xlsx", {"id:a": value})
    result = await cli.run("report", "v.csv")
    assert result.code == 0
    assert "row 2" in result.stderr and "is not a decision" in result.stderr
    assert (await cli.run("run", "v.csv")).code == 0 and sim.stats.tasks_created == 1


# ---------------------------------------------------------------- the bill, reconciled
def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


async def test_ledger_and_claims_match_the_simulators_record_of_charges(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim(
        ambiguous=Fault(at={2, 7}),  # the task is created, the answer is lost
        # the first request (a submit, nothing exists to poll yet) is reset before the vendor
        # acts: to batchgen it looks exactly like a lost answer, so it is claimed as possible
        drop_before=Fault(at={1}),
        task_transient=Fault(at={3}),  # retried in the run: a second task for that row
        task_permanent=Fault(at={5}),
        failed_credits=40,  # and the vendor charged the failures
    )
    rows = [[f"r{i}", f"bill shot {i}", "fun", "1:1", "", "", ""] for i in range(10)]
    write_rows(tmp_path / "bill.csv", rows)
    cli = Cli(tmp_path, sim)
    first = await cli.run("run", "bill.csv")
    assert first.code == 1  # two rows unknown, one failed for good
    second = await cli.run("run", "bill.csv", "--resubmit-unknown")
    assert second.code == 1, second.stderr
    report = await cli.run("report", "bill.csv", "--ledger")
    assert report.code == 0, report.stderr
    assert "WARNING" not in report.stdout
    out = tmp_path / "outputs" / "bill"
    ledger, claims = read_csv(out / "ledger.csv"), read_csv(out / "claims.csv")

    records = list(sim.stats.tasks.values())
    seen = [r for r in records if not r.ambiguous]  # the tasks whose id batchgen was told
    lost = [r for r in records if r.ambiguous]
    assert len(lost) == 2 and len(seen) == 11  # 10 rows, 1 transient retry, 2 resends
    assert {line["task_id"] for line in ledger if line["task_id"]} == {r.task_id for r in seen}
    assert sim.stats.dropped_before == 1
    assert sum(line["ambiguous"] == "yes" for line in ledger) == len(lost) + 1
    charged_failures = {r.task_id for r in seen if r.final_status == "failed" and r.credits}
    assert len(charged_failures) == 2
    assert {
        line["task_id"] for line in ledger if line["charged_but_failed"] == "yes"
    } == charged_failures
    by_reason: dict[str, list[dict[str, str]]] = {}
    for claim in claims:
        by_reason.setdefault(claim["reason"], []).append(claim)
    assert {c["task_id"] for c in by_reason["failed_but_charged"]} == charged_failures
    # every real duplicate is claimed; the one extra claim is the dropped request, which the
    # vendor's dashboard (here: the simulator) shows with a single task
    duplicates = {c["prompt"]: c for c in by_reason["possible_duplicate"]}
    retried = {r.prompt for r in seen if r.final_status == "failed"}  # a failure sent again
    assert set(sim.stats.duplicate_prompts()) - retried == {r.prompt for r in lost}
    assert {r.prompt for r in lost} < duplicates.keys() and len(duplicates) == 3
    extra = duplicates.keys() - {r.prompt for r in lost}
    assert [sim.stats.tasks_by_prompt[p] for p in extra] == [1]
    for prompt, claim in duplicates.items():
        resend = [r for r in seen if r.prompt == prompt]
        assert [r.task_id for r in resend] == [claim["task_id"]]  # the id support asks for
    assert set(by_reason) == {"failed_but_charged", "possible_duplicate"}
    assert all(c["submitted_at"] and c["key"] and c["row"] for c in claims)

    # totals agree with the simulator, the Summary sheet and status
    ledger_credits = sum(int(line["consumed_credits"] or 0) for line in ledger)
    assert ledger_credits == sum(r.credits for r in seen)
    charged = sum(int(line["charged_credits"] or 0) for line in ledger)
    possible = 40 * sum(line["ambiguous"] == "yes" for line in ledger)
    sheet = openpyxl.load_workbook(out / "results.xlsx")["Summary"]
    summary = dict(sheet.iter_rows(values_only=True))
    assert summary["Credits charged"] == charged
    assert summary["Credits possibly charged (unknown submits)"] == possible
    status = await cli.run("status", "bill.csv")
    spent = re.search(r"credits charged\s+(\d+)", status.stdout)
    maybe = re.search(r"possibly charged\s+(\d+)", status.stdout)
    assert spent is not None and int(spent.group(1)) == charged
    assert maybe is not None and int(maybe.group(1)) == possible
    assert f"{ledger_credits} credits reported, {charged} counted as charged" in report.stdout
