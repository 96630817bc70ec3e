"""Parse and check single cell values: mode, ratio, images, prompt, id; the request key.

Every function here is pure; the ones called once per row are cheap or cached, because a
100,000-row manifest calls each of them 100,000 times.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from batchgen.errors import UsageError
from batchgen.manifest.model import MAX_ID_CHARS, MAX_PROMPT_CHARS, MAX_URL_CHARS, as_text, show
from batchgen.manifest.urls import unescaped_problem
from batchgen.models import JobSpec

__all__ = [
    "SAMPLE_ID",
    "choices_text",
    "id_problem",
    "identity_request",
    "image_problem",
    "normalise_default",
    "normalise_id",
    "parse_duration_cell",
    "parse_mode",
    "parse_ratio",
    "parse_word",
    "prompt_problem",
    "request_key",
    "split_images",
]

# NUL and the C0/C1 controls except tab, line feed and carriage return, plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Images are separated by line breaks, semicolons, a comma followed by a space, or spaces or
# a comma that start another URL (``scheme://`` or ``www.``): a comma inside a URL (a CDN's
# "w_100,h_80") is kept, and so is a space inside one, so that the message can name it
# rather than report two broken halves.
_IMAGE_SPLIT = re.compile(
    r"[\r\n\v\f;]+|[ \t\u00a0]+(?=[A-Za-z][A-Za-z0-9+.\-]*://)"
    r"|,(?:\s+|(?=[A-Za-z][A-Za-z0-9+.\-]*://|www\.))"
)
# An id written as a whole number with a zero fraction ("1.0", "12.00"): what a number
# column becomes after a round trip through pandas or a CSV export.
_ZERO_FRACTION = re.compile(r"^([+-]?\d+)\.0+$")
_SPACES = re.compile(r"\s+")
_TIME_TEXT = re.compile(r"^(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.0+)?)?(am|pm)?$")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_DATE_TEXT = re.compile(
    r"^(?:\d{1,4}[-/.]\d{1,2}(?:[-/.]\d{1,4})?(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?"
    rf"|\d{{1,2}}[-/. ]?(?:{_MONTHS})[a-z]*(?:[-/. ]?\d{{2,4}})?"
    rf"|(?:{_MONTHS})[a-z]*[-/. ]?\d{{1,2}}(?:[-/., ]+\d{{2,4}})?)$"
)
# Dates Excel and LibreOffice use as day zero: a "datetime" on one of them is a pure time.
_DAY_ZERO = (dt.date(1899, 12, 30), dt.date(1899, 12, 31), dt.date(1904, 1, 1))


# --- mode and ratio ----------------------------------------------------------------------------


def choices_text(allowed: Sequence[str]) -> str:
    """``2:3, 3:2 or 1:1``."""
    items = list(allowed)
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


@lru_cache(maxsize=4096, typed=True)
def parse_mode(value: Any, allowed: tuple[str, ...], label: str) -> tuple[str | None, str | None]:
    """(canonical mode, None) or (None, what is wrong, naming the provider ``label`` and its
    ``allowed`` modes). Empty gives (None, None)."""
    return parse_word(value, allowed, label, "mode")


@lru_cache(maxsize=4096, typed=True)
def parse_word(
    value: Any, allowed: tuple[str, ...], label: str, kind: str
) -> tuple[str | None, str | None]:
    """(the allowed word ``value`` spells, None) or (None, what is wrong): case and spaces
    ignored. Empty gives (None, None)."""
    text = _SPACES.sub("", as_text(value)).casefold()
    if not text:
        return None, None
    for word in allowed:
        if text == word.casefold():
            return word, None
    return None, f"{show(value)} is not {_a(label)} {kind}; use {choices_text(allowed)}"


@lru_cache(maxsize=4096, typed=True)
def parse_duration_cell(
    value: Any, low: int, high: int, label: str
) -> tuple[int | None, str | None]:
    """(seconds, None) from ``8``, ``8s``, ``8 s`` or ``8.0``; (None, what is wrong, naming
    the provider ``label`` and its range). Empty gives (None, None)."""
    if isinstance(value, bool):
        number: float | None = None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        text = _SPACES.sub("", as_text(value)).casefold().removesuffix("seconds")
        text = text.removesuffix("sec").removesuffix("s")
        if not text:
            return (
                (None, None)
                if not as_text(value).strip()
                else (None, _range(value, low, high, label))
            )
        try:
            number = float(text)
        except ValueError:
            number = None
    if number is None or not number.is_integer() or not low <= number <= high:
        return None, _range(value, low, high, label)
    return int(number), None


def _range(value: Any, low: int, high: int, label: str) -> str:
    return (
        f"{show(value)} is not {_a(label)} duration; use a whole number of seconds from "
        f"{low} to {high}"
    )


def _a(label: str) -> str:
    """``a GrokImagine`` / ``an xAI``: the provider's name with its article."""
    return f"{'an' if label[:1].lower() in 'aeiox' else 'a'} {label}"


@lru_cache(maxsize=4096, typed=True)
def parse_ratio(value: Any, allowed: tuple[str, ...], label: str) -> tuple[str | None, str | None]:
    """(canonical ratio, None) or (None, what is wrong, naming the provider ``label`` and its
    ``allowed`` ratios). Empty gives (None, None).

    Undoes the spreadsheet's time coercion (``1:1`` typed into a General cell is stored as
    the time 01:01:00) and refuses a ratio that became a date: that cannot be undone.
    """
    accepted = choices_text(allowed)
    if isinstance(value, dt.datetime) and value.date() in _DAY_ZERO:
        value = value.time()
    if isinstance(value, dt.time):
        return _ratio_from_time(value.hour, value.minute, value.second, value, allowed, label)
    if isinstance(value, dt.timedelta):
        minutes, seconds = divmod(int(value.total_seconds()), 60)
        return _ratio_from_time(*divmod(minutes, 60), seconds, value, allowed, label)
    if isinstance(value, dt.date):
        return None, _date_message(value, accepted)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None, f"{show(value)} is not a ratio; type one of {accepted} (as text)"
    return _ratio_from_text(value, allowed, label)


def _ratio_from_text(
    value: Any, allowed: tuple[str, ...], label: str
) -> tuple[str | None, str | None]:
    text = _SPACES.sub("", as_text(value)).casefold()
    if not text:
        return None, None
    match = _TIME_TEXT.match(text)
    if match:
        hours, minutes = int(match.group(1)), int(match.group(2))
        if match.group(4) == "pm" and hours < 12:
            hours += 12
        elif match.group(4) == "am" and hours == 12:
            hours = 0
        return _ratio_from_time(hours, minutes, int(match.group(3) or 0), value, allowed, label)
    if _DATE_TEXT.match(as_text(value).strip().casefold()):
        return None, _date_message(value, choices_text(allowed))
    return None, _not_a_ratio(value, allowed, label)


def _not_a_ratio(value: Any, allowed: tuple[str, ...], label: str) -> str:
    return f"{show(value)} is not {_a(label)} ratio; use {choices_text(allowed)}"


def _ratio_from_time(
    hours: int,
    minutes: int,
    seconds: int,
    original: Any,
    allowed: tuple[str, ...],
    label: str,
) -> tuple[str | None, str | None]:
    ratio = f"{hours}:{minutes}"
    if seconds == 0 and ratio in allowed:
        return ratio, None
    # A time cell shows what was typed ("16:9"); text is shown as written.
    typed = seconds == 0 and not isinstance(original, str)
    return None, _not_a_ratio(ratio if typed else original, allowed, label)


def _date_message(value: Any, accepted: str) -> str:
    return (
        f"{show(value)} is a date: the spreadsheet turned the ratio into a date. Format the "
        f"ratio column as Text and type {accepted}"
    )


def normalise_default(
    kind: str, value: str | None, allowed: tuple[str, ...], label: str
) -> str | None:
    """A ``--default-mode`` / ``--default-ratio`` value, canonical; UsageError when the
    provider ``label`` does not accept it. None for a provider without the field (``allowed``
    empty): a default shared in ``batchgen.toml`` has nothing to fill there."""
    if value is None or not value.strip() or not allowed:
        return None
    parsed, _ = (
        parse_mode(value, allowed, label) if kind == "mode" else parse_ratio(value, allowed, label)
    )
    if parsed is None:
        raise UsageError(
            f"default {kind} {show(value)} is not valid for {label}; use {choices_text(allowed)}"
        )
    return parsed


# --- images, prompt, id ------------------------------------------------------------------------


def split_images(value: Any) -> list[str]:
    """The URLs of one images cell (separated by line breaks, spaces, ``;`` or ``,``)."""
    text = as_text(value)
    if not text.strip():
        return []
    parts = (part.strip().rstrip(",") for part in _IMAGE_SPLIT.split(text))
    return [part for part in parts if part]


def image_problem(url: str) -> str | None:
    """What is wrong with one image URL, or None."""
    if len(url) > MAX_URL_CHARS:
        return f"image URL {show(url)} is {len(url):,} characters long; the limit is 2,048"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{show(url)} is not a valid URL; use a full address starting with https://"
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme:
            return f"{show(url)} is not a full URL; use an address starting with https://"
        return f"{show(url)} is not an http(s) URL; image URLs must start with https://"
    if not host:
        return f"{show(url)} has no host name; use a full address such as https://example.com/a.png"
    if _CONTROL.search(url):
        return f"{show(url)} contains control characters; remove them"
    return unescaped_problem(url)


def prompt_problem(prompt: str) -> str | None:
    """What is wrong with a (stripped) prompt, or None."""
    if not prompt:
        return "prompt is empty; every row needs a prompt (or delete the row)"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
    return _control_problem("prompt", prompt)


def _control_problem(what: str, text: str) -> str | None:
    match = _CONTROL.search(text)
    if match is None:
        return None
    code = ord(match.group())
    return (
        f"{what} contains the control character U+{code:04X} at position {match.start() + 1}; "
        "remove it (only tabs and line breaks are allowed)"
    )


#: The id of ``batchgen template``'s sample row: a row with it is never sent.
SAMPLE_ID = "sample-never-sent"


def normalise_id(value: Any) -> str:
    """A row's id as its key uses it, the same from CSV and XLSX.

    A number cell gives the number as written without a zero fraction (``7``, ``1``; a
    number format showing ``0007`` does not change it: the cell holds 7); text gives itself,
    surrounding spaces removed, leading zeros kept (``0007``), except that a whole number
    with a zero fraction (``1.0``, ``12.00``) loses the fraction, so ``1.0`` and ``1`` are
    the same row.
    """
    text = as_text(value).strip()
    match = _ZERO_FRACTION.match(text)
    return match.group(1) if match else text


def id_problem(row_id: str) -> str | None:
    """What is wrong with a (stripped) id, or None."""
    if row_id.casefold() == SAMPLE_ID:
        return (
            f"the id {SAMPLE_ID} marks the template's sample row, which is never sent; "
            "replace the row with your own (or give it your own id)"
        )
    if len(row_id) > MAX_ID_CHARS:
        return f"id is {len(row_id):,} characters long; the limit is {MAX_ID_CHARS}"
    return _control_problem("id", row_id)


def identity_request(spec: JobSpec) -> dict[str, Any]:
    """What a row's key hashes (``request_key(**identity_request(spec))``): the request's
    fields not at their default, with each local picture named by its content's SHA-256
    instead of its path, so a changed picture is a new request and a moved folder is not."""
    request = spec.request()
    digests = request.pop("image_digests", None)
    if digests:
        request["images"] = [
            f"sha256:{digest}" if digest else url
            for url, digest in zip(spec.images, digests, strict=True)
        ]
    return request


def request_key(
    prompt: str, mode: str, ratio: str, images: Sequence[str] = (), **extra: Any
) -> str:
    """``h:`` + 16 hex digits of SHA-256 over the normalised request.

    The prompt is compared NFC-normalised with runs of white space folded to one space, so
    re-saving the file or re-wrapping a line does not make a new job. ``extra`` holds request
    fields added to ``JobSpec`` after these four, and only those not at their default (the
    shape of ``JobSpec.request()``: ``request_key(**spec.request())``); they are hashed after
    the four, by name, so a row that leaves a new field at its default keeps its key.
    """
    folded = " ".join(unicodedata.normalize("NFC", prompt).split())
    request: list[Any] = [folded, mode, ratio, list(images)]
    if extra:
        request.append(sorted([name, value] for name, value in extra.items()))
    blob = json.dumps(request, ensure_ascii=False, default=str)
    digest = hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
    return f"h:{digest[:16]}"
