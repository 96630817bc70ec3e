"""Which vendor a run talks to: the provider named by the settings, its address, and the
factory ``run_batch`` calls to build its client."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping

from batchgen.config import Settings
from batchgen.engine.guards import time_left_until_end
from batchgen.providers.base import Provider
from batchgen.providers.catalog import provider_named
from batchgen.providers.descriptor import ClientOptions, ProviderInfo, ResponseHook
from batchgen.providers.endpoint import resolve_base_url
from batchgen.providers.token import Token

__all__ = [
    "ProviderFactory",
    "provider_factory",
    "provider_of",
    "with_provider",
]

ProviderFactory = Callable[
    [Settings, Token, ResponseHook], contextlib.AbstractAsyncContextManager[Provider]
]
"""Builds the run's provider from the settings, the token and the throttle's response hook
(which every answer's rate-limit hints must reach); entered for the length of the run."""


def provider_of(settings: Settings) -> ProviderInfo:
    """The provider the settings name (``--provider``, ``provider =``; else the default).
    UsageError for an unknown name."""
    return provider_named(settings.api.provider)


def with_provider(
    settings: Settings, info: ProviderInfo, environ: Mapping[str, str] | None = None
) -> Settings:
    """``settings`` naming ``info`` with a base URL: the one given, else the provider's
    variable (``XAI_BASE_URL``...), else its own address."""
    env = os.environ if environ is None else environ
    base_url = resolve_base_url(
        settings.api.base_url or None,
        env,
        env_var=info.base_url_env,
        default=info.default_base_url,
    )
    return settings.with_options(provider=info.name, base_url=base_url)


def provider_factory(info: ProviderInfo) -> ProviderFactory:
    """The :data:`ProviderFactory` of ``info``: its client at ``settings.api.base_url``."""

    def build(
        settings: Settings, token: Token, on_response: ResponseHook
    ) -> contextlib.AbstractAsyncContextManager[Provider]:
        return info.open(
            ClientOptions(
                base_url=settings.api.base_url,
                token=token,
                timeouts=settings.api.timeouts,
                on_response=on_response,
                max_answer_bytes=settings.api.max_answer_bytes,
                max_urls=settings.api.max_urls_per_task,
                time_left=time_left_until_end(settings),
            )
        )

    return build
