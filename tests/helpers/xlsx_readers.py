"""Every workbook a test reads in-process is read by both .xlsx readers, and their answers
must be the same: the fast one (calamine, ``manifest/xlsx_fast.py``) and openpyxl. So the
project's hostile and odd workbooks, all built by the tests, check the fast reader too. (A
workbook the fast reader hands to openpyxl is read once: there is nothing to compare.)

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``); the autouse fixture
``both_xlsx_readers`` yields the workbooks the fast reader read (and openpyxl agreed on)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchgen.manifest import xlsx


def _outcome(read: Callable[[], Any]) -> tuple[Any, Exception | None]:
    try:
        return read(), None
    except Exception as exc:
        return None, exc


def _answer(table: Any, error: Exception | None) -> Any:
    if error is not None:  # the same error, worded the same
        return (type(error).__name__, str(error))
    return dataclasses.asdict(table)


@pytest.fixture(autouse=True)
def both_xlsx_readers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Wraps ``read_xlsx`` (the manifest reader imports it when it reads a workbook); yields
    the workbooks the fast reader read, each compared with openpyxl's answer."""
    compared: list[Path] = []
    read_xlsx, read_fast = xlsx.read_xlsx, xlsx.read_fast
    fast_read: list[bool] = []

    def watched_fast(*args: Any) -> Any:
        table = read_fast(*args)
        fast_read.append(table is not None)
        return table

    def read_both(path: Path, **options: Any) -> Any:
        options.pop("fast", None)
        fast_read.clear()
        table, error = _outcome(lambda: read_xlsx(path, **options))
        if any(fast_read):
            slow = _outcome(lambda: read_xlsx(path, **options, fast=False))
            assert _answer(table, error) == _answer(*slow), f"the readers disagree: {path.name}"
            compared.append(path)
        if error is not None:
            raise error
        return table

    monkeypatch.setattr(xlsx, "read_fast", watched_fast)
    monkeypatch.setattr(xlsx, "read_xlsx", read_both)
    yield compared
