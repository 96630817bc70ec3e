"""Issue 25, item 6: every picture URL is checked before a row is paid for, against a real
local server: reachable, an image by Content-Type and by signature, within the vendor's size,
https on a public address (loopback only where the downloads allow it)."""

from __future__ import annotations

import socket
from pathlib import Path

from helpers.pictures import HEIC, HTML, JPEG, PNG, WEBP, Picture, PictureServer

from batchgen.engine.downloads.picture_check import PictureRules, check_pictures, is_web_url

LOCAL = PictureRules(allow_private=True)  # the test server is on loopback, as the simulator


def _dead_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_pictures_of_the_accepted_kinds_pass(pictures: PictureServer) -> None:
    pictures.files |= {
        "a.png": Picture(),
        "b.jpg": Picture(body=JPEG, content_type="image/jpeg"),
        "c.webp": Picture(body=WEBP, content_type="image/webp; charset=binary"),
        "d.png": Picture(ranges=False),  # a server that ignores Range: read no further
    }
    urls = [pictures.url(name) for name in pictures.files]
    assert await check_pictures(urls, LOCAL) == {}


async def test_a_dead_url_and_a_404_are_named(pictures: PictureServer) -> None:
    dead = f"http://127.0.0.1:{_dead_port()}/a.png"
    missing = pictures.url("missing.png")
    found = await check_pictures([dead, missing], LOCAL)
    assert found[dead].startswith("could not be reached")
    assert found[missing] == "answered HTTP 404 Not Found"


async def test_a_web_page_instead_of_a_picture_is_named(pictures: PictureServer) -> None:
    pictures.files["login.png"] = Picture(body=HTML, content_type="text/html")
    url = pictures.url("login.png")
    assert (await check_pictures([url], LOCAL))[url] == (
        "is served as text/html, not as a JPEG, PNG or WebP image"
    )


async def test_an_image_type_over_other_bytes_is_caught_by_the_signature(
    pictures: PictureServer,
) -> None:
    pictures.files |= {
        "fake.png": Picture(body=HTML, content_type="image/png"),
        "photo.jpg": Picture(body=HEIC, content_type="image/jpeg"),  # an iPhone photo renamed
    }
    fake, photo = pictures.url("fake.png"), pictures.url("photo.jpg")
    found = await check_pictures([fake, photo], LOCAL)
    assert found[fake] == (
        "is served as image/png but its bytes are an HTML page, not a JPEG, PNG or WebP image"
    )
    assert "its bytes are a image/heic file" in found[photo]


async def test_a_picture_over_the_vendors_size_is_held(pictures: PictureServer) -> None:
    pictures.files |= {
        "poster.png": Picture(size=11 * 1024 * 1024),  # stated by Content-Range
        "stream.png": Picture(body=PNG * 60, ranges=False),  # no length stated: counted
    }
    poster, stream = pictures.url("poster.png"), pictures.url("stream.png")
    found = await check_pictures([poster], LOCAL)
    assert found[poster] == "is 11.0 MB; the vendor takes pictures up to 10.0 MB"
    small = PictureRules(allow_private=True, max_bytes=100_000)
    found = await check_pictures([stream], small)
    assert found[stream].endswith("the vendor takes pictures up to 0.1 MB")
    assert await check_pictures([stream], LOCAL) == {}


async def test_private_addresses_are_refused_unreached(pictures: PictureServer) -> None:
    pictures.files["a.png"] = Picture()
    public_only = PictureRules(allow_private=False)
    loopback = pictures.url("a.png")
    named = loopback.replace("127.0.0.1", "localhost")
    found = await check_pictures([loopback, named, "https://10.1.2.3/a.png"], public_only)
    assert found[loopback] == (
        "points at the non-public address 127.0.0.1, which the vendor cannot reach"
    )
    assert "non-public address localhost" in found[named]
    assert "non-public address 10.1.2.3" in found["https://10.1.2.3/a.png"]
    assert pictures.hits == {}  # nothing was fetched


async def test_plain_http_on_a_public_host_is_refused_unreached() -> None:
    url = "http://pictures.example/a.png"
    found = await check_pictures([url], LOCAL)  # even where loopback is allowed
    assert found[url] == (
        "is plain http; give its https address (the vendor fetches pictures over https)"
    )


async def test_every_redirect_is_checked_again(pictures: PictureServer) -> None:
    # the target is judged by the same rules before anything is fetched from it
    pictures.files["moved.png"] = Picture(location="http://pictures.example/a.png")
    pictures.files["back.png"] = Picture(location="/a.png")
    pictures.files["a.png"] = Picture()
    moved, back = pictures.url("moved.png"), pictures.url("back.png")
    found = await check_pictures([moved, back], LOCAL)
    assert found == {
        moved: "redirects to http://pictures.example/a.png, which is plain http; give its "
        "https address (the vendor fetches pictures over https)"
    }
    assert pictures.hits["a.png"] == 1  # the same-host redirect was followed


async def test_each_url_is_fetched_once(pictures: PictureServer) -> None:
    pictures.files["a.png"] = Picture()
    url = pictures.url("a.png")
    assert await check_pictures([url, url, url], LOCAL) == {}
    assert pictures.hits == {"a.png": 1}


def test_a_local_picture_is_left_to_the_manifest_reader(tmp_path: Path) -> None:
    # a path in an images cell is read and checked when the manifest is read, never fetched
    from batchgen.app.pictures import check_manifest_pictures
    from batchgen.config import Settings
    from batchgen.manifest.model import Manifest, ManifestRow
    from batchgen.models import JobSpec

    local = str(tmp_path / "roof.png")
    spec = JobSpec(key="id:a", row=2, prompt="p", mode="fun", ratio="1:1", images=(local,))
    row = ManifestRow(row=2, key="id:a", user={"images": local}, spec=spec, prompt="p")
    manifest = Manifest(path=tmp_path / "m.csv", sheet=None, columns=["images"], rows=[row])
    assert check_manifest_pictures(manifest, Settings()) is manifest
    assert is_web_url("HTTPS://cdn.example/roof.png") and not is_web_url("roof.png")
