"""What a state's tasks cost, by how sure we are that they were charged."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Spend"]


@dataclass(frozen=True, slots=True)
class Spend:
    """Money in the provider's billing unit (credits, or micro-dollars), by how sure we are
    it was charged (see the README; ``providers.descriptor.BillingUnit`` shows it).

    ``charged``: tasks that finished (the vendor's figure when plausible, else the row's
    price), including earlier tasks of requeued rows; ``committed``: tasks created, or being
    created, and not finished (each at its row's price); ``possible``: submits whose outcome
    is unknown (each at its row's price, also those of rows since sent again).
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
