"""Image URLs as people paste them: share links of file hosts, and characters that need escaping.

A share link of a file host opens a web page (a viewer), not the image: the vendor would
fetch HTML, make no use of the image, and the row would still be paid for. So:

- Google Drive ``https://drive.google.com/file/d/ID/view?usp=sharing`` (and ``open?id=ID``)
  is rewritten to ``https://drive.google.com/uc?export=download&id=ID``, Drive's direct
  download form, with a warning (the file must be shared with "Anyone with the link");
- Dropbox ``…?dl=0`` (or no ``dl``) is rewritten to ``…dl=1``, keeping every other
  parameter (``rlkey`` grants access): Dropbox's documented way to force a download
  (help.dropbox.com/share/force-download);
- OneDrive / SharePoint share links (``1drv.ms``, ``onedrive.live.com``,
  ``*.sharepoint.com/:i:/…``) are refused: whether their direct form works depends on how
  the file is shared, so the message suggests it rather than paying on a guess: the shares
  API's content URL, ``https://api.onedrive.com/v1.0/shares/u!<base64url of the link>/root/content``
  (learn.microsoft.com, "Access shared items": encode the sharing URL as unpadded base64url
  and prefix ``u!``).

Spaces and the other characters a URL may not hold unescaped (RFC 3986: ``"<>\\^`{|}``)
are named with their position; the user fixes the cell (``%20`` for a space).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from batchgen.manifest.model import show

__all__ = ["ShareLink", "share_link", "unescaped_problem"]

_DRIVE_FILE = re.compile(r"^/file/d/([A-Za-z0-9_-]{10,})(?:/|$)")
_UNESCAPED = re.compile(r'[ \u00a0"<>\\^`{|}]')
_NAMES = {" ": "a space", "\u00a0": "a non-breaking space"}


@dataclass(frozen=True, slots=True)
class ShareLink:
    """What to do with a file host's share link: ``direct`` is the URL to send instead
    (None: refuse the row); ``message`` says why, for a warning or an error."""

    direct: str | None
    message: str


def share_link(url: str) -> ShareLink | None:
    """The rewrite (or refusal) for a share link of Google Drive, Dropbox or OneDrive;
    None for any other URL."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if host == "drive.google.com":
        return _drive(url, parts)
    if host in ("www.dropbox.com", "dropbox.com"):
        return _dropbox(url, parts)
    if host in ("1drv.ms", "onedrive.live.com") or (
        host.endswith(".sharepoint.com") and re.match(r"^/:[a-z]:/", parts.path)
    ):
        return _onedrive(url)
    return None


def _drive(url: str, parts: SplitResult) -> ShareLink | None:
    path, query = parts.path, dict(parse_qsl(parts.query))
    match = _DRIVE_FILE.match(path)
    file_id = match.group(1) if match else None
    if file_id is None and path in ("/open", "/uc") and query.get("id"):
        if path == "/uc" and query.get("export") == "download":
            return None  # already direct
        file_id = query["id"]
    if file_id is None:
        return None
    direct = f"https://drive.google.com/uc?export=download&id={file_id}"
    return ShareLink(
        direct,
        f"{show(url)} is a Google Drive share page, not the image; sending its direct "
        f"download link {direct} instead (the file must be shared with 'Anyone with the link')",
    )


def _dropbox(url: str, parts: SplitResult) -> ShareLink | None:
    path = parts.path
    if not path.startswith(("/s/", "/scl/fi/")):
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "dl" and v == "1" for k, v in query) or any(k == "raw" for k, _ in query):
        return None  # already direct
    kept = [(k, v) for k, v in query if k != "dl"] + [("dl", "1")]
    direct = urlunsplit(parts._replace(query=urlencode(kept)))
    return ShareLink(
        direct,
        f"{show(url)} is a Dropbox preview page, not the image; sending its direct "
        f"download link {show(direct, 200)} instead (dl=1)",
    )


def _onedrive(url: str) -> ShareLink:
    token = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
    direct = f"https://api.onedrive.com/v1.0/shares/u!{token}/root/content"
    return ShareLink(
        None,
        f"{show(url)} is a OneDrive share page, not the image; share the file with "
        f"'Anyone with the link' and use its direct link {direct}, or host the image elsewhere",
    )


def unescaped_problem(url: str) -> str | None:
    """A message naming the first character of ``url`` that must be escaped, or None."""
    match = _UNESCAPED.search(url)
    if match is None:
        return None
    char = match.group()
    name = _NAMES.get(char, f"the character {char!r}")
    code = "%20" if char == " " else f"%{ord(char):02X}" if ord(char) < 128 else "%C2%A0"
    return (
        f"{show(url, 120)} contains {name} at position {match.start() + 1}; a URL cannot "
        f"hold it as such: write it as {code} (or remove it)"
    )
