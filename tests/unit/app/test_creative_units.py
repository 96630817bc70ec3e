"""Units of the creative-ops loop: template filling, variant keys, reading decisions back, the
state's task log (its trigger and its migration) and the ledger's claims."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.gallery_pages import records

from batchgen.app.review_loop import plan_regenerations
from batchgen.config import ManifestSettings, Settings
from batchgen.manifest.load import read_manifest
from batchgen.manifest.prompt_template import fill_prompt, template_problem
from batchgen.models import JobSpec, JobStatus, split_variant, variant_key
from batchgen.output.ledger import build_claims, build_ledger, write_ledger
from batchgen.output.reports import write_reports
from batchgen.output.review import read_decisions
from batchgen.state.schema import MIGRATIONS
from batchgen.state.store import StateStore

S = JobStatus


# ---------------------------------------------------------------- templates
def test_fill_prompt_matches_headers_loosely_and_undoes_escapes() -> None:
    row = {"Product Name": "lamp", "surface": " oak desk ", "prompt": "x"}
    filled = fill_prompt("{product_name} on an {SURFACE} {{4k}}", row, own="prompt")
    assert (filled.prompt, filled.template, filled.problems) == (
        "lamp on an oak desk {4k}",
        "{product_name} on an {SURFACE} {{4k}}",
        (),
    )
    assert fill_prompt("no fields {{here}}", row).prompt == "no fields {here}"
    assert fill_prompt("", row, default="{surface}").prompt == "oak desk"


@pytest.mark.parametrize(
    ("template", "column", "words"),
    [
        ("a {colour} cup", "prompt", "{colour}"),  # no such column
        ("a {prompt} again", "prompt", "prompt column itself"),
        ("a {cup", "prompt", "{{"),  # a lone brace: the escape is named
        ("a {empty} cup", "empty", "is empty"),
    ],
)
def test_fill_prompt_problems_name_the_column(template: str, column: str, words: str) -> None:
    filled = fill_prompt(template, {"prompt": template, "empty": "  "}, own="prompt")
    assert len(filled.problems) == 1
    where, _, message = filled.problems[0]
    assert where == column and words in message


def test_prompt_template_option_is_checked_once(tmp_path: Path) -> None:
    assert template_problem("{a} and {b}") is None
    assert "{{" in (template_problem("{a") or "")
    manifest = tmp_path / "m.csv"
    manifest.write_text("prompt,mode,ratio\nhello,fun,1:1\n", encoding="utf-8")
    with pytest.raises(Exception, match="--prompt-template"):
        read_manifest(manifest, ManifestSettings(prompt_template="broken {"))


def test_variant_keys_round_trip() -> None:
    assert variant_key("id:a", 1) == "id:a" and variant_key("h:12#2", 3) == "h:12#2#v3"
    assert split_variant("h:12#2#v3") == ("h:12#2", 3)
    assert split_variant("h:12#2") == ("h:12#2", 1) and split_variant("id:x#v0") == ("id:x#v0", 1)


def test_a_variant_key_that_another_row_owns_is_a_problem(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,prompt,mode,ratio,variants\na,one,fun,1:1,2\na#v2,two,fun,1:1,\n", encoding="utf-8"
    )
    read = read_manifest(manifest)
    assert [r.key for r in read.rows] == ["id:a", "id:a#v2"]
    assert any("another row" in p.message and p.row == 2 for p in read.problems)


# ---------------------------------------------------------------- decisions
def workbook(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Results"
    sheet.append(header)
    for values in rows:
        sheet.append(values)
    book.save(path)
    return path


def test_decisions_follow_keys_and_our_column_beside_a_users_own(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "r.xlsx",
        ["decision", "key", "batchgen_decision"],  # the user's own "decision" comes first
        [["ignore me", "id:b", " Approved "], ["x", "id:a", "REDO"], [None, None, None]],
    )
    read = read_decisions(path, {"id:a", "id:b"})
    assert read.refused is None and read.decisions == {"id:b": "approve", "id:a": "regenerate"}


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([["id:a", "approve"], ["id:a", "reject"]], "appears twice"),
        ([["id:zz", "approve"]], "not a job of this manifest"),
        ([[None, "approve"]], "decision but no key"),
    ],
)
def test_a_workbook_that_cannot_be_matched_gives_no_decisions(
    tmp_path: Path, rows: list[list[object]], why: str
) -> None:
    path = workbook(tmp_path / "r.xlsx", ["key", "decision"], rows)
    read = read_decisions(path, {"id:a"})
    assert read.decisions == {} and read.refused is not None and why in read.refused


@pytest.mark.parametrize("damage", ["not a zip", "broken xml"])
def test_a_file_that_is_not_a_workbook_is_refused_without_a_traceback(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "results.xlsx"
    if damage == "not a zip":
        path.write_bytes(b"not a zip")
    else:
        workbook(path, ["key", "decision"], [["id:a", "approve"]])
        with zipfile.ZipFile(path) as old:
            parts = {name: old.read(name) for name in old.namelist()}
        with zipfile.ZipFile(path, "w") as new:
            for name, data in parts.items():
                broken = b"<worksheet><sheetData><row" if "worksheets/" in name else data
                new.writestr(name, broken)
    read = read_decisions(path, {"id:a"})
    assert read.decisions == {} and "cannot be read" in (read.refused or "")
    assert read_decisions(tmp_path / "missing.xlsx", {"id:a"}).refused is None


# ---------------------------------------------------------------- task log and ledger
class _Row:
    def __init__(self, key: str, row: int) -> None:
        self.user: dict[str, Any] = {}
        self.key, self.row, self.prompt, self.problems = key, row, "p " + key, ()
        self.spec = JobSpec(key=key, row=row, prompt=self.prompt, mode="fun", ratio="1:1")
        self.price = 40  # a manifest row carries its price (the default provider's)


def _send(store: StateStore, key: str, task_id: str) -> None:
    store.transition(key, S.SUBMITTING)
    store.transition(key, S.SUBMITTED, task_id=task_id)


def test_every_task_keeps_its_line_when_its_row_is_sent_again(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.sqlite") as store:
        store.sync_manifest([], [_Row("id:a", 2), _Row("id:b", 3)])
        _send(store, "id:a", "t1")
        store.transition("id:a", S.FAILED, error_kind="permanent", consumed_credits=40)
        store.requeue_failed(include_permanent=True, max_attempts=5)  # --retry-failed
        _send(store, "id:a", "t2")
        store.transition("id:a", S.COMPLETED, consumed_credits=40)
        _send(store, "id:b", "t3")
        store.transition("id:b", S.COMPLETED, consumed_credits=80)
        log = {
            t["task_id"]: (t["key"], t["status"], t["consumed_credits"]) for t in store.task_log()
        }
        assert log == {
            "t1": ("id:a", "failed", 40),
            "t2": ("id:a", "completed", 40),
            "t3": ("id:b", "completed", 80),
        }
        jobs = {job.key: job for job in store.iter_jobs()}
        totals = write_ledger(
            tmp_path, tasks=store.task_log(), attempts=store.attempts(), jobs=jobs
        )
        assert totals.credits == store.credits_consumed() == 160
        claims = build_claims(store.task_log(), store.attempts(), jobs)
    assert sorted((c["reason"], c["task_id"]) for c in claims) == [
        ("credits_above_expected", "t3"),
        ("failed_but_charged", "t1"),
    ]
    assert (tmp_path / "ledger.csv").read_text(encoding="utf-8-sig").count("\n") == 4


def test_an_ambiguous_submit_without_a_resend_is_in_the_ledger_not_in_the_claims() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    attempts = [
        {"key": "id:a", "at": at, "kind": "submit", "outcome": "ambiguous", "message": "reset"},
        {"key": "id:a", "at": at, "kind": "submit", "outcome": "transient", "message": "503"},
    ]
    ledger = build_ledger([], attempts, {})
    assert [(line["ambiguous"], line["task_id"]) for line in ledger] == [("yes", "")]
    assert build_claims([], attempts, {}) == []


def test_the_migration_fills_the_task_log_from_an_existing_state(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + ";PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO jobs (key, row_num, prompt, mode, ratio, status, task_id, "
        "consumed_credits, created_at, updated_at, submitted_at) VALUES "
        "('id:a', 2, 'p', 'fun', '1:1', 'downloaded', 't-old', 40, 'x', "
        "'2026-01-01T00:00:09.000000+00:00', '2026-01-01T00:00:00.000000+00:00')"
    )
    conn.commit()
    conn.close()
    with StateStore.open(path) as store:
        assert [(t["task_id"], t["consumed_credits"]) for t in store.task_log()] == [("t-old", 40)]
        assert store.decisions() == {} and store.origins() == {}


def test_reports_list_a_rows_variants_by_number(tmp_path: Path) -> None:
    keys = ["id:a", "id:a#v10", "id:a#v2", "id:b"]
    with StateStore.open(tmp_path / "state.sqlite") as store:
        store.sync_manifest([], [_Row(k, 3 if k == "id:b" else 2) for k in keys])
        write_reports(store, tmp_path, name="m.csv", settings=Settings())
    text = (tmp_path / "results.csv").read_text(encoding="utf-8-sig")
    order = [line.split(",")[1] for line in text.splitlines()[1:]]
    assert order == ["id:a", "id:a#v2", "id:a#v10", "id:b"]
    cards = [(r["row"], r["take"], r["takes"]) for r in records(tmp_path)]
    assert cards == [(2, 1, 3), (2, 2, 3), (2, 10, 3), (3, 1, 1)]  # takes follow their row


def test_only_a_regenerate_on_a_finished_take_of_a_current_row_makes_a_new_take(
    tmp_path: Path,
) -> None:
    manifest_path = tmp_path / "m.csv"
    manifest_path.write_text(
        "id,prompt,mode,ratio\na,one,fun,1:1\nb,two,fun,1:1\nc,three,fun,1:1\n", encoding="utf-8"
    )
    manifest = read_manifest(manifest_path)
    with StateStore.open(tmp_path / "state.sqlite") as store:
        store.sync_manifest(manifest.columns, manifest.rows)
        for key in ("id:a", "id:c"):
            _send(store, key, f"t-{key}")
            store.transition(key, S.COMPLETED, consumed_credits=40)
            store.transition(key, S.DOWNLOADED)
        store.record_decisions(
            {"id:a": "regenerate", "id:b": "regenerate", "id:c": "approve", "id:gone": "regenerate"}
        )
        assert plan_regenerations(store, manifest) == ["id:a#v2"]  # b has no result yet
        assert plan_regenerations(store, manifest) == []  # acted on once only
        assert store.origins()["id:a#v2"] == (None, "id:a")
        assert store.regenerated() == {"id:a"}
