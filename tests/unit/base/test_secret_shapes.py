"""Issue 23, item 10: the token is masked in any letter case, percent-encoded (either case of
hex) and JSON-escaped; ordinary words are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from batchgen.logs import mask_secret
from batchgen.text import MASK, clean_text, forget_secrets, secrets_in

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


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_of_the_token_is_masked(shape: str) -> None:
    echoed = f"bad token {SHAPES[shape]} (from the gateway)"
    assert secrets_in(echoed)
    cleaned = clean_text(echoed)
    assert cleaned == f"bad token {MASK} (from the gateway)"
    assert not secrets_in(cleaned)


def test_ordinary_text_is_left_alone() -> None:
    assert clean_text("sk-live and 5ecret are words") == "sk-live and 5ecret are words"
