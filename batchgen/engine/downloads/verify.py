"""Is it a video? Pure checks on a CDN's answer (whether it is whole:
:mod:`batchgen.engine.downloads.container`).

* :func:`content_type_problem` refuses a declared type that is plainly not a video (web
  pages, JSON, XML, text, images).
* :func:`sniff` looks at the first bytes: MP4/QuickTime (an ISO-BMFF box such as ``ftyp``,
  ISO/IEC 14496-12 section 4.2) and Matroska/WebM (EBML magic ``1A 45 DF A3``) pass; HTML,
  JSON, XML, text, PNG, JPEG, GIF and anything else are named and refused.
* :class:`Decoder` undoes a ``Content-Encoding`` (gzip, deflate, br) that a CDN sent although
  ``identity`` was asked for, never producing more than ``limit`` bytes (RFC 9110 8.4).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

import brotli

__all__ = [
    "ENCODINGS",
    "Decoder",
    "EncodingError",
    "content_type_problem",
    "excerpt",
    "sniff",
]

ENCODINGS = ("gzip", "x-gzip", "deflate", "br")
_MP4_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
_EBML = b"\x1a\x45\xdf\xa3"
_NOT_VIDEO_TYPES = ("text/", "image/", "application/json", "application/xml", "application/xhtml")
_PIECE = 1024 * 1024


class EncodingError(ValueError):
    """A body whose Content-Encoding is unknown or whose encoded bytes are corrupt."""


def content_type_problem(content_type: str | None) -> str | None:
    """Why a declared ``Content-Type`` cannot be a video; None when it may be one."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.startswith(_NOT_VIDEO_TYPES) or kind.endswith(("+json", "+xml")):
        return f"Content-Type {kind}"
    return None


def sniff(head: bytes) -> str | None:
    """None when ``head`` (the first bytes) starts a video; else what it looks like."""
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return None
    if head.startswith(_EBML):
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for marks, what in (
        ((b"<!doctype html", b"<html", b"<head", b"<body"), "an HTML page"),
        ((b"<?xml", b"<"), "XML or HTML"),
        ((b"{", b"["), "JSON"),
        ((b"\x89png",), "a PNG image"),
        ((b"\xff\xd8\xff",), "a JPEG image"),
        ((b"gif8",), "a GIF image"),
    ):
        if text.startswith(marks):
            return what
    if not head:
        return "an empty body"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head[:64]):
        return "text"
    return f"unknown data (starts {head[:8].hex(' ')})"


def excerpt(head: bytes) -> str:
    """The start of a body as text for a message, tags dropped (the caller cleans it)."""
    text = re.sub(r"<[^>]*>?", " ", head.decode("utf-8", "replace"))
    return " ".join(text.split())


class Decoder:
    """Undo one Content-Encoding incrementally; ``EncodingError`` past ``limit`` output bytes."""

    def __init__(self, encoding: str, *, limit: int) -> None:
        self.encoding = encoding.strip().lower()
        if self.encoding not in ENCODINGS:
            raise EncodingError(f"the CDN sent Content-Encoding {encoding!r}, which is unknown")
        self.limit = limit
        self.produced = 0
        self._brotli = brotli.Decompressor() if self.encoding == "br" else None
        # 32 + 15: zlib or gzip header, detected; "deflate" may also come raw (no header)
        self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS)
        self._raw_fallback = self.encoding == "deflate"

    @property
    def finished(self) -> bool:
        """Whether the encoded stream reached its proper end (a cut one never does)."""
        return self._brotli.is_finished() if self._brotli is not None else self._zlib.eof

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data`` (each at most 1 MiB), lazily."""
        pieces = self._brotli_pieces(data) if self._brotli else self._zlib_pieces(data)
        try:
            for piece in pieces:
                self.produced += len(piece)
                if self.produced > self.limit:
                    raise EncodingError(f"the decoded body grew past {self.limit} bytes")
                yield piece
        except (zlib.error, brotli.error) as exc:
            raise EncodingError(f"the {self.encoding}-encoded body is corrupt ({exc})") from exc

    def _zlib_pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            piece = self._zlib.decompress(data, _PIECE)
        except zlib.error:
            if not self._raw_fallback:
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            piece = self._zlib.decompress(data, _PIECE)
        self._raw_fallback = False
        yield piece
        while self._zlib.unconsumed_tail:
            yield self._zlib.decompress(self._zlib.unconsumed_tail, _PIECE)

    def _brotli_pieces(self, data: bytes) -> Iterator[bytes]:
        assert self._brotli is not None
        yield self._brotli.process(data, output_buffer_limit=_PIECE)
        while not self._brotli.can_accept_more_data() and not self._brotli.is_finished():
            yield self._brotli.process(b"", output_buffer_limit=_PIECE)
