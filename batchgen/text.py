"""Clean text: what batchgen stores, writes or prints of a string it did not write itself.

A server's error message, a CDN's page or an exception's text may carry the API token (a
server that echoes the request's headers), line breaks that forge log lines, or terminal
escape codes that move the cursor or retitle the window. :func:`clean_text` makes any such
string safe to store, write or print: every registered secret becomes ``***`` and every
control character is shown escaped (``\\x1b``, ``\\n``), the way Python's ``repr`` shows it.

A secret is found in the shapes a server gives it back: in any letter case (a server that
lower-cases what it echoes), percent-encoded (as in a URL or a form, ``%2F`` or ``%2f``, a
space as ``+``) and with ``/`` escaped as JSON may write it (``\\/``).

Escaped: C0 controls (tab and line breaks too), DEL, C1 controls (U+0080-U+009F, where 8-bit
terminals find CSI), the Unicode line and paragraph separators, and the bidirectional
overrides and isolates that reorder what a reader sees ("Trojan Source", CVE-2021-42574).
Ordinary text, emoji and zero-width joiners are kept.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "clean_text", "forget_secrets", "register_secret", "secrets_in"]

MASK = "***"

_secrets: list[str] = []
_pattern: re.Pattern[str] | None = None  # every shape of every secret, longest first
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def register_secret(secret: str) -> None:
    """Never let ``secret`` reach a stored, written or printed string (process-wide), in any
    of the shapes the module docstring lists."""
    global _pattern
    if secret and secret not in _secrets:
        _secrets.append(secret)
        shapes = {shape for known in _secrets for shape in _shapes(known)}
        # A longer shape first, so that no secret is left half-masked.
        ordered = sorted(shapes, key=len, reverse=True)
        _pattern = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)


def _shapes(secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        secret.replace("/", "\\/"),
    }


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    global _pattern
    _secrets.clear()
    _pattern = None


def secrets_in(text: str) -> bool:
    """Whether ``text`` holds a registered secret, in any of its shapes."""
    return _pattern is not None and _pattern.search(text) is not None


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: str, *, limit: int | None = None) -> str:
    """``text`` with secrets masked and control characters escaped; cut to ``limit`` chars.

    Masking comes before escaping, so a secret split by nothing but an escape is still
    found; cutting comes last and ends with ``...`` (so the result may be ``limit + 3``).
    """
    if _pattern is not None:
        text = _pattern.sub(MASK, text)
    text = _CONTROL.sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text
