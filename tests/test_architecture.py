"""The import graph is one-way: app -> engine/output/manifest -> state/providers -> base.

A module may import its own package's modules (without cycles) and any package of a strictly
lower layer; never a sibling package of its own layer, never one above. The README's Design
section draws the same arrows.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "batchgen"

# Layer of each top-level unit of the package (module or sub-package).
LAYERS = {
    "text": -1,  # below the other base modules: logs (and every layer) clean text with it
    "batchgen": 0,
    "errors": 0,
    "models": 0,
    "config": 0,
    "atomic": 0,
    "logs": 0,
    "paths": 0,
    "state": 1,
    "providers": 1,
    "simulator": 1,
    "engine": 2,
    "output": 2,
    "manifest": 2,
    "app": 3,
    "cli": 4,
    "__main__": 5,
}
MAX_LINES = 400
# Modules still over MAX_LINES; this list only ever shrinks.
OVERSIZE: set[str] = set()


def _modules() -> dict[str, Path]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        found.update(t for t in targets if t in mods and t != name)
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "batchgen"


def test_every_unit_has_a_layer() -> None:
    assert {_unit(m) for m in _modules()} <= set(LAYERS)


def test_imports_only_go_down() -> None:
    mods = _modules()
    wrong = []
    for name, path in mods.items():
        for target in _imports(name, path, mods):
            here, there = _unit(name), _unit(target)
            if here != there and LAYERS[there] >= LAYERS[here] and there != "batchgen":
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    mods = _modules()
    graph = {m: _imports(m, f, mods) for m, f in mods.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for m in sorted(graph):
        visit(m, [])
    assert cycles == []


def test_modules_stay_small() -> None:
    sizes = {
        str(f.relative_to(ROOT.parent)): sum(1 for _ in f.open(encoding="utf-8"))
        for f in ROOT.rglob("*.py")
    }
    over = {f for f, n in sizes.items() if n > MAX_LINES}
    assert over <= OVERSIZE, f"new modules over {MAX_LINES} lines: {sorted(over - OVERSIZE)}"
    assert set(sizes) >= OVERSIZE, "a listed module is gone: drop it from OVERSIZE"
    shrunk = {f for f in OVERSIZE if sizes[f] <= MAX_LINES}
    assert not shrunk, f"back under {MAX_LINES} lines, drop from OVERSIZE: {sorted(shrunk)}"
