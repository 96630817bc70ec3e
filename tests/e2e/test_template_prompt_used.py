"""A prompt filled from a template is not "changed" until the template or its values are."""

from __future__ import annotations

from pathlib import Path

from helpers.cli_runner import SIM_DEFAULTS as SIM_DEFAULTS  # the make_sim fixture reads it
from helpers.cli_runner import Cli
from helpers.gallery_pages import records
from helpers.sheets import results_rows, write_rows
from helpers.simulators import MakeSim

BANNER = "Prompt changed after this video was made"
HEADER = ["id", "prompt", "mode", "ratio", "campaign", "surface"]
TEMPLATE = ("--prompt-template", "{campaign} on a {surface}")


def _rows(a_prompt: str = "{campaign} shot number 3", d_surface: str = "shelf") -> list[list[str]]:
    return [
        ["a", a_prompt, "fun", "1:1", "Summer", "desk"],  # template in the prompt cell
        ["d", "", "fun", "1:1", "Winter", d_surface],  # takes --prompt-template
        ["p", "a plain prompt", "fun", "1:1", "Autumn", "floor"],
        ["b", "{campaign} close-up", "fun", "1:1", "Spring", "sand"],  # never edited
    ]


def _report(out: Path) -> tuple[dict[str, str], str]:
    """The results' Prompt used by id, and the gallery's cards as the reviewer reads them."""
    used = {r["id"]: r["prompt_used"] for r in results_rows(out)}
    cards = records(out)
    text = "\n".join(c["prompt"] + (f"\n{BANNER}: {c['used']}" if c["used"] else "") for c in cards)
    return used, text


async def test_templated_rows_are_not_changed_prompts(make_sim: MakeSim, tmp_path: Path) -> None:
    sim = await make_sim()
    write_rows(tmp_path / "tpl.csv", _rows(), HEADER)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "tpl.csv", *TEMPLATE)).code == 0
    used, page = _report(tmp_path / "outputs" / "tpl")
    assert used == {"a": "", "d": "", "p": "", "b": ""}
    assert BANNER not in page
    assert "Summer shot number 3" in page and "Winter on a shelf" in page  # the filled text
    # a later run with nothing edited keeps it that way
    assert (await cli.run("run", "tpl.csv", *TEMPLATE)).code == 0
    used, page = _report(tmp_path / "outputs" / "tpl")
    assert used == {"a": "", "d": "", "p": "", "b": ""} and BANNER not in page


async def test_an_edited_template_or_value_is_still_flagged(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    manifest = write_rows(tmp_path / "tpl.csv", _rows(), HEADER)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "tpl.csv", *TEMPLATE)).code == 0
    # the cell's template edited, and the value --prompt-template fills from
    write_rows(manifest, _rows("{campaign} shot number 4", "table"), HEADER)
    await cli.run("run", "tpl.csv", *TEMPLATE)
    used, page = _report(tmp_path / "outputs" / "tpl")
    assert used["a"] == "Summer shot number 3"
    assert used["d"] == "Winter on a shelf"
    assert used["p"] == used["b"] == ""  # the row nobody edited is not flagged
    assert page.count(BANNER) == 2


async def test_an_edited_prompt_template_option_is_flagged(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    sim = await make_sim()
    write_rows(tmp_path / "tpl.csv", _rows(), HEADER)
    cli = Cli(tmp_path, sim)
    assert (await cli.run("run", "tpl.csv", *TEMPLATE)).code == 0
    await cli.run("run", "tpl.csv", "--prompt-template", "{campaign} resting on a {surface}")
    # no cell changed, so that run left the results as they were: ``report`` rewrites them
    # from the template the run recorded
    assert (await cli.run("report", "tpl.csv")).code == 0
    used, page = _report(tmp_path / "outputs" / "tpl")
    assert used == {"a": "", "d": "Winter on a shelf", "p": "", "b": ""}
    assert page.count(BANNER) == 1
