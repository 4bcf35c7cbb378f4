"""MedicationRequests -> which drug (anakinra, TNF inhibitor) and the drafted dose, interval and route.

Codes: clinical.md §3.5 (anakinra) and §3.4 (product concentration). TNF-inhibitor recognition uses
ATC class L04AB and generic/brand names; those codes and names are not in clinical.md (UNVERIFIED,
from general pharmacology) and are matched by name too, so a missing code does not hide an order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from cds_service.facts.units import UCUM
from cds_service.fhir.model import CodeableConcept, Dosage, MedicationRequest, Quantity, Timing, TimingRepeat

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
NDC = "http://hl7.org/fhir/sid/ndc"
ATC = "http://www.whocc.no/atc"

# clinical.md §3.5. RxNorm 72435 (ingredient) is UNVERIFIED there; the text match covers it too.
ANAKINRA_CODES: dict[str, frozenset[str]] = {
    RXNORM: frozenset({"727711", "72435"}),
    SNOMED: frozenset({"385549000", "395279009"}),
    ATC: frozenset({"L04AC03", "L04AA14"}),  # L04AA14: the pre-2008 ATC code [60]
}
# Kineret NDC 66658-0234-07 / -28 [55], compared as digits in both 10- and 11-digit forms.
ANAKINRA_NDC_DIGITS = frozenset({"66658023407", "6665823407", "66658023428", "6665823428"})
ANAKINRA_NAME = re.compile(r"\b(anakinra|kineret)\b", re.IGNORECASE)

TNF_ATC_PREFIX = "L04AB"
TNF_NAME = re.compile(
    r"\b(etanercept|infliximab|adalimumab|certolizumab|golimumab|enbrel|remicade|humira|cimzia|simponi)\b",
    re.IGNORECASE,
)

# Kineret 100 mg/0.67 mL prefilled syringe (clinical.md §3.4); mg = mL * 100 / 0.67.
PRODUCT_MG = Decimal(100)
PRODUCT_ML = Decimal("0.67")

SUBCUTANEOUS_SNOMED = "34206005"
SUBCUTANEOUS_TEXT = re.compile(r"\b(subcutaneous(ly)?|subcut|s\.?c\.?|s\.?q\.?)\b", re.IGNORECASE)
SUBCUTANEOUS_V3 = "SQ"

HOURS_PER_UNIT = {"s": Decimal(1) / 3600, "min": Decimal(1) / 60, "h": Decimal(1), "d": Decimal(24), "wk": Decimal(168)}
# HL7 v3 GTSAbbreviation timing codes -> doses per day (Q12H is not in that code system but is common).
TIMING_CODES = {
    "QD": Decimal(1),
    "AM": Decimal(1),
    "PM": Decimal(1),
    "BED": Decimal(1),
    "BID": Decimal(2),
    "TID": Decimal(3),
    "QID": Decimal(4),
    "QOD": Decimal("0.5"),
    "Q4H": Decimal(6),
    "Q6H": Decimal(4),
    "Q8H": Decimal(3),
    "Q12H": Decimal(2),
    "Q24H": Decimal(1),
}


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


def match_anakinra(candidates: Iterable[CodeableConcept | None], names: Iterable[str | None] = ()) -> DrugMatch:
    concepts = [c for c in candidates if c is not None]
    for concept in concepts:
        for coding in concept.coding:
            if coding.code is None:
                continue
            if coding.code in ANAKINRA_CODES.get(coding.system or "", frozenset()):
                return DrugMatch(True, f"{_system_name(coding.system)} {coding.code}")
            if coding.system == NDC and re.sub(r"\D", "", coding.code) in ANAKINRA_NDC_DIGITS:
                return DrugMatch(True, f"NDC {coding.code}")
    for text in [t for c in concepts for t in concept_texts(c)] + [n for n in names if n]:
        found = ANAKINRA_NAME.search(text)
        if found:
            return DrugMatch(True, f"name '{found.group(0)}'")
    return DrugMatch(False)


def match_tnf_inhibitor(candidates: Iterable[CodeableConcept | None], names: Iterable[str | None] = ()) -> DrugMatch:
    concepts = [c for c in candidates if c is not None]
    for concept in concepts:
        for coding in concept.coding:
            if coding.system == ATC and coding.code and coding.code.startswith(TNF_ATC_PREFIX):
                return DrugMatch(True, f"ATC {coding.code}")
    for text in [t for c in concepts for t in concept_texts(c)] + [n for n in names if n]:
        found = TNF_NAME.search(text)
        if found:
            return DrugMatch(True, found.group(0))
    return DrugMatch(False)


def _system_name(system: str | None) -> str:
    return {RXNORM: "RxNorm", SNOMED: "SNOMED CT", ATC: "ATC"}.get(system or "", system or "code")


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


def read_drafted_dose(order: MedicationRequest) -> DraftedDose:
    dosage = order.dosageInstruction[0] if order.dosageInstruction else Dosage()
    per_dose, dose_text, dose_problem = _dose_mg(dosage)
    per_day, interval, timing_text, timing_problem = _timing(dosage.timing)
    subcutaneous, route_text = _route(dosage.route)
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


def _dose_mg(dosage: Dosage) -> tuple[Decimal | None, str, str | None]:
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
    factors = {"mg": Decimal(1), "g": Decimal(1000), "ug": Decimal("0.001"), "mcg": Decimal("0.001")}
    if unit in factors:
        return quantity.value * factors[unit], written, None
    if unit in ("mL", "ml"):
        mg = quantity.value * PRODUCT_MG / PRODUCT_ML
        return mg, f"{written} (= {_fmt(mg.quantize(Decimal('0.1'), rounding=ROUND_FLOOR))} mg at 100 mg/0.67 mL)", None
    return None, written, f"dose unit '{unit or 'none'}' is neither mg nor mL: the dose cannot be verified"


def _timing(timing: Timing | None) -> tuple[Decimal | None, Decimal | None, str, str | None]:
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
            per_day_by_code = TIMING_CODES.get(code.strip().upper())
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


def _route(route: CodeableConcept | None) -> tuple[bool | None, str]:
    if route is None:
        return None, "no route"
    written = route.text or next((c.display or c.code for c in route.coding if c.display or c.code), "route")
    for coding in route.coding:
        if (coding.system == SNOMED and coding.code == SUBCUTANEOUS_SNOMED) or coding.code == SUBCUTANEOUS_V3:
            return True, written or "subcutaneous"
    texts = concept_texts(route)
    if any(SUBCUTANEOUS_TEXT.search(text) for text in texts):
        return True, written or "subcutaneous"
    return False, written or "route"


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"
