"""What every stage of one run is built with: one group, so a new option is one field here.

The dispatcher builds one ``RunContext`` and hands it to the submit and poll stages; each
stage keeps what only it needs (its deadline, its neighbour stage, the poll planner) as
arguments of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from batchgen.config import Settings
from batchgen.engine.manifest_run import ManifestRun
from batchgen.engine.pacing.throttle import Throttle
from batchgen.engine.run_control import RunControl
from batchgen.providers.base import Provider
from batchgen.providers.descriptor import CREDIT_BILLING, Billing

__all__ = ["RunContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunContext:
    """The manifests of one run and what their stages share.

    ``runs``: every manifest of the run, in round-robin order; ``api``: the vendor, through
    its protocol; ``throttle``: the one limiter of every API request of the account;
    ``settings``: the run's settings; ``control``: its stop flags, wake-up call and API slot;
    ``rng``: the jitter source (seeded by tests); ``billing``: the provider's money (its
    unit, how a finished task's reported cost counts).
    """

    runs: list[ManifestRun]
    api: Provider
    throttle: Throttle
    settings: Settings
    control: RunControl
    rng: random.Random
    billing: Billing = CREDIT_BILLING  # the provider's unit and price rule
