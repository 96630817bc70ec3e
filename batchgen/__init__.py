"""batchgen: run paid GrokImagine video generations in bulk from a spreadsheet."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
