"""What a state's tasks cost, by how sure we are that they were charged."""

from __future__ import annotations

from dataclasses import dataclass

from batchgen.models import USD_PER_CREDIT

__all__ = ["Spend"]


@dataclass(frozen=True, slots=True)
class Spend:
    """Credits, by how sure we are they were charged (see the README).

    ``charged``: tasks that finished (the vendor's figure when plausible, never below 40 a
    task), including earlier tasks of requeued rows; ``committed``: tasks created, or being
    created, and not finished (40 each); ``possible``: submits whose outcome is unknown (40
    each, also those of rows since sent again).
    """

    charged: int = 0
    committed: int = 0
    possible: int = 0

    @property
    def total(self) -> int:
        """Everything that may have been charged: what a budget counts."""
        return self.charged + self.committed + self.possible

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.charged + other.charged,
            self.committed + other.committed,
            self.possible + other.possible,
        )

    def fields(self) -> dict[str, int]:
        """The three figures under the names the completion notice uses."""
        return {
            "credits_charged": self.charged,
            "credits_committed": self.committed,
            "credits_possibly_charged": self.possible,
        }

    def describe(self) -> str:
        """``credits charged 80, committed in flight 40, possibly charged 40 (~$1.60 at most)``."""
        usd = self.total * USD_PER_CREDIT
        return (
            f"credits charged {self.charged}, committed in flight {self.committed}, "
            f"possibly charged {self.possible} (~${usd:,.2f} at most)"
        )
