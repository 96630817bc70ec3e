"""Issue 25, item 6: a row whose picture fails its check is held (not sent, not paid) with a
message naming the row, the column and what came back, while the other rows are sent; the
next run checks it again; ``validate`` reports the same; ``--skip-image-check`` sends it."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

from helpers.pictures import HTML, Picture, PictureServer

from batchgen.app.run import run_batch
from batchgen.app.validate import validate_manifests
from batchgen.cli import parse_args, settings_from_args
from batchgen.config import DEMO_TOKEN, RetryPolicy, Settings
from batchgen.models import JobStatus
from batchgen.providers.grokimagine import Token
from batchgen.simulator import Simulator
from batchgen.state.store import StateStore

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.5)


def _manifest(path: Path, pictures: PictureServer) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio", "Reference image"])
        writer.writerow(["a", "prompt a", "fun", "1:1", pictures.url("good.png")])
        writer.writerow(["b", "prompt b", "fun", "1:1", pictures.url("missing.png")])
        writer.writerow(["c", "prompt c", "fun", "1:1", ""])
        writer.writerow(["d", "prompt d", "fun", "1:1", pictures.url("login.png")])
    return path


async def _run(manifest: Path, out: Path, sim: Simulator, *args: str) -> int:
    ns = parse_args(["run", str(manifest), "--out", str(out), "--first-poll", "0.01s", *args])
    settings = settings_from_args(ns, base_url=sim.url).with_options(retry=FAST_RETRY)
    return await run_batch(
        ns.manifests, settings, Token(DEMO_TOKEN), command="t", install_signals=False
    )


def _sent(sim: Simulator) -> list[str]:
    return sorted(record.prompt for record in sim.stats.tasks.values())


async def test_held_rows_are_not_sent_while_the_others_are(
    simulator: Simulator, pictures: PictureServer, tmp_path: Path
) -> None:
    pictures.files["good.png"] = Picture()
    pictures.files["login.png"] = Picture(body=HTML, content_type="text/html")
    manifest, out = _manifest(tmp_path / "briefs.csv", pictures), tmp_path / "outputs"
    assert await _run(manifest, out, simulator) == 1  # some rows need a look
    assert _sent(simulator) == ["prompt a", "prompt c"]
    with StateStore.open(out / "briefs" / "state.sqlite") as store:
        held = store.get("id:b")
        assert store.get("id:d").status is JobStatus.INVALID
    assert held.status is JobStatus.INVALID
    assert held.error_message == (
        f"column 'Reference image': the picture '{pictures.url('missing.png')}' answered HTTP "
        "404 Not Found; the row is held, not sent (fix the cell and run again; "
        "--skip-image-check sends without checking)"
    )
    log = next((out / "briefs" / "logs").glob("*.log")).read_text(encoding="utf-8")
    assert "briefs.csv: row 3: column 'Reference image': the picture" in log
    # the server fixed: the next run checks again and sends it; the web page stays held
    pictures.files["missing.png"] = Picture()
    assert await _run(manifest, out, simulator) == 1
    assert _sent(simulator) == ["prompt a", "prompt b", "prompt c"]
    # where this machine cannot see what the vendor can: no check at all
    assert await _run(manifest, out, simulator, "--skip-image-check") == 0
    assert _sent(simulator) == ["prompt a", "prompt b", "prompt c", "prompt d"]
    assert pictures.hits["good.png"] == 1  # a row already sent is not checked again


async def test_validate_names_the_row_the_column_and_what_came_back(
    pictures: PictureServer, tmp_path: Path
) -> None:
    pictures.files["good.png"] = Picture()
    pictures.files["login.png"] = Picture(body=HTML, content_type="text/html")
    manifest = _manifest(tmp_path / "briefs.csv", pictures)
    settings = Settings.from_options(out_dir=tmp_path / "outputs", allow_private_urls=True)
    text, code = await asyncio.to_thread(validate_manifests, [manifest], settings)
    assert code == 1
    lines = [line.split() for line in text.splitlines()]
    assert lines[3][:6] == ["3", "Reference", "image", "error", "the", "picture"]
    assert "answered HTTP 404 Not Found; the row is held" in text
    assert "is served as text/html, not as a JPEG, PNG or WebP image" in text
    assert "4 valid, 0 invalid" not in text and "2 valid, 2 invalid" in text
    assert pictures.hits == {"good.png": 1, "missing.png": 1, "login.png": 1}
    # without --allow-private-urls (a public API), a loopback picture is refused unfetched
    public = Settings.from_options(out_dir=tmp_path / "outputs")
    text, code = await asyncio.to_thread(validate_manifests, [manifest], public)
    assert "points at the non-public address 127.0.0.1" in text and code == 1
    assert pictures.hits == {"good.png": 1, "missing.png": 1, "login.png": 1}
    skipped = public.with_options(skip_image_check=True)
    assert (await asyncio.to_thread(validate_manifests, [manifest], skipped))[1] == 0
