"""Issue 23, item 10, the seen case as a run: a server echoing the token back lower-cased (or
upper-cased, or URL-encoded) in a refusal put it in the state, results, gallery and log.
Now no file of the run holds it in any shape.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers.hostile_vendor import HostileVendor

from batchgen.app.run import run_batch
from batchgen.cli import parse_args, settings_from_args
from batchgen.logs import mask_secret
from batchgen.providers.grokimagine import Token
from batchgen.text import forget_secrets

TOKEN = "sk-Live/5ecret+T0ken="  # a token whose URL-encoded form differs from it


@pytest.fixture(autouse=True)
def _token() -> Iterator[None]:
    mask_secret(TOKEN)
    yield
    forget_secrets()


SHAPES = {
    "lower": TOKEN.lower(),
    "upper": TOKEN.upper(),
    "url_encoded": quote(TOKEN, safe=""),
    "url_encoded_lower_hex": quote(TOKEN, safe="").replace("%2F", "%2f").replace("%2B", "%2b"),
    "url_encoded_lowered": quote(TOKEN, safe="").lower(),
    "path_encoded": quote(TOKEN),
    "json_escaped": TOKEN.replace("/", "\\/"),
}


def _texts(folder: Path) -> Iterator[tuple[Path, str]]:
    """Every file under ``folder`` as text, a workbook's parts unpacked."""
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = b"".join(archive.read(name) for name in archive.namelist())
        yield path, data.decode("utf-8", "replace")


@pytest.fixture
async def vendor() -> AsyncIterator[HostileVendor]:
    async with HostileVendor(TOKEN) as v:
        yield v


@pytest.mark.parametrize("shape", ["lower", "upper", "url_encoded_lowered"])
async def test_a_token_echoed_back_reaches_no_file(
    tmp_path: Path, vendor: HostileVendor, shape: str
) -> None:
    with (tmp_path / "briefs.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [["id", "prompt", "mode", "ratio"], ["r0", "a fox", "fun", "1:1"]]
        )
    vendor.post = ["reject"]
    vendor.reject_message = f"Invalid request: the key {SHAPES[shape]} may not do this"
    out = tmp_path / "outputs"
    ns = parse_args(["run", str(tmp_path / "briefs.csv"), "--out", str(out)])
    settings = settings_from_args(ns, base_url=vendor.url)
    await run_batch(ns.manifests, settings, Token(TOKEN), command="test", install_signals=False)
    written = dict(_texts(out))
    assert {p.name for p in written} >= {
        "state.sqlite",
        "results.csv",
        "results.xlsx",
        "index.html",
    }
    assert any(p.suffix == ".log" for p in written)
    assert any("may not do this" in text for p, text in written.items() if p.name == "results.csv")
    forms = {TOKEN.lower(), quote(TOKEN, safe="").lower()}
    leaks = [p for p, text in written.items() if any(f in text.lower() for f in forms)]
    assert leaks == []
