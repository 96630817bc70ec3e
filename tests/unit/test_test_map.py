"""The tests are a map of the package: ``unit/<package>`` mirrors ``batchgen/``, ``e2e`` holds
whole runs, ``helpers`` what tests share; no test module imports another."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers.paths import REPO

TESTS = REPO / "tests"
#: unit/ folders that are not a batchgen sub-package: the top-level modules (config, models,
#: errors, atomic, text ...) and the benchmarks' helpers.
NOT_PACKAGES = {"base", "benchmarks"}


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_test_module_imports_another_or_the_conftest() -> None:
    modules = {path.stem for path in TESTS.rglob("test_*.py")} | {"conftest"}
    wrong = {
        f"{path.relative_to(TESTS)} imports {name}"
        for path in TESTS.rglob("*.py")
        for name in _imported(path)
        if name.split(".")[-1] in modules
    }
    assert not wrong, sorted(wrong)


def test_unit_folders_mirror_the_packages() -> None:
    packages = {p.parent.name for p in (REPO / "batchgen").glob("*/__init__.py")}
    folders = {p.name for p in (TESTS / "unit").iterdir() if p.is_dir() and p.name[0] != "_"}
    assert folders - {"__pycache__"} <= packages | NOT_PACKAGES


def test_test_modules_live_in_unit_or_e2e() -> None:
    loose = [p.name for p in TESTS.glob("test_*.py") if p.name != "test_architecture.py"]
    assert not loose, f"put these under tests/unit/<package>/ or tests/e2e/: {loose}"
