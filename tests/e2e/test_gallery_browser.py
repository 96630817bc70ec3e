"""The gallery in a real headless chromium (Playwright, Debian's browser): search, filter, sort,
play; the review on the cards; a 10,000-row gallery opens, searches and sorts every row.
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
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise
from batchgen.output.review import Review


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
        "article.card", "cards => cards.map(c => Number(c.dataset.row))"
    )


def _chip(page: Any, name: str, attr: str = "filter") -> int:
    return int(page.text_content(f'button[data-{attr}="{name}"] .count'))


def _header(page: Any, label: str) -> str:
    return page.eval_on_selector_all(
        "#summary div",
        "(divs, label) => divs.filter(d => d.querySelector('dt').textContent === label)"
        ".map(d => d.querySelector('dd').textContent)[0]",
        label,
    )


def _open(page: Any, index: Path, takes: int) -> None:
    page.goto(index.as_uri())
    page.wait_for_function(f"() => document.body.dataset.ready === '{takes}'")


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
    render(out, jobs, prompt_column="prompt")  # posters made for the two first videos
    page = browser_page
    _open(page, out / "index.html", 5)
    page.wait_for_function("() => document.querySelectorAll('video[data-state]').length === 4")
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
        "videos/missing.mp4#t=0.1": "error",  # no poster: the browser's first frame
    }
    width = page.evaluate(
        "async () => { const v = document.querySelector('video');"
        " const i = new Image(); i.src = v.poster; await i.decode(); return i.naturalWidth; }"
    )
    assert width == 64  # the poster frame renders (the sample video is 64 px wide)
    durations = page.eval_on_selector_all(".duration", "ds => ds.map(d => d.textContent)")
    assert durations.count("0:01") == 3 and "cannot play this file" in durations
    assert page.evaluate("document.querySelector('.prompt').textContent") == XSS  # as text
    assert page.evaluate("document.querySelectorAll('main script').length") == 0

    # the header, the chips and the cards agree; deleted takes have their own filter
    assert _header(page, "takes") == "4" and _chip(page, "all") == 4
    assert _visible_rows(page) == [2, 3, 4, 5]
    assert page.text_content("#shown") == "4 of 4 takes shown"
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


@pytest.mark.browser
def test_the_review_is_on_the_cards_and_filters_by_decision(
    tmp_path: Path, browser_page: Any
) -> None:
    jobs = [
        make_job(2, key="id:a", user={"variants": "2"}),
        make_job(2, key="id:a#v2", user={"variants": "2"}),
        make_job(2, key="id:a#v3", user={"variants": "2"}),
        make_job(3, key="id:b"),
    ]
    review = Review(
        origins={"id:a#v3": (None, "id:a#v2")},
        decisions={"id:a": "reject", "id:a#v2": "regenerate", "id:b": "approve"},
    )
    render(tmp_path, jobs, review=review)
    page = browser_page
    _open(page, tmp_path / "index.html", 4)

    def card(key: str) -> dict[str, Any]:
        return page.eval_on_selector(
            f'article[data-key="{key}"]',
            "c => ({text: c.textContent, setBack: c.classList.contains('set-back'),"
            " opacity: Number(getComputedStyle(c).opacity)})",
        )

    rejected, replaced, newest, approved = (card(k) for k in ("id:a", "id:a#v2", "id:a#v3", "id:b"))
    assert "row 2 · take 1 of 3" in rejected["text"] and "rejected" in rejected["text"]
    assert "replaced by take 3" in replaced["text"]
    assert "take 3 replaces take 2" in newest["text"] and "row 2 · take 3 of 3" in newest["text"]
    assert "approved" in approved["text"]
    # rejected and replaced takes are set back, not hidden
    assert rejected["setBack"] and replaced["setBack"] and rejected["opacity"] < 1
    assert not newest["setBack"] and not approved["setBack"] and approved["opacity"] == 1
    assert _visible_rows(page) == [2, 2, 2, 3]
    page.click('button[data-decision="replaced"]')
    assert page.eval_on_selector_all("article", "cs => cs.map(c => c.dataset.key)") == ["id:a#v2"]
    page.click('button[data-decision="approve"]')
    assert _visible_rows(page) == [3] and _chip(page, "approve", "decision") == 1
    page.click('button[data-decision="all"]')
    page.select_option("#sort", value="decision")
    keys = page.eval_on_selector_all("article", "cs => cs.map(c => c.dataset.key)")
    assert keys == ["id:b", "id:a#v3", "id:a#v2", "id:a"]  # approved first, rejected last


@pytest.mark.browser
def test_a_10000_row_gallery_opens_and_searches_and_sorts_every_row(
    tmp_path: Path, browser_page: Any
) -> None:
    (tmp_path / "videos").mkdir()
    shutil.copyfile(_sample_video(tmp_path), tmp_path / "videos" / "one.mp4")
    last = 10_001
    jobs = (
        make_job(
            row,
            prompt=f"shot {row}: a fox in the snow",
            files=("videos/one.mp4",),
            user={"campaign": f"c{last - row:05d}", "owner": f"owner-{row}"},
        )
        for row in range(2, last + 1)
    )  # a generator: the writer reads the takes once, as it streams the state
    summary = summarise((make_job(r) for r in range(2, last + 1)), [], manifest="big", version="1")
    write_gallery(tmp_path, jobs=jobs, summary=summary, make_posters=False)
    page = browser_page
    _open(page, tmp_path / "index.html", 10_000)
    cards = page.eval_on_selector_all("article.card", "cs => cs.length")
    assert 0 < cards < 500  # cards are built as the reviewer scrolls, not 10,000 at once
    assert page.text_content("#shown") == "10000 of 10000 takes shown"
    assert _visible_rows(page)[:3] == [2, 3, 4]
    # search finds a take far down the list (a user column, then the prompt)
    page.fill("#search", "owner-9000")
    page.wait_for_function("() => document.getElementById('shown').textContent.startsWith('1 of')")
    assert _visible_rows(page) == [9000]
    page.fill("#search", "shot 10001:")
    page.wait_for_function("() => document.querySelector('article.card')?.dataset.row === '10001'")
    assert _visible_rows(page) == [10_001]
    page.fill("#search", "")
    page.wait_for_function("() => document.getElementById('shown').textContent.startsWith('10000')")
    # sort by a user column over every take: the last row's campaign sorts first
    page.select_option("#sort", label="campaign")
    assert _visible_rows(page)[:3] == [10_001, 10_000, 9_999]
    page.select_option("#sort", label="row")
    # scrolling to the end builds more cards
    before = page.eval_on_selector_all("article.card", "cs => cs.length")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(f"() => document.querySelectorAll('article.card').length > {before}")
    page.wait_for_function("() => document.querySelector('video[data-state=\\'loaded\\']')")
