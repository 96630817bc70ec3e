"""Reading the pages batchgen writes (the gallery) as a browser would, without one.

* ``parse(page)``: the page's start tags with their attributes, its text and its scripts.
  (The gallery's cards are built by its script from data: ``helpers.gallery_pages.records``.)
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
