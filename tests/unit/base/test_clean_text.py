"""Issue 12 item 9: text from a server is stored, written and printed clean.

The token is masked in every string before it is stored, written or printed (not only in
logs), and control characters / terminal escapes are shown escaped, never obeyed.
"""

from __future__ import annotations

import io
import logging
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.records import make_rows

from batchgen.config import Settings
from batchgen.errors import DownloadError
from batchgen.logs import configure_logging, mask_secret
from batchgen.models import AttemptKind, AttemptOutcome, JobStatus
from batchgen.output.reports import write_reports
from batchgen.state.store import Attempt, StateStore
from batchgen.text import clean_text, forget_secrets

TOKEN = "sk-live-0123456789abcdef"
HOSTILE = (
    f"upstream said: bad token {TOKEN}\n2026-01-01 00:00:00 INFO    all rows downloaded"
    "\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\u202c \x9b31m"
)


@pytest.fixture(autouse=True)
def _token() -> Iterator[None]:
    mask_secret(TOKEN)
    yield
    forget_secrets()


def _is_clean(text: str) -> bool:
    return TOKEN not in text and not any(c in text for c in "\x1b\x07\n\u202e\x9b")


def test_clean_text_masks_the_token_and_escapes_controls() -> None:
    cleaned = clean_text(HOSTILE)
    assert _is_clean(cleaned)
    assert "***" in cleaned and "\\x1b[2J" in cleaned and "\\n2026" in cleaned
    assert "\\u202e" in cleaned and "\\x9b" in cleaned
    assert clean_text(cleaned) == cleaned  # cleaning twice changes nothing
    assert clean_text("café 🎬 春 a\u200db") == "café 🎬 春 a\u200db"  # ordinary text kept
    assert clean_text("x" * 50, limit=10) == "x" * 10 + "..."


def test_an_error_message_is_clean_wherever_it_is_shown() -> None:
    error = DownloadError(f"the CDN said {HOSTILE}")
    assert _is_clean(str(error))


def _store_with_hostile_text(tmp_path: Path) -> StateStore:
    store = StateStore.open(tmp_path / "state.sqlite")
    rows = make_rows(2)
    store.sync_manifest(["id", "prompt"], rows)
    for row in rows:
        store.transition(row.key, JobStatus.SUBMITTING)
    store.transition(rows[0].key, JobStatus.SUBMITTED, task_id="t-1")
    store.transition(
        rows[0].key,
        JobStatus.FAILED,
        error_kind="permanent",
        error_message=HOSTILE,
        attempt=Attempt(AttemptKind.POLL, AttemptOutcome.FAILED, HOSTILE, "t-1"),
    )
    store.transition(rows[1].key, JobStatus.REJECTED, error_kind="permanent", error_message=HOSTILE)
    return store


def test_the_state_never_stores_the_token_or_raw_escapes(tmp_path: Path) -> None:
    with _store_with_hostile_text(tmp_path) as store:
        jobs = list(store.iter_jobs())
        history = store.attempts()
    assert all(_is_clean(job.error_message or "") for job in jobs)
    assert all(_is_clean(a["message"] or "") for a in history)
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        dump = "\n".join(db.iterdump())
    assert TOKEN not in dump and "\x1b" not in dump


def test_results_and_gallery_never_hold_the_token_or_raw_escapes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with _store_with_hostile_text(tmp_path) as store:
        write_reports(store, out, name="m.csv", settings=Settings())
    csv_text = (out / "results.csv").read_text(encoding="utf-8-sig")
    html = (out / "index.html").read_text(encoding="utf-8")
    html += "".join(part.read_text(encoding="ascii") for part in (out / "gallery").rglob("*.js"))
    with zipfile.ZipFile(out / "results.xlsx") as book:
        xml = "".join(book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xml"))
    for text in (csv_text, html, xml):
        assert TOKEN not in text and "\x1b" not in text and "\u202e" not in text
    assert "***" in csv_text


def test_a_log_line_cannot_be_forged_or_drive_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(0)
    logger = logging.getLogger("batchgen")
    try:
        logger.warning("row 2 failed: %s", HOSTILE)
    finally:
        for handler in [h for h in logger.handlers if getattr(h, "_batchgen_stderr", False)]:
            logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and _is_clean(lines[0])
