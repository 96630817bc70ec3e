"""Issue 25, item 8: links in results.xlsx open everywhere.

Every video link is a relative URI reference (forward slashes, percent-encoded names: a ``#``
in a file name is ``%23``), read back from the workbook's relationships, and followed to an
existing file by LibreOffice itself: the workbook is converted headless (Debian's
``libreoffice-calc``; ``.ci/run`` installs it) to HTML, whose links LibreOffice resolves
against the workbook's folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import pytest

from batchgen.models import Job, JobStatus
from batchgen.output.results import summarise, write_results

#: File names as batchgen may make them (ids and name templates can hold any of these).
NAMES = (
    "videos/id_plain_1.mp4",
    "videos/id_a#1_1.mp4",  # a '#' would cut a link at a fragment
    "videos/spring 01_1.mp4",
    "videos/50%_off_1.mp4",
    "videos/été/café?_1.mp4",  # a sub-folder from --name-template, non-ASCII, a '?'
)
VENDOR = "https://cdn.example.com/v/abc.mp4?sig=x#t=1"


def _job(row: int, files: tuple[str, ...] = (), urls: tuple[str, ...] = ()) -> Job:
    return Job(
        key=f"row:{row}",
        row=row,
        prompt=f"prompt {row}",
        mode="fun",
        ratio="1:1",
        status=JobStatus.DOWNLOADED if files else JobStatus.COMPLETED,
        files=files,
        video_urls=urls,
        user={"prompt": f"prompt {row}"},
    )


def _results(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    for name in NAMES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"\0")
    jobs = [_job(2 + i, files=(name,)) for i, name in enumerate(NAMES)]
    jobs.append(_job(9, urls=(VENDOR,)))
    summary = summarise(jobs, [], manifest="m.csv", version="t")
    write_results(out, columns=["prompt"], jobs=jobs, summary=summary)
    return out / "results.xlsx"


def _targets(xlsx: Path) -> list[str]:
    with zipfile.ZipFile(xlsx) as book:
        rels = book.read("xl/worksheets/_rels/sheet1.xml.rels").decode("utf-8")
    return re.findall(r'Target="([^"]*)"', rels)


def test_file_links_are_relative_uris_with_forward_slashes(tmp_path: Path) -> None:
    xlsx = _results(tmp_path)
    targets = _targets(xlsx)
    files = [t for t in targets if not t.startswith("https:")]
    assert len(files) == len(NAMES)
    for target in files:
        assert "\\" not in target and "#" not in target and " " not in target, target
        assert not urlsplit(target).scheme and not target.startswith("/"), target
    assert "videos/id_a%231_1.mp4" in files and "videos/50%25_off_1.mp4" in files
    # each one names an existing file, relative to the workbook
    assert sorted(unquote(t) for t in files) == sorted(NAMES)
    assert all((xlsx.parent / unquote(t)).is_file() for t in files)


def _soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the LibreOffice test: .ci/run installs libreoffice-calc")
        pytest.skip("no LibreOffice: apt-get install --no-install-recommends libreoffice-calc")
    return found


@pytest.mark.libreoffice
def test_libreoffice_follows_every_link_to_an_existing_file(tmp_path: Path) -> None:
    soffice = _soffice()
    xlsx = _results(tmp_path)
    converted = tmp_path / "html"
    profile = (tmp_path / "lo-profile").as_uri()  # a profile of its own: no shared state
    subprocess.run(
        [
            soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore",
            "--convert-to", "html", "--outdir", str(converted), str(xlsx),
        ],
        check=True, capture_output=True, timeout=180,
    )  # fmt: skip
    page = (converted / "results.html").read_text(encoding="utf-8", errors="replace")
    links = [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', page)]
    followed = sorted(
        Path(url2pathname(urlsplit(link).path)) for link in links if link.startswith("file:")
    )
    assert followed == sorted((xlsx.parent / name).resolve() for name in NAMES)
    assert all(path.is_file() for path in followed)
    assert any(link.startswith("https://cdn.example.com/v/abc.mp4") for link in links)
