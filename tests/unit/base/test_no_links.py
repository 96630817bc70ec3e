"""Issue 23 item 8, the primitives: nothing is written through a symbolic link, and no folder
leads out of the output folder (:mod:`batchgen.atomic`; the state file too). Whole runs:
``tests/e2e/test_output_links.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgen.atomic import LinkRefusedError, atomic_write_bytes, check_inside, open_own
from batchgen.errors import StateError
from batchgen.simulator.files import video_bytes
from batchgen.state.store import StateStore

VIDEO = video_bytes()
PRECIOUS = b"someone else's file\n"


def _outside(tmp_path: Path, content: bytes = PRECIOUS) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    target = elsewhere / "precious.txt"
    target.write_bytes(content)
    return target


# ---------------------------------------------------------------- the primitives
def test_open_own_refuses_a_link_and_names_it(tmp_path: Path) -> None:
    target = _outside(tmp_path)
    link = tmp_path / "v.mp4.part"
    link.symlink_to(target)
    for append in (True, False):
        with pytest.raises(LinkRefusedError, match=r"v\.mp4\.part is a symbolic link"):
            open_own(link, append=append)
    assert target.read_bytes() == PRECIOUS


def test_an_atomic_write_refuses_a_link_rather_than_replace_it(tmp_path: Path) -> None:
    target = _outside(tmp_path)
    link = tmp_path / "results.csv"
    link.symlink_to(target)
    with pytest.raises(LinkRefusedError, match=r"results\.csv is a symbolic link"):
        atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == PRECIOUS
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_folder_that_leads_outside_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "videos").symlink_to(_outside(tmp_path).parent)
    with pytest.raises(LinkRefusedError, match="leads outside the output folder"):
        check_inside(out / "videos" / "a.mp4", out)
    check_inside(out / "new" / "deeper" / "a.mp4", out)  # folders not made yet are inside


def test_a_state_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.sqlite"
    StateStore.open(target).close()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "state.sqlite").symlink_to(target)
    with pytest.raises(StateError, match=r"state\.sqlite is a symbolic link"):
        StateStore.open(tmp_path / "out" / "state.sqlite")
