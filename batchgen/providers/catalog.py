"""Every provider batchgen knows, by the name ``--provider`` and ``provider =`` use.

A provider is one module that declares a :class:`~batchgen.providers.descriptor.ProviderInfo`
(its wire format, fields, price, limits and status words) plus one registration line below.
The commands look providers up here; the engine, the state and the outputs never import a
vendor module (``tests/test_architecture.py``).
"""

from __future__ import annotations

from batchgen.errors import UsageError
from batchgen.providers.descriptor import ProviderInfo
from batchgen.providers.grokimagine import GROKIMAGINE
from batchgen.providers.xai import XAI

__all__ = ["DEFAULT", "PROVIDERS", "names", "provider_named"]

PROVIDERS: dict[str, ProviderInfo] = {}


def register(info: ProviderInfo) -> None:
    """Make ``info`` known under its name (once)."""
    if info.name in PROVIDERS:
        raise ValueError(f"a provider named {info.name!r} is already registered")
    PROVIDERS[info.name] = info


register(GROKIMAGINE)
register(XAI)

#: The provider used when none is named; also the one a state written before providers were
#: recorded belongs to.
DEFAULT = GROKIMAGINE


def names() -> list[str]:
    """The registered providers' names, in registration order."""
    return list(PROVIDERS)


def provider_named(name: str | None) -> ProviderInfo:
    """The provider called ``name`` (None: the default); UsageError for an unknown name."""
    if name is None or not str(name).strip():
        return DEFAULT
    found = PROVIDERS.get(str(name).strip().lower())
    if found is None:
        raise UsageError(
            f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)} (--provider)"
        )
    return found
