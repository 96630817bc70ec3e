"""The gallery's data: one record per take, written beside the page in parts.

``index.html`` holds no card: the page's script builds the cards it shows from these records
(:mod:`batchgen.output.gallery_assets`), so the page opens in about the same time for 10 or
100,000 takes, and search, sort and the filters work on every record. The records are
written while the state is read, row by row (:func:`row_groups`: a row's takes are held
together only to count them), ``PART_TAKES`` to a file ``gallery/<digest>/part-00001.js``,
each one a call ``batchgenRows([...])`` of JSON arrays (a ``<script src>``: unlike
``fetch``, it loads from a folder opened from disk). The folder's name is the digest of its
content, written under a temporary name and renamed whole, so the page never points at half
a data set and an unchanged gallery rewrites to the same files.

A record is an array in the order of ``FIELDS`` (the page's script reads their positions
from the page, so the two never drift apart): text is passed as text and the script sets it
with ``textContent``; the only addresses in it are the video files' relative sources and
the vendor's http(s) links.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from batchgen.models import NEEDS_ATTENTION, Job, describe_changes, split_variant
from batchgen.output.cells import STATUS_TONE, prompt_used
from batchgen.output.posters import poster_for

__all__ = [
    "DATA_DIR",
    "FIELDS",
    "PART_TAKES",
    "REVIEW_GROUPS",
    "Cards",
    "DataParts",
    "row_groups",
]

#: The folder beside ``index.html`` that holds the data parts.
DATA_DIR = "gallery"
#: Takes per data part (about 0.4 MB each with prompts of a few hundred characters).
PART_TAKES = 1000
#: A record's fields, in order (see the module docstring).
FIELDS: tuple[str, ...] = (
    "row",  # the row as Excel numbers it
    "take",  # the take's number within its row (1, 2...)
    "takes",  # how many takes the row has now
    "key",
    "status",
    "tone",  # done / failed / waiting / attention (cells.STATUS_TONE)
    "attention",  # 1 when a person should look at it
    "deleted",  # 1 when its row left the manifest
    "review",  # one of REVIEW_GROUPS
    "replaces",  # the take number it regenerates (0: none)
    "replacedBy",  # the take numbers made to replace it
    "prompt",  # the prompt as the row asks for it now
    "used",  # the prompt its video was made from, when edited since ("" otherwise)
    "madeWith",  # the other fields edited since, with their values then and now
    "mode",
    "ratio",
    "cols",  # the row's cells, one per page column (text)
    "error",
    "files",  # [relative source, poster source or "", file name] per video
    "links",  # [http(s) address or "", text] per vendor URL (when nothing is on disk)
)
#: How a take stands in the review, for the decision filter: ``replaced`` (a take was made to
#: replace it) wins over its decision; ``none``: no decision yet.
REVIEW_GROUPS: tuple[str, ...] = ("approve", "reject", "regenerate", "replaced", "none")
#: A ``.new-*`` folder older than this is a write that died (a concurrent one is younger).
_STALE_NEW_S = 3600.0


def row_groups(jobs: Iterable[Job]) -> Iterator[list[Job]]:
    """``jobs`` (in display order) in runs of the same row, in or out of the manifest: the
    takes of one row, held together only to count them."""
    group: list[Job] = []
    for job in jobs:
        if group and (job.row, job.in_manifest) != (group[0].row, group[0].in_manifest):
            yield group
            group = []
        group.append(job)
    if group:
        yield group


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if hasattr(value, "isoformat") and not isinstance(value, str):
        text = value.isoformat(sep=" ", timespec="seconds") if hasattr(value, "hour") else None
        return text if text is not None else value.isoformat()
    return str(value)


def _relative_src(path: str) -> str | None:
    """A downloaded file's address relative to the page, or None if it is not relative."""
    path = path.replace("\\", "/")
    if not path or path.startswith("/") or ":" in path.split("/", 1)[0]:
        return None
    return quote(path, safe="/")


@dataclass
class Cards:
    """Builds the records of one gallery and counts what the page's header and filters show.

    ``decisions`` and ``replaces`` (a take's key -> the key it regenerates) come from the
    state's review; ``prompt_column`` is left out of the card's columns (the prompt is shown
    apart), and ``request_columns`` maps ``mode``/``ratio`` to the user column holding it.
    Posters: an existing one is used; new ones are made only while ``poster_until`` (a
    ``clock`` time) has not passed, else the card's player shows the browser's own first frame.
    """

    out_dir: Path
    prompt_column: str | None = None
    request_columns: Mapping[str, str | None] = field(default_factory=dict)
    decisions: Mapping[str, str] = field(default_factory=dict)
    replaces: Mapping[str, str | None] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    poster_until: float = float("-inf")
    columns: list[str] = field(default_factory=list)  # the page's columns, as met
    statuses: Counter[str] = field(default_factory=Counter)  # takes in the manifest
    reviews: Counter[str] = field(default_factory=Counter)  # takes in the manifest
    attention: int = 0
    deleted: int = 0
    _replaced_by: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, origin in self.replaces.items():
            if origin:
                self._replaced_by.setdefault(origin, []).append(split_variant(key)[1])

    @property
    def takes(self) -> int:
        """Takes in the manifest counted so far."""
        return sum(self.statuses.values())

    def column_index(self, name: str | None) -> int:
        """The page column holding user column ``name`` (-1: none)."""
        return self.columns.index(name) if name in self.columns else -1

    def records(self, group: Sequence[Job]) -> Iterator[list[Any]]:
        """The records of one row's takes (see :func:`row_groups`), counted."""
        for job in group:
            yield self.record(job, takes=len(group))

    def record(self, job: Job, *, takes: int) -> list[Any]:
        """One take as a record (``FIELDS``)."""
        for name in job.user:
            if name != self.prompt_column and name not in self.columns:
                self.columns.append(name)
        take = split_variant(job.key)[1]
        replaced_by = sorted(self._replaced_by.get(job.key, ()))
        decision = self.decisions.get(job.key, "")
        review = "replaced" if replaced_by else (decision or "none")
        attention = job.in_manifest and job.status in NEEDS_ATTENTION
        self._count(job, review, attention)
        origin = self.replaces.get(job.key)
        others = tuple(c for c in job.changes() if c.name != "prompt")
        shown = job.prompt if job.request_now is None else job.request_now.prompt
        values = {
            "row": job.row,
            "take": take,
            "takes": takes,
            "key": job.key,
            "status": str(job.status),
            "tone": STATUS_TONE.get(str(job.status), ""),
            "attention": int(attention),
            "deleted": int(not job.in_manifest),
            "review": review,
            "replaces": split_variant(origin)[1] if origin else 0,
            "replacedBy": replaced_by,
            "prompt": shown,
            "used": prompt_used(job) or "",
            "madeWith": describe_changes(others, when="") if others else "",
            "mode": job.mode,
            "ratio": job.ratio,
            "cols": [_text(job.user.get(name)) for name in self.columns],
            "error": ": ".join(filter(None, (job.error_kind, job.error_message))),
            "files": [self._file(path) for path in job.files],
            "links": [] if job.files else [_link(url) for url in job.video_urls],
        }
        return [values[name] for name in FIELDS]

    def _count(self, job: Job, review: str, attention: bool) -> None:
        if not job.in_manifest:
            self.deleted += 1
            return
        self.statuses[str(job.status)] += 1
        self.reviews[review] += 1
        self.attention += attention

    def _file(self, path: str) -> list[str]:
        src = _relative_src(path)
        if src is None:
            return ["", "", path]
        poster = poster_for(self.out_dir, path, make=self.clock() < self.poster_until)
        return [src, quote(poster, safe="/") if poster else "", path]


def _link(url: str) -> list[str]:
    """A vendor URL as [address, text]: only http(s) is ever an address."""
    scheme = urlsplit(url).scheme.lower()
    return [url if scheme in ("http", "https") else "", url]


class DataParts:
    """The data parts of one gallery write, ``PART_TAKES`` records a file (see the module
    docstring); :meth:`finish` names them, :meth:`prune` removes earlier writes' parts."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir / DATA_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self._new = self.root / f".new-{uuid.uuid4().hex}"
        self._new.mkdir()
        self._names: list[str] = []
        self._buffer: list[list[Any]] = []
        self._digest = hashlib.sha256()
        self.folder = ""

    def add(self, records: Iterable[list[Any]]) -> None:
        """Append ``records``, writing a part whenever ``PART_TAKES`` are waiting."""
        for record in records:
            self._buffer.append(record)
            if len(self._buffer) >= PART_TAKES:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        # ensure_ascii: U+2028/9 and lone surrogates become escapes valid in any script; no
        # "<" at all, so that no "</script>" could ever end a script even if one were inlined
        records = json.dumps(self._buffer, ensure_ascii=True, separators=(",", ":"))
        records = records.replace("<", "\\u003c")
        text = f"batchgenRows({records});\n"
        data = text.encode("ascii")
        name = f"part-{len(self._names) + 1:05d}.js"
        with (self._new / name).open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the page that points at it is written durably too
        self._digest.update(data)
        self._names.append(name)
        self._buffer = []

    def finish(self) -> list[str]:
        """Write the last part and give the folder its name; the parts' addresses relative
        to the page, in order."""
        self._flush()
        self.folder = self._digest.hexdigest()[:16]
        final = self.root / self.folder
        if final.is_dir():  # the same data as a write before: keep that one
            shutil.rmtree(self._new, ignore_errors=True)
        else:
            os.replace(self._new, final)
        return [f"{DATA_DIR}/{self.folder}/{name}" for name in self._names]

    def abandon(self) -> None:
        """Remove this write's parts (the page was not written)."""
        shutil.rmtree(self._new, ignore_errors=True)

    def prune(self) -> None:
        """Remove every earlier write's parts (once the page points at this one's)."""
        now = time.time()
        for entry in self.root.iterdir():
            if entry.name == self.folder or entry == self._new:
                continue
            if entry.name.startswith(".new-"):
                try:
                    if now - entry.stat().st_mtime < _STALE_NEW_S:
                        continue  # another write going on
                except OSError:
                    continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
