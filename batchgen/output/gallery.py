"""The gallery: ``index.html``, one static page to review a manifest's takes.

It needs no server and no internet: CSS and JavaScript are inline, the takes are data files
beside the page (:mod:`batchgen.output.gallery_data`), and every video is a ``<video>``
whose ``src`` is relative to the page, so the output folder can be zipped, moved or opened
from a file share. The page holds no card: its script builds the cards a reviewer looks at,
a page at a time as they scroll, from the data, so a gallery of 100,000 takes opens about as
fast as one of ten, and search, sort and the filters work on every take. Every piece of text
is set with ``textContent`` (the page's own bits are escaped with ``html.escape``), and a
Content-Security-Policy lets only this page's own script and its data files run.

What a reviewer gets: the business figures first (rows and takes counted apart, videos,
failed, the review's decisions, credits, USD; the engineering figures in a details line), a
card per take with every column of the manifest (the mode and ratio once, in the card's top
line, as sent), the take's place in its row (``take 3 of 3``) and its review: its decision,
``take 3 replaces take 2`` / ``replaced by take 3``, rejected and replaced takes set back
(dimmed, never hidden); a text search over the prompt and those columns; a sort (row,
status, decision, or any of the user's columns); a status filter whose counts add up to the
header's takes (takes whose row left the manifest have their own filter and are hidden
otherwise) and a decision filter. A card whose request was edited in the manifest after it
was sent says so and shows the values the video was made with.

Posters: a card's player shows the poster frame made beside the video
(``batchgen.output.posters``) when there is one, else the browser's own first frame
(``preload="metadata"``, and a ``#t=0.1`` media fragment for browsers that need one); new
posters are made only with ``make_posters``, for at most ``POSTER_SECONDS``. When a player
has its metadata the script writes the duration beside it and sets ``data-state="loaded"``
on the element (``"error"`` when the file cannot be played), which the browser tests read.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from batchgen.atomic import atomic_path
from batchgen.models import Job, JobStatus
from batchgen.output.gallery_assets import CSS, JS
from batchgen.output.gallery_data import FIELDS, Cards, DataParts, row_groups
from batchgen.output.review import Review
from batchgen.output.summary import Summary
from batchgen.providers.descriptor import format_usd

__all__ = ["GALLERY_NAME", "POSTER_SECONDS", "write_gallery"]

GALLERY_NAME = "index.html"
#: Seconds one gallery write may spend making new posters (about 100 a second): a 100,000-
#: video run is not held up, and the next write makes the rest.
POSTER_SECONDS = 20.0


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# No network at all; the page's own script by hash, its data files and media only from the
# page's own folder ('self'; file: when opened from disk, where 'self' matches nothing).
_CSP = (
    f"default-src 'none'; script-src {_csp_hash(JS)} 'self' file:; "
    f"style-src {_csp_hash(CSS)}; media-src 'self' file:; img-src 'self' file: data:; "
    "base-uri 'none'; form-action 'none'"
)


def write_gallery(
    out_dir: Path,
    *,
    jobs: Iterable[Job],
    summary: Summary,
    prompt_column: str | None = None,
    mode_column: str | None = None,
    ratio_column: str | None = None,
    review: Review | None = None,
    clock: Callable[[], float] = time.monotonic,
    make_posters: bool = True,
) -> Path:
    """Write the gallery's data parts and ``out_dir/index.html`` (atomically); its path.

    ``jobs`` are read once, in display order (by row, each row's takes by number, rows that
    left the manifest last); ``job.files`` are paths relative to ``out_dir``.
    ``prompt_column`` names the user column holding the prompt, which the card shows apart
    (as the row asks for it now); ``mode_column`` and ``ratio_column`` the ones holding the
    mode and ratio, which the card shows once, in its top line, with the values sent.
    ``review`` gives each take's decision and lineage. New posters are made only with
    ``make_posters``, for at most ``POSTER_SECONDS`` of ``clock`` time.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    review = review or Review()
    cards = Cards(
        out_dir,
        prompt_column=prompt_column,
        request_columns={"mode": mode_column, "ratio": ratio_column},
        decisions=review.decisions,
        replaces={key: origin[1] for key, origin in review.origins.items()},
        clock=clock,
        poster_until=clock() + POSTER_SECONDS if make_posters else float("-inf"),
    )
    parts = DataParts(out_dir)
    try:
        for group in row_groups(jobs):
            parts.add(cards.records(group))
        sources = parts.finish()
    except BaseException:
        parts.abandon()
        raise
    path = out_dir / GALLERY_NAME
    # errors="replace": a lone surrogate from a bad JSON escape must not abort the page.
    with (
        atomic_path(path) as tmp,
        tmp.open("w", encoding="utf-8", errors="replace", newline="\n") as fh,
    ):
        fh.write(_page(summary, cards, sources))
    parts.prune()
    return path


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    naive = value if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="seconds") + " UTC"


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


def _figures(summary: Summary, cards: Cards) -> str:
    reviews = cards.reviews
    business: list[tuple[str, object]] = [
        ("rows", summary.rows),
        ("takes", summary.takes),
        ("videos", summary.videos),
        ("done", summary.counts.get("downloaded", 0)),
        ("failed", summary.failed),
        ("needs attention", summary.needs_attention),
        ("approved", reviews["approve"]),
        ("rejected", reviews["reject"]),
        ("to regenerate", reviews["regenerate"]),
        *((("credits", summary.credits),) if summary.unit.credits else ()),
        ("USD", format_usd(summary.usd)),  # sub-cent digits kept: xAI bills $0.302
    ]
    # in flight or of unknown outcome: shown whenever there are any (docs/spend.md)
    unit = summary.unit
    business += [
        (k, n if unit.credits else format_usd(unit.usd(n)))
        for k, n in (("committed", summary.committed), ("possibly charged", summary.possible))
        if n
    ]
    details: list[tuple[str, object]] = [
        *((f"takes {status}", n) for status, n in summary.counts.items() if n),
        ("takes whose row left the manifest", summary.deleted),
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


def _chips(nav_id: str, label: str, attr: str, choices: Sequence[tuple[str, str, int]]) -> str:
    buttons = "".join(
        f'<button type="button" data-{attr}="{escape(value)}" '
        f'aria-pressed="{"true" if value == "all" else "false"}">'
        f'{escape(text)} (<span class="count">{count}</span>)</button>'
        for value, text, count in choices
    )
    return f'<nav id="{nav_id}" aria-label="{escape(label)}">{buttons}</nav>\n'


def _filters(cards: Cards) -> str:
    """Status chips over the takes still in the manifest (deleted ones apart), then the
    decision chips; each group's counts add up to the header's takes."""
    statuses = cards.statuses
    choices = [("all", "all", cards.takes)]
    choices += [(s.value, s.value, statuses[s.value]) for s in JobStatus if statuses[s.value]]
    choices += [("attention", "needs attention", cards.attention)] if cards.attention else []
    choices += [("deleted", "row left the manifest", cards.deleted)] if cards.deleted else []
    reviews = cards.reviews
    labels = {
        "approve": "approved",
        "reject": "rejected",
        "regenerate": "to regenerate",
        "replaced": "replaced",
        "none": "not reviewed",
    }
    decided = [("all", "all decisions", cards.takes)]
    decided += [(group, text, reviews[group]) for group, text in labels.items() if reviews[group]]
    return _chips("filters", "Filter by status", "filter", choices) + _chips(
        "decisions", "Filter by decision", "decision", decided
    )


def _tools(columns: Sequence[str]) -> str:
    options = (
        '<option value="row">row</option><option value="status">status</option>'
        '<option value="decision">decision</option>'
    )
    options += "".join(
        f'<option value="col{i}">{escape(name)}</option>' for i, name in enumerate(columns)
    )
    return (
        '<div class="tools"><input type="search" id="search" '
        'placeholder="Search prompts and columns" aria-label="Search prompts and columns">'
        f'<label>Sort by <select id="sort">{options}</select></label>'
        '<span id="shown" aria-live="polite"></span></div>\n'
    )


def _config(cards: Cards) -> str:
    """What the script needs besides the records, as JSON inside a non-executed script
    element (``<``, ``>`` and ``&`` escaped: user column names are in it)."""
    config: Mapping[str, object] = {
        "fields": list(FIELDS),
        "columns": cards.columns,
        "modeCol": cards.column_index(cards.request_columns.get("mode")),
        "ratioCol": cards.column_index(cards.request_columns.get("ratio")),
        "takes": cards.takes,
    }
    text = json.dumps(config, ensure_ascii=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="config">{text}</script>\n'


def _page(summary: Summary, cards: Cards, sources: Sequence[str]) -> str:
    title = f"batchgen: {summary.manifest}"
    scripts = "".join(f'<script defer src="{escape(src)}"></script>\n' for src in sources)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="batchgen {escape(summary.version)}">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n<script>{JS}</script>\n"
        f"</head>\n<body>\n<header>\n<h1>{escape(title)}</h1>\n"
        + _figures(summary, cards)
        + "</header>\n"
        + _tools(cards.columns)
        + _filters(cards)
        + '<main id="rows" aria-live="off"></main>\n'
        '<p id="empty" hidden>No take matches.</p>\n'
        '<p class="more"><button type="button" id="more" hidden>Show more</button></p>\n'
        "<noscript><p>The gallery needs JavaScript to show its cards; results.xlsx beside it "
        "holds the same takes.</p></noscript>\n" + _config(cards) + scripts + "</body>\n</html>\n"
    )
