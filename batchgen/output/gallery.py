"""The gallery: ``index.html``, one static page to review a manifest's videos.

It needs no server and no internet: CSS and JavaScript are inline, and every video is a
``<video>`` element whose ``src`` is relative to the page, so the output folder can be
zipped, moved or opened from a file share. Every piece of text comes from the manifest or
the vendor and is escaped with ``html.escape``; on top of that a Content-Security-Policy
lets only this page's own script (by hash) run, so even a missed escape could not execute.

What a reviewer gets: the business figures first (videos, failed, credits, USD; the
engineering figures in a details line), a card per row with every column of the manifest
(the mode and ratio once, in the card's top line, as sent), a text search over the prompt
and those columns, a sort (row, status, or any of the user's columns), and a status filter
whose counts add up to the header's rows (rows deleted from the manifest have their own
filter and are hidden otherwise). A card whose request was edited in the manifest after it
was sent says so and shows the values the video was made with (the prompt in full, every
other edited field with its value then and now).

To stay light with thousands of rows, only the first ``EAGER_VIDEOS`` players get their
poster frame (``batchgen.output.posters``) and fetch metadata at once; the others
(``preload="none"``) are promoted when scrolled near. When a player has its metadata the
script writes the duration beside it and sets ``data-state="loaded"`` on the element
(``"error"`` when the file cannot be played), which is what the browser test looks for.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from batchgen.atomic import atomic_path
from batchgen.models import NEEDS_ATTENTION, Job, JobStatus, describe_changes, split_variant
from batchgen.output.cells import STATUS_TONE, prompt_used, utc_naive
from batchgen.output.gallery_assets import CSS, JS
from batchgen.output.posters import poster_for
from batchgen.output.summary import Summary

__all__ = ["EAGER_VIDEOS", "GALLERY_NAME", "write_gallery"]

GALLERY_NAME = "index.html"
EAGER_VIDEOS = 48  # players that fetch poster and metadata on load; the rest wait
#: Seconds one gallery write may spend making new posters (about 100 a second): a 100,000-
#: video run is not held up, and the next write makes the rest.
POSTER_SECONDS = 20.0


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# No network at all; media and posters only from the page's own folder (file: from disk).
_CSP = (
    f"default-src 'none'; script-src {_csp_hash(JS)}; style-src {_csp_hash(CSS)}; "
    "media-src 'self' file:; img-src 'self' file: data:; base-uri 'none'; form-action 'none'"
)


def write_gallery(
    out_dir: Path,
    *,
    jobs: Iterable[Job],
    summary: Summary,
    prompt_column: str | None = None,
    mode_column: str | None = None,
    ratio_column: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Write ``out_dir/index.html`` atomically and return its path.

    ``job.files`` are paths relative to ``out_dir`` (their posters are made beside them);
    ``prompt_column`` names the user column holding the prompt, which the card shows apart
    (as the row asks for it now); ``mode_column`` and
    ``ratio_column`` the ones holding the mode and ratio, which the card shows once, in its
    top line, with the values sent (``job.mode``, ``job.ratio``). Rows deleted from the
    manifest are shown last, under their own filter. New posters are made for at most
    ``POSTER_SECONDS`` of ``clock`` time.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(jobs, key=lambda job: not job.in_manifest)
    request_columns = {"mode": mode_column, "ratio": ratio_column}
    page = _Page(out_dir, ordered, summary, prompt_column, request_columns, clock)
    path = out_dir / GALLERY_NAME
    # errors="replace": a lone surrogate from a bad JSON escape must not abort the page.
    with (
        atomic_path(path) as tmp,
        tmp.open("w", encoding="utf-8", errors="replace", newline="\n") as fh,
    ):
        fh.writelines(page.render())
    return path


def _when(value: dt.datetime | None) -> str:
    naive = utc_naive(value)
    return "-" if naive is None else naive.isoformat(sep=" ", timespec="seconds") + " UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _figure_list(figures: Sequence[tuple[str, object]], element_id: str) -> str:
    items = "".join(
        f"<div><dt>{escape(label)}</dt><dd>{escape(str(value))}</dd></div>"
        for label, value in figures
    )
    return f'<dl class="figures" id="{element_id}">{items}</dl>\n'


def _figures(summary: Summary) -> str:
    business: list[tuple[str, object]] = [
        ("videos", summary.videos),
        ("rows", summary.rows),
        ("done", summary.counts.get("downloaded", 0)),
        ("failed", summary.failed),
        ("needs attention", summary.needs_attention),
        ("credits", summary.credits),
        ("USD", f"{summary.usd:,.2f}"),
    ]
    # in flight or of unknown outcome: shown whenever there are any (see README "Spend")
    business += [
        (k, n)
        for k, n in (("committed", summary.committed), ("possibly charged", summary.possible))
        if n
    ]
    details: list[tuple[str, object]] = [
        *((status, n) for status, n in summary.counts.items() if n),
        ("deleted from manifest", summary.deleted),
        ("requests", summary.requests),
        ("429s", summary.rate_limited),
        ("last run", f"{_when(summary.started_at)} → {_when(summary.ended_at)}"),
        ("duration", _duration(summary.duration_s)),
        ("batchgen", summary.version),
    ]
    command = f'<p class="command">{escape(summary.command)}</p>\n' if summary.command else ""
    return (
        _figure_list(business, "summary")
        + '<details id="details"><summary>Details</summary>\n'
        + _figure_list(details, "engineering")
        + command
        + "</details>\n"
    )


def _button(value: str, label: str, count: int) -> str:
    pressed = "true" if value == "all" else "false"
    return (
        f'<button type="button" data-filter="{escape(value)}" aria-pressed="{pressed}">'
        f'{escape(label)} (<span class="count">{count}</span>)</button>'
    )


def _filters(jobs: Sequence[Job]) -> str:
    """Status chips over the rows still in the manifest; deleted rows apart."""
    current = [job for job in jobs if job.in_manifest]
    statuses = Counter(str(job.status) for job in current)
    attention = sum(1 for job in current if job.status in NEEDS_ATTENTION)
    deleted = len(jobs) - len(current)
    choices = [("all", "all", len(current))]
    choices += [(s.value, s.value, statuses[s.value]) for s in JobStatus if statuses[s.value]]
    choices += [("attention", "needs attention", attention)] if attention else []
    choices += [("deleted", "deleted from manifest", deleted)] if deleted else []
    buttons = "".join(_button(value, label, count) for value, label, count in choices)
    return f'<nav id="filters" aria-label="Filter by status">{buttons}</nav>\n'


def _tools(columns: Sequence[str]) -> str:
    options = '<option value="row">row</option><option value="status">status</option>'
    options += "".join(
        f'<option value="col{i}">{escape(name)}</option>' for i, name in enumerate(columns)
    )
    return (
        '<div class="tools"><input type="search" id="search" '
        'placeholder="Search prompts and columns" aria-label="Search prompts and columns">'
        f'<label>Sort by <select id="sort">{options}</select></label>'
        '<span id="shown" aria-live="polite"></span></div>\n'
    )


def _relative_src(path: str) -> str | None:
    """The ``src`` of a downloaded file: relative to the page, or None if it is not."""
    path = path.replace("\\", "/")
    if not path or path.startswith("/") or ":" in path.split("/", 1)[0]:
        return None
    return escape(quote(path, safe="/"))


def _remote(url: str) -> str:
    """A vendor URL as a link (not a player: the page must work offline)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return f'<p class="remote">{escape(url)}</p>'
    return f'<p class="remote"><a href="{escape(url)}" rel="noreferrer">{escape(url)}</a></p>'


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


class _Page:
    """One gallery page: the jobs in order, with the layout decisions made once."""

    def __init__(
        self,
        out_dir: Path,
        jobs: Sequence[Job],
        summary: Summary,
        prompt_column: str | None,
        request_columns: dict[str, str | None],
        clock: Callable[[], float],
    ) -> None:
        self.out_dir, self.jobs, self.summary = out_dir, jobs, summary
        self.clock, self.poster_until = clock, clock() + POSTER_SECONDS
        self.prompt_column = prompt_column
        names: list[str] = []
        for job in jobs:
            names += [name for name in job.user if name not in names]
        self.columns = [name for name in names if name != prompt_column]
        self.eager = EAGER_VIDEOS
        #: ``mode``/``ratio`` -> the user column holding it (None: the manifest has none).
        self.request_columns = request_columns

    def render(self) -> Iterator[str]:
        """The page, in pieces."""
        title = f"batchgen: {self.summary.manifest}"
        yield (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="batchgen {escape(self.summary.version)}">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n<script>{JS}</script>\n"
            f"</head>\n<body>\n<header>\n<h1>{escape(title)}</h1>\n"
        )
        yield _figures(self.summary)
        yield "</header>\n"
        yield _tools(self.columns)
        yield _filters(self.jobs)
        yield '<main id="rows">\n'
        for job in self.jobs:
            yield self.card(job)
        yield '</main>\n<p id="empty" hidden>No row matches.</p>\n</body>\n</html>\n'

    def player(self, path: str) -> str:
        src = _relative_src(path)
        if src is None:
            return f"<figure><figcaption>{escape(path)}</figcaption></figure>"
        poster = poster_for(self.out_dir, path, make=self.clock() < self.poster_until)
        poster_src = escape(quote(poster, safe="/")) if poster else ""
        if self.eager > 0:
            attrs = 'preload="metadata"' + (f' poster="{poster_src}"' if poster else "")
        else:
            attrs = 'preload="none" data-lazy="1"' + (
                f' data-poster="{poster_src}"' if poster else ""
            )
        self.eager -= 1
        return (
            f'<figure><video controls {attrs} src="{src}"></video>'
            f'<figcaption><a href="{src}">{escape(path)}</a> <span class="duration"></span>'
            "</figcaption></figure>"
        )

    def badge(self, job: Job) -> str:
        tone = STATUS_TONE.get(str(job.status), "")
        badge = f'<span class="badge {tone}">{escape(str(job.status))}</span>'
        if not job.in_manifest:
            badge += ' <span class="badge deleted">deleted from manifest</span>'
        return badge

    def request_part(self, role: str, value: str) -> str:
        """The mode or ratio in the card's top line; it stands for its user column (if the
        manifest has one) when searching and sorting, so the list below leaves it out."""
        column = self.request_columns.get(role)
        if column is None or column not in self.columns:
            return f"<span>{escape(value)}</span>"
        index = self.columns.index(column)
        return f'<span class="request" data-col="{index}">{escape(value)}</span>'

    def user_list(self, job: Job) -> str:
        shown_above = set(self.request_columns.values())
        items = "".join(
            f'<div><dt>{escape(name)}</dt><dd data-col="{i}">'
            f"{escape(_cell_text(job.user.get(name)))}</dd></div>"
            for i, name in enumerate(self.columns)
            if name not in shown_above
        )
        return f'<dl class="cols">{items}</dl>'

    def card(self, job: Job) -> str:
        attention = "1" if job.in_manifest and job.status in NEEDS_ATTENTION else "0"
        shown = job.prompt if job.request_now is None else job.request_now.prompt
        variant = split_variant(job.key)[1]  # a row's variants follow it, each labelled
        label = f"row {job.row}" + (f" · variant {variant}" if variant > 1 else "")
        parts = [
            f'<article class="card" data-row="{job.row}" data-variant="{variant}"'
            f' data-status="{escape(str(job.status))}"'
            f' data-attention="{attention}" data-deleted="{"0" if job.in_manifest else "1"}"'
            f"{'' if job.in_manifest else ' hidden'}>",
            f'<div class="meta"><span>{label}</span> {self.badge(job)} '
            f"{self.request_part('mode', job.mode)} {self.request_part('ratio', job.ratio)}</div>",
            f'<p class="prompt">{escape(shown)}</p>',
        ]
        used = prompt_used(job)
        if used is not None:
            parts.append(
                '<p class="used"><strong>Prompt changed after this video was made.</strong> '
                f'The video shows: <span class="used-prompt">{escape(used)}</span></p>'
            )
        others = tuple(c for c in job.changes() if c.name != "prompt")
        if others:
            parts.append(
                '<p class="used"><strong>Edited after this video was made:</strong> '
                f'<span class="made-with">{escape(describe_changes(others, when=""))}</span></p>'
            )
        parts.append(self.user_list(job))
        if job.error_kind or job.error_message:
            reason = ": ".join(filter(None, (job.error_kind, job.error_message)))
            parts.append(f'<p class="error">{escape(reason)}</p>')
        parts += [self.player(path) for path in job.files]
        if not job.files:
            parts += [_remote(url) for url in job.video_urls]
        parts.append("</article>\n")
        return "".join(parts)
