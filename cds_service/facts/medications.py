"""MedicationRequests -> which drug (anakinra, TNF inhibitor) and the drafted dose, interval and route.

Every code, name, route spelling, timing code and the product's strength come from the rule pack (dosing.yaml
and its value sets: anakinra, tnf-inhibitors, route-subcutaneous, anakinra-100mg-syringe).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from cds_service.facts.units import UCUM
from cds_service.facts.valuesets import ValueSet
from cds_service.fhir.model import CodeableConcept, Dosage, MedicationRequest, Quantity, Timing, TimingRepeat

HOURS_PER_UNIT = {"s": Decimal(1) / 3600, "min": Decimal(1) / 60, "h": Decimal(1), "d": Decimal(24), "wk": Decimal(168)}
MASS_TO_MG = {"mg": Decimal(1), "g": Decimal(1000), "ug": Decimal("0.001"), "mcg": Decimal("0.001")}


@dataclass(frozen=True)
class DrugCodes:
    """What the rule pack says about recognising drugs, routes and dose units (dosing.yaml, value sets)."""

    anakinra: ValueSet
    tnf_inhibitors: ValueSet
    subcutaneous: ValueSet
    timing_codes: Mapping[str, Decimal]  # code -> doses per day
    unit_dose_products: ValueSet  # products whose one dose unit is one syringe of `mg_per_unit`
    unit_dose_units: frozenset[str]  # "{pill}", "{syringe}", ...
    mg_per_unit: Decimal
    ml_per_unit: Decimal

    @property
    def mg_per_ml(self) -> Decimal:
        return self.mg_per_unit / self.ml_per_unit


@dataclass(frozen=True)
class DrugMatch:
    matched: bool
    by: str | None = None  # e.g. "RxNorm 727711" or "name 'Kineret'"


def concept_texts(concept: CodeableConcept | None) -> list[str]:
    if concept is None:
        return []
    texts = [concept.text] if concept.text else []
    texts.extend(coding.display for coding in concept.coding if coding.display)
    return texts


def match_drug(
    valueset: ValueSet, candidates: Iterable[CodeableConcept | None], names: Iterable[str | None] = ()
) -> DrugMatch:
    """Codes first (any coding in the value set), then the value set's names in the texts."""
    concepts = [c for c in candidates if c is not None]
    for concept in concepts:
        for coding in concept.coding:
            if valueset.contains(coding.system, coding.code):
                return DrugMatch(True, f"{SYSTEM_NAMES.get(coding.system or '', coding.system)} {coding.code}")
    found = valueset.text_match([*(t for c in concepts for t in concept_texts(c)), *names])
    return DrugMatch(True, f"name '{found}'") if found else DrugMatch(False)


SYSTEM_NAMES = {
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://snomed.info/sct": "SNOMED CT",
    "http://www.whocc.no/atc": "ATC",
    "http://hl7.org/fhir/sid/ndc": "NDC",
}


@dataclass(frozen=True)
class DraftedDose:
    """What one dosage instruction of an order says, in mg and doses per day; None where unreadable."""

    per_dose_mg: Decimal | None
    dose_as_written: str
    dose_problem: str | None
    doses_per_day: Decimal | None  # the most doses a day the timing allows
    interval_hours: Decimal | None  # None when not a fixed interval
    timing_as_written: str
    timing_problem: str | None
    subcutaneous: bool | None  # None: no route given
    route_as_written: str
    instruction_count: int

    @property
    def per_day_mg(self) -> Decimal | None:
        if self.per_dose_mg is None or self.doses_per_day is None:
            return None
        return self.per_dose_mg * self.doses_per_day


def read_drafted_dose(order: MedicationRequest, medication: CodeableConcept | None, codes: DrugCodes) -> DraftedDose:
    """What the first dosage instruction says; `medication` is the order's resolved medication concept."""
    dosage = order.dosageInstruction[0] if order.dosageInstruction else Dosage()
    per_dose, dose_text, dose_problem = _dose_mg(dosage, medication, codes)
    per_day, interval, timing_text, timing_problem = _timing(dosage.timing, codes)
    subcutaneous, route_text = _route(dosage.route, codes)
    return DraftedDose(
        per_dose_mg=per_dose,
        dose_as_written=dose_text,
        dose_problem=dose_problem,
        doses_per_day=per_day,
        interval_hours=interval,
        timing_as_written=timing_text,
        timing_problem=timing_problem,
        subcutaneous=subcutaneous,
        route_as_written=route_text,
        instruction_count=len(order.dosageInstruction),
    )


def _dose_mg(
    dosage: Dosage, medication: CodeableConcept | None, codes: DrugCodes
) -> tuple[Decimal | None, str, str | None]:
    quantity: Quantity | None = next(
        (rate.doseQuantity for rate in dosage.doseAndRate if rate.doseQuantity is not None), None
    )
    if quantity is None or quantity.value is None:
        return None, dosage.text or "no dose", "no doseQuantity: the dose cannot be verified"
    unit = (quantity.code if quantity.system == UCUM and quantity.code else quantity.unit or "").strip()
    if not _plausible_number(quantity.value, smallest_exponent=_SMALLEST_DOSE_EXPONENT):
        written = f"{quantity.value} {quantity.unit or quantity.code or ''}".strip()  # as sent: _fmt could overflow
        return None, written, "dose value is not a plausible number: the dose cannot be verified"
    written = f"{_fmt(quantity.value)} {quantity.unit or quantity.code or ''}".strip()
    if quantity.comparator is not None:
        return None, written, "dose given with a comparator: cannot be verified"
    if unit in MASS_TO_MG:
        return quantity.value * MASS_TO_MG[unit], written, None
    product = f"{_fmt(codes.mg_per_unit)} mg/{_fmt(codes.ml_per_unit)} mL"
    if unit in ("mL", "ml"):
        mg = quantity.value * codes.mg_per_ml
        return mg, f"{written} (= {_fmt(mg.quantize(Decimal('0.1'), rounding=ROUND_FLOOR))} mg at {product})", None
    if unit in codes.unit_dose_units:
        # "1 {pill}" of a product that is one 100 mg syringe per unit is 100 mg; of anything else it is unknown.
        if medication is not None and any(
            codes.unit_dose_products.contains(c.system, c.code) for c in medication.coding
        ):
            mg = quantity.value * codes.mg_per_unit
            return mg, f"{written} (= {_fmt(mg)} mg: one unit is one {product} syringe)", None
        return (
            None,
            written,
            (f"dose in '{unit}' but the product is not coded as the {product} syringe: the dose cannot be verified"),
        )
    return None, written, f"dose unit '{unit or 'none'}' is neither mg nor mL: the dose cannot be verified"


def _timing(timing: Timing | None, codes: DrugCodes) -> tuple[Decimal | None, Decimal | None, str, str | None]:
    if timing is None:
        return None, None, "no timing", "no timing: the daily amount cannot be verified"
    repeat = timing.repeat
    if repeat is not None and repeat.period is not None:
        if not _usable_repeat(repeat):
            problem = "timing values not usable (period > 0, frequency 1-1000)"
            return None, None, f"every {repeat.period} {repeat.periodUnit}", problem
        hours = HOURS_PER_UNIT.get(repeat.periodUnit or "")
        if hours is None:
            return None, None, f"every {repeat.period} {repeat.periodUnit}", "timing period unit not usable"
        frequency = Decimal(repeat.frequencyMax or repeat.frequency or 1)
        shortest_period = repeat.period if repeat.periodMax is None else min(repeat.period, repeat.periodMax)
        per_day = frequency * Decimal(24) / (shortest_period * hours)
        fixed = repeat.frequencyMax is None and repeat.periodMax is None
        interval = (repeat.period * hours / Decimal(repeat.frequency or 1)) if fixed else None
        written = _repeat_text(frequency, repeat.period, repeat.periodUnit or "", fixed)
        return per_day, interval, written, None
    if timing.code is not None:
        written_codes = [c.code for c in timing.code.coding if c.code]
        if timing.code.text:
            written_codes.append(timing.code.text)
        for code in written_codes:
            per_day_by_code = codes.timing_codes.get(code.strip().upper())
            if per_day_by_code is not None:
                return per_day_by_code, Decimal(24) / per_day_by_code, code, None
        return None, None, timing.code.text or "coded timing", "timing code not recognised"
    return None, None, "no repeat", "no timing.repeat or timing.code: the daily amount cannot be verified"


# Bounds on numbers as written, so that no later Decimal step (x 24 / period, quantize) can overflow: a dose
# outside 10^-6..10^7 (mg, g or mL), a period outside 10^-3..10^7 units or a frequency outside 1-1000 is not a
# dose or a timing. Compared by exponent (Decimal.adjusted): arithmetic on 1e999999999 would itself overflow.
_SMALLEST_DOSE_EXPONENT = -6
_SMALLEST_PERIOD_EXPONENT = -3
_LARGEST_EXPONENT = 6  # < 10^7
_MAX_FREQUENCY = 1000


def _plausible_number(value: Decimal, *, smallest_exponent: int) -> bool:
    return value.is_finite() and (value.is_zero() or smallest_exponent <= value.adjusted() <= _LARGEST_EXPONENT)


def _usable_repeat(repeat: TimingRepeat) -> bool:
    periods = [p for p in (repeat.period, repeat.periodMax) if p is not None]
    frequencies = [f for f in (repeat.frequency, repeat.frequencyMax) if f is not None]
    return all(p > 0 and _plausible_number(p, smallest_exponent=_SMALLEST_PERIOD_EXPONENT) for p in periods) and all(
        1 <= f <= _MAX_FREQUENCY for f in frequencies
    )


def _repeat_text(frequency: Decimal, period: Decimal, unit: str, fixed: bool) -> str:
    base = f"every {_fmt(period)} {unit}" if frequency == 1 else f"{_fmt(frequency)}× every {_fmt(period)} {unit}"
    return base if fixed else f"up to {base} (range)"


def _route(route: CodeableConcept | None, codes: DrugCodes) -> tuple[bool | None, str]:
    if route is None:
        return None, "no route"
    written = route.text or next((c.display or c.code for c in route.coding if c.display or c.code), "route")
    coded = [coding for coding in route.coding if coding.code]
    if any(codes.subcutaneous.contains(coding.system, coding.code) for coding in coded):
        return True, written or "subcutaneous"
    # A bare route code ("SC", "SubQ") without a system is read as text: the spellings are the pack's.
    texts = [*concept_texts(route), *(coding.code for coding in coded if not coding.system)]
    if codes.subcutaneous.text_match(texts):
        return True, written or "subcutaneous"
    return False, written or "route"


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"
