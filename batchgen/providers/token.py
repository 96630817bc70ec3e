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
from dataclasses import dataclass
from pathlib import Path

from batchgen.errors import UsageError

__all__ = ["GROKIMAGINE_TOKEN", "Token", "TokenNames", "load_token"]

_MAX_FILE = 64 * 1024  # bytes; a token file is one short line


@dataclass(frozen=True, slots=True)
class TokenNames:
    """Where a provider's token may come from: its variable, and the variable naming a file."""

    env: str
    file_env: str

    def ways(self) -> str:
        """Every way to give the token, for a message."""
        return (
            f"set {self.env}, or point {self.file_env} or --token-file at a file only you can read"
        )


#: The default provider's token variables (``providers.grokimagine`` declares them).
GROKIMAGINE_TOKEN = TokenNames("GROKIMAGINE_API_TOKEN", "GROKIMAGINE_API_TOKEN_FILE")


class Token:
    """A secret that refuses to show itself in reprs, str() or f-strings.

    ``source`` says where it came from (``XAI_API_KEY``, ``the token file /x (--token-file)``),
    so a message about a refused token names what to fix; it never holds the token.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "the API token") -> None:
        self._value = value.strip()
        self.source = source

    def reveal(self) -> str:
        """The raw token, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__


def load_token(
    environ: Mapping[str, str] | None = None,
    token_file: Path | None = None,
    *,
    names: TokenNames = GROKIMAGINE_TOKEN,
) -> Token:
    """The API token from ``--token-file``, else the file ``names.file_env`` names, else the
    variable ``names.env``; a file must be readable by its owner alone. The token's ``source``
    names the one used. UsageError otherwise, listing every way to give one."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        return _read_token_file(token_file, f"the token file {token_file} (--token-file)")
    if env.get(names.file_env):
        path = Path(env[names.file_env])
        return _read_token_file(path, f"the token file {path} (${names.file_env})")
    value = env.get(names.env, "").strip()
    if not value:
        raise UsageError(f"no API token: {names.ways()}")
    problem = _token_problem(value)
    if problem:
        raise UsageError(f"{names.env} {problem}")
    return Token(value, names.env)


def _read_token_file(path: Path, source: str) -> Token:
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
    return Token(value, source)


def _token_problem(value: str) -> str | None:
    """Why ``value`` cannot be a bearer token, without ever quoting it."""
    if any(ch.isspace() for ch in value):
        return "holds a token with spaces or line breaks inside; it must be one word"
    if not all(0x21 <= ord(ch) <= 0x7E for ch in value):
        return "holds characters that cannot be part of a token (only visible ASCII can)"
    return None
