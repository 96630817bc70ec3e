"""Is a downloaded video whole by its own structure? Checked on every file, whatever the
headers said (a CDN cache can serve half a file with a ``Content-Length`` that matches it).

* **MP4/QuickTime** (ISO/IEC 14496-12 section 4.2, ISO base media file format): the
  top-level boxes add up exactly to the file's size, none runs past the end, ``moov`` and
  ``mdat`` are there, and the media the ``moov``
  describes lies inside the file: for every track, the chunk offsets (``stco``/``co64``) plus
  the sizes of the samples in each chunk (``stsc``, ``stsz``; section 8.7) end within the
  file. A ``mdat`` of size 0 ("to the end of the file", allowed for the last box) is accepted
  only when that last check proves the media is all there.
* **Matroska/WebM** (RFC 9559, EBML RFC 8794): an EBML header, then one ``Segment`` whose
  stated size ends exactly at the end of the file, or, when its size is "unknown" (a live
  recording), whose level-1 elements all have known sizes that add up to the end of the file;
  ``Tracks`` and at least one ``Cluster`` present.

:func:`video_problem` returns what is wrong in words for the log, or None.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["MAX_INDEX_BYTES", "video_problem"]

#: Largest ``moov`` read into memory to check the media's extent.
MAX_INDEX_BYTES = 64 * 1024 * 1024
_EBML = 0x1A45DFA3
_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_TRACKS = 0x1654AE6B
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})


def video_problem(path: Path) -> str | None:
    """None when ``path`` is a whole MP4 or Matroska/WebM file by its own structure; else
    why it is not (e.g. ``"the box 'mdat' runs past the end (needs 2236 bytes, has 1118)"``).
    Raises OSError when the file cannot be read."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if head[:4] == _EBML.to_bytes(4, "big"):
            return _matroska_problem(handle, size)
        return _mp4_problem(handle, size)


# ---------------------------------------------------------------------------- MP4
def _mp4_problem(handle: BinaryIO, size: int) -> str | None:
    offset, seen, moov = 0, set(), None
    while offset < size:
        handle.seek(offset)
        header = handle.read(16)
        if len(header) < 8:
            return f"a box header is cut at byte {offset} of {size}"
        length, kind = struct.unpack(">I4s", header[:8])
        body = 8
        if length == 1:  # 64-bit "largesize" follows the type
            if len(header) < 16:
                return f"a box header is cut at byte {offset} of {size}"
            length, body = struct.unpack(">Q", header[8:16])[0], 16
        elif length == 0:  # "to the end of the file": only the last box may say so
            length = size - offset
        name = kind.decode("latin-1")
        if length < body:
            return f"the box {name!r} at byte {offset} has an impossible size ({length})"
        if offset + length > size:
            return f"the box {name!r} runs past the end (needs {offset + length} bytes, has {size})"
        seen.add(kind)
        if kind == b"moov":
            moov = (offset + body, length - body)
        offset += length
    if moov is None:
        return "it has no 'moov' box (the index every player needs)"
    if b"mdat" not in seen:
        return "it has no 'mdat' box (no media data)"
    if moov[1] > MAX_INDEX_BYTES:
        return f"its 'moov' box is larger than {MAX_INDEX_BYTES} bytes"
    handle.seek(moov[0])
    end = _media_end(handle.read(moov[1]))
    if end > size:
        return f"its index places media up to byte {end}, past the end of the file ({size})"
    return None


def _children(data: bytes) -> dict[bytes, list[bytes]]:
    """The boxes directly inside ``data`` by type (a malformed tail is ignored: the top-level
    walk already proved the sizes of the boxes around it)."""
    found: dict[bytes, list[bytes]] = {}
    offset = 0
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        body = 8
        if length == 1 and offset + 16 <= len(data):
            length, body = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif length == 0:
            length = len(data) - offset
        if length < body or offset + length > len(data):
            break
        found.setdefault(kind, []).append(data[offset + body : offset + length])
        offset += length
    return found


def _media_end(moov: bytes) -> int:
    """The largest byte offset any track's samples reach (0 when no track says)."""
    end = 0
    for trak in _children(moov).get(b"trak", []):
        stbl = _descend(trak, (b"mdia", b"minf", b"stbl"))
        if stbl is not None:
            end = max(end, _track_end(_children(stbl)))
    return end


def _descend(data: bytes, path: tuple[bytes, ...]) -> bytes | None:
    for kind in path:
        inner = _children(data).get(kind)
        if not inner:
            return None
        data = inner[0]
    return data


def _track_end(stbl: dict[bytes, list[bytes]]) -> int:
    """Where one track's last chunk ends, from ``stco``/``co64``, ``stsc`` and ``stsz``."""
    offsets = _chunk_offsets(stbl)
    if not offsets:
        return 0
    sizes = _sample_sizes(stbl)
    runs = _chunk_runs(stbl)
    if sizes is None or not runs:  # compact sizes (stz2) or no map: the chunks' starts only
        return max(offsets) + 1
    end, sample = 0, 0
    for index, offset in enumerate(offsets, start=1):
        per_chunk = _samples_in(index, runs)
        if isinstance(sizes, int):
            length = sizes * per_chunk
        else:
            length = sum(sizes[sample : sample + per_chunk])
        sample += per_chunk
        end = max(end, offset + length)
    return end


def _full_box(box: bytes, entry: str) -> list[tuple[int, ...]]:
    """The entries of a "full box" table: version/flags, a count, then fixed-size entries."""
    if len(box) < 8:
        return []
    (count,) = struct.unpack_from(">I", box, 4)
    width = struct.calcsize(entry)
    count = min(count, (len(box) - 8) // width)
    return list(struct.iter_unpack(entry, box[8 : 8 + count * width]))


def _chunk_offsets(stbl: dict[bytes, list[bytes]]) -> list[int]:
    if b"co64" in stbl:
        return [e[0] for e in _full_box(stbl[b"co64"][0], ">Q")]
    if b"stco" in stbl:
        return [e[0] for e in _full_box(stbl[b"stco"][0], ">I")]
    return []


def _chunk_runs(stbl: dict[bytes, list[bytes]]) -> list[tuple[int, ...]]:
    """``stsc`` entries: (first chunk, samples per chunk, description index)."""
    return _full_box(stbl[b"stsc"][0], ">III") if b"stsc" in stbl else []


def _samples_in(chunk: int, runs: list[tuple[int, ...]]) -> int:
    per = 0
    for first, samples, _ in runs:
        if first > chunk:
            break
        per = samples
    return per


def _sample_sizes(stbl: dict[bytes, list[bytes]]) -> list[int] | int | None:
    """Every sample's size, or the one size they all share; None when not stated in ``stsz``."""
    box = stbl.get(b"stsz", [b""])[0]
    if len(box) < 12:
        return None
    common, count = struct.unpack_from(">II", box, 4)
    if common:
        return int(common)
    count = min(count, (len(box) - 12) // 4)
    return [e[0] for e in struct.iter_unpack(">I", box[12 : 12 + count * 4])]


# ---------------------------------------------------------------------------- Matroska
def _vint(data: bytes, offset: int, *, keep_marker: bool) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer at ``offset``: (value, width, all value bits set)."""
    if offset >= len(data) or data[offset] == 0:
        return None
    width = 9 - data[offset].bit_length()
    if offset + width > len(data):
        return None
    value = int.from_bytes(data[offset : offset + width], "big")
    bits = 7 * width
    unknown = value & ((1 << bits) - 1) == (1 << bits) - 1
    return (value if keep_marker else value & ((1 << bits) - 1)), width, unknown


def _element(handle: BinaryIO, offset: int) -> tuple[int, int, int | None] | None:
    """(element id, header width, data size or None when "unknown") of the element at
    ``offset``, or None when its header is cut or malformed."""
    handle.seek(offset)
    raw = handle.read(12)
    ident = _vint(raw, 0, keep_marker=True)
    if ident is None:
        return None
    length = _vint(raw, ident[1], keep_marker=False)
    if length is None:
        return None
    return ident[0], ident[1] + length[1], None if length[2] else length[0]


def _matroska_problem(handle: BinaryIO, size: int) -> str | None:
    header = _element(handle, 0)
    if header is None or header[2] is None:
        return "its EBML header is cut or malformed"
    offset = header[1] + header[2]
    segment = _element(handle, offset) if offset < size else None
    if segment is None or segment[0] != _SEGMENT:
        return "it has no Matroska 'Segment' after its EBML header"
    start = offset + segment[1]
    if segment[2] is not None and start + segment[2] != size:
        return f"its Segment claims {start + segment[2]} bytes, the file has {size}"
    seen, offset = set(), start
    while offset < size:
        child = _element(handle, offset)
        if child is None:
            return f"an element header is cut at byte {offset} of {size}"
        if child[2] is None:
            return f"an element at byte {offset} has an unknown size, so its end cannot be proven"
        seen.add(child[0])
        offset += child[1] + child[2]
        if offset > size:
            return f"an element runs past the end (needs {offset} bytes, has {size})"
    if _TRACKS not in seen or _CLUSTER not in seen:
        return "its Segment has no 'Tracks' or no 'Cluster' (no media)"
    return None
