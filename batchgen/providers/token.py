"""The API token: where it comes from, and a value that never shows itself.

A token is one line of visible ASCII (RFC 6750 section 2.1 allows ``b64token`` characters in
a bearer token; we accept any visible ASCII). A token file is UTF-8, with or without a
byte-order mark, holding exactly one such line; surrounding whitespace and one trailing line
break are ignored. Anything else is one clear :class:`UsageError` naming the file, raised
before any row is touched, never echoing the file's content.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from batchgen.config import TOKEN_ENV, TOKEN_FILE_ENV
from batchgen.errors import UsageError

__all__ = ["Token", "load_token"]

_MAX_FILE = 64 * 1024  # bytes; a token file is one short line


class Token:
    """A secret that refuses to show itself in reprs, str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value.strip()

    def reveal(self) -> str:
        """The raw token, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__


def load_token(environ: Mapping[str, str] | None = None, token_file: Path | None = None) -> Token:
    """The API token from ``GROKIMAGINE_API_TOKEN``, or from a token file that only its owner
    can read (``--token-file`` or ``GROKIMAGINE_API_TOKEN_FILE``). UsageError otherwise."""
    env = os.environ if environ is None else environ
    path = token_file or (Path(env[TOKEN_FILE_ENV]) if env.get(TOKEN_FILE_ENV) else None)
    if path is not None:
        return _read_token_file(path)
    value = env.get(TOKEN_ENV, "").strip()
    if not value:
        raise UsageError(
            f"no API token: set {TOKEN_ENV}, or point --token-file at a file only you can read"
        )
    problem = _token_problem(value)
    if problem:
        raise UsageError(f"{TOKEN_ENV} {problem}")
    return Token(value)


def _read_token_file(path: Path) -> Token:
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"the token file {path} is not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(_MAX_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the token file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"the token file {path} can be read by other users; run: chmod 600 {path}")
    if len(raw) > _MAX_FILE:
        raise UsageError(f"the token file {path} is too large to hold one token line")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\0" in raw:
        raise UsageError(f"the token file {path} is UTF-16; save it as UTF-8 (one line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"the token file {path} is not UTF-8 text; save it as UTF-8") from None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"the token file {path} is empty")
    if len(lines) > 1:
        raise UsageError(
            f"the token file {path} has {len(lines)} lines; it must hold the token on one line"
        )
    value = lines[0].strip()
    problem = _token_problem(value)
    if problem:
        raise UsageError(f"the token file {path} {problem}")
    return Token(value)


def _token_problem(value: str) -> str | None:
    """Why ``value`` cannot be a bearer token, without ever quoting it."""
    if any(ch.isspace() for ch in value):
        return "holds a token with spaces or line breaks inside; it must be one word"
    if not all(0x21 <= ord(ch) <= 0x7E for ch in value):
        return "holds characters that cannot be part of a token (only visible ASCII can)"
    return None
