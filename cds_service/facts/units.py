"""Quantity -> the analyte's canonical unit, with explicit factors only.

The unit is read from `Quantity.code` when `system` is UCUM, else from `Quantity.unit` (exact UCUM
spelling, or one of the analyte's listed aliases). The micro sign is written "u" in UCUM, so "µ"/"μ"
are read as "u". Anything else is unknown, and the value is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cds_service.facts.analytes import Analyte, Conversion
from cds_service.fhir.model import Quantity

UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Normalised:
    value: Decimal
    conversion_note: str | None


class UnitError(ValueError):
    """Why a quantity cannot be used; the message goes on the card."""


def normalise(analyte: Analyte, quantity: Quantity) -> Normalised:
    if quantity.value is None:
        raise UnitError("no value")
    if quantity.comparator is not None:
        raise UnitError(f"reported as {quantity.comparator}{quantity.value}, not an exact value")
    conversion = _conversion(analyte, quantity)
    try:
        value = conversion.apply(quantity.value)
    except ArithmeticError as error:  # decimal Overflow/InvalidOperation: e.g. 1e999999999 in a unit with a factor
        raise UnitError(f"{quantity.value} is not a usable number") from error
    low, high = analyte.plausible
    if not low <= value <= high:
        raise UnitError(f"{_fmt(value)} {analyte.display_unit} is outside the plausible range {low}–{high}")
    return Normalised(value, conversion.note)


def conversion_for(analyte: Analyte, quantity: Quantity) -> Conversion:
    """The conversion `normalise` applies to this quantity's unit (UnitError: the unit is not accepted)."""
    return _conversion(analyte, quantity)


def _conversion(analyte: Analyte, quantity: Quantity) -> Conversion:
    # A prefetch repeats the same few units thousands of times: resolve each spelling once.
    key = (analyte.key, quantity.system, quantity.code, quantity.unit)
    found = _RESOLVED.get(key)
    if found is None:
        found = _resolve(analyte, quantity)
        if len(_RESOLVED) < _RESOLVED_MAX:
            _RESOLVED[key] = found
    if isinstance(found, str):
        raise UnitError(found)
    return found


_RESOLVED: dict[tuple[str, str | None, str | None, str | None], Conversion | str] = {}
_RESOLVED_MAX = 10_000


def _resolve(analyte: Analyte, quantity: Quantity) -> Conversion | str:
    try:
        return _lookup(analyte, quantity)
    except UnitError as error:
        return str(error)


def _lookup(analyte: Analyte, quantity: Quantity) -> Conversion:
    candidates: list[str] = []
    if quantity.system == UCUM and quantity.code:
        candidates.append(quantity.code)
    if quantity.unit:
        candidates.append(quantity.unit)
    if not candidates:
        if analyte.unitless_ok:
            return analyte.conversions[analyte.unit]
        raise UnitError("no unit")
    for raw in candidates:
        unit = raw.strip().replace("µ", "u").replace("μ", "u")
        unit = analyte.aliases.get(unit, unit)
        conversion = analyte.conversions.get(unit)
        if conversion is not None:
            return conversion
    raise UnitError(f"unit '{candidates[0]}' is not a known unit for {analyte.name.lower()}")


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"
