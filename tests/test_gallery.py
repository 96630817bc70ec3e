"""index.html: escaped text, relative players, a status filter, and a real browser run."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import html
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import finished_run

import batchgen
from batchgen.models import Job, JobStatus
from batchgen.output import gallery
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise

XSS = "<script>alert(1)</script>"
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
TINY_MP4 = Path(batchgen.__file__).parent / "data" / "tiny.mp4"


def make_job(row: int, status: JobStatus = JobStatus.DOWNLOADED, **kw: Any) -> Job:
    """A job with one downloaded file when done; keyword arguments override fields."""
    done = status is JobStatus.DOWNLOADED
    fields: dict[str, Any] = {
        "key": f"k{row}",
        "row": row,
        "prompt": f"prompt {row}",
        "mode": "fun",
        "ratio": "3:2",
        "status": status,
        "files": (f"videos/k{row}_1.mp4",) if done else (),
        "video_urls": (f"https://cdn.example.com/k{row}.mp4",) if done else (),
    }
    return Job(**(fields | kw))


def _edited(job: Job, prompt: str) -> Job:
    """``job`` as the state holds it once its prompt cell was edited to ``prompt``."""
    return dataclasses.replace(job, request_now=dataclasses.replace(job.spec(), prompt=prompt))


def render(tmp_path: Path, jobs: list[Job], prompt_column: str | None = None, **kw: Any) -> str:
    runs = [
        finished_run(1, T0, 3725, "batchgen run <m>.xlsx", requests=12, rate_limited=2, credits=80)
    ]
    summary = summarise(jobs, runs, manifest="spring & <summer>.xlsx", version="1.2.3")
    path = write_gallery(tmp_path, jobs=jobs, summary=summary, prompt_column=prompt_column, **kw)
    assert path == tmp_path / "index.html"
    return path.read_text(encoding="utf-8")


class _Tags(HTMLParser):
    """Collects start tags with their attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def test_text_from_the_manifest_and_server_is_escaped(tmp_path: Path) -> None:
    jobs = [
        make_job(2, prompt=XSS, mode="<b>fun</b>"),
        make_job(3, JobStatus.FAILED, error_kind="permanent", error_message='"><img src=x>'),
    ]
    page = render(tmp_path, jobs)
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "<b>fun" not in page
    tags = parse(page)
    assert tags.scripts == 1  # only the page's own script
    text = "".join(tags.text)
    assert XSS in text and '"><img src=x>' in text  # shown as text, verbatim
    assert "spring & <summer>.xlsx" in text and "batchgen run <m>.xlsx" in text


def test_unencodable_text_does_not_abort_the_page(tmp_path: Path) -> None:
    page = render(tmp_path, [make_job(2, prompt="bad \ud800 escape \x00")])
    assert "bad ? escape" in page


def test_players_use_relative_escaped_sources(tmp_path: Path) -> None:
    jobs = [
        make_job(2, files=("videos/k2_1.mp4", 'videos/a "quoted" #1.mp4')),
        make_job(3, files=("/etc/passwd", "C:/x.mp4")),
    ]
    videos = parse(render(tmp_path, jobs)).find("video")
    assert [v["src"] for v in videos] == ["videos/k2_1.mp4", "videos/a%20%22quoted%22%20%231.mp4"]
    for video in videos:
        assert "controls" in video and video["preload"] == "metadata"


def test_only_the_first_videos_preload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gallery, "EAGER_VIDEOS", 3)
    jobs = [
        make_job(row, files=(f"videos/{row}a.mp4", f"videos/{row}b.mp4")) for row in range(2, 5)
    ]
    videos = parse(render(tmp_path, jobs)).find("video")
    assert [v["preload"] for v in videos] == ["metadata"] * 3 + ["none"] * 3
    assert all("data-lazy" in v for v in videos[3:])


def test_vendor_urls_are_links_when_nothing_was_downloaded(tmp_path: Path) -> None:
    jobs = [
        make_job(2, JobStatus.DOWNLOAD_FAILED, video_urls=("https://cdn.example.com/x.mp4",)),
        make_job(3, JobStatus.DOWNLOAD_FAILED, video_urls=("javascript:alert(1)",)),
    ]
    links = [a["href"] for a in parse(render(tmp_path, jobs)).find("a")]
    assert links == ["https://cdn.example.com/x.mp4"]


def test_status_filter_and_card_data(tmp_path: Path) -> None:
    jobs = [
        make_job(2),
        make_job(3, JobStatus.FAILED, error_message="nope"),
        make_job(4, JobStatus.UNKNOWN),
        make_job(5, JobStatus.PENDING),
        make_job(6, in_manifest=False),
    ]
    tags = parse(render(tmp_path, jobs))
    buttons = [b["data-filter"] for b in tags.find("button")]
    assert buttons == ["all", "pending", "downloaded", "failed", "unknown", "attention", "deleted"]
    cards = [c for c in tags.find("article") if "card" in (c["class"] or "")]
    assert [c["data-status"] for c in cards] == [
        "downloaded",
        "failed",
        "unknown",
        "pending",
        "downloaded",
    ]
    assert [c["data-attention"] for c in cards] == ["0", "1", "1", "0", "0"]
    assert [c["data-deleted"] for c in cards] == ["0", "0", "0", "0", "1"]
    assert "deleted from manifest" in "".join(tags.text)


def _figures(page: str, element_id: str) -> dict[str, str]:
    start = page.index(f'id="{element_id}"')
    block = page[start : page.index("</dl>", start)]
    return {k: html.unescape(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block)}


def test_business_figures_first_engineering_figures_in_details(tmp_path: Path) -> None:
    page = render(tmp_path, [make_job(2), make_job(3, JobStatus.FAILED)])
    business = _figures(page, "summary")
    assert list(business) == [
        "videos",
        "rows",
        "done",
        "failed",
        "needs attention",
        "credits",
        "USD",
    ]
    assert business["videos"] == "1" and business["rows"] == "2" and business["failed"] == "1"
    assert business["credits"] == "80" and business["USD"] == "0.80"
    details = _figures(page, "engineering")
    assert details["requests"] == "12" and details["429s"] == "2"
    assert "requests" not in business and "429s" not in business
    assert details["last run"] == "2025-03-01 09:30:00 UTC → 2025-03-01 10:32:05 UTC"
    assert details["duration"] == "1:02:05" and details["batchgen"] == "1.2.3"
    assert page.index('id="summary"') < page.index("<details")


def test_filter_counts_agree_with_the_header_deleted_rows_apart(tmp_path: Path) -> None:
    jobs = [
        make_job(2),
        make_job(3),
        make_job(4, JobStatus.FAILED),
        make_job(5, in_manifest=False),
        make_job(6, JobStatus.FAILED, in_manifest=False),
    ]
    page = render(tmp_path, jobs)
    chips = dict(re.findall(r'data-filter="(\w+)"[^>]*>[^<]*\(<span class="count">(\d+)<', page))
    assert chips == {"all": "3", "downloaded": "2", "failed": "1", "attention": "1", "deleted": "2"}
    assert _figures(page, "summary")["rows"] == chips["all"]
    statuses = sum(int(n) for f, n in chips.items() if f not in ("all", "attention", "deleted"))
    assert statuses == int(chips["all"])
    cards = [c for c in parse(page).find("article") if "card" in (c["class"] or "")]
    assert ["hidden" in c for c in cards] == [False, False, False, True, True]


def test_every_user_column_is_on_the_card(tmp_path: Path) -> None:
    user = {"id": "spring-01", "campaign": "Spring launch", "owner": "Ana", "notes": "<hero>"}
    page = render(tmp_path, [make_job(2, user={"prompt": "p", **user})], prompt_column="prompt")
    pairs = re.findall(r'<dt>([^<]*)</dt><dd data-col="(\d+)">([^<]*)</dd>', page)
    assert [(k, html.unescape(v)) for k, _, v in pairs] == list(user.items())
    sort = re.findall(r'<option value="(\w+)">([^<]*)</option>', page)
    assert sort == [
        ("row", "row"),
        ("status", "status"),
        ("col0", "id"),
        ("col1", "campaign"),
        ("col2", "owner"),
        ("col3", "notes"),
    ]
    assert 'id="search"' in page


def card_texts(page: str) -> list[list[str]]:
    """Each card's visible text, in pieces split where the HTML puts tags."""
    cards = page.split('<article class="card"')[1:]
    return [[t for t in parse(c).text if t.strip()] for c in cards]


def test_mode_and_ratio_are_on_the_card_once(tmp_path: Path) -> None:
    # the manifest's own Mode / Aspect ratio columns: shown once, as sent, in the top line
    user = {"prompt": "p", "Video Mode": "Fun", "Aspect Ratio": "3:2", "campaign": "spring"}
    page = render(
        tmp_path,
        [make_job(2, user=user)],
        prompt_column="prompt",
        mode_column="Video Mode",
        ratio_column="Aspect Ratio",
    )
    (texts,) = card_texts(page)
    assert texts.count("fun") == 1 and texts.count("3:2") == 1, texts
    assert "Fun" not in texts and "Video Mode" not in texts and "Aspect Ratio" not in texts
    assert "campaign" in texts and "spring" in texts
    # they stay sortable and searchable under their own header names
    assert '<option value="col0">Video Mode</option>' in page
    assert '<span class="request" data-col="0">fun</span>' in page
    assert '<span class="request" data-col="1">3:2</span>' in page


def test_mode_and_ratio_without_their_columns_are_shown_once(tmp_path: Path) -> None:
    # defaults (no mode or ratio column): the top line still says what was sent, once
    page = render(tmp_path, [make_job(2, user={"prompt": "p", "owner": "Ana"})], "prompt")
    (texts,) = card_texts(page)
    assert texts.count("fun") == 1 and texts.count("3:2") == 1, texts


def test_a_card_says_when_its_video_shows_an_earlier_prompt(tmp_path: Path) -> None:
    jobs = [
        _edited(make_job(2, prompt="old prompt", user={"prompt": "new prompt"}), "new prompt"),
        _edited(make_job(3, prompt="same  prompt", user={"prompt": "same prompt"}), "same prompt"),
    ]
    page = render(tmp_path, jobs, prompt_column="prompt")
    cards = page.split('<article class="card"')[1:]
    assert "Prompt changed after this video was made" in cards[0]
    assert '<p class="prompt">new prompt</p>' in cards[0] and "old prompt" in cards[0]
    assert "Prompt changed" not in cards[1]


def test_posters_are_extracted_and_lazy_players_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gallery, "EAGER_VIDEOS", 1)
    (tmp_path / "videos").mkdir()
    for name in ("k2_1.mp4", "k3_1.mp4"):
        shutil.copyfile(TINY_MP4, tmp_path / "videos" / name)
    (tmp_path / "videos" / "k4_1.mp4").write_bytes(b"not a video")
    videos = parse(render(tmp_path, [make_job(2), make_job(3), make_job(4)])).find("video")
    assert videos[0]["poster"] == "posters/videos/k2_1.mp4.jpg" and "data-poster" not in videos[0]
    assert videos[1]["data-poster"] == "posters/videos/k3_1.mp4.jpg" and "poster" not in videos[1]
    assert "poster" not in videos[2] and "data-poster" not in videos[2]  # undecodable: none
    jpeg = (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").read_bytes()
    assert jpeg.startswith(b"\xff\xd8") and len(jpeg) > 200
    stamp = (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").stat().st_mtime_ns
    render(tmp_path, [make_job(2)])
    assert (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").stat().st_mtime_ns == stamp


def test_no_network_and_only_its_own_script_may_run(tmp_path: Path) -> None:
    page = render(tmp_path, [make_job(2)])
    assert "http://" not in page.replace("https://cdn.example.com", "")
    assert "<link" not in page and 'src="http' not in page
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    csp = parse(page).find("meta")[1]["content"] or ""
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_rewriting_is_deterministic_and_atomic(tmp_path: Path) -> None:
    first = render(tmp_path, [make_job(2)])
    assert render(tmp_path, [make_job(2)]) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]  # no video: no poster


# --- a real browser -------------------------------------------------------------------------


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
        _edited(
            make_job(3, prompt="old fox", user=user("autumn", "Ben", "a red fox")), "a red fox"
        ),
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


def test_new_posters_stop_at_the_time_budget_and_the_next_write_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "videos").mkdir()
    for row in (2, 3, 4):
        shutil.copyfile(TINY_MP4, tmp_path / "videos" / f"k{row}_1.mp4")
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0  # every look at the clock: one second later
        return now[0]

    monkeypatch.setattr(gallery, "POSTER_SECONDS", 1.5)
    jobs = [make_job(2), make_job(3), make_job(4)]
    summary = summarise(jobs, [], manifest="m", version="1")
    write_gallery(tmp_path, jobs=jobs, summary=summary, clock=clock)
    made = sorted(p.name for p in (tmp_path / "posters" / "videos").iterdir())
    assert made == ["k2_1.mp4.jpg"]  # the budget ran out after the first
    now[0] = 0.0
    monkeypatch.setattr(gallery, "POSTER_SECONDS", 2.5)
    page = write_gallery(tmp_path, jobs=jobs, summary=summary, clock=clock).read_text()
    assert len(list((tmp_path / "posters" / "videos").iterdir())) == 2  # one more
    assert page.count("poster=") + page.count("data-poster=") == 2  # kept ones are used
