"""Where each video goes: one path per (row, video number), unique by construction.

The rule (docs/downloads.md, "File names", says the same):

* **Default** (no ``--name-template``): ``videos/<row key>_<n>.mp4`` with the key's ``:``
  written ``_`` (``id:spring-01`` -> ``id_spring-01_1.mp4``; ``h:0123abcd#2`` ->
  ``h_0123abcd_2_1.mp4``; a regenerated take ``id:spring-01#v2`` -> ``id_spring-01_v2_1.mp4``),
  the names earlier versions gave, so existing states keep theirs (takes downloaded before
  2026-12-06 keep the ``#v2`` their state records).
* **Template** (``--name-template '{campaign}/{id}_{n}'``): any of the row's columns by
  header (``{Campaign Name}`` or ``{campaign_name}``), plus ``{id}`` (empty for rows without
  one), ``{key}``, ``{mode}``, ``{ratio}`` and ``{n}`` (the video number, from 1; added as
  ``_{n}`` at the end when the template has none). ``/`` makes folders under ``videos/``.
* **Sanitised for every OS**: each folder or file name is NFC text without ``< > : " / \\ |
  ? *``, control characters or leading/trailing dots and spaces; Windows device names
  (``CON``, ``nul.txt``, ``COM1``...) get a ``_`` in front; each part is cut to
  ``MAX_PART_BYTES`` bytes of UTF-8.
* **Unique**: when sanitising changed anything, a part was cut, or two rows of the state
  would get names equal up to case (Windows and macOS do not tell ``A`` from ``a``), the file
  name gets ``~`` and ``HASH_CHARS`` hex digits of the SHA-256 of the row key. ``~`` never
  survives sanitising, so a hashed name cannot equal another row's plain one.
* **Owned**: a path recorded in the state for another row, or whose sidecar names another
  row, is never handed out (the hashed name is tried next; if that is taken too the row's
  download fails with a message, the other row's file is untouched).

Names depend on the row's key and columns only, never on the URL or the run, so a re-run
finds the same ``.part`` to resume.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

from batchgen.errors import DownloadError, UsageError
from batchgen.models import Job, split_variant
from batchgen.output.sidecar import sidecar_owner, sidecar_path, write_sidecar
from batchgen.providers.descriptor import CREDIT, BillingUnit
from batchgen.state.protocol import Store

__all__ = [
    "HASH_CHARS",
    "MAX_PART_BYTES",
    "FileNames",
    "NameTemplate",
    "default_stem",
    "file_names",
    "name_notes",
    "sanitise_part",
]

HASH_CHARS = 10
MAX_PART_BYTES = 100  # UTF-8 bytes of one folder or file name before "~hash_n.mp4.part"
VIDEO_FOLDER = "videos"
_FORBIDDEN = re.compile('[<>:"/\\\\|?*\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069~]')
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{dev}{d}" for dev in ("COM", "LPT") for d in "0123456789\u00b9\u00b2\u00b3"]
)
_HEX_KEY = re.compile(r"h:([0-9a-f]+)(?:#(\d+))?")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore").rstrip(" .")


def sanitise_part(text: str) -> tuple[str, bool]:
    """One folder or file name, safe on Windows, macOS and Linux; and whether it is unchanged.

    Returns ``(name, lossless)``: ``lossless`` is False when anything was replaced, dropped
    or cut, i.e. when another text could give the same name.
    """
    name = _FORBIDDEN.sub("_", unicodedata.normalize("NFC", text))
    name = "".join(c if c == " " or not c.isspace() else "_" for c in name).strip(" .")
    if name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        name = "_" + name
    name = _cut(name, MAX_PART_BYTES) or "_"
    return name, name == text


def default_stem(key: str) -> tuple[str, bool]:
    """The default file stem of a row key (before ``_<n>.mp4``), and whether it is lossless.
    A row's take n > 1 (``id:spring-01#v2``) is its row's stem and ``_v2``: no ``#`` in a
    file name (a shell, a URL and Excel's links each read it as something else)."""
    row, take = split_variant(key)
    if take > 1:
        stem, lossless = default_stem(row)
        return f"{stem}_v{take}", lossless
    if match := _HEX_KEY.fullmatch(key):  # our own hash keys: the "#n" is part of the form
        digits, copy = match.groups()
        return (f"h_{digits}_{copy}" if copy else f"h_{digits}"), True
    prefix, sep, rest = key.partition(":")
    if sep and prefix == "id":
        stem, lossless = sanitise_part(rest)
        return f"id_{stem}", lossless
    stem, lossless = sanitise_part(key)
    return stem, lossless and "_" not in key


@functools.cache
def _normalise_field(name: str) -> str:
    return re.sub(r"\W+", "_", name.casefold()).strip("_")


@dataclass(frozen=True)
class NameTemplate:
    """A parsed ``--name-template``: folders and a file name from the row's columns."""

    text: str
    parts: tuple[tuple[tuple[str, str | None], ...], ...]  # per folder/file: (literal, field)
    fields: frozenset[str]

    BUILT_IN = ("id", "key", "mode", "ratio", "n")

    @classmethod
    def parse(cls, text: str) -> NameTemplate:
        """Check the template's form; UsageError names what is wrong."""
        try:
            fields = {f for _, f, _, _ in Formatter().parse(text) if f is not None}
        except ValueError as exc:
            raise UsageError(f"--name-template {text!r}: {exc}") from None
        if "" in fields or any(not f.strip() for f in fields):
            raise UsageError(f"--name-template {text!r}: every {{}} needs a column name")
        parts = tuple(p for p in text.replace("\\", "/").split("/") if p.strip())
        if not parts or any(p.strip() in (".", "..") for p in parts):
            raise UsageError(f"--name-template {text!r}: give names, not '.' or '..' folders")
        if "{n}" not in parts[-1] and "n" not in fields:
            parts = (*parts[:-1], parts[-1] + "_{n}")
        pieces = tuple(tuple((lit, f) for lit, f, _, _ in Formatter().parse(p)) for p in parts)
        return cls(text, pieces, frozenset(fields | {"n"}))

    def check_columns(self, columns: Sequence[str], manifest: str) -> None:
        """UsageError when the template names a column the manifest does not have."""
        known = set(self.BUILT_IN) | set(columns) | {_normalise_field(c) for c in columns}
        missing = sorted(f for f in self.fields if f not in known)
        if missing:
            have = ", ".join(dict.fromkeys([*self.BUILT_IN, *columns]))
            raise UsageError(
                f"--name-template {self.text!r}: {', '.join('{' + m + '}' for m in missing)} "
                f"is not a column of {manifest} (available: {have})"
            )

    def render(self, job: Job, index: int) -> tuple[list[str], bool]:
        """The sanitised parts for video ``index`` of ``job`` and whether nothing was lost."""
        parts, lossless = [], True
        for part in self.parts:
            text = "".join(
                literal + (_value(job, field, index) if field is not None else "")
                for literal, field in part
            )
            safe, kept = sanitise_part(text)
            parts.append(safe)
            lossless = lossless and kept and bool(text)
        return parts, lossless


def _value(job: Job, field: str, index: int) -> str:
    """One template field of ``job``: a built-in, or a column by its header or snake_case."""
    if field == "n":
        return str(index)
    if field in ("key", "mode", "ratio"):
        return str(getattr(job, field))
    if field == "id":
        return job.key[3:] if job.key.startswith("id:") else ""
    if field not in job.user:
        field = next((name for name in job.user if _normalise_field(name) == field), field)
    value = job.user.get(field)
    return "" if value is None else str(value)


def _fold(path: str) -> str:
    """How a case-insensitive, normalisation-insensitive file system compares names."""
    return unicodedata.normalize("NFC", path).casefold()


class FileNames:
    """The video paths of one manifest's rows; pass it to the download stage.

    ``claim(job, n)`` returns a path relative to the manifest's output folder (POSIX form)
    that no other row owns, and remembers it for this run. ``describe`` writes the sidecar.
    ``jobs()`` gives every row of the state (read at the first claim), so rows that would
    share a name are known before the first download. ``unit``: the provider's billing
    unit, in which the sidecars' costs are counted.
    """

    def __init__(
        self,
        out_dir: Path,
        jobs: Callable[[], Iterable[Job]],
        *,
        template: NameTemplate | None = None,
        unit: BillingUnit = CREDIT,
    ) -> None:
        self.out_dir = out_dir
        self.template = template
        self.unit = unit
        self._jobs: Callable[[], Iterable[Job]] | None = jobs  # read at the first claim
        self._owners: dict[str, str] = {}
        self._crowded: set[str] = set()

    def _load(self) -> None:
        """Learn every row's files and which rows would share a name (once)."""
        if self._jobs is None:
            return
        jobs, self._jobs = self._jobs(), None
        names: dict[str, set[str]] = defaultdict(set)
        for job in jobs:
            for path in job.files:
                self._owners.setdefault(_fold(path), job.key)
            # names of later videos that meet another row's are caught by the owner check
            for index in range(1, max(len(job.video_urls), 1) + 1):
                names[_fold(self._plain(job, index)[0])].add(job.key)
        self._crowded = {key for keys in names.values() if len(keys) > 1 for key in keys}

    def _plain(self, job: Job, index: int) -> tuple[str, bool]:
        if self.template is None:
            stem, lossless = default_stem(job.key)
            parts = [f"{stem}_{index}"]
        else:
            parts, lossless = self.template.render(job, index)
        return "/".join([VIDEO_FOLDER, *parts]), lossless

    def candidates(self, job: Job, index: int) -> list[str]:
        """The paths this video may take, preferred first."""
        self._load()
        plain, lossless = self._plain(job, index)
        folder, _, name = plain.rpartition("/")
        hashed = f"{folder}/{name}~{_key_hash(job.key)}"
        if lossless and job.key not in self._crowded:
            return [plain + ".mp4", hashed + ".mp4"]
        return [hashed + ".mp4"]

    def claim(self, job: Job, index: int) -> str:
        """A path for video ``index`` of ``job`` no other row owns; DownloadError if none."""
        owner = ""
        for path in self.candidates(job, index):
            owner = self._owner(path)
            if owner in ("", job.key):
                self._owners[_fold(path)] = job.key
                return path
        raise DownloadError(
            f"the file {self.candidates(job, index)[-1]} belongs to row {owner!r}; "
            "rename or move it if that row no longer needs it"
        )

    def _owner(self, path: str) -> str:
        owner = self._owners.get(_fold(path), "")
        if owner:
            return owner
        return sidecar_owner(sidecar_path(self.out_dir / path)) or ""

    def describe(self, job: Job, index: int, path: str, size: int) -> None:
        """Write the sidecar JSON of a verified video (before it takes its final name)."""
        write_sidecar(self.out_dir / path, job, index=index, size=size, unit=self.unit)


def file_names(
    store: Store,
    template: str | None,
    columns: Sequence[str],
    manifest: str,
    *,
    unit: BillingUnit = CREDIT,
) -> FileNames:
    """The ``FileNames`` of one manifest's run (``store``: its state; ``unit``: the
    provider's billing unit).

    UsageError when ``template`` is malformed or names a column ``columns`` lacks.
    """
    parsed = None
    if template:
        parsed = NameTemplate.parse(template)
        parsed.check_columns(columns, manifest)
    return FileNames(store.path.parent, lambda: store.iter_jobs(), template=parsed, unit=unit)


def name_notes(template: NameTemplate, jobs: Sequence[Job]) -> list[tuple[Job, str]]:
    """The rows of ``jobs`` whose first video will not get ``template``'s plain name, each
    with a sentence saying why and the name it gets instead, by the rules ``run`` applies
    (the module docstring): another row's name up to case, or a name made safe (a character
    replaced, a device name, a part cut, an empty value). ``validate`` shows them as
    warnings; rows only an earlier run's state knows of are not considered.
    """
    names = FileNames(Path(), lambda: jobs, template=template)
    sharing: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        sharing[_fold(names._plain(job, 1)[0])].append(job)
    notes = []
    for job in jobs:
        plain = names._plain(job, 1)[0]
        given = names.candidates(job, 1)[0]
        if given == plain + ".mp4":
            continue
        sharers = [other for other in sharing[_fold(plain)] if other.key != job.key]
        others = sorted({other.row for other in sharers})
        by_case = any(names._plain(other, 1)[0] != plain for other in sharers)
        why = (
            f"the name of {'row' if len(others) == 1 else 'rows'} "
            f"{', '.join(map(str, others))} too{' (case aside)' if by_case else ''}"
            if others
            else "a name that had to be made safe (a character, a device name, a length or "
            "an empty value)"
        )
        notes.append(
            (
                job,
                f"--name-template {template.text!r} gives {plain}.mp4, {why}; "
                f"the video is saved as {given}",
            )
        )
    return notes
