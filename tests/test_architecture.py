"""The rooms of batchgen and the doors between them.

The import graph is one-way: cli -> app -> engine/output/manifest -> state/providers/simulator
-> base (config, models, errors, ...). Within that:

* **doors**: the engine reaches a vendor only through the provider protocol and its rate-limit
  hints (``providers.base``, ``providers.ratelimit``), and the engine and the outputs reach a
  state only through the store protocol and its schema types (``state.protocol``,
  ``state.schema``, ``state.spend``, ``state.rows``); never a vendor module, never SQLite;
* **rooms of the engine**: ``pacing`` (rate limit and windows), ``timing`` (poll planning and
  latency) and ``downloads`` (fetching and verifying) sit below the stages and never import
  them, nor each other;
* **commands**: an ``app`` command module never imports another command (``demo`` runs ``run``);
  what several need lives below them (``app.reporting``, ``app.review_loop``, ...);
* **names**: no two modules share a file name, so a name says which room it is in.

Length is a report, never a gate: ``python tests/test_architecture.py`` prints every module's
size and function count (STYLE.md: split by responsibility, never by line count).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "batchgen"

# Layer of each top-level unit of the package (module or sub-package).
LAYERS = {
    "text": -2,  # below the other base modules: logs (and every layer) clean text with it
    "errors": -1,  # the one error tree: every base module may raise from it (paths does)
    "batchgen": 0,
    "models": 0,
    "config": 0,
    "atomic": 0,
    "logs": 0,
    "paths": 0,
    "xlsx_bounds": 0,
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
#: The modules of a lower package that a room may import: its doors.
DOORS = {
    ("engine", "providers"): {
        "batchgen.providers.base",
        "batchgen.providers.ratelimit",
        "batchgen.providers.descriptor",
    },
    ("output", "providers"): {"batchgen.providers.descriptor"},
    ("engine", "state"): {
        "batchgen.state.protocol",
        "batchgen.state.schema",
        "batchgen.state.spend",
        "batchgen.state.rows",
    },
    ("output", "state"): {
        "batchgen.state.protocol",
        "batchgen.state.schema",
        "batchgen.state.spend",
        "batchgen.state.rows",
    },
}
ENGINE_ROOMS = ("pacing", "timing", "downloads")
COMMANDS = {"run", "demo", "validate", "template", "status", "report"}
ALLOWED_COMMAND_IMPORTS = {("demo", "run")}


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


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, f, mods) for m, f in mods.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "batchgen"


def test_every_unit_has_a_layer() -> None:
    assert {_unit(m) for m in _modules()} <= set(LAYERS)


def test_imports_only_go_down() -> None:
    wrong = []
    for name, targets in _graph().items():
        for target in targets:
            here, there = _unit(name), _unit(target)
            if here != there and LAYERS[there] >= LAYERS[here] and there != "batchgen":
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _graph()
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


def test_rooms_reach_lower_packages_only_through_their_doors() -> None:
    wrong = []
    for name, targets in _graph().items():
        for target in targets:
            doors = DOORS.get((_unit(name), _unit(target)))
            if doors is not None and target not in doors and target != f"batchgen.{_unit(target)}":
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_engine_rooms_sit_below_the_stages_and_apart() -> None:
    wrong = []
    for name, targets in _graph().items():
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != "engine" or parts[2] not in ENGINE_ROOMS:
            continue
        for target in targets:
            tparts = target.split(".")
            if tparts[1:2] == ["engine"] and tparts[2:3] != [parts[2]]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_commands_do_not_import_each_other() -> None:
    wrong = []
    for name, targets in _graph().items():
        parts = name.split(".")
        if parts[:2] != ["batchgen", "app"] or len(parts) != 3 or parts[2] not in COMMANDS:
            continue
        for target in targets:
            tparts = target.split(".")
            is_command = tparts[:2] == ["batchgen", "app"] and tparts[2:] and tparts[-1] in COMMANDS
            if is_command and (parts[2], tparts[-1]) not in ALLOWED_COMMAND_IMPORTS:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_two_modules_share_a_name() -> None:
    names = Counter(f.name for f in ROOT.rglob("*.py") if f.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []


def size_report() -> list[str]:
    """One line per module, longest first: lines, functions, the longest function."""
    lines = []
    for f in sorted(ROOT.rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        funcs = [
            n
            for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        longest = max(((n.end_lineno or n.lineno) - n.lineno + 1 for n in funcs), default=0)
        lines.append((text.count("\n"), len(funcs), longest, str(f.relative_to(ROOT.parent))))
    lines.sort(reverse=True)
    return [f"{n:5d} lines {k:4d} functions (longest {m:3d})  {p}" for n, k, m, p in lines]


def test_the_size_report_lists_every_module() -> None:
    assert len(size_report()) == len(list(ROOT.rglob("*.py")))


if __name__ == "__main__":
    print("\n".join(size_report()))


# ---------------------------------------------------------------- the provider seam
VENDOR_FREE = ("engine", "state", "output")


def _vendor_modules() -> set[str]:
    """Modules of ``providers/`` that declare a provider (a ``ProviderInfo(...)``)."""
    found = set()
    for name, path in _modules().items():
        if name.startswith("batchgen.providers.") and "= ProviderInfo(" in path.read_text(
            encoding="utf-8"
        ):
            found.add(name)
    return found


def test_no_engine_state_or_output_module_imports_a_vendor_module() -> None:
    vendors = _vendor_modules()
    assert {"batchgen.providers.grokimagine", "batchgen.providers.xai"} <= vendors
    wrong = [
        f"{name} -> {target}"
        for name, targets in _graph().items()
        if _unit(name) in VENDOR_FREE
        for target in targets
        if target in vendors or target == "batchgen.providers.catalog"
    ]
    assert wrong == []


def test_nothing_outside_the_providers_names_a_token_variable_or_a_vendors_address() -> None:
    from batchgen.providers.catalog import PROVIDERS

    names = {n for i in PROVIDERS.values() for n in (i.token_env, i.token_file_env)}
    names |= {i.default_base_url for i in PROVIDERS.values()}
    wrong = []
    for path in ROOT.rglob("*.py"):
        room = path.relative_to(ROOT).parts[0]
        if room in ("providers", "simulator"):  # the simulator stands for the vendors
            continue
        text = path.read_text(encoding="utf-8")
        wrong += [f"{path.relative_to(ROOT)}: {n}" for n in sorted(names) if n in text]
    assert wrong == []
