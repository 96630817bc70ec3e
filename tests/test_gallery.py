"""index.html: escaped text, relative players, a status filter, and a real browser run."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import batchgen
from batchgen.models import Job, JobStatus, RunInfo
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


def render(tmp_path: Path, jobs: list[Job]) -> str:
    runs = [
        RunInfo(
            run_id=1,
            started_at=T0,
            ended_at=T0 + dt.timedelta(seconds=3725),
            command="batchgen run <m>.xlsx",
            requests=12,
            rate_limited=2,
            credits=80,
        )
    ]
    summary = summarise(jobs, runs, manifest="spring & <summer>.xlsx", version="1.2.3")
    path = write_gallery(tmp_path, jobs=jobs, summary=summary)
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


def test_summary_figures_at_the_top(tmp_path: Path) -> None:
    page = render(tmp_path, [make_job(2), make_job(3, JobStatus.FAILED)])
    header = page[page.index("<header>") : page.index("</header>")]
    figures = {k: html.unescape(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", header)}
    assert figures["rows"] == "2" and figures["downloaded"] == "1" and figures["failed"] == "1"
    assert figures["needs attention"] == "1" and figures["credits"] == "80"
    assert figures["est. USD"] == "0.80" and figures["requests"] == "12" and figures["429s"] == "2"
    assert figures["last run"] == "2025-03-01 09:30:00 UTC → 2025-03-01 10:32:05 UTC"
    assert figures["duration"] == "1:02:05" and figures["batchgen"] == "1.2.3"


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]


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


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.browser
def test_gallery_renders_and_plays_in_headless_chromium(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser: install Debian's chromium (apt-get install chromium)")
    out = tmp_path / "out"
    (out / "videos").mkdir(parents=True)
    sample = _sample_video(tmp_path)
    for name in ("k2_1.mp4", "k2 2.mp4", "k3_1.mp4"):
        shutil.copyfile(sample, out / "videos" / name)
    jobs = [
        make_job(2, prompt=XSS, files=("videos/k2_1.mp4", "videos/k2 2.mp4")),
        make_job(3),
        make_job(4, files=("videos/missing.mp4",)),
        make_job(5, JobStatus.FAILED, error_kind="permanent", error_message="refused"),
    ]
    render(out, jobs)
    dom = _dump_dom(browser, out / "index.html", tmp_path / "profile")
    tags = parse(dom)
    cards = [c for c in tags.find("article") if "card" in (c["class"] or "")]
    assert len(cards) == 4
    states = {v["src"]: v.get("data-state") for v in tags.find("video")}
    assert states == {
        "videos/k2_1.mp4": "loaded",  # metadata read: the file was found and decoded
        "videos/k2%202.mp4": "loaded",
        "videos/k3_1.mp4": "loaded",
        "videos/missing.mp4": "error",
    }
    assert tags.scripts == 1 and XSS in "".join(tags.text)  # the prompt stayed text
    durations = re.findall(r'<span class="duration">([^<]*)</span>', dom)
    assert durations.count("0:01") == 3 and "cannot play this file" in durations
