"""The protocol dose calculator: weight and age in, band, amounts, interval, volume and reasoning out.

Pure function, used by the order check (order-select/order-sign) and by the MAS screen (patient-view).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from cds_service.facts.observations import Measurement
from cds_service.facts.patient import AgeRange, PatientFacts
from cds_service.rules.dosing.protocol import DoseBand, Product, Protocol
from cds_service.rules.dosing.rounding import RoundDown, round_down


@dataclass(frozen=True)
class DosingRules:
    protocol: Protocol
    product: Product
    adult_age_years: int
    weight_max_age_child: timedelta
    weight_max_age_adult: timedelta
    rounding: RoundDown
    zone: tzinfo = UTC  # the zone the reasoning shows times in


@dataclass(frozen=True)
class ProtocolDose:
    band: DoseBand
    weight: Measurement
    age: AgeRange | None
    adult: bool | None
    exact_per_day_mg: Decimal
    exact_per_dose_mg: Decimal
    per_dose_mg: Decimal  # after the rounding policy (never above the exact amount)
    per_day_mg: Decimal
    capped: bool
    volume_ml: Decimal  # per dose, rounded down to 0.01 mL
    interval_hours: int
    doses_per_day: int
    measurable: bool  # at or above the syringe's smallest graduation
    reasoning: tuple[str, ...]


@dataclass(frozen=True)
class DoseNotCalculated:
    reason: str
    needed: str  # what the clinician should provide, e.g. "a current body weight"
    weight: Measurement | None = None


def calculate_protocol_dose(
    *, weight: Measurement | None, patient: PatientFacts | None, now: datetime, rules: DosingRules
) -> ProtocolDose | DoseNotCalculated:
    age = patient.age(now.date()) if patient else None
    adult = patient.is_adult(now.date(), rules.adult_age_years) if patient else None
    if weight is None:
        return DoseNotCalculated("no usable body weight on record", "a current body weight")
    # The stricter (child) window applies whenever the patient is not known to be an adult.
    max_age = rules.weight_max_age_adult if adult else rules.weight_max_age_child
    if weight.when < now - max_age:
        return DoseNotCalculated(
            f"the latest weight ({_n(weight.value)} kg, {weight.when.astimezone(rules.zone):%Y-%m-%d}) is older "
            f"than {max_age.days} days",
            "a current body weight",
            weight,
        )
    if weight.value <= 0:
        return DoseNotCalculated("the weight is not positive", "a current body weight", weight)
    protocol, product = rules.protocol, rules.product
    if adult is None and weight.value <= protocol.band_limit_kg:
        return DoseNotCalculated(
            f"age unknown: at ≤ {_n(protocol.band_limit_kg)} kg the band depends on whether the patient is an adult",
            "the patient's birth date",
            weight,
        )
    band = protocol.band_for(weight_kg=weight.value, adult=bool(adult))
    by_weight = band.mg_per_kg_per_day * weight.value
    exact_per_day = min(by_weight, band.max_mg_per_day)
    exact_per_dose = exact_per_day / band.doses_per_day
    per_dose = min(rules.rounding.apply(exact_per_dose), protocol.max_mg_per_dose)
    per_day = per_dose * band.doses_per_day
    volume = round_down(per_dose / product.mg_per_ml, 2)
    reasoning: tuple[str, ...] = (
        f"Weight {_n(weight.value)} kg ({weight.as_received}, {weight.when.astimezone(rules.zone):%Y-%m-%d %H:%M %Z}"
        f"{', preliminary' if weight.preliminary else ''}); age {age or 'unknown'}"
        f"{' (adult)' if adult else ''}.",
        _band_reason(protocol, band, weight.value, adult),
        f"{_n(band.mg_per_kg_per_day)} mg/kg/day × {_n(weight.value)} kg = {_n(by_weight)} mg/day"
        + (f", capped at {_n(band.max_mg_per_day)} mg/day" if by_weight > band.max_mg_per_day else "")
        + ".",
        f"{_n(exact_per_day)} mg/day ÷ {band.doses_per_day} doses = {_n(exact_per_dose)} mg every "
        f"{band.interval_hours} h; {rules.rounding.description}: {_n(per_dose)} mg "
        f"({_n(volume)} mL of {_n(product.mg)} mg/{_n(product.ml)} mL), {_n(per_day)} mg/day.",
    )
    if age is not None and age.high < protocol.minimum_age_years:
        # The trial enrolled patients from its minimum age: say so, do not hide the dose.
        reasoning += (
            f"Under {protocol.minimum_age_years} year(s) of age: outside the trial's population "
            f"({protocol.minimum_age_years} year(s) and older); specialist review.",
        )
    return ProtocolDose(
        band=band,
        weight=weight,
        age=age,
        adult=adult,
        exact_per_day_mg=exact_per_day,
        exact_per_dose_mg=exact_per_dose,
        per_dose_mg=per_dose,
        per_day_mg=per_day,
        capped=by_weight > band.max_mg_per_day,
        volume_ml=volume,
        interval_hours=band.interval_hours,
        doses_per_day=band.doses_per_day,
        measurable=per_dose >= product.smallest_measurable_mg,
        reasoning=reasoning,
    )


def _band_reason(protocol: Protocol, band: DoseBand, weight_kg: Decimal, adult: bool | None) -> str:
    limit = _n(protocol.band_limit_kg)
    dose = f"{_n(band.mg_per_kg_per_day)} mg/kg/day every {band.interval_hours} h"
    if adult:
        return f"Band {band.label}: adults get {dose} whatever their weight."
    if weight_kg > protocol.band_limit_kg:
        return f"Band {band.label}: over {limit} kg → {dose}."
    return (
        f"Band {band.label}: child of {limit} kg or less → {dose} "
        f"(exactly {limit} kg is read as ≤ {limit} kg; the registry text lost the sign)."
    )


def _n(value: Decimal) -> str:
    """A number for people: at most 3 decimals (40.005 kg must not read as 40), never rounded up."""
    shown = round_down(value, 3).normalize()
    return f"{shown:f}"


format_amount = _n
