"""xAI's Files API as a video request needs it: ``POST /v1/files`` stores an upload, and a
``file_id`` is later checked for ``image.file_id``.

Source: ``../shared/xai-video-api.md`` section 6: ``multipart/form-data`` with an optional
``expires_after`` (3600..2592000 s) that must come *before* the ``file`` part, an optional
``purpose``, and ``file``; 50 MB at most (413 beyond); the answer
``{"id": "file_<uuid>", "object": "file", "bytes", "created_at", "expires_at", "filename",
"purpose"}``. A file is private to the team that stored it. Where the contract is silent the
simulator decides: a malformed upload (not multipart, no ``file`` part, ``expires_after``
after the file or out of range) is a 400, and only the first bytes of a file are kept (to
tell a picture from anything else).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from batchgen.simulator.xai_requests import Rejection, image_kind

__all__ = ["FileStore", "StoredFile", "read_upload"]

_MIN_TTL, _MAX_TTL = 3600, 2_592_000
_HEAD = 64  # bytes kept of each file: enough to recognise JPEG, PNG and WebP
_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFile:
    """One upload: its metadata as xAI answers it, and what the checks need."""

    file_id: str
    owner: str
    size: int
    created_at: int  # Unix seconds (wall clock), as answered
    ttl: int | None  # seconds, or None without expires_after
    filename: str
    purpose: str
    head: bytes
    stored: float  # the simulator's clock when stored (expiry is counted on it)

    def answer(self) -> dict[str, Any]:
        """The contract's ``FileObject``."""
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "expires_at": None if self.ttl is None else self.created_at + self.ttl,
            "filename": self.filename,
            "purpose": self.purpose,
        }


class FileStore:
    """Every file stored, by id."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def add(self, upload: StoredFile) -> None:
        """Keep ``upload``."""
        self._files[upload.file_id] = upload

    def problem(self, file_id: str, owner: str, now: float) -> str | None:
        """Why ``file_id`` cannot be ``owner``'s input image at clock ``now`` (None: it can)."""
        found = self._files.get(file_id)
        if found is None or found.owner != owner:
            return f"no file {file_id} was found"
        if found.ttl is not None and now >= found.stored + found.ttl:
            return f"the file {file_id} has expired"
        if image_kind(found.head) is None:
            return f"the file {file_id} is not a JPEG, PNG or WebP picture"
        return None


async def read_upload(
    request: web.Request, *, owner: str, now: float, limit: int
) -> StoredFile | Rejection:
    """The file a ``POST /v1/files`` request stores, or why not (400, or 413 past ``limit``
    bytes: the rest of the body is then not read)."""
    if request.content_type != "multipart/form-data":
        return Rejection(400, "Expected a multipart/form-data body with a `file` part.")
    try:
        reader = await request.multipart()
        fields: dict[str, str] = {}
        stored: StoredFile | Rejection | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                return Rejection(400, "Nested multipart bodies are not supported.")
            if part.name == "file" and stored is None:
                stored = await _store(part, fields, owner=owner, now=now, limit=limit)
                if isinstance(stored, Rejection):
                    return stored
                continue
            if stored is not None and part.name == "expires_after":
                return Rejection(400, "`expires_after` must come before the `file` part.")
            fields[part.name or ""] = (await part.read(decode=True)).decode("utf-8", "replace")
    except (ValueError, AssertionError, UnicodeError) as exc:  # aiohttp's malformed-body errors
        return Rejection(400, f"Malformed multipart body: {exc}")
    return stored or Rejection(400, "The upload has no `file` part.")


async def _store(
    part: BodyPartReader, fields: dict[str, str], *, owner: str, now: float, limit: int
) -> StoredFile | Rejection:
    ttl = _ttl(fields.get("expires_after"))
    if isinstance(ttl, Rejection):
        return ttl
    size, head = 0, b""
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            return Rejection(413, f"The file is larger than the limit of {limit} bytes.")
        if len(head) < _HEAD:
            head = (head + chunk)[:_HEAD]
    return StoredFile(
        file_id=f"file_{uuid.uuid4()}",
        owner=owner,
        size=size,
        created_at=int(time.time()),
        ttl=ttl,
        filename=part.filename or "",
        purpose=fields.get("purpose", ""),
        head=head,
        stored=now,
    )


def _ttl(raw: str | None) -> int | Rejection | None:
    if raw is None:
        return None
    try:
        ttl = int(raw.strip())
    except ValueError:
        return Rejection(400, f"expires_after must be a number of seconds, got {raw!r}.")
    if not _MIN_TTL <= ttl <= _MAX_TTL:
        return Rejection(400, f"expires_after must be between {_MIN_TTL} and {_MAX_TTL} seconds.")
    return ttl
