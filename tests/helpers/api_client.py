"""A GrokImagine client for tests, and one valid request to send with it.

* ``client(sim, token=TOKEN, **kwargs)``: an ``ApiClient`` for the simulator ``sim``.
* ``SPEC``: a valid ``JobSpec``; ``TOKEN``: the token ``client`` sends by default.
"""

from __future__ import annotations

from batchgen.models import JobSpec
from batchgen.providers.grokimagine import ApiClient, Token
from batchgen.simulator import Simulator

TOKEN = "sk-test-5ecret-t0ken"
SPEC = JobSpec(key="k1", row=2, prompt="a red fox in snow", mode="fun", ratio="1:1")


def client(sim: Simulator, token: str = TOKEN, **kwargs: object) -> ApiClient:
    """An ``ApiClient`` talking to ``sim`` with ``token``; ``kwargs`` go to ``ApiClient``."""
    return ApiClient(sim.url, Token(token), **kwargs)  # type: ignore[arg-type]
