"""Read a manifest (CSV/TSV/XLSX), validate every row, and give each row a stable key.

Files
-----
``.csv`` and ``.tsv``: UTF-8 with or without a byte-order mark is tried first, strictly;
UTF-16/UTF-32 files with a byte-order mark ("Unicode text" exports) are read as such; a
file that is not UTF-8 is read as Windows-1252, with a warning. The delimiter (comma,
semicolon or tab) is the one whose header line names a prompt column. Quoted cells may hold
line breaks. Every cell is kept as the exact text of the file: ``NA`` and ``None`` stay
prompts, ``0007`` stays ``0007``.

``.xlsx`` and ``.xlsm``: the sheet named by ``--sheet``, else the first sheet that has a
prompt column (a leading "Instructions" sheet is skipped). A hyperlink cell gives its link
target, a formula cell its saved result. Merged cells in the table are an error naming the
range; fully empty rows are skipped. Cells right of the last named column are ignored.

In both, the header is the first row (among the first 10 non-empty rows) that names a prompt
column; rows above it (a title, notes) are ignored. Row numbers are the ones the spreadsheet
shows: the header of a plain file is row 1, the first data row is row 2, and blank rows and
multi-line cells do not shift them.

Columns
-------
Headers are matched ignoring case, spaces, non-breaking spaces, ``_``, ``-``, ``.`` and a
byte-order mark (``Aspect_Ratio``, ``ASPECT RATIO`` and ``aspect-ratio`` are the same):

==========  ================================================================================
prompt      ``prompt``, ``prompts``, ``prompt text``, ``text prompt``, ``video prompt``
            (required)
mode        ``mode``, ``video mode``, ``generation mode``
ratio       ``ratio``, ``aspect ratio``, ``aspect``, ``ar``
id          ``id``, ``row id``, ``job id`` (optional; gives the row its key)
images      ``image``, ``images``, ``img``, ``image url``, ``image urls``, ``image link``,
            ``image links``, ``images url``, ``images urls``, ``reference image``,
            ``reference images``, each optionally numbered (``image 1``, ``image_2``,
            ``image3``, ``image url 4``). Any number of image columns; each cell may hold
            several URLs separated by line breaks, spaces, semicolons or commas.
==========  ================================================================================

Every column, these included, is carried into the results under its original header, in its
original order. A prompt, mode, ratio or id column given twice is an error; a repeated user
header is kept as ``name (2)``; a data column without a header is kept as ``column F``.

Values
------
- prompt: required; surrounding white space is removed; at most 4,000 characters
  (:data:`MAX_PROMPT_CHARS`); control characters other than tab and line breaks are refused
  (they are invisible in a spreadsheet and usually pasted by accident). A prompt starting
  with ``=`` is sent as text, with a warning.
- mode: ``fun``, ``normal`` or ``spicy``; ratio: ``2:3``, ``3:2`` or ``1:1``; both ignore
  case and spaces. An empty cell (or no such column) takes the default (``--default-mode``,
  ``--default-ratio`` or the config); with no default the row is invalid. A ratio the
  spreadsheet turned into a time (``01:01:00``, ``1:01:00 AM``) is read back as ``1:1``; one
  turned into a date is refused with advice to format the column as Text.
- images: each an absolute ``http://`` or ``https://`` URL of at most 2,048 characters.
- id: optional, at most 200 characters; ids must be unique: the second and later rows with an
  id already used are invalid (the message names the first).
- Two rows without ids asking for exactly the same request are both valid and both sent, with
  a warning naming the earlier row.

A row with an error is reported and never sent; it does not stop the other rows. A file that
cannot be used at all (missing, not a spreadsheet, password-protected, no prompt column, no
data rows, beyond the size limits) raises :class:`~batchgen.errors.ManifestError`.

Row keys
--------
A row's key is its identity across runs, used by the state to resume and skip work:

- a row with an id: ``id:<id>`` (the id with surrounding spaces removed);
- else ``h:<16 hex digits>``: the start of the SHA-256 of the normalised request (the prompt,
  NFC-normalised with runs of white space folded to one space; the mode; the ratio; the
  image URLs in order), the defaults applied;
- a row repeating an earlier row's request gets ``#2``, ``#3``... in file order;
- invalid rows get keys the same way, from the values as written; a row whose id repeats an
  earlier id is keyed like a row without an id.

So inserting, deleting or reordering other rows never changes a row's key; editing a row's
prompt, mode, ratio or images (or its id) makes it a new job; editing user columns does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from batchgen.config import ManifestSettings
from batchgen.errors import ManifestError, UsageError
from batchgen.manifest.columns import ALIASES
from batchgen.manifest.model import (
    MAX_CELLS,
    MAX_COLUMNS,
    MAX_DATA_ROWS,
    MAX_FILE_BYTES,
    MAX_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_UNCOMPRESSED_BYTES,
    MAX_URL_CHARS,
    Manifest,
    ManifestRow,
    Problem,
)
from batchgen.manifest.prompt_template import template_problem
from batchgen.manifest.read import OTHER_FORMATS, read_table
from batchgen.manifest.row_checks import build_manifest
from batchgen.manifest.values import request_key
from batchgen.manifest.variants import expand_variants
from batchgen.providers.catalog import DEFAULT
from batchgen.providers.descriptor import ProviderInfo

__all__ = [
    "ALIASES",
    "MANIFEST_SUFFIXES",
    "MAX_CELLS",
    "MAX_COLUMNS",
    "MAX_DATA_ROWS",
    "MAX_FILE_BYTES",
    "MAX_ID_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_UNCOMPRESSED_BYTES",
    "MAX_URL_CHARS",
    "Manifest",
    "ManifestRow",
    "Problem",
    "find_manifests",
    "no_manifest_message",
    "read_manifest",
    "request_key",
]

MANIFEST_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xlsm")


def read_manifest(
    path: Path, settings: ManifestSettings | None = None, provider: ProviderInfo | None = None
) -> Manifest:
    """Read and validate the manifest at ``path`` as ``settings`` say (default: as it is),
    for ``provider`` (None: the default one: what a row may ask for and what it costs).

    ``settings.sheet`` picks the sheet of a workbook. Bad rows become problems on the
    returned :class:`Manifest`; rows hidden in the sheet are marked skipped unless
    ``settings.include_hidden``. Raises ManifestError when the file cannot be used at all,
    and UsageError when a default is not a valid mode/ratio (or ``prompt_template`` is
    malformed). ``default_mode``, ``default_ratio``, ``variants`` and ``prompt_template``
    apply to rows that leave those cells empty (see :mod:`batchgen.manifest.variants` and
    :mod:`batchgen.manifest.prompt_template`).
    """
    settings = settings or ManifestSettings()
    path = Path(path)
    template = settings.prompt_template
    if template is not None and (problem := template_problem(template)):
        raise UsageError(f"--prompt-template: {problem}")
    table = read_table(path, sheet=settings.sheet, include_hidden=settings.include_hidden)
    manifest = build_manifest(path, table, settings, provider or DEFAULT)
    return expand_variants(manifest, default=settings.variants)


def no_manifest_message(paths: Sequence[Path]) -> str:
    """One line for a command given only empty folders (or folders of unusable files)."""
    shown = ", ".join(map(str, paths)) or "."
    kinds = ", ".join(MANIFEST_SUFFIXES)
    return f"no manifest to read in {shown}: put {kinds} files there, or name one"


def find_manifests(paths: Sequence[Path]) -> list[Path]:
    """The manifest files named by ``paths``: files as given, folders expanded.

    A folder contributes its manifest files (by suffix, sorted by name, not recursively),
    and every spreadsheet batchgen cannot read (``.xls``, ``.ods``, ``.numbers``...: reading
    one raises ManifestError saying what to do, so none is silently left out), skipping
    hidden files and Office lock files (``~$name.xlsx``). A file is kept whatever
    its suffix, and a path that does not exist is kept too, so that reading it reports
    the problem. Each file appears once.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for given in map(Path, paths):
        candidates = _folder_manifests(given) if given.is_dir() else [given]
        for path in candidates:
            identity = path.resolve()
            if identity not in seen:
                seen.add(identity)
                found.append(path)
    return found


def _folder_manifests(folder: Path) -> list[Path]:
    try:
        children = list(folder.iterdir())
    except OSError as exc:
        raise ManifestError(folder, f"cannot be listed: {exc.strerror or exc}") from exc
    return sorted(
        (
            child
            for child in children
            if not child.name.startswith((".", "~$"))
            and (
                (child.suffix.lower() in MANIFEST_SUFFIXES and child.is_file())
                # a .numbers document may be a folder (a macOS package)
                or child.suffix.lower() in OTHER_FORMATS
            )
        ),
        key=lambda child: child.name.casefold(),
    )
