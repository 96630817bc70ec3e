"""index.html and its data: escaped text, relative players, the filters' counts, the review
(decisions, lineage, takes per row), data parts beside the page, posters (issue 25 item 3,
issue 26 "a gallery that opens at 100,000 rows"). The browser runs are in
``tests/e2e/test_gallery_browser.py``."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.gallery_pages import (
    T0,
    TINY_MP4,
    XSS,
    edited,
    make_job,
    page_config,
    records,
    render,
)
from helpers.html import parse
from helpers.records import finished_run

from batchgen.models import Job, JobStatus
from batchgen.output import gallery, gallery_data
from batchgen.output.gallery import write_gallery
from batchgen.output.results import summarise
from batchgen.output.review import Review
from batchgen.providers.descriptor import MICRO_USD


def test_text_from_the_manifest_and_server_is_escaped(tmp_path: Path) -> None:
    jobs = [
        make_job(2, prompt=XSS, mode="<b>fun</b>", user={"<col>": XSS}),
        make_job(3, JobStatus.FAILED, error_kind="permanent", error_message='"><img src=x>'),
    ]
    page = render(tmp_path, jobs)
    assert XSS not in page and "<img" not in page and "<b>fun" not in page
    tags = parse(page)
    assert len(tags.find("script")) == 3  # its own script, its config (not run), one part
    text = "".join(tags.text)
    assert "spring & <summer>.xlsx" in text and "batchgen run <m>.xlsx" in text
    assert page_config(page)["columns"] == ["<col>"]  # escaped in the page, intact when read
    data = "".join(p.read_text() for p in (tmp_path / "gallery").rglob("*.js"))
    assert "<" not in data  # not even inside its strings
    first, second = records(tmp_path)
    assert first["prompt"] == XSS and first["mode"] == "<b>fun</b>" and first["cols"] == [XSS]
    assert second["error"] == 'permanent: "><img src=x>'  # text, set with textContent


def test_unencodable_text_does_not_abort_the_page(tmp_path: Path) -> None:
    render(tmp_path, [make_job(2, prompt="bad \ud800 escape \x00")])
    (record,) = records(tmp_path)
    assert record["prompt"].startswith("bad ") and record["prompt"].endswith(" escape \x00")


def test_players_use_relative_escaped_sources(tmp_path: Path) -> None:
    jobs = [
        make_job(2, files=("videos/k2_1.mp4", 'videos/a "quoted" #1.mp4')),
        make_job(3, files=("/etc/passwd", "C:/x.mp4")),
    ]
    render(tmp_path, jobs)
    first, second = records(tmp_path)
    assert [f[0] for f in first["files"]] == [
        "videos/k2_1.mp4",
        "videos/a%20%22quoted%22%20%231.mp4",
    ]
    assert [f[0] for f in second["files"]] == ["", ""]  # absolute: named, never played
    assert [f[2] for f in second["files"]] == ["/etc/passwd", "C:/x.mp4"]


def test_vendor_urls_are_links_only_when_http(tmp_path: Path) -> None:
    jobs = [
        make_job(2, JobStatus.DOWNLOAD_FAILED, video_urls=("https://cdn.example.com/x.mp4",)),
        make_job(3, JobStatus.DOWNLOAD_FAILED, video_urls=("javascript:alert(1)",)),
    ]
    render(tmp_path, jobs)
    assert [r["links"] for r in records(tmp_path)] == [
        [["https://cdn.example.com/x.mp4", "https://cdn.example.com/x.mp4"]],
        [["", "javascript:alert(1)"]],
    ]


def test_status_filter_and_card_data(tmp_path: Path) -> None:
    jobs = [
        make_job(2),
        make_job(3, JobStatus.FAILED, error_message="nope"),
        make_job(4, JobStatus.UNKNOWN),
        make_job(5, JobStatus.PENDING),
        make_job(6, in_manifest=False),
    ]
    tags = parse(render(tmp_path, jobs))
    buttons = [b["data-filter"] for b in tags.find("button") if "data-filter" in b]
    assert buttons == ["all", "pending", "downloaded", "failed", "unknown", "attention", "deleted"]
    found = records(tmp_path)
    assert [r["status"] for r in found] == [
        "downloaded",
        "failed",
        "unknown",
        "pending",
        "downloaded",
    ]
    assert [r["attention"] for r in found] == [0, 1, 1, 0, 0]
    assert [r["deleted"] for r in found] == [0, 0, 0, 0, 1]


def _figures(page: str, element_id: str) -> dict[str, str]:
    start = page.index(f'id="{element_id}"')
    block = page[start : page.index("</dl>", start)]
    return {k: html.unescape(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block)}


def _chips(page: str, attr: str) -> dict[str, int]:
    found = re.findall(rf'data-{attr}="(\w+)"[^>]*>[^<]*\(<span class="count">(\d+)<', page)
    return {name: int(n) for name, n in found}


def test_business_figures_first_rows_and_takes_apart(tmp_path: Path) -> None:
    jobs = [make_job(2), make_job(2, key="k2#v2"), make_job(3, JobStatus.FAILED)]
    page = render(tmp_path, jobs)
    business = _figures(page, "summary")
    assert list(business) == [
        "rows", "takes", "videos", "done", "failed", "needs attention", "approved",
        "rejected", "to regenerate", "credits", "USD",
    ]  # fmt: skip
    assert (business["rows"], business["takes"], business["videos"]) == ("2", "3", "2")
    assert business["failed"] == "1" and business["credits"] == "80" and business["USD"] == "$0.80"
    details = _figures(page, "engineering")
    assert details["requests"] == "12" and details["429s"] == "2"
    assert details["takes downloaded"] == "2" and "requests" not in business
    assert details["last run"] == "2025-03-01 09:30:00 UTC → 2025-03-01 10:32:05 UTC"
    assert details["duration"] == "1:02:05" and details["batchgen"] == "1.2.3"
    assert page.index('id="summary"') < page.index("<details")


@pytest.mark.parametrize(("micro_usd", "shown"), [(1_602_000, "$1.602"), (302_000, "$0.302")])
def test_dollars_are_shown_to_the_last_digit_billed(
    tmp_path: Path, micro_usd: int, shown: str
) -> None:
    # seen by a new user: xAI's bill of $1.602 read "1.60" in the gallery, $1.602 elsewhere
    runs = [finished_run(1, T0, 60, "batchgen run m.csv", credits=micro_usd)]
    summary = summarise([make_job(2)], runs, manifest="m.csv", version="1", unit=MICRO_USD)
    page = write_gallery(tmp_path, jobs=[make_job(2)], summary=summary).read_text("utf-8")
    business = _figures(page, "summary")
    assert business["USD"] == shown and "credits" not in business


def test_filter_counts_agree_with_the_header_deleted_takes_apart(tmp_path: Path) -> None:
    jobs = [
        make_job(2),
        make_job(3),
        make_job(4, JobStatus.FAILED),
        make_job(5, in_manifest=False),
        make_job(6, JobStatus.FAILED, in_manifest=False),
    ]
    page = render(tmp_path, jobs)
    chips = _chips(page, "filter")
    assert chips == {"all": 3, "downloaded": 2, "failed": 1, "attention": 1, "deleted": 2}
    assert int(_figures(page, "summary")["takes"]) == chips["all"]
    assert sum(n for f, n in chips.items() if f not in ("all", "attention", "deleted")) == 3
    decisions = _chips(page, "decision")
    assert decisions == {"all": 3, "none": 3}


def test_every_user_column_is_on_the_card_and_sortable(tmp_path: Path) -> None:
    user = {"id": "spring-01", "campaign": "Spring launch", "owner": "Ana", "notes": "<hero>"}
    page = render(tmp_path, [make_job(2, user={"prompt": "p", **user})], prompt_column="prompt")
    assert page_config(page)["columns"] == list(user)
    (record,) = records(tmp_path)
    assert record["cols"] == list(user.values())
    sort = re.findall(r'<option value="(\w+)">([^<]*)</option>', page)
    assert sort == [
        ("row", "row"), ("status", "status"), ("decision", "decision"), ("col0", "id"),
        ("col1", "campaign"), ("col2", "owner"), ("col3", "notes"),
    ]  # fmt: skip
    assert 'id="search"' in page


def test_mode_and_ratio_columns_are_known_to_the_page(tmp_path: Path) -> None:
    user = {"prompt": "p", "Video Mode": "Fun", "Aspect Ratio": "3:2", "campaign": "spring"}
    page = render(
        tmp_path,
        [make_job(2, user=user)],
        prompt_column="prompt",
        mode_column="Video Mode",
        ratio_column="Aspect Ratio",
    )
    config = page_config(page)
    assert (config["modeCol"], config["ratioCol"]) == (0, 1)  # shown once, in the top line
    (record,) = records(tmp_path)
    assert (record["mode"], record["ratio"]) == ("fun", "3:2")  # as sent
    page = render(tmp_path, [make_job(2, user={"prompt": "p", "owner": "Ana"})], "prompt")
    assert (page_config(page)["modeCol"], page_config(page)["ratioCol"]) == (-1, -1)


def test_a_card_says_when_its_video_shows_an_earlier_prompt(tmp_path: Path) -> None:
    jobs = [
        edited(make_job(2, prompt="old prompt", user={"prompt": "new prompt"}), "new prompt"),
        edited(make_job(3, prompt="same  prompt", user={"prompt": "same prompt"}), "same prompt"),
    ]
    render(tmp_path, jobs, prompt_column="prompt")
    first, second = records(tmp_path)
    assert (first["prompt"], first["used"]) == ("new prompt", "old prompt")
    assert second["used"] == ""


def _review_jobs() -> list[Job]:
    """Row 2 asked for 2 takes; take 2 was marked regenerate, and take 3 made for it; take 1
    rejected. Row 3: one take, approved. Row 4: one take, not reviewed."""
    return [
        make_job(2, key="id:a", user={"variants": "2"}),
        make_job(2, key="id:a#v2", user={"variants": "2"}),
        make_job(2, key="id:a#v3", user={"variants": "2"}),
        make_job(3, key="id:b"),
        make_job(4, key="id:c"),
    ]


_REVIEW = Review(
    origins={"id:a#v3": (None, "id:a#v2")},
    decisions={"id:a": "reject", "id:a#v2": "regenerate", "id:b": "approve"},
)


def test_the_gallery_shows_the_review(tmp_path: Path) -> None:
    page = render(tmp_path, _review_jobs(), review=_REVIEW)
    found = {r["key"]: r for r in records(tmp_path)}
    # each take's place in its row, and its row's current number of takes
    assert [(r["take"], r["takes"]) for r in found.values()] == [
        (1, 3), (2, 3), (3, 3), (1, 1), (1, 1),
    ]  # fmt: skip
    # its decision, and who replaced whom
    assert {k: r["review"] for k, r in found.items()} == {
        "id:a": "reject", "id:a#v2": "replaced", "id:a#v3": "none", "id:b": "approve",
        "id:c": "none",
    }  # fmt: skip
    assert found["id:a#v3"]["replaces"] == 2 and found["id:a#v2"]["replacedBy"] == [3]
    # a filter by decision whose counts add up to the takes; the header counts decisions
    assert _chips(page, "decision") == {
        "all": 5, "approve": 1, "reject": 1, "replaced": 1, "none": 2,
    }  # fmt: skip
    business = _figures(page, "summary")
    assert (business["approved"], business["rejected"], business["takes"]) == ("1", "1", "5")
    assert business["rows"] == "3"


def test_a_regenerate_not_yet_acted_on_is_to_regenerate(tmp_path: Path) -> None:
    review = Review(decisions={"id:b": "regenerate"})
    page = render(tmp_path, [make_job(3, key="id:b")], review=review)
    assert records(tmp_path)[0]["review"] == "regenerate"
    assert _figures(page, "summary")["to regenerate"] == "1"


def test_takes_are_read_once_in_parts_beside_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gallery_data, "PART_TAKES", 2)
    read: list[int] = []

    def once() -> Iterator[Job]:  # a stream, as the state gives it: read once, never listed
        for row in range(2, 7):
            read.append(row)
            yield make_job(row)

    summary = summarise([make_job(r) for r in range(2, 7)], [], manifest="m", version="1")
    page = write_gallery(tmp_path, jobs=once(), summary=summary).read_text()
    assert read == [2, 3, 4, 5, 6]
    sources = re.findall(r'<script defer src="([^"]+)"></script>', page)
    assert [s.rsplit("/", 1)[1] for s in sources] == [
        "part-00001.js",
        "part-00002.js",
        "part-00003.js",
    ]
    assert [r["row"] for r in records(tmp_path)] == [2, 3, 4, 5, 6]
    assert "<article" not in page  # the page holds no card: its script builds them


def test_no_network_and_only_its_own_script_and_data_may_run(tmp_path: Path) -> None:
    page = render(tmp_path, [make_job(2)])
    assert "http://" not in page and "https://" not in page and "<link" not in page
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    csp = parse(page).find("meta")[1]["content"] or ""
    assert f"script-src 'sha256-{digest}' 'self' file:;" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "connect-src" not in csp


def test_rewriting_is_deterministic_atomic_and_leaves_one_data_set(tmp_path: Path) -> None:
    first = render(tmp_path, [make_job(2)])
    assert render(tmp_path, [make_job(2)]) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery", "index.html"]
    render(tmp_path, [make_job(2), make_job(3)])
    (folder,) = (tmp_path / "gallery").iterdir()  # the earlier write's data is gone
    assert [r["row"] for r in records(tmp_path)] == [2, 3]
    assert folder.name in (tmp_path / "index.html").read_text()


def test_posters_are_used_when_there_and_made_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    for name in ("k2_1.mp4", "k3_1.mp4"):
        shutil.copyfile(TINY_MP4, tmp_path / "videos" / name)
    (tmp_path / "videos" / "k4_1.mp4").write_bytes(b"not a video")
    jobs = [make_job(2), make_job(3), make_job(4)]
    render(tmp_path, jobs, make_posters=False)  # batchgen run: no decoding at the end
    assert not (tmp_path / "posters").exists()
    assert [r["files"][0][1] for r in records(tmp_path)] == ["", "", ""]  # the first frame
    render(tmp_path, jobs)
    posters = [r["files"][0][1] for r in records(tmp_path)]
    assert posters == ["posters/videos/k2_1.mp4.jpg", "posters/videos/k3_1.mp4.jpg", ""]
    jpeg = (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").read_bytes()
    assert jpeg.startswith(b"\xff\xd8") and len(jpeg) > 200
    stamp = (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").stat().st_mtime_ns
    render(tmp_path, [make_job(2)], make_posters=False)
    assert records(tmp_path)[0]["files"][0][1] == "posters/videos/k2_1.mp4.jpg"  # kept, used
    assert (tmp_path / "posters" / "videos" / "k2_1.mp4.jpg").stat().st_mtime_ns == stamp


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
    write_gallery(tmp_path, jobs=jobs, summary=summary, clock=clock)
    assert len(list((tmp_path / "posters" / "videos").iterdir())) == 2  # one more
    assert sum(bool(r["files"][0][1]) for r in records(tmp_path)) == 2  # kept ones are used
