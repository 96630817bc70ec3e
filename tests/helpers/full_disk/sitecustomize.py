"""Test aid for a real "no space left" in a ``batchgen`` subprocess: with this folder on
``PYTHONPATH`` and ``BATCHGEN_TEST_FULL_PART`` set to a file name, writing the file of that
name goes to ``/dev/full`` (every write fails with ENOSPC, as on a full disk).

batchgen refuses to write through a symbolic link, so a link to ``/dev/full`` planted in the
output folder no longer stands in for a full disk.
"""

from __future__ import annotations

import os

_NAME = os.environ.get("BATCHGEN_TEST_FULL_PART")

if _NAME:
    from pathlib import Path
    from typing import BinaryIO

    import batchgen.atomic

    _real = batchgen.atomic.open_own

    def _open_own(path: Path, *, append: bool) -> BinaryIO:
        if path.name == _NAME:
            _real(path, append=append).close()  # the .part exists, as on a real full disk
            return open("/dev/full", "ab")  # the caller closes it
        return _real(path, append=append)

    batchgen.atomic.open_own = _open_own
