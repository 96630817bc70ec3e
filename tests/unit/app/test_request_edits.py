"""Issue 28: every edit to a sent row is visible, not only an edited prompt.

The request that was sent (every ``JobSpec`` field) is compared with the one the manifest
asks for now, field by field from the one declaration, for every kind of field: text,
choice, number, a list of pictures, a local picture's content. ``validate`` and ``run`` name
the fields with their old and new values, the results say which changed, the gallery shows
what the video was made with, and nothing is sent again on its own.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import openpyxl
import pytest
from helpers.gallery_pages import records
from helpers.pictures import Picture, PictureServer

from batchgen.app.run import run_batch
from batchgen.app.validate import validate_manifests
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN, RetryPolicy, Settings
from batchgen.models import JobSpec, describe_changes, request_changes
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Fault, SimConfig, Simulator

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)
HEADER = ["id", "prompt", "mode", "ratio", "images"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _LaterSpec(JobSpec):
    """Fields as a provider adds them: a number, and a local picture by its content hash."""

    duration: int = 6
    picture_sha256: str = dataclasses.field(default="", metadata={"label": "picture content"})


def _spec(**fields: object) -> _LaterSpec:
    base: dict[str, object] = {"key": "id:a", "row": 5, "prompt": "a fox", "mode": "fun"}
    return _LaterSpec(**(base | {"ratio": "1:1"} | fields))  # type: ignore[arg-type]


# --- the comparison, one test per kind of field ------------------------------------------


def test_text_is_compared_as_the_key_compares_it() -> None:
    sent = _spec(prompt="a red fox")
    assert request_changes(sent, _spec(prompt="a  red\nfox")) == ()  # white space only
    (change,) = request_changes(sent, _spec(prompt="a blue fox"))
    assert change.describe() == "prompt was 'a red fox' when its video was made, now 'a blue fox'"


def test_a_choice_names_its_old_and_new_value() -> None:
    changes = request_changes(_spec(), _spec(ratio="2:3", mode="spicy"))
    assert describe_changes(changes) == (
        "mode was fun when its video was made, now spicy; ratio was 1:1, now 2:3"
    )


def test_a_number_declared_later_is_compared_without_a_line_of_its_own() -> None:
    (change,) = request_changes(_spec(), _spec(duration=10))
    assert change.describe() == "duration was 6 when its video was made, now 10"


def test_a_list_of_pictures_is_compared_item_by_item() -> None:
    sent = _spec(images=("https://x.test/a.png",))
    assert request_changes(sent, _spec(images=("https://x.test/a.png",))) == ()
    (change,) = request_changes(sent, _spec(images=("https://x.test/b.png",)))
    assert change.describe("") == "images was https://x.test/a.png, now https://x.test/b.png"
    (change,) = request_changes(sent, _spec())
    assert change.describe("") == "images was https://x.test/a.png, now none"


def test_a_local_pictures_content_is_compared_by_its_hash() -> None:
    sent = _spec(picture_sha256="3f2a" * 16)
    (change,) = request_changes(sent, _spec(picture_sha256="9b1c" * 16))
    assert change.describe() == (
        "picture content was 3f2a3f2a3f2a… when its video was made, now 9b1c9b1c9b1c…"
    )


# --- end to end: a real run, a real state, the results and the gallery ----------------------


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def _run(manifest: Path, out: Path, sim: Simulator, *args: str) -> int:
    ns = parse_args(["run", str(manifest), "--out", str(out), "--first-poll", "0.01s", *args])
    settings = settings_from_args(ns, base_url=sim.url).with_options(retry=FAST_RETRY)
    return await run_batch(
        ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )


def _results(out: Path) -> dict[str, dict[str, str]]:
    with (out / "results.csv").open(encoding="utf-8-sig", newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


async def test_every_edit_of_a_sent_row_is_named_and_nothing_is_sent_again(
    simulator: Simulator,
    pictures: PictureServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pictures.files |= {"a.png": Picture(), "b.png": Picture()}
    a, b = pictures.url("a.png"), pictures.url("b.png")
    rows = [
        ["p", "a red fox", "fun", "1:1", ""],
        ["r", "a grey owl", "fun", "1:1", ""],
        ["m", "a green frog", "fun", "1:1", ""],
        ["i", "a white cat", "fun", "1:1", a],
        ["u", "a black dog", "fun", "1:1", a],
    ]
    manifest, out = _write(tmp_path / "briefs.csv", rows), tmp_path / "outputs"
    assert await _run(manifest, out, simulator) == 0
    made = len(simulator.stats.tasks)
    rows[0][1], rows[1][3], rows[2][2], rows[3][4] = "a blue fox", "2:3", "spicy", f"{a}\n{b}"
    _write(manifest, rows)

    settings = Settings.from_options(out_dir=out, allow_private_urls=True)
    text, code = validate_manifests([manifest], settings)
    assert code == 0
    notes = [line.strip() for line in text.splitlines() if line.strip().startswith("warning:")]
    assert [note.split(";")[0] for note in notes] == [
        "warning: row 2 (id p): prompt was 'a red fox' when its video was made, now 'a blue fox'",
        "warning: row 3 (id r): ratio was 1:1 when its video was made, now 2:3",
        "warning: row 4 (id m): mode was fun when its video was made, now spicy",
        f"warning: row 5 (id i): images was {a} when its video was made, now {a}, {b}",
    ]
    assert "regenerate" in notes[0]

    assert await _run(manifest, out, simulator) == 0
    assert len(simulator.stats.tasks) == made  # nothing sent again on its own
    assert "row 3 (id r): ratio was 1:1 when its video was made, now 2:3" in caplog.text

    found = _results(out / "briefs")
    assert {key: row["request_changed"] for key, row in found.items()} == {
        "p": "prompt was 'a red fox', now 'a blue fox'",
        "r": "ratio was 1:1, now 2:3",
        "m": "mode was fun, now spicy",
        "i": f"images was {a}, now {a}, {b}",
        "u": "",
    }
    assert found["p"]["prompt_used"] == "a red fox" and found["r"]["prompt_used"] == ""
    sheet = openpyxl.load_workbook(out / "briefs" / "results.xlsx")["Results"]
    header = [cell.value for cell in sheet[1]]
    at = header.index("Changed since made")
    changed = [row[at] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert changed == [*(found[key]["request_changed"] for key in "prmi"), None]

    cards = {str(card["row"]): card for card in records(out / "briefs")}
    assert cards["3"]["madeWith"] == "ratio was 1:1, now 2:3"
    assert cards["3"]["ratio"] == "1:1"  # made with 1:1
    assert cards["4"]["madeWith"] == "mode was fun, now spicy"
    assert cards["2"]["used"] and not cards["6"]["madeWith"]


async def test_a_requeued_row_is_sent_with_its_edited_request(
    simulator_factory: object, tmp_path: Path
) -> None:
    config = SimConfig(
        rpm=5000, latency_median=2.0, time_scale=0.01, seed=7, task_permanent=Fault(at={1})
    )
    sim = await simulator_factory(config)  # type: ignore[operator]
    manifest = _write(tmp_path / "briefs.csv", [["f", "a cat", "fun", "1:1", ""]])
    out = tmp_path / "outputs"
    assert await _run(manifest, out, sim) == 1  # the vendor refused the content
    _write(manifest, [["f", "a cat asleep", "normal", "2:3", ""]])
    assert await _run(manifest, out, sim, "--retry-failed") == 0
    last = max(sim.stats.tasks.values(), key=lambda record: record.created)
    assert (last.request["prompt"], last.request["mode"], last.request["ratio"]) == (
        "a cat asleep",
        "normal",
        "2:3",
    )
    assert _results(out / "briefs")["f"]["request_changed"] == ""
