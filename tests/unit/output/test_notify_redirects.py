"""Issue 23, item 10: a notify URL that redirected in a loop logged the whole webhook URL and
posted the summary to every redirect target. Now a notice is posted once, to the address
given, no redirect is followed, and only hosts are logged, whatever goes wrong.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from batchgen.output.notify import send_notice

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
