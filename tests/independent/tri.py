"""Three-valued logic: an item is met, not met or unknown; unknown is never treated as "not met"."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from fractions import Fraction


class Tri(Enum):
    MET = "met"
    NOT_MET = "not met"
    UNKNOWN = "unknown"

    @staticmethod
    def of(flag: bool) -> Tri:
        return Tri.MET if flag else Tri.NOT_MET


def all_of(items: Iterable[Tri]) -> Tri:
    """Kleene AND: not met as soon as one item is not met; met only when every item is met."""
    values = list(items)
    if Tri.NOT_MET in values:
        return Tri.NOT_MET
    if Tri.UNKNOWN in values:
        return Tri.UNKNOWN
    return Tri.MET


def any_of(items: Iterable[Tri]) -> Tri:
    """Kleene OR: met as soon as one item is met; not met only when every item is not met."""
    values = list(items)
    if Tri.MET in values:
        return Tri.MET
    if Tri.UNKNOWN in values:
        return Tri.UNKNOWN
    return Tri.NOT_MET


def k_of_n(k: int, items: Iterable[Tri]) -> Tri:
    """Met at k met items; not met only when counting every unknown item as met still stays below k."""
    values = list(items)
    met = values.count(Tri.MET)
    unknown = values.count(Tri.UNKNOWN)
    if met >= k:
        return Tri.MET
    if met + unknown < k:
        return Tri.NOT_MET
    return Tri.UNKNOWN


def negate(value: Tri) -> Tri:
    if value is Tri.MET:
        return Tri.NOT_MET
    if value is Tri.NOT_MET:
        return Tri.MET
    return Tri.UNKNOWN


def compare(value: Fraction | None, op: str, threshold: Fraction) -> Tri:
    """Compare an exact value with a threshold; a missing value gives unknown."""
    if value is None:
        return Tri.UNKNOWN
    if op == ">":
        return Tri.of(value > threshold)
    if op == ">=":
        return Tri.of(value >= threshold)
    if op == "<":
        return Tri.of(value < threshold)
    if op == "<=":
        return Tri.of(value <= threshold)
    raise ValueError(f"unknown comparison {op!r}")
