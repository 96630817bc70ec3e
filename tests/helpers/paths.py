"""Where the repository's own files are, wherever a test module sits in ``tests/``.

* ``REPO``: the repository's root (``batchgen/``, ``manifests/``, ``benchmarks/`` are below it).
* ``CONTRACTS``: the folder of the project's restatements of vendor contracts.
* ``SHARED``: the steering folder beside the repository (vendor documents), which may be absent.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "tests" / "contract"
SHARED = REPO.parent / "shared"
