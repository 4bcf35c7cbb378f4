"""Rounding of suggested doses. It only rounds *down* (to a multiple of the pack's `dose_rounding_mg`): a
suggestion can never exceed the exact protocol amount, and so never a cap."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal


@dataclass(frozen=True)
class RoundDown:
    step_mg: Decimal

    @property
    def description(self) -> str:
        return f"rounded down to a multiple of {self.step_mg.normalize():f} mg"

    def apply(self, amount_mg: Decimal) -> Decimal:
        rounded = (amount_mg / self.step_mg).to_integral_value(rounding=ROUND_FLOOR) * self.step_mg
        assert rounded <= amount_mg  # the whole point of the policy
        return rounded


def round_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)
