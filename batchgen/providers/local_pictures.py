"""Local pictures sent as a video's first frame: which files are pictures, and reading one.

A picture is recognised by its leading bytes, never by its name (the ``filetype`` library's
signatures: JPEG ``FF D8 FF``, PNG's 8 bytes of RFC 2083 section 3.1, WebP's ``RIFF....WEBP``
of RFC 9649 section 2.5). The xAI contract (``../shared/xai-video-api.md`` sections 2 and 6)
accepts exactly these three, up to the Files API's 50 MB. Reading is bounded: a file is never
read past its limit.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

import filetype

__all__ = [
    "MIME",
    "Picture",
    "PictureError",
    "data_uri",
    "picture_kind",
    "read_picture",
]

#: The MIME type of each kind of picture.
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_CHUNK = 1024 * 1024


class PictureError(Exception):
    """A local picture that cannot be sent; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class Picture:
    """A local picture read whole: its kind (``jpeg``/``png``/``webp``), bytes and SHA-256."""

    path: Path
    kind: str
    data: bytes
    digest: str


#: ``filetype``'s MIME type -> our name of the kind.
_KINDS = {mime: kind for kind, mime in MIME.items()}


def picture_kind(head: bytes) -> str | None:
    """``jpeg``, ``png`` or ``webp`` from a file's first bytes; None for anything else."""
    guessed = filetype.guess(head)
    return None if guessed is None else _KINDS.get(guessed.mime)


def read_picture(path: Path, *, max_bytes: int, types: tuple[str, ...]) -> Picture:
    """The picture at ``path``, checked: a regular, readable file of at most ``max_bytes``
    whose leading bytes make it one of ``types``. Raises PictureError saying what is wrong."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise PictureError(f"the picture {path} is not a regular file")
        if info.st_size > max_bytes:
            raise PictureError(
                f"the picture {path} is {info.st_size:,} bytes; the limit is {max_bytes:,}"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise PictureError(f"the picture {path} does not exist") from None
    except OSError as exc:
        raise PictureError(f"cannot read the picture {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise PictureError(f"the picture {path} is over the {max_bytes:,}-byte limit")
    if not data:
        raise PictureError(f"the picture {path} is empty")
    kind = picture_kind(data[:512])
    if kind is None or kind not in types:
        accepted = ", ".join(t.upper() for t in types)
        raise PictureError(f"the file {path} is not a {accepted} picture (by its content)")
    return Picture(path, kind, data, hashlib.sha256(data).hexdigest())


def data_uri(picture: Picture) -> str:
    """``data:image/png;base64,...`` for ``picture``."""
    encoded = base64.b64encode(picture.data).decode("ascii")
    return f"data:{MIME[picture.kind]};base64,{encoded}"
