"""Which header is which: accepted column names, matched forgivingly, and the header row.

The accepted names are listed in :mod:`batchgen.manifest.load`'s docstring; keep the two in step.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from batchgen.manifest.model import as_text, show

__all__ = [
    "ALIASES",
    "HEADER_SEARCH_ROWS",
    "OPTIONAL_FIELDS",
    "ColumnMap",
    "column_letter",
    "describe_accepted",
    "has_prompt_column",
    "map_columns",
    "missing_prompt_message",
    "normalise_header",
]

#: The header row is the first row, among this many non-empty rows, that has a prompt column.
HEADER_SEARCH_ROWS = 10

ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt", "prompts", "prompt text", "text prompt", "video prompt"),
    "mode": ("mode", "video mode", "generation mode"),
    "ratio": ("ratio", "aspect ratio", "aspect", "ar"),
    "id": ("id", "row id", "job id"),
    # request fields only some providers accept (``ProviderInfo.fields``); for the others
    # the column is the user's own, carried untouched
    "duration": ("duration", "length", "seconds", "duration s", "clip length", "video length"),
    "resolution": ("resolution", "res", "video resolution"),
    "model": ("model", "video model"),
}
#: Roles that are request fields a provider may or may not accept.
OPTIONAL_FIELDS = ("mode", "duration", "resolution", "model")
_IMAGE_WORDS = (
    "image",
    "images",
    "img",
    "image url",
    "image urls",
    "image link",
    "image links",
    "images url",
    "images urls",
    "reference image",
    "reference images",
)
# "image", "image 2", "image2", "image url 3" ... after normalisation ("image_2" -> "image 2").
_IMAGE_RE = re.compile(r"^(?:" + "|".join(re.escape(w) for w in _IMAGE_WORDS) + r") ?\d{0,3}$")
_ROLE_OF = {alias: role for role, names in ALIASES.items() for alias in names}
_SEPARATORS = re.compile(r"[\s_\-.]+")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060"), None)


def normalise_header(value: object) -> str:
    """A header as compared: NFKC, no BOM or zero-width characters, lower case, and runs of
    spaces (incl. non-breaking), underscores, hyphens and dots folded to one space."""
    text = unicodedata.normalize("NFKC", as_text(value)).translate(_INVISIBLE)
    return _SEPARATORS.sub(" ", text).strip().casefold()


def role_of(header: object) -> str | None:
    """``prompt``/``mode``/``ratio``/``id``/``images`` for a request column, else None."""
    name = normalise_header(header)
    if name in _ROLE_OF:
        return _ROLE_OF[name]
    return "images" if _IMAGE_RE.match(name) else None


def has_prompt_column(header: Sequence[object]) -> bool:
    """True when one of ``header``'s cells names the prompt column."""
    return any(role_of(cell) == "prompt" for cell in header)


def column_letter(index: int) -> str:
    """Spreadsheet column letter of a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    number = index + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass(slots=True)
class ColumnMap:
    """Positions (0-based) of the request columns in a header."""

    prompt: int
    mode: int | None = None
    ratio: int | None = None
    id: int | None = None
    images: list[int] = field(default_factory=list)
    duration: int | None = None
    resolution: int | None = None
    model: int | None = None

    def request_columns(self) -> set[int]:
        """Every column whose value is part of the request or the row's identity."""
        single = (
            self.prompt,
            self.mode,
            self.ratio,
            self.id,
            self.duration,
            self.resolution,
            self.model,
        )
        return {i for i in single if i is not None} | set(self.images)


def map_columns(header: Sequence[object]) -> ColumnMap | str:
    """The request columns of ``header``, or a message saying why there are none usable."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(header):
        role = role_of(cell)
        if role is not None:
            found.setdefault(role, []).append(index)
    if "prompt" not in found:
        return missing_prompt_message(header)
    for role in ("prompt", "mode", "ratio", "id", "duration", "resolution", "model"):
        if len(found.get(role, ())) > 1:
            names = " and ".join(f"{show(header[i])} ({column_letter(i)})" for i in found[role][:3])
            return f"has more than one {role} column: {names}; keep one of them"
    return ColumnMap(
        prompt=found["prompt"][0],
        mode=found.get("mode", [None])[0],
        ratio=found.get("ratio", [None])[0],
        id=found.get("id", [None])[0],
        images=found.get("images", []),
        duration=found.get("duration", [None])[0],
        resolution=found.get("resolution", [None])[0],
        model=found.get("model", [None])[0],
    )


def missing_prompt_message(header: Sequence[object]) -> str:
    """Why ``header`` is not usable: the columns found, the names accepted, a likely typo."""
    names = [as_text(cell) for cell in header if as_text(cell).strip()]
    if not names:
        return "has no header row: the first row must name the columns (a 'prompt' column at least)"
    listed = ", ".join(_shown_header(name) for name in names[:12])
    if len(names) > 12:
        listed += f" and {len(names) - 12} more"
    message = f"has no prompt column (columns found: {listed}); {describe_accepted('prompt')}"
    folded = [normalise_header(name) for name in names]
    close = difflib.get_close_matches("prompt", folded, n=1, cutoff=0.7)
    if close:
        message += f"; is {show(names[folded.index(close[0])], 40)} meant to be 'prompt'?"
    return message


#: A header cell longer than this is not shown in a message: a column name is short, and a
#: long first line is more likely content (a file that is not a manifest) than a header.
SHOWN_HEADER_CHARS = 40


def _shown_header(name: str) -> str:
    if len(name) > SHOWN_HEADER_CHARS:
        return f"(a cell of {len(name):,} characters, not shown)"
    return show(name, SHOWN_HEADER_CHARS)


def describe_accepted(role: str) -> str:
    """``accepted names: prompt, prompts, ...`` for a message."""
    return "accepted names: " + ", ".join(ALIASES[role])
