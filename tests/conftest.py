"""Suite-wide wiring: the fixtures of ``tests/helpers`` and two guards for every test.

* The fixtures live in ``tests/helpers`` (a plain package, importable because ``tests`` is on
  pytest's ``pythonpath``); ``pytest_plugins`` registers the modules that define fixtures.
  Test modules never import each other: what two of them share goes to ``tests/helpers``.
* Every test gets its own per-user state directory (``BATCHGEN_HOME``), never ``~``.
* No test token may leak into a file the suite wrote (checked once, after the last test).
* Everything under ``tests/e2e`` is marked ``e2e``: ``pytest -m "not e2e"`` is the inner loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["helpers.simulators", "helpers.pictures", "helpers.xlsx_readers"]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under ``tests/e2e`` as ``e2e``."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _user_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own per-user state directory (``BATCHGEN_HOME``), never ``~``."""
    home = tmp_path_factory.mktemp("batchgen-home")
    monkeypatch.setenv("BATCHGEN_HOME", str(home))
    return home


# ---------------------------------------------------------------- token hygiene, suite-wide
#: The API tokens the batchgen tests hand to the client. None of them may appear in anything
#: the suite wrote (state files, logs, results sheets, galleries, videos) under pytest's
#: temporary folder; the check runs once, after the last test.
SECRET_TOKENS: tuple[str, ...] = (
    "sk-test-5ecret-t0ken",
    "sk-dispatch-test",
    "sk-cli-test-s3cret-value",
    "sk-wrong",
    "wrong-token-value",
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test token leaked into a file the suite wrote."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    leaks = [str(path) for path in _files(base) if _leaks(path)]
    if leaks:
        print("\nAPI token found in files written by the suite:\n  " + "\n  ".join(leaks))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _files(base: Path) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]


def _leaks(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(token.encode() in data for token in SECRET_TOKENS)
