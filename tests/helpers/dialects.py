"""The simulator's two dialects as whole-run tests drive them: ``DIALECTS``, one ``Dialect`` per
provider (ids ``grokimagine`` and ``xai``), for ``@pytest.mark.parametrize("dialect",
DIALECTS, ids=str)``.

What differs between the dialects when batchgen runs against the simulator, in one place:

* ``sim_config(token, seed, **fields)``: the simulator's configuration. The reseller's limit
  is 100,000 requests a minute (far above what a test sends); xAI's is ``XAI_RPS`` requests
  a second per team, a real limit a run of a few hundred rows still crosses in seconds.
* ``cli(cwd, server)``: a ``helpers.cli_runner.Cli`` for this dialect (token ``TOKEN``).
* ``limit(fast=...)``: the client's options for that limit: ``fast`` the simulator's own,
  otherwise about 100 requests a second (runs that are to be killed mid-way).
* ``manifest(path, n)``: ``n`` rows in the columns the provider takes (no ``mode`` for xAI).
* ``price``: what one of those rows costs, in the state's unit (credits; micro-dollars);
  ``charged(record)``: what the simulator billed for one task, in that unit; ``budget(n)``:
  the option that allows ``n`` such tasks (``--max-credits``; ``--max-usd``).
* ``rows(n)``: how many of a test's ``n`` rows this dialect runs (xAI's limit is the tighter).
* ``own_faults``: the task faults only this dialect's answers can express (xAI: a request that
  ends ``expired``, a video withheld by moderation, a reported cost unlike the table's, a
  running request answered 200 instead of 202), at rates for the chaos runs.
* ``pinned(faults)``: the faults, each also made to fire at a fixed early ordinal when
  ``pin_faults`` (a dialect that runs fewer rows must still meet every fault), and
  ``forced(modes)`` the hostile gateway's modes to force likewise;
  ``assert_every_fault_fired(sim, gateway)`` then checks that each did.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchgen.models import JobSpec
from batchgen.providers.catalog import DEFAULT, PROVIDERS
from batchgen.providers.descriptor import ProviderInfo
from batchgen.simulator import FAULT_NAMES, TICKS_PER_USD, Fault, SimConfig, Simulator, TaskRecord
from batchgen.simulator.sim_config import API_FAULTS, FILE_FAULTS, SUBMIT_FAULTS, TASK_FAULTS
from helpers.cli_runner import TOKEN, Cli, Server
from helpers.hostile_vendor import HostileGateway

__all__ = ["DIALECTS", "XAI_RPS", "Dialect"]

#: xAI's limit in the chaos runs: 400 requests per second per team (a raised limit: xAI
#: grants more than 1 through sales), so many requests are out at once, as in the reseller's
#: runs; 1 per compressed second (``--rps-window``) would send them one at a time.
XAI_RPS = 400
_TICKS_PER_MICRO_USD = TICKS_PER_USD // 1_000_000
#: The first ordinal each fault kind is pinned at, and the step between two faults of a kind
#: (distinct ordinals, so no fault hides another by precedence).
_PIN_FROM, _PIN_STEP = 2, 3


@dataclass(frozen=True)
class Dialect:
    """One provider's side of a whole-run test (see the module docs)."""

    name: str
    sim_limit: dict[str, Any]
    fast_limit: tuple[str, ...]
    slow_limit: tuple[str, ...]
    row_share: float = 1.0
    pin_faults: bool = False
    own_faults: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    @property
    def info(self) -> ProviderInfo:
        """The provider's description (``batchgen.providers.catalog``)."""
        return PROVIDERS[self.name]

    def sim_config(self, token: str, seed: int, **fields: Any) -> SimConfig:
        """A simulator speaking this dialect, accepting ``token``, with ``fields`` on top."""
        return SimConfig(
            provider=self.name, tokens=frozenset({token}), seed=seed, **self.sim_limit, **fields
        )

    def cli(self, cwd: Path, server: Server) -> Cli:
        """A ``Cli`` in ``cwd`` talking to ``server`` in this dialect (the default provider
        named nowhere, as a user of it would run batchgen)."""
        default = self.name == DEFAULT.name
        return Cli(cwd, server, TOKEN, provider=None if default else self.name)

    def limit(self, *, fast: bool = True) -> tuple[str, ...]:
        """The client's limit options (``fast``: near the simulator's; else ~100 a second)."""
        return self.fast_limit if fast else self.slow_limit

    def rows(self, n: int) -> int:
        """How many of a test's ``n`` rows this dialect runs."""
        return max(1, round(n * self.row_share))

    def manifest(self, path: Path, n: int) -> Path:
        """``n`` rows (``id`` r0.., ``prompt`` "<stem> prompt i", ratio 1:1, a campaign), plus
        ``mode`` for a provider that takes one."""
        moded = self.info.field("mode") is not None
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "prompt", *(["mode"] if moded else []), "ratio", "campaign"])
            for i in range(n):
                mode = ["fun"] if moded else []
                writer.writerow([f"r{i}", f"{path.stem} prompt {i}", *mode, "1:1", "spring"])
        return path

    @property
    def price(self) -> int:
        """What one ``manifest`` row costs, in the state's unit."""
        moded = self.info.field("mode") is not None
        spec = JobSpec(key="k", row=2, prompt="p", mode="fun" if moded else "", ratio="1:1")
        return self.info.price_of(spec)

    def charged(self, record: TaskRecord) -> int:
        """What the simulator billed for one task, in the state's unit."""
        if self.info.unit.credits:
            return record.credits
        return record.cost_ticks // _TICKS_PER_MICRO_USD

    def budget(self, tasks: int) -> tuple[str, ...]:
        """The budget option that allows exactly ``tasks`` rows of ``manifest``."""
        amount = tasks * self.price
        if self.info.unit.credits:
            return ("--max-credits", str(amount))
        return ("--max-usd", f"{self.info.unit.usd(amount):.6f}")

    def pinned(self, faults: dict[str, Any]) -> dict[str, Any]:
        """``faults``, each ``Fault`` also firing at a fixed early ordinal if ``pin_faults``."""
        if not self.pin_faults:
            return faults
        pinned = dict(faults)
        for kind in (API_FAULTS, SUBMIT_FAULTS, TASK_FAULTS, FILE_FAULTS):
            names = [name for name in kind if isinstance(faults.get(name), Fault)]
            for i, name in enumerate(names):
                fault = faults[name]
                ordinal = _PIN_FROM + _PIN_STEP * i
                pinned[name] = dataclasses.replace(fault, at=fault.at | {ordinal})
        return pinned

    def forced(self, modes: Iterable[str]) -> tuple[str, ...]:
        """The ``HostileGateway`` modes to force at their first chance: all of ``modes`` when
        ``pin_faults``, else none."""
        return tuple(modes) if self.pin_faults else ()

    def assert_every_fault_fired(
        self, sim: Simulator, gateway: HostileGateway | None = None
    ) -> None:
        """With ``pin_faults``, every fault ``sim`` was configured with fired at least once,
        and every mode ``gateway`` was to force was applied."""
        if not self.pin_faults:
            return
        configured = [name for name in FAULT_NAMES if sim.config.fault(name).active]
        missing = [name for name in configured if not sim.stats.faults[name]]
        if gateway is not None:
            missing += [
                f"gateway {mode}" for mode in gateway.force if not gateway.applied.get(mode)
            ]
        assert not missing, f"faults that never fired: {missing} ({dict(sim.stats.faults)})"


GROKIMAGINE = Dialect(
    name="grokimagine",
    sim_limit={"rpm": 100_000},
    fast_limit=("--rpm", "100000"),
    slow_limit=("--rpm", "6000"),
)
XAI = Dialect(
    name="xai",
    sim_limit={"rps": XAI_RPS},
    fast_limit=("--rps", str(XAI_RPS)),
    slow_limit=("--rps", str(XAI_RPS // 4)),
    row_share=0.2,
    pin_faults=True,
    own_faults={
        "task_expired": Fault(rate=0.02),
        "moderated": Fault(rate=0.02),
        "cost_mismatch": Fault(rate=0.03),
        "pending_200": Fault(rate=0.05),
    },
)
DIALECTS: tuple[Dialect, ...] = (GROKIMAGINE, XAI)
