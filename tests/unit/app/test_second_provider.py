"""The provider seam, end to end: a run against a vendor with another wire format.

The toy vendor (tests/toy_provider.py) speaks ``/jobs`` with ``id``/``state``/``outputs``; if
the engine or the app used GrokImagine's paths or fields anywhere, these runs would fail.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import AsyncIterator
from pathlib import Path

from helpers.toy_provider import ToyProvider, ToyServer

from batchgen.app.run import run_batch
from batchgen.config import Settings
from batchgen.providers.base import Provider
from batchgen.providers.grokimagine import ResponseHook, Token

_: type[Provider] = ToyProvider  # mypy: the toy vendor satisfies the protocol


def _manifest(path: Path, prompts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "mode", "ratio"])
        writer.writerows([f"r{i}", prompt, "fun", "1:1"] for i, prompt in enumerate(prompts))
    return path


@contextlib.asynccontextmanager
async def _toy() -> AsyncIterator[ToyServer]:
    server = ToyServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _factory(
    settings: Settings, token: Token, on_response: ResponseHook
) -> contextlib.AbstractAsyncContextManager[Provider]:
    return ToyProvider(settings.api.base_url)


async def _run(tmp_path: Path, prompts: list[str]) -> tuple[int, ToyServer, Path]:
    manifest = _manifest(tmp_path / "toy.csv", prompts)
    async with _toy() as server:
        settings = Settings.from_options(
            base_url=server.url, out_dir=tmp_path / "out", first_poll=0.02, rpm=100_000
        )
        code = await run_batch(
            [manifest],
            settings,
            Token("toy-token"),
            command="run",
            install_signals=False,
            provider=_factory,
        )
    return code, server, tmp_path / "out"


async def test_a_run_against_a_second_vendor_downloads_every_row_and_writes_results(
    tmp_path: Path,
) -> None:
    code, server, out = await _run(tmp_path, ["a red fox", "a blue whale", "a green frog"])
    assert code == 0
    assert len(server.jobs) == 3
    assert {job["text"] for job in server.jobs.values()} == {
        "a red fox",
        "a blue whale",
        "a green frog",
    }
    # only the toy vendor's own paths were used: nothing of GrokImagine's wire format
    assert all("/v1/" not in line for line in server.requests)
    assert sum(line.startswith("GET /files/") for line in server.requests) == 3
    videos = sorted((out).rglob("*.mp4"))
    assert len(videos) == 3
    assert all(v.read_bytes()[4:8] == b"ftyp" for v in videos)
    results = list(out.rglob("results*.csv"))
    assert results, sorted(p.name for p in out.rglob("*"))
    text = results[0].read_text(encoding="utf-8")
    assert "a red fox" in text and "toy-" in text


async def test_a_failed_state_of_the_second_vendor_fails_only_its_row(tmp_path: Path) -> None:
    code, _server, out = await _run(tmp_path, ["a red fox", "please break this"])
    assert code != 0  # a failed row needs attention
    assert len(sorted(out.rglob("*.mp4"))) == 1
    text = next(out.rglob("results*.csv")).read_text(encoding="utf-8")
    assert "refused" in text  # the toy vendor's own failure reason reached the results
