"""Rounding policies for suggested doses. Every policy only rounds *down*: a suggestion can never
exceed the exact protocol amount, and so never a cap."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

RoundingName = Literal["down-1mg", "down-5mg", "down-10mg"]


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


ROUNDING_POLICIES: dict[RoundingName, RoundDown] = {
    "down-1mg": RoundDown(Decimal(1)),
    "down-5mg": RoundDown(Decimal(5)),
    # 10 mg matches the syringe's believed graduations (clinical.md §3.4, UNVERIFIED).
    "down-10mg": RoundDown(Decimal(10)),
}


def round_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)
