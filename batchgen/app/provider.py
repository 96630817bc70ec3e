"""Which vendor a run talks to: the factory ``run_batch`` calls to build its provider."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from batchgen.config import Settings
from batchgen.engine.guards import time_left_until_end
from batchgen.providers.base import Provider
from batchgen.providers.grokimagine import ApiClient, ResponseHook, Token

__all__ = ["ProviderFactory", "grokimagine_provider"]

ProviderFactory = Callable[
    [Settings, Token, ResponseHook], contextlib.AbstractAsyncContextManager[Provider]
]
"""Builds the run's provider from the settings, the token and the throttle's response hook
(which every answer's rate-limit hints must reach); entered for the length of the run."""


def grokimagine_provider(
    settings: Settings, token: Token, on_response: ResponseHook
) -> contextlib.AbstractAsyncContextManager[Provider]:
    """The default :data:`ProviderFactory`: the GrokImagine client at ``settings.api.base_url``."""
    return ApiClient(
        settings.api.base_url,
        token,
        timeouts=settings.api.timeouts,
        on_response=on_response,
        max_answer_bytes=settings.api.max_answer_bytes,
        max_urls=settings.api.max_urls_per_task,
        time_left=time_left_until_end(settings),
    )
