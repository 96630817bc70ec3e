"""A manifest read for a provider: the columns it accepts, the values it can honour, local
pictures, prices per row, and identities that do not move."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from batchgen.manifest.load import Manifest, read_manifest
from batchgen.manifest.values import identity_request, request_key
from batchgen.providers.catalog import DEFAULT, provider_named
from batchgen.providers.grokimagine import GROKIMAGINE
from batchgen.providers.xai import XAI

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64
WEBP = b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 64


def _csv(path: Path, header: list[str], *rows: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _errors(manifest: Manifest) -> list[str]:
    return [str(p) for p in manifest.errors]


def test_the_default_provider_is_the_reseller_and_names_are_registered() -> None:
    assert DEFAULT is GROKIMAGINE and provider_named(None) is GROKIMAGINE
    assert provider_named("XAI") is XAI


@pytest.mark.parametrize(
    ("column", "value", "wanted"),
    [
        ("duration", "20", "row 2, column 'duration': '20' is not an xAI duration; use a whole "
         "number of seconds from 1 to 15"),
        ("duration", "6.5", "from 1 to 15"),
        ("resolution", "1080p", "row 2, column 'resolution': '1080p' is not an xAI "
         "(grok-imagine-video) resolution; use 480p or 720p"),
        ("aspect_ratio", "21:9", "row 2, column 'aspect_ratio': '21:9' is not an xAI ratio; "
         "use 1:1, 16:9, 9:16, 4:3, 3:4, 3:2 or 2:3"),
        ("model", "grok-9", "is not an xAI model; use grok-imagine-video, "),
    ],
)  # fmt: skip
def test_a_value_xai_cannot_honour_names_row_column_provider_and_allowed_values(
    tmp_path: Path, column: str, value: str, wanted: str
) -> None:
    path = _csv(tmp_path / "m.csv", ["prompt", column], ["a fox", value])
    manifest = read_manifest(path, provider=XAI)
    assert manifest.valid == [] and len(manifest.errors) == 1
    assert wanted in _errors(manifest)[0]


def test_a_ratio_the_reseller_cannot_honour_names_it(tmp_path: Path) -> None:
    path = _csv(tmp_path / "m.csv", ["prompt", "mode", "ratio"], ["a fox", "fun", "9:16"])
    (error,) = _errors(read_manifest(path))
    assert "'9:16' is not a GrokImagine ratio; use 2:3, 3:2 or 1:1" in error


def test_xai_rows_take_lengths_resolutions_models_and_the_default_ratio(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "m.csv",
        ["prompt", "aspect ratio", "duration", "resolution", "model"],
        ["a", "9:16", "6", "720p", ""],
        ["b", "", "15 s", "", "grok-imagine-video-1.5"],
        ["c", "1:1", "", "1080p", "grok-imagine-video-1.5"],
    )
    a, b, c = read_manifest(path, provider=XAI).valid
    assert (a.ratio, a.duration, a.resolution, a.model) == ("9:16", 6, "720p", None)
    assert (b.ratio, b.duration, b.resolution) == ("16:9", 15, None)
    assert (c.resolution, c.model) == ("1080p", "grok-imagine-video-1.5")


def test_each_row_is_priced_by_its_provider(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "m.csv",
        ["prompt", "duration", "resolution"],
        ["a", "6", "480p"],
        ["b", "10", "720p"],
        ["c", "", ""],
    )
    prices = [row.price for row in read_manifest(path, provider=XAI).rows]
    assert prices == [300_000, 700_000, 400_000]  # micro-dollars: $0.30, $0.70, $0.40
    reseller = _csv(tmp_path / "r.csv", ["prompt", "mode", "ratio"], ["a", "fun", "1:1"])
    assert [row.price for row in read_manifest(reseller).rows] == [40]  # credits


def test_a_column_the_provider_has_no_field_for_is_the_users_own(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "m.csv", ["prompt", "mode", "ratio", "model"], ["a", "fun", "1:1", "Alpine X"]
    )
    manifest = read_manifest(path)  # the reseller has no model: a car model, say
    (row,) = manifest.rows
    assert row.spec is not None and row.spec.model is None and row.user["model"] == "Alpine X"
    assert any("'model' is not sent: GrokImagine has no model" in str(w) for w in manifest.warnings)
    xai = read_manifest(path, provider=XAI)  # xAI has no mode (and knows no such model)
    assert any("'mode' is not sent: xAI has no mode" in str(w) for w in xai.warnings)


def test_existing_rows_keep_their_keys(tmp_path: Path) -> None:
    path = _csv(tmp_path / "m.csv", ["prompt", "mode", "ratio"], ["a red fox", "fun", "1:1"])
    (spec,) = read_manifest(path).valid
    assert spec.key == "h:25e25b89b16522da"  # pinned by an earlier version
    with_empty = _csv(
        tmp_path / "e.csv", ["prompt", "mode", "ratio", "duration"], ["a red fox", "fun", "1:1", ""]
    )
    assert read_manifest(with_empty).valid[0].key == spec.key


# ---------------------------------------------------------------- local pictures
def test_a_local_picture_is_read_by_content_and_hashed_into_the_key(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "fox.png").write_bytes(PNG)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a fox", "pics/fox.png"])
    (spec,) = read_manifest(path, provider=XAI).valid
    assert spec.images == (str(tmp_path / "pics" / "fox.png"),)
    assert len(spec.image_digests[0]) == 64
    first = spec.key
    (tmp_path / "pics" / "fox.png").write_bytes(JPEG)  # a changed picture: a new request
    assert read_manifest(path, provider=XAI).valid[0].key != first
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "pics").mkdir()
    (moved / "pics" / "fox.png").write_bytes(JPEG)
    again = _csv(moved / "m.csv", ["prompt", "images"], ["a fox", "pics/fox.png"])
    # the same picture in another folder: the same request (the key hashes the content)
    assert (
        read_manifest(again, provider=XAI).valid[0].key
        == read_manifest(path, provider=XAI).valid[0].key
    )


def test_an_absolute_path_and_webp_and_jpeg_are_accepted(tmp_path: Path) -> None:
    for name, data in (("a.webp", WEBP), ("b.jpg", JPEG)):
        (tmp_path / name).write_bytes(data)
    path = _csv(
        tmp_path / "m.csv",
        ["prompt", "images"],
        ["a", str(tmp_path / "a.webp")],
        ["b", "b.jpg"],
    )
    assert len(read_manifest(path, provider=XAI).valid) == 2


@pytest.mark.parametrize(
    ("content", "wanted"),
    [
        (None, "does not exist"),
        (b"GIF89a" + b"\0" * 20, "is not a JPEG, PNG, WEBP picture (by its content)"),
        (b"", "is empty"),
    ],
)
def test_a_bad_local_picture_is_a_row_error_before_anything_is_paid(
    tmp_path: Path, content: bytes | None, wanted: str
) -> None:
    if content is not None:
        (tmp_path / "p.png").write_bytes(content)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a fox", "p.png"], ["ok", ""])
    manifest = read_manifest(path, provider=XAI)
    assert [s.prompt for s in manifest.valid] == ["ok"]
    (error,) = _errors(manifest)
    assert "row 2, column 'images'" in error and wanted in error


@pytest.mark.parametrize("kind", ["symlink loop", "under a file", "no permission"])
def test_an_unreadable_local_picture_is_a_row_error(tmp_path: Path, kind: str) -> None:
    """Every way the system refuses to read the file; root (as in CI) reads a chmod 0 file,
    so the first two are failures no user escapes."""
    name = {"symlink loop": "p.png", "under a file": "p.png/q.png", "no permission": "p.png"}
    if kind == "symlink loop":
        (tmp_path / "p.png").symlink_to(tmp_path / "p.png")
    else:
        (tmp_path / "p.png").write_bytes(PNG)
        (tmp_path / "p.png").chmod(0 if kind == "no permission" else 0o644)
    readable = kind == "no permission" and os.access(tmp_path / "p.png", os.R_OK)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a fox", name[kind]])
    errors = _errors(read_manifest(path, provider=XAI))
    if readable:  # root reads it: then it is a good picture, and the row is valid
        assert errors == []
    else:
        (error,) = errors
        assert "row 2, column 'images'" in error and "cannot read the picture" in error


def test_an_oversized_local_picture_is_a_row_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    assert XAI.local_images is not None
    small = dataclasses.replace(
        XAI, local_images=dataclasses.replace(XAI.local_images, max_bytes=50)
    )
    (tmp_path / "p.png").write_bytes(PNG)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a fox", "p.png"])
    (error,) = _errors(read_manifest(path, provider=small))
    assert "72 bytes; the limit is 50" in error


def test_xai_takes_one_picture_per_video(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(PNG)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a", "p.png\nhttps://x.test/q.png"])
    (error,) = _errors(read_manifest(path, provider=XAI))
    assert "xAI takes at most 1 picture per video; this row has 2" in error


@pytest.mark.parametrize("cell", ["pics/fox.png", "./fox.png", "/srv/pics/fox.png"])
def test_the_reseller_needs_a_public_url_for_a_local_file(tmp_path: Path, cell: str) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "fox.png").write_bytes(PNG)
    path = _csv(
        tmp_path / "m.csv", ["prompt", "mode", "ratio", "images"], ["a", "fun", "1:1", cell]
    )
    (error,) = _errors(read_manifest(path))
    assert "is a local file; GrokImagine needs a public URL (https://...)" in error


def test_identity_ignores_where_a_picture_lies() -> None:
    from batchgen.models import JobSpec

    one = JobSpec(
        key="", row=2, prompt="p", mode="", ratio="1:1", images=("/a/p.png",), image_digests=("d",)
    )
    two = JobSpec(
        key="", row=2, prompt="p", mode="", ratio="1:1", images=("/b/p.png",), image_digests=("d",)
    )
    assert request_key(**identity_request(one)) == request_key(**identity_request(two))


@pytest.mark.parametrize("cell", ["a.png b.png", "a.png  b.png c.png", "a.png\tb.png"])
def test_pictures_separated_by_spaces_are_named_with_how_to_write_them(
    tmp_path: Path, cell: str
) -> None:
    # seen by a new user: "a.png b.png" was reported as one file that does not exist
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(PNG)
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a", cell])
    (error,) = _errors(read_manifest(path, provider=XAI))
    assert "is no file, but 'a.png', 'b.png'" in error
    assert "on its own line of the cell or separate them with ';'" in error
    assert "(xAI takes at most 1 picture per video)" in error


def test_a_file_name_with_a_space_is_one_picture(tmp_path: Path) -> None:
    (tmp_path / "my photo.png").write_bytes(PNG)
    (tmp_path / "my").write_bytes(PNG)  # a word of it is a file too: the whole name wins
    path = _csv(tmp_path / "m.csv", ["prompt", "images"], ["a", "my photo.png"])
    (spec,) = read_manifest(path, provider=XAI).valid
    assert spec.images == (str(tmp_path / "my photo.png"),)
