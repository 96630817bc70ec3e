"""The gallery: ``index.html``, one static page to watch a manifest's videos.

It needs no server and no internet: CSS and JavaScript are inline, and every video is a
``<video>`` element whose ``src`` is relative to the page, so the output folder can be
zipped, moved or opened from a file share. Every piece of text comes from the manifest or
the vendor and is escaped with ``html.escape``; on top of that a Content-Security-Policy
lets only this page's own script (by hash) run, so even a missed escape could not execute.

To stay light with thousands of rows, only the first ``EAGER_VIDEOS`` players fetch their
metadata at once; the others (``preload="none"``) are promoted when scrolled near. When a
player has its metadata the script writes the duration beside it and sets
``data-state="loaded"`` on the element (``"error"`` when the file cannot be played), which
is what the browser test looks for.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote, urlsplit

from batchgen.atomic import atomic_path
from batchgen.models import NEEDS_ATTENTION, Job, JobStatus
from batchgen.output.results import STATUS_TONE, Summary, utc_naive

__all__ = ["EAGER_VIDEOS", "GALLERY_NAME", "write_gallery"]

GALLERY_NAME = "index.html"
EAGER_VIDEOS = 48  # players that fetch metadata on load; the rest wait to be scrolled near

_CSS = """
:root { font-family: system-ui, sans-serif; color: #1f2328; background: #f6f8fa; }
body { margin: 0 auto; max-width: 1600px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 .8rem; }
dl.figures { display: flex; flex-wrap: wrap; gap: .4rem 1.4rem; margin: 0 0 1rem; }
dl.figures div { display: flex; gap: .35rem; }
dt { color: #59636e; } dd { margin: 0; font-weight: 600; }
.command { font-family: ui-monospace, monospace; font-size: .85rem; color: #59636e;
  overflow-wrap: anywhere; margin: 0 0 1rem; }
nav { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: 1rem; }
nav button { border: 1px solid #d1d9e0; background: #fff; border-radius: 1rem;
  padding: .25rem .8rem; cursor: pointer; font: inherit; }
nav button[aria-pressed="true"] { background: #1f2328; color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr));
  gap: 1rem; align-items: start; }
.card { background: #fff; border: 1px solid #d1d9e0; border-radius: .5rem; padding: .8rem; }
.card[hidden] { display: none; }
.meta { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; font-size: .85rem; }
.badge { border-radius: .3rem; padding: .05rem .45rem; font-weight: 600; }
.done { background: #c6efce; color: #006100; } .failed { background: #ffc7ce; color: #9c0006; }
.waiting { background: #ffeb9c; color: #9c5700; }
.attention { background: #fcd5b4; color: #974706; }
.deleted { background: #eaeef2; color: #59636e; }
.prompt { white-space: pre-wrap; overflow-wrap: anywhere; margin: .6rem 0; }
.error { white-space: pre-wrap; overflow-wrap: anywhere; color: #9c0006; font-size: .9rem; }
figure { margin: .5rem 0 0; }
video { width: 100%; max-height: 420px; background: #000; border-radius: .3rem; }
figcaption { font-size: .8rem; color: #59636e; overflow-wrap: anywhere; }
.remote { font-size: .8rem; overflow-wrap: anywhere; }
"""

# In <head>, with capturing listeners on the document, so that no media event is missed
# however early a player fires it; everything else waits for the DOM.
_JS = """
"use strict";
(function () {
  function fmt(s) {
    if (!isFinite(s)) return "";
    s = Math.round(s);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function mark(v, state) {
    v.dataset.state = state;
    var out = v.parentNode.querySelector(".duration");
    if (out) out.textContent = state === "loaded" ? fmt(v.duration) : "cannot play this file";
  }
  document.addEventListener("loadedmetadata", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "loaded");
  }, true);
  document.addEventListener("error", function (e) {
    if (e.target.tagName === "VIDEO") mark(e.target, "error");
  }, true);
  function show(nav, cards, button) {
    var f = button.dataset.filter;
    cards.forEach(function (c) {
      c.hidden = !(f === "all" || c.dataset.status === f ||
        (f === "attention" && c.dataset.attention === "1") ||
        (f === "deleted" && c.dataset.deleted === "1"));
    });
    nav.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b === button));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var nav = document.getElementById("filters");
    var cards = document.querySelectorAll(".card");
    nav.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-filter]");
      if (b) show(nav, cards, b);
    });
    document.querySelectorAll("video").forEach(function (v) {
      if (v.error) mark(v, "error");
      else if (v.readyState >= 1) mark(v, "loaded");
    });
    if (!("IntersectionObserver" in window)) return;
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (!en.isIntersecting) return;
        io.unobserve(en.target);
        en.target.preload = "metadata";
        en.target.load();
      });
    }, {rootMargin: "800px"});
    document.querySelectorAll("video[data-lazy]").forEach(function (v) { io.observe(v); });
  });
})();
"""


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# No network at all; media only from the page's own folder (file: when opened from disk).
_CSP = (
    f"default-src 'none'; script-src {_csp_hash(_JS)}; style-src {_csp_hash(_CSS)}; "
    "media-src 'self' file:; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


def write_gallery(out_dir: Path, *, jobs: Iterable[Job], summary: Summary) -> Path:
    """Write ``out_dir/index.html`` atomically and return its path.

    ``job.files`` are paths relative to ``out_dir``; rows deleted from the manifest are shown
    last, marked as such.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(jobs, key=lambda job: not job.in_manifest)
    path = out_dir / GALLERY_NAME
    # errors="replace": a lone surrogate from a bad JSON escape must not abort the page.
    with (
        atomic_path(path) as tmp,
        tmp.open("w", encoding="utf-8", errors="replace", newline="\n") as fh,
    ):
        fh.writelines(_render(ordered, summary))
    return path


def _render(jobs: Sequence[Job], summary: Summary) -> Iterator[str]:
    title = f"batchgen: {summary.manifest}"
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="batchgen {escape(summary.version)}">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n<script>{_JS}</script>\n"
        f"</head>\n<body>\n<header>\n<h1>{escape(title)}</h1>\n"
    )
    yield _figures(summary)
    yield "</header>\n"
    yield _filters(jobs)
    yield '<main id="rows">\n'
    eager = EAGER_VIDEOS
    for job in jobs:
        yield _card(job, eager=eager)
        eager -= len(job.files)
    yield "</main>\n</body>\n</html>\n"


def _when(value: dt.datetime | None) -> str:
    naive = utc_naive(value)
    return "-" if naive is None else naive.isoformat(sep=" ", timespec="seconds") + " UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _figures(summary: Summary) -> str:
    figures: list[tuple[str, object]] = [
        ("rows", summary.rows),
        *((status, n) for status, n in summary.counts.items() if n),
        ("needs attention", summary.needs_attention),
        ("deleted from manifest", summary.deleted),
        ("credits", summary.credits),
        ("est. USD", f"{summary.usd:.2f}"),
        ("requests", summary.requests),
        ("429s", summary.rate_limited),
        ("last run", f"{_when(summary.started_at)} → {_when(summary.ended_at)}"),
        ("duration", _duration(summary.duration_s)),
        ("batchgen", summary.version),
    ]
    items = "".join(
        f"<div><dt>{escape(label)}</dt><dd>{escape(str(value))}</dd></div>"
        for label, value in figures
    )
    command = f'<p class="command">{escape(summary.command)}</p>\n' if summary.command else ""
    return f'<dl class="figures" id="summary">{items}</dl>\n{command}'


def _button(value: str, label: str) -> str:
    pressed = "true" if value == "all" else "false"
    return (
        f'<button type="button" data-filter="{escape(value)}" aria-pressed="{pressed}">'
        f"{escape(label)}</button>"
    )


def _filters(jobs: Sequence[Job]) -> str:
    statuses = Counter(str(job.status) for job in jobs)
    attention = sum(1 for job in jobs if _needs_attention(job))
    deleted = sum(1 for job in jobs if not job.in_manifest)
    choices = [("all", "all", len(jobs))]
    choices += [(s.value, s.value, statuses[s.value]) for s in JobStatus if statuses[s.value]]
    choices += [("attention", "needs attention", attention)] if attention else []
    choices += [("deleted", "deleted from manifest", deleted)] if deleted else []
    buttons = "".join(_button(value, f"{label} ({count})") for value, label, count in choices)
    return f'<nav id="filters" aria-label="Filter by status">{buttons}</nav>\n'


def _needs_attention(job: Job) -> bool:
    return job.in_manifest and job.status in NEEDS_ATTENTION


def _badge(job: Job) -> str:
    tone = STATUS_TONE.get(str(job.status), "")
    badge = f'<span class="badge {tone}">{escape(str(job.status))}</span>'
    if not job.in_manifest:
        badge += ' <span class="badge deleted">deleted from manifest</span>'
    return badge


def _relative_src(path: str) -> str | None:
    """The ``src`` of a downloaded file: relative to the page, or None if it is not."""
    path = path.replace("\\", "/")
    if not path or path.startswith("/") or ":" in path.split("/", 1)[0]:
        return None
    return escape(quote(path, safe="/"))


def _player(path: str, *, eager: bool) -> str:
    src = _relative_src(path)
    if src is None:
        return f"<figure><figcaption>{escape(path)}</figcaption></figure>"
    preload = 'preload="metadata"' if eager else 'preload="none" data-lazy="1"'
    return (
        f'<figure><video controls {preload} src="{src}"></video>'
        f'<figcaption><a href="{src}">{escape(path)}</a> <span class="duration"></span>'
        "</figcaption></figure>"
    )


def _remote(url: str) -> str:
    """A vendor URL as a link (not a player: the page must work offline)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f'<p class="remote">{escape(url)}</p>'
    return f'<p class="remote"><a href="{escape(url)}" rel="noreferrer">{escape(url)}</a></p>'


def _card(job: Job, *, eager: int) -> str:
    attention = "1" if _needs_attention(job) else "0"
    parts = [
        f'<article class="card" data-status="{escape(str(job.status))}" '
        f'data-attention="{attention}" data-deleted="{"0" if job.in_manifest else "1"}">',
        f'<div class="meta"><span>row {job.row}</span> {_badge(job)} '
        f"<span>{escape(job.mode)}</span> <span>{escape(job.ratio)}</span></div>",
        f'<p class="prompt">{escape(job.prompt)}</p>',
    ]
    if job.error_kind or job.error_message:
        reason = ": ".join(filter(None, (job.error_kind, job.error_message)))
        parts.append(f'<p class="error">{escape(reason)}</p>')
    parts += [_player(path, eager=eager - i > 0) for i, path in enumerate(job.files)]
    if not job.files:
        parts += [_remote(url) for url in job.video_urls]
    parts.append("</article>\n")
    return "".join(parts)
