"""Issue 23, item 10: secrets in odd shapes.

Seen: the token echoed back lower-cased by a server was stored in the state, results, gallery
and log (masking was exact-match); a notify URL that redirects in a loop logged the whole
webhook URL, secret path included, and posted the summary to every redirect target. The kind:
a secret is masked in any letter case and percent-encoded; a notice follows no redirect and
nothing but the notify URL's host is ever written.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from hostile_vendor import HostileVendor

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.logs import mask_secret
from batchgen.output.notify import send_notice
from batchgen.providers.grokimagine import Token
from batchgen.text import MASK, clean_text, forget_secrets, secrets_in

TOKEN = "sk-Live/5ecret+T0ken="  # a token whose URL-encoded form differs from it
SHAPES = {
    "lower": TOKEN.lower(),
    "upper": TOKEN.upper(),
    "url_encoded": quote(TOKEN, safe=""),
    "url_encoded_lower_hex": quote(TOKEN, safe="").replace("%2F", "%2f").replace("%2B", "%2b"),
    "url_encoded_lowered": quote(TOKEN, safe="").lower(),
    "path_encoded": quote(TOKEN),
    "json_escaped": TOKEN.replace("/", "\\/"),
}


@pytest.fixture(autouse=True)
def _token() -> Iterator[None]:
    mask_secret(TOKEN)
    yield
    forget_secrets()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_of_the_token_is_masked(shape: str) -> None:
    echoed = f"bad token {SHAPES[shape]} (from the gateway)"
    assert secrets_in(echoed)
    cleaned = clean_text(echoed)
    assert cleaned == f"bad token {MASK} (from the gateway)"
    assert not secrets_in(cleaned)


def test_ordinary_text_is_left_alone() -> None:
    assert clean_text("sk-live and 5ecret are words") == "sk-live and 5ecret are words"


# ---------------------------------------------------------------- a whole run
def _texts(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file under ``folder`` as text, a workbook's parts unpacked."""
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = b"".join(archive.read(name) for name in archive.namelist())
        yield path, data.decode("utf-8", "replace")


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


@pytest.mark.parametrize("shape", ["lower", "upper", "url_encoded_lowered"])
async def test_a_token_echoed_back_reaches_no_file(
    tmp_path: Path, vendor: HostileVendor, shape: str
) -> None:
    with (tmp_path / "briefs.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [["id", "prompt", "mode", "ratio"], ["r0", "a fox", "fun", "1:1"]]
        )
    vendor.post = ["reject"]
    vendor.reject_message = f"Invalid request: the key {SHAPES[shape]} may not do this"
    out = tmp_path / "outputs"
    ns = parse_args(["run", str(tmp_path / "briefs.csv"), "--out", str(out)])
    settings = settings_from_args(ns, base_url=vendor.url)
    await run_batch(ns.manifests, settings, Token(TOKEN), command="test", install_signals=False)
    written = dict(_texts(out))
    assert {p.name for p in written} >= {
        "state.sqlite",
        "results.csv",
        "results.xlsx",
        "index.html",
    }
    assert any(p.suffix == ".log" for p in written)
    assert any("may not do this" in text for p, text in written.items() if p.name == "results.csv")
    forms = {TOKEN.lower(), quote(TOKEN, safe="").lower()}
    leaks = [p for p, text in written.items() if any(f in text.lower() for f in forms)]
    assert leaks == []


# ---------------------------------------------------------------- notify
SECRET_PATH = "/services/T0001/B0002/s3cr3tHookPath"


class Hooks:
    """Two loopback hosts: ``first`` redirects as told, ``second`` counts what it receives."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.first_url = self.second_url = ""
        self.mode = "loop"

    async def first(self, request: web.Request) -> web.StreamResponse:
        self.posts.append(f"first {request.path_qs}")
        if self.mode == "loop":
            raise web.HTTPFound(f"{SECRET_PATH}?again={len(self.posts)}")
        raise web.HTTPTemporaryRedirect(f"{self.second_url}{SECRET_PATH}")

    async def second(self, request: web.Request) -> web.StreamResponse:
        self.posts.append(f"second {request.path_qs}")
        return web.Response(text="ok")


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    found = Hooks()
    runners = []
    for name, handler in (("first", found.first), ("second", found.second)):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        setattr(
            found,
            f"{name}_url",
            f"http://localhost:{port}" if name == "first" else f"http://127.0.0.1:{port}",
        )
        runners.append(runner)
    yield found
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("mode", ["loop", "elsewhere"])
async def test_a_redirecting_notify_url_is_not_followed_and_not_logged(
    hooks: Hooks, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    hooks.mode = mode
    with caplog.at_level(logging.INFO, logger="batchgen"):
        sent = await send_notice(f"{hooks.first_url}{SECRET_PATH}", "done", {"exit_code": 0})
    assert sent is False
    assert hooks.posts == [f"first {SECRET_PATH}"]  # posted once, to the address given only
    assert "s3cr3tHookPath" not in caplog.text and "services" not in caplog.text
    assert "redirected (HTTP 30" in caplog.text and "localhost" in caplog.text
    target = "localhost" if mode == "loop" else "127.0.0.1"
    assert f"to {target}: not followed" in caplog.text


async def test_a_notify_url_that_cannot_be_used_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="batchgen"):
        sent = await send_notice(f"http://127.0.0.1:1{SECRET_PATH}", "done", {}, seconds=5)
        also = await send_notice(f"htp://hooks.example{SECRET_PATH}", "done", {}, seconds=5)
    assert sent is False and also is False
    assert "s3cr3tHookPath" not in caplog.text and caplog.text.count("could not send") == 2
