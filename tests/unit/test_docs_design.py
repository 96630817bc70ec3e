"""docs/design.md's recipes name files that exist: each path in backticks under "## Recipes"
is a file of the repository, or (a new file, written with ``<placeholder>``) a folder that
exists."""

from __future__ import annotations

import re

from helpers.paths import REPO

DESIGN = REPO / "docs" / "design.md"
PATH = re.compile(r"`((?:batchgen|tests|docs)/[\w<>./-]+)`")


def _recipes() -> dict[str, list[str]]:
    text = DESIGN.read_text(encoding="utf-8").split("\n## Recipes", 1)[1]
    text = text.split("\n## ", 1)[0]
    recipes: dict[str, list[str]] = {}
    for block in text.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        recipes[title.strip()] = PATH.findall(body)
    return recipes


def test_the_four_recipes_are_there_and_name_files() -> None:
    recipes = _recipes()
    kinds = ("request field", "provider", "output", "command")
    assert all(any(kind in title for title in recipes) for kind in kinds), list(recipes)
    assert all(len(paths) >= 3 for paths in recipes.values()), recipes


def test_every_file_a_recipe_names_exists() -> None:
    missing = []
    for title, paths in _recipes().items():
        for path in paths:
            target = REPO / path
            exists = target.parent.is_dir() if "<" in path else target.exists()
            if not exists:
                missing.append(f"{title}: {path}")
    assert not missing, missing
