"""The gallery in a real headless chromium (Playwright, Debian's browser): search, filter, sort,
play; a 2000-video page loads only what is in view.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.gallery_pages import TINY_MP4, XSS, edited, make_job, render

from batchgen.models import JobStatus
from batchgen.output import gallery


def _browser() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def _sample_video(tmp_path: Path) -> Path:
    if TINY_MP4.exists():
        return TINY_MP4
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip(f"no sample video: {TINY_MP4} is missing and ffmpeg is not installed")
    out = tmp_path / "tiny.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=64x64",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in Debian's chromium (no browser download), fresh profile.

    Skipped where no chromium is installed, except in CI (``CI`` set), where .ci/run
    installs it and a missing browser is a failure.
    """
    browser = _browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: .ci/run installs Debian's chromium")
        pytest.skip("no headless browser: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=browser,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _visible_rows(page: Any) -> list[int]:
    return page.eval_on_selector_all(
        "article.card:not([hidden])", "cards => cards.map(c => Number(c.dataset.row))"
    )


def _chip(page: Any, name: str) -> int:
    return int(page.text_content(f'button[data-filter="{name}"] .count'))


def _header(page: Any, label: str) -> str:
    return page.eval_on_selector_all(
        "#summary div",
        "(divs, label) => divs.filter(d => d.querySelector('dt').textContent === label)"
        ".map(d => d.querySelector('dd').textContent)[0]",
        label,
    )


@pytest.mark.browser
def test_gallery_in_headless_chromium_search_filter_sort_and_play(
    tmp_path: Path, browser_page: Any
) -> None:
    out = tmp_path / "out"
    (out / "videos").mkdir(parents=True)
    sample = _sample_video(tmp_path)
    for name in ("k2_1.mp4", "k2 2.mp4", "k3_1.mp4"):
        shutil.copyfile(sample, out / "videos" / name)

    def user(campaign: str, owner: str, prompt: str) -> dict[str, Any]:
        return {"id": f"id-{owner}", "campaign": campaign, "owner": owner, "prompt": prompt}

    jobs = [
        make_job(
            2,
            prompt=XSS,
            files=("videos/k2_1.mp4", "videos/k2 2.mp4"),
            user=user("summer", "Ana", XSS),
        ),
        edited(make_job(3, prompt="old fox", user=user("autumn", "Ben", "a red fox")), "a red fox"),
        make_job(4, files=("videos/missing.mp4",), user=user("spring", "Ana", "prompt 4")),
        make_job(
            5,
            JobStatus.FAILED,
            error_kind="permanent",
            error_message="refused",
            user=user("autumn", "Cleo", "prompt 5"),
        ),
        make_job(6, in_manifest=False, files=(), user=user("winter", "Dan", "gone")),
    ]
    render(out, jobs, prompt_column="prompt")
    page = browser_page
    page.goto((out / "index.html").as_uri())
    page.wait_for_function("() => document.querySelectorAll('video[data-state]').length === 4")

    # the header, the chips and the cards agree; deleted rows have their own filter
    assert _header(page, "rows") == "4" and _chip(page, "all") == 4
    assert _visible_rows(page) == [2, 3, 4, 5]
    assert page.text_content("#shown") == "4 of 4 rows shown"
    # every user column is on the card; the edited prompt is flagged
    card3 = page.text_content('article[data-row="3"]')
    assert "autumn" in card3 and "Ben" in card3 and "id-Ben" in card3
    assert "Prompt changed after this video was made" in card3 and "old fox" in card3

    page.fill("#search", "ana")  # the owner column, any case
    assert _visible_rows(page) == [2, 4]
    page.fill("#search", "red FOX")  # the prompt
    assert _visible_rows(page) == [3]
    page.fill("#search", "")
    page.click('button[data-filter="failed"]')
    assert _visible_rows(page) == [5] and _chip(page, "failed") == 1
    page.click('button[data-filter="deleted"]')
    assert _visible_rows(page) == [6] and _chip(page, "deleted") == 1
    page.click('button[data-filter="all"]')
    page.select_option("#sort", label="campaign")
    assert _visible_rows(page) == [3, 5, 4, 2]  # autumn, autumn, spring, summer
    page.fill("#search", "nothing matches this")
    assert _visible_rows(page) == [] and page.is_visible("#empty")

    states = {
        v["src"]: v["state"]
        for v in page.eval_on_selector_all(
            "video", "vs => vs.map(v => ({src: v.getAttribute('src'), state: v.dataset.state}))"
        )
    }
    assert states == {
        "videos/k2_1.mp4": "loaded",  # metadata read: the file was found and decoded
        "videos/k2%202.mp4": "loaded",
        "videos/k3_1.mp4": "loaded",
        "videos/missing.mp4": "error",
    }
    width = page.evaluate(
        "async () => { const v = document.querySelector('video');"
        " const i = new Image(); i.src = v.poster; await i.decode(); return i.naturalWidth; }"
    )
    assert width == 64  # the poster frame renders (the sample video is 64 px wide)
    assert page.evaluate("document.scripts.length") == 1
    durations = page.eval_on_selector_all(".duration", "ds => ds.map(d => d.textContent)")
    assert durations.count("0:01") == 3 and "cannot play this file" in durations


@pytest.mark.browser
def test_a_2000_video_page_loads_only_what_is_in_view(tmp_path: Path, browser_page: Any) -> None:
    (tmp_path / "videos").mkdir()
    shutil.copyfile(_sample_video(tmp_path), tmp_path / "videos" / "one.mp4")
    jobs = [make_job(row, files=("videos/one.mp4",)) for row in range(2, 2002)]
    render(tmp_path, jobs)
    page = browser_page
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_load_state("load")
    eager = page.eval_on_selector_all("video:not([data-lazy])", "vs => vs.length")
    assert gallery.EAGER_VIDEOS <= eager < 200  # the rest wait to be scrolled near
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(
        "() => !document.querySelector('main article:last-child video[data-lazy]')"
    )
    assert page.get_attribute("main article:last-child video", "poster")
