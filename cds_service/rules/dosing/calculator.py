"""The protocol dose calculator: weight and age in, band, amounts, interval, volume and reasoning out.

Pure function, used by the order check (order-select/order-sign) and by the MAS screen (patient-view).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from cds_service.facts.observations import Measurement
from cds_service.facts.patient import AgeRange, PatientFacts
from cds_service.rules.dosing.protocol import (
    BAND_LIMIT_KG,
    MAX_MG_PER_DOSE,
    MG_PER_ML,
    MINIMUM_TRIAL_AGE_YEARS,
    SMALLEST_MEASURABLE_MG,
    DoseBand,
    band_for,
)
from cds_service.rules.dosing.rounding import RoundDown, round_down


@dataclass(frozen=True)
class DosingRules:
    adult_age_years: int
    weight_max_age_child: timedelta
    weight_max_age_adult: timedelta
    rounding: RoundDown


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
    measurable: bool  # the graduated syringe measures 20-100 mg
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
            f"the latest weight ({_n(weight.value)} kg, {weight.when:%Y-%m-%d}) is older than {max_age.days} days",
            "a current body weight",
            weight,
        )
    if weight.value <= 0:
        return DoseNotCalculated("the weight is not positive", "a current body weight", weight)
    if adult is None and weight.value <= BAND_LIMIT_KG:
        return DoseNotCalculated(
            "age unknown: at ≤ 40 kg the band depends on whether the patient is an adult",
            "the patient's birth date",
            weight,
        )
    band = band_for(weight_kg=weight.value, adult=bool(adult))
    by_weight = band.mg_per_kg_per_day * weight.value
    exact_per_day = min(by_weight, band.max_mg_per_day)
    exact_per_dose = exact_per_day / band.doses_per_day
    per_dose = min(rules.rounding.apply(exact_per_dose), MAX_MG_PER_DOSE)
    per_day = per_dose * band.doses_per_day
    volume = round_down(per_dose / MG_PER_ML, 2)
    reasoning: tuple[str, ...] = (
        f"Weight {_n(weight.value)} kg ({weight.as_received}, {weight.when:%Y-%m-%d %H:%M} UTC"
        f"{', preliminary' if weight.preliminary else ''}); age {age or 'unknown'}"
        f"{' (adult)' if adult else ''}.",
        _band_reason(band, weight.value, adult),
        f"{_n(band.mg_per_kg_per_day)} mg/kg/day × {_n(weight.value)} kg = {_n(by_weight)} mg/day"
        + (f", capped at {_n(band.max_mg_per_day)} mg/day" if by_weight > band.max_mg_per_day else "")
        + ".",
        f"{_n(exact_per_day)} mg/day ÷ {band.doses_per_day} doses = {_n(exact_per_dose)} mg every "
        f"{band.interval_hours} h; {rules.rounding.description}: {_n(per_dose)} mg "
        f"({_n(volume)} mL of 100 mg/0.67 mL), {_n(per_day)} mg/day.",
    )
    if age is not None and age.high < MINIMUM_TRIAL_AGE_YEARS:
        # NCT02780583 enrolled patients aged 1 year and older (clinical.md §1.1): say so, do not hide the dose.
        reasoning += ("Under 1 year of age: outside the trial's population (1 year and older); specialist review.",)
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
        measurable=per_dose >= SMALLEST_MEASURABLE_MG,
        reasoning=reasoning,
    )


def _band_reason(band: DoseBand, weight_kg: Decimal, adult: bool | None) -> str:
    if adult:
        return f"Band {band.label}: adults get 5 mg/kg/day every 6 h whatever their weight."
    if weight_kg > BAND_LIMIT_KG:
        return f"Band {band.label}: over 40 kg → 5 mg/kg/day every 6 h."
    return (
        f"Band {band.label}: child of 40 kg or less → 10 mg/kg/day every 12 h "
        "(exactly 40 kg is read as ≤ 40 kg; the registry text lost the sign)."
    )


def _n(value: Decimal) -> str:
    """A number for people: at most 3 decimals (40.005 kg must not read as 40), never rounded up."""
    shown = round_down(value, 3).normalize()
    return f"{shown:f}"


format_amount = _n
