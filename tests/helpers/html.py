"""Reading the pages batchgen writes (the gallery) as a browser would, without one.

* ``parse(page)``: the page's start tags with their attributes, its text and its scripts.
* ``card_texts(page)``: each card's visible text, in pieces split where the HTML puts tags.
"""

from __future__ import annotations

from html.parser import HTMLParser


class Tags(HTMLParser):
    """Collects start tags with their attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    return parser


def card_texts(page: str) -> list[list[str]]:
    """Each card's visible text, in pieces split where the HTML puts tags."""
    cards = page.split('<article class="card"')[1:]
    return [[t for t in parse(c).text if t.strip()] for c in cards]
