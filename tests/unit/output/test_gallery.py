"""index.html: escaped text, relative players, a status filter, and a real browser run."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
from pathlib import Path

import pytest
from helpers.gallery_pages import TINY_MP4, XSS, edited, make_job, render
from helpers.html import card_texts, parse

from batchgen.models import JobStatus
from batchgen.output import gallery
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise


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
        edited(make_job(2, prompt="old prompt", user={"prompt": "new prompt"}), "new prompt"),
        edited(make_job(3, prompt="same  prompt", user={"prompt": "same prompt"}), "same prompt"),
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
