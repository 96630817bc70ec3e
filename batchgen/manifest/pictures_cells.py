"""A row's picture cells: public URLs, and local files for a provider that takes them.

An ``images`` cell holds URLs (share links rewritten or refused: :mod:`batchgen.manifest.urls`)
or, for a provider with ``local_images``, the path of a picture beside the manifest (relative
to the manifest's folder, or absolute). A local picture is checked here, before anything is
paid: it must exist, be readable, be a JPEG, PNG or WebP by its content and fit the
provider's size limit. Its SHA-256 becomes part of the row's identity (``JobSpec.image_digests``
and ``values.identity_request``), so a changed picture is a new request. For a provider that
needs public URLs, a local file is an error saying so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.manifest.model import show
from batchgen.manifest.urls import share_link
from batchgen.manifest.values import image_problem, split_images
from batchgen.providers.descriptor import ProviderInfo
from batchgen.providers.local_pictures import PictureError, read_picture

__all__ = ["PictureCells", "RowPictures"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_PATH_LIKE = re.compile(r"^(?:[/\\~]|\.{1,2}[/\\]|[A-Za-z]:[/\\])")


@dataclass(slots=True)
class RowPictures:
    """One row's pictures: ``images`` (URLs, absolute paths), ``digests`` (SHA-256 of each
    local picture, "" for a URL) and ``problems`` as (column, value, message, severity)."""

    images: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    problems: list[tuple[int, Any, str, str]] = field(default_factory=list)


class PictureCells:
    """Reads the picture cells of a manifest's rows for one provider; a local file used by
    several rows is read once."""

    def __init__(self, folder: Path, info: ProviderInfo) -> None:
        self.folder = folder
        self.info = info
        self._seen: dict[str, tuple[str, str | None]] = {}  # path -> (digest, problem)

    def row(self, cells: Sequence[tuple[int, Any]]) -> RowPictures:
        """The pictures of one row, from its ``(column, value)`` image cells in order."""
        found = RowPictures()
        images: list[str] = []
        digests: list[str] = []
        first: int | None = None
        for column, value in cells:
            for entry in split_images(value):
                first = column if first is None else first
                image, digest = self._entry(found, column, entry)
                images.append(image)
                digests.append(digest)
        limit = self.info.images_max
        if limit is not None and len(images) > limit and first is not None:
            message = (
                f"{self.info.label} takes at most {limit} picture{'s' if limit != 1 else ''} "
                f"per video; this row has {len(images)}"
            )
            found.problems.append((first, None, message, "error"))
        found.images, found.digests = tuple(images), tuple(digests)
        return found

    def _entry(self, found: RowPictures, column: int, entry: str) -> tuple[str, str]:
        if _SCHEME.match(entry) or not self._local(entry):
            return self._url(found, column, entry), ""
        if self.info.local_images is None:
            message = (
                f"{show(entry)} is a local file; {self.info.label} needs a public URL "
                "(https://...) for every picture"
            )
            found.problems.append((column, entry, message, "error"))
            return entry, ""
        path = self._path(entry)
        digest, problem = self._read(path)
        if problem is not None:
            found.problems.append((column, entry, self._several(entry, path) or problem, "error"))
        return str(path), digest

    def _several(self, entry: str, path: Path) -> str | None:
        """When ``entry`` names no file but its words name two or more (``a.png b.png``: a
        file name may hold a space, so spaces never split a cell's pictures), a message
        saying how to write several pictures, and how many the provider takes."""
        words = entry.split()
        if path.exists() or len(words) < 2:
            return None
        files = [word for word in words if self._path(word).is_file()]
        if len(files) < 2:
            return None
        limit = self.info.images_max
        takes = (
            f" ({self.info.label} takes at most {limit} picture{'s' if limit != 1 else ''} "
            "per video)"
            if limit is not None
            else ""
        )
        return (
            f"{show(entry)} is no file, but {', '.join(map(show, files))} are: put each picture "
            f"on its own line of the cell or separate them with ';'{takes}"
        )

    def _local(self, entry: str) -> bool:
        """A cell entry that names a file rather than a URL."""
        if self.info.local_images is not None:
            return not entry.lower().startswith(("www.", "data:"))
        return bool(_PATH_LIKE.match(entry)) or self._path(entry).is_file()

    def _path(self, entry: str) -> Path:
        path = Path(entry).expanduser()
        return Path(os.path.abspath(path if path.is_absolute() else self.folder / path))

    def _read(self, path: Path) -> tuple[str, str | None]:
        key = str(path)
        if key not in self._seen:
            limits = self.info.local_images
            assert limits is not None
            try:
                picture = read_picture(path, max_bytes=limits.max_bytes, types=limits.types)
                self._seen[key] = (picture.digest, None)
            except PictureError as exc:
                self._seen[key] = ("", str(exc))
        return self._seen[key]

    @staticmethod
    def _url(found: RowPictures, column: int, url: str) -> str:
        link = share_link(url)
        if link is None:
            message = image_problem(url)
            if message is not None:
                found.problems.append((column, url, message, "error"))
            return url
        if link.direct is None:
            found.problems.append((column, url, link.message, "error"))
            return url
        found.problems.append((column, url, link.message, "warning"))
        return link.direct
