"""Boundary cases generated from the shipped rule pack: both sides of every threshold, in every accepted unit.

Walks every criteria set: each laboratory item's threshold (and the infant threshold), each score band edge, each
febrile precondition, the ferritin/ESR ratio, and the decision's warning ferritin; then the dosing band limit and
each daily cap. In the unit the source states, a value is placed exactly at the threshold and one unit of its last
stated decimal place on either side. In every other accepted unit the threshold is converted by pint (tests/
unit_oracle.py, never the service's catalogue) and placed 0.5 % on either side, so that no rounding of an inexact
conversion can decide; where pint's conversion is exact and definitional (powers of ten, °C -> °F), the converted
threshold itself is tested too.

Each value travels the service's own path: a FHIR Observation (JSON) -> decode_payload -> extract_measurements (unit
normalisation) -> Inputs -> the engine (evaluate_item, evaluate_set, assess_mas) or the dose calculator. The
expected outcome is decided in the source's unit, in exact arithmetic, from the definition's op and bounds.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest

from cds_service.facts.analytes import LOINC, A
from cds_service.facts.conditions import ClinicalContext
from cds_service.facts.observations import Measurements, extract_measurements
from cds_service.facts.patient import AgeRange, PatientFacts, extract_patient
from cds_service.facts.units import UCUM
from cds_service.fhir.model import decode_payload
from cds_service.rulepack import default_pack
from cds_service.rulepack.selection import dosing_rules
from cds_service.rules.dosing.calculator import ProtocolDose, calculate_protocol_dose
from cds_service.rules.dosing.protocol import DoseBand
from cds_service.rules.mas.common import Inputs, Status
from cds_service.rules.mas.definitions import (
    BandsScoreItem,
    CountScoreItem,
    CriteriaSet,
    Group,
    IfScoreItem,
    Item,
    LabItem,
    Op,
    PointsBand,
    RatioItem,
)
from cds_service.rules.mas.engine import evaluate_item, evaluate_set
from cds_service.rules.mas.screen import assess_mas
from tests.unit_oracle import MissingMapping, convert, molar_mass_for, oracle_unit

PACK = default_pack()
CATALOGUE = PACK.catalogue
SETS = {definition.key: definition for definition in PACK.sets}
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ADULT_YEARS = 30
CHILD_YEARS = 12
MARGIN = Fraction(5, 1000)  # 0.5 %: far beyond any rounding of a conversion, far inside any neighbouring threshold
ESR_FOR_RATIO = Decimal(20)  # mm/h: the ferritin/ESR ratio is tested by moving ferritin against this ESR

OPS: dict[Op, Callable[[Fraction, Fraction], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


# --- placing values -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """A value to try, in one accepted unit, and the same value in the source's unit (exact, by pint)."""

    side: str  # "at", "-1", "+1" (last stated decimal place), "-0.5%", "+0.5%"
    value: Decimal
    unit: str
    in_source_unit: Fraction
    problem: str | None = None  # the unit has no oracle mapping: the case fails with this message

    def require_oracle(self) -> None:
        if self.problem is not None:
            pytest.fail(self.problem)


def _last_place(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(exponent)


def _exact_decimal(value: Fraction) -> Decimal | None:
    """The fraction as a finite decimal, or None when it has none (115/3 °C)."""
    with localcontext() as context:
        context.prec = 60
        decimal = Decimal(value.numerator) / Decimal(value.denominator)
    return decimal.normalize() if Fraction(decimal) == value else None


def _rounded(value: Fraction, digits: int = 6) -> Decimal:
    with localcontext() as context:
        context.prec = digits
        return Decimal(value.numerator) / Decimal(value.denominator)


def _to_source(analyte: A, value: Decimal, unit: str, source_unit: str) -> Fraction:
    if unit == source_unit:
        return Fraction(value)
    if oracle_unit(unit).arbitrary or oracle_unit(source_unit).arbitrary:
        return Fraction(value)  # pint cannot express it; the oracle test holds these to the identity
    return convert(Fraction(value), unit, source_unit, molar_mass_for(analyte.value, unit, source_unit))


def placements(analyte: A, threshold: Decimal, source_unit: str) -> Iterator[Placement]:
    """Values around `threshold` (stated in `source_unit`) in every unit the catalogue accepts for `analyte`."""
    step = _last_place(threshold)
    for unit in sorted(CATALOGUE[analyte].conversions):
        if unit == source_unit:
            for side, value in (("-1", threshold - step), ("at", threshold), ("+1", threshold + step)):
                yield Placement(side, value, unit, Fraction(value))
            continue
        try:
            source, target = oracle_unit(source_unit), oracle_unit(unit)
        except MissingMapping as error:  # reported as a failing case, not a collection error that hides the rest
            yield Placement("no-oracle", threshold, unit, Fraction(threshold), problem=str(error))
            continue
        # A unit pint cannot express ({INR}) is placed by the identity, the only conversion the oracle allows it.
        identity = source.arbitrary is not None or target.arbitrary is not None
        molar_mass = None if identity else molar_mass_for(analyte.value, source_unit, unit)
        converted = Fraction(threshold) if identity else convert(Fraction(threshold), source_unit, unit, molar_mass)
        exact = _exact_decimal(converted) if molar_mass is None else None
        candidates = [("-0.5%", _rounded(converted * (1 - MARGIN)))]
        if exact is not None:
            candidates.append(("at", exact))
        candidates.append(("+0.5%", _rounded(converted * (1 + MARGIN))))
        for side, value in candidates:
            yield Placement(side, value, unit, _to_source(analyte, value, unit, source_unit))


# --- the service's own input path ---------------------------------------------------------------------------------
def _observation(index: int, analyte: A, value: Decimal, unit: str) -> dict[str, Any]:
    when = NOW - timedelta(hours=1, minutes=index)
    return {
        "resourceType": "Observation",
        "id": f"obs-{index}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": sorted(CATALOGUE[analyte].codes)[0]}]},
        "subject": {"reference": "Patient/pat1"},
        "effectiveDateTime": when.isoformat().replace("+00:00", "Z"),
        # The value is spliced in as a JSON number literal below, so the decoder sees exactly this decimal text.
        "valueQuantity": {"value": f"@{index}@", "unit": unit, "system": UCUM, "code": unit},
    }


def decoded(results: list[tuple[A, Decimal, str]], *, age_days: int) -> tuple[Measurements, PatientFacts | None]:
    """Observations (and a Patient) as a FHIR searchset Bundle, decoded and read as the service reads a prefetch."""
    born = (NOW - timedelta(days=age_days)).date().isoformat()
    entries: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Patient", "id": "pat1", "birthDate": born, "gender": "female"}}
    ]
    entries += [{"resource": _observation(i, *result)} for i, result in enumerate(results)]
    text = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries})
    for i, (_, value, _) in enumerate(results):
        text = text.replace(f'"@{i}@"', f"{value:f}")
    payload = decode_payload(text.encode())
    assert not payload.problems, payload.problems
    measurements = extract_measurements(
        payload.resources,
        patient_id="pat1",
        now=NOW,
        catalogue=CATALOGUE,
        future_tolerance=PACK.parameters.future_tolerance,
    )
    assert not measurements.skipped, [s.reason for s in measurements.skipped]  # every value must be readable
    return measurements, extract_patient(payload.resources)


def inputs(results: list[tuple[A, Decimal, str]], *, age_days: int) -> Inputs:
    measurements, _ = decoded(results, age_days=age_days)
    return Inputs(
        measurements,
        ClinicalContext({}, {}, False, (), "test"),
        NOW,
        PACK.parameters.lab_window,
        PACK.parameters.temperature_window,
        age=AgeRange(age_days // 365, age_days // 365),
        age_days=(age_days, age_days),
        trend_min_change=PACK.parameters.trend_min_change,
    )


def _years(years: int) -> int:
    return years * 365 + years // 4 + 10  # safely past the birthday


# --- walking the pack ---------------------------------------------------------------------------------------------
def _items(definition: CriteriaSet) -> Iterator[Item]:
    roots: list[Item] = [definition.rule] if definition.rule is not None else []
    for score_item in definition.score.items if definition.score is not None else ():
        if isinstance(score_item, IfScoreItem):
            roots.append(score_item.item)
        elif isinstance(score_item, CountScoreItem):
            roots.extend(score_item.items)
    seen: set[str] = set()
    stack = list(reversed(roots))
    while stack:
        item = stack.pop()
        if isinstance(item, Group):
            stack.extend(reversed(item.items))
        elif item.key not in seen:
            seen.add(item.key)
            yield item


def _status(met: bool) -> Status:
    return Status.MET if met else Status.NOT_MET


def _id(where: str, analyte: A, placement: Placement, expected: bool | Decimal) -> str:
    """set/item/analyte/unit/side=value->expected, so a failure names the threshold it is about."""
    shown = ("met" if expected else "not-met") if isinstance(expected, bool) else f"{expected}pts"
    return f"{where}/{analyte.value}/{placement.unit}/{placement.side}={placement.value:f}->{shown}"


@dataclass(frozen=True)
class LabCase:
    set_key: str
    item: LabItem | RatioItem
    analyte: A
    placement: Placement
    age_days: int
    expected: Status


def _lab_cases() -> Iterator[Any]:
    for definition in PACK.sets:
        for item in _items(definition):
            if isinstance(item, LabItem):
                thresholds = [(item.key, item.threshold, _years(ADULT_YEARS))]
                if item.infants is not None:
                    infant_days = item.infants.under_age_days // 2
                    thresholds.append((f"{item.key}(infant)", item.infants.threshold, infant_days))
                for where, threshold, age_days in thresholds:
                    for analyte in item.analytes:
                        for placement in placements(analyte, threshold.value, threshold.unit):
                            met = OPS[threshold.op](placement.in_source_unit, Fraction(threshold.value))
                            case = LabCase(definition.key, item, analyte, placement, age_days, _status(met))
                            yield pytest.param(case, id=_id(f"{definition.key}/{where}", analyte, placement, met))
            elif isinstance(item, RatioItem):
                # ferritin ÷ ESR against the cutoff: ESR held at a fixed value, ferritin moved across cutoff × ESR.
                at = item.value * ESR_FOR_RATIO
                for placement in placements(item.numerator, at, item.numerator_unit):
                    met = OPS[item.op](placement.in_source_unit / Fraction(ESR_FOR_RATIO), Fraction(item.value))
                    case = LabCase(definition.key, item, item.numerator, placement, _years(CHILD_YEARS), _status(met))
                    yield pytest.param(case, id=_id(f"{definition.key}/{item.key}", item.numerator, placement, met))


@pytest.mark.parametrize("case", list(_lab_cases()))
def test_lab_item_on_each_side_of_its_threshold(case: LabCase) -> None:
    case.placement.require_oracle()
    results = [(case.analyte, case.placement.value, case.placement.unit)]
    if isinstance(case.item, RatioItem):
        results.append((case.item.denominator, ESR_FOR_RATIO, case.item.denominator_unit))
    result = evaluate_item(case.item, inputs(results, age_days=case.age_days), CATALOGUE)
    assert result.status is case.expected


# --- score bands --------------------------------------------------------------------------------------------------
def _band_points(bands: tuple[PointsBand, ...], value: Fraction) -> Decimal:
    """The points of the one band that holds `value` (in the score item's own unit), read from the stated bounds."""

    def holds(band: PointsBand) -> bool:
        if band.low is not None:
            low = Fraction(band.low.value)
            if value < low or (value == low and not band.low.inclusive):
                return False
        if band.high is not None:
            high = Fraction(band.high.value)
            if value > high or (value == high and not band.high.inclusive):
                return False
        return True

    holding = [band.points for band in bands if holds(band)]
    assert len(holding) == 1, f"{value} is in {len(holding)} bands"
    return holding[0]


@dataclass(frozen=True)
class BandCase:
    set_key: str
    item: BandsScoreItem
    placement: Placement
    expected: Decimal


def _band_cases() -> Iterator[Any]:
    for definition in PACK.sets:
        for item in definition.score.items if definition.score is not None else ():
            if not isinstance(item, BandsScoreItem):
                continue
            for lower, upper in zip(item.bands, item.bands[1:], strict=False):
                assert lower.high is not None and upper.low is not None
                for placement in placements(item.analyte, lower.high.value, item.unit):
                    points = _band_points(item.bands, placement.in_source_unit)
                    case = BandCase(definition.key, item, placement, points)
                    where = f"{definition.key}/{item.key}@{lower.high.value}"
                    yield pytest.param(case, id=_id(where, item.analyte, placement, points))


@pytest.mark.parametrize("case", list(_band_cases()))
def test_score_band_edge_gives_the_points_of_its_band(case: BandCase) -> None:
    case.placement.require_oracle()
    given = inputs([(case.item.analyte, case.placement.value, case.placement.unit)], age_days=_years(ADULT_YEARS))
    result = evaluate_set(SETS[case.set_key], given, CATALOGUE)
    item = next(r for r in result.items if r.key == case.item.key)
    assert item.points == (case.expected, case.expected)


# --- febrile preconditions and the warning ferritin ---------------------------------------------------------------
def _febrile_cases() -> Iterator[Any]:
    for definition in PACK.sets:
        for index, precondition in enumerate(definition.population):
            if precondition.febrile is None:
                continue
            threshold = precondition.febrile
            for placement in placements(A.TEMPERATURE, threshold.value, threshold.unit):
                met = OPS[threshold.op](placement.in_source_unit, Fraction(threshold.value))
                where = f"{definition.key}/febrile"
                yield pytest.param(definition.key, index, placement, met, id=_id(where, A.TEMPERATURE, placement, met))


@pytest.mark.parametrize(("set_key", "index", "placement", "met"), list(_febrile_cases()))
def test_febrile_precondition_on_each_side(set_key: str, index: int, placement: Placement, met: bool) -> None:
    placement.require_oracle()
    given = inputs([(A.TEMPERATURE, placement.value, placement.unit)], age_days=_years(CHILD_YEARS))
    result = evaluate_set(SETS[set_key], given, CATALOGUE)
    assert result.population[index].status is _status(met)


def _warning_cases() -> Iterator[Any]:
    threshold = PACK.decision.warning_ferritin
    for placement in placements(A.FERRITIN, threshold.value, threshold.unit):
        met = OPS[threshold.op](placement.in_source_unit, Fraction(threshold.value))
        yield pytest.param(placement, met, id=_id("decision/warning-ferritin", A.FERRITIN, placement, met))


@pytest.mark.parametrize(("placement", "met"), list(_warning_cases()))
def test_decision_warning_ferritin_on_each_side(placement: Placement, met: bool) -> None:
    placement.require_oracle()
    given = inputs([(A.FERRITIN, placement.value, placement.unit)], age_days=_years(ADULT_YEARS))
    assessment = assess_mas(
        given,
        sets=PACK.sets,
        warning_ferritin=PACK.decision.warning_ferritin,
        workup=PACK.workup,
        catalogue=CATALOGUE,
    )
    assert (assessment.warning_ferritin is not None) is met
    assert assessment.suggestive is met  # ferritin alone meets no set: the warning threshold decides the card


# --- anakinra dosing (NCT02780583) --------------------------------------------------------------------------------
RULES = dosing_rules(PACK, UTC)
PROTOCOL = PACK.protocol


def test_protocol_states_the_registry_numbers() -> None:
    """NCT02780583, Detailed Description: "10 mg/kg/day to a maximum of dose of 200 mg/day divided every 12 hours
    (for children [≤]40 kg) or 5 mg/kg/day up to a maximum dose of 400 mg/day divided every 6 hours (children
    > 40 kg and adults)". The generated cases below take their numbers from the pack; this pins the pack to the text."""
    child, other = PROTOCOL.child_band, PROTOCOL.other_band
    assert PROTOCOL.band_limit_kg == 40
    assert (child.mg_per_kg_per_day, child.max_mg_per_day, child.interval_hours) == (10, 200, 12)
    assert (other.mg_per_kg_per_day, other.max_mg_per_day, other.interval_hours) == (5, 400, 6)


@dataclass(frozen=True)
class DoseCase:
    placement: Placement
    years: int
    band: DoseBand
    per_day: Fraction  # exact, before rounding to syringe amounts
    capped: bool


def _dose_case(placement: Placement, years: int) -> DoseCase:
    kg = placement.in_source_unit
    child = years < PACK.parameters.adult_age_years
    band = PROTOCOL.child_band if child and kg <= Fraction(PROTOCOL.band_limit_kg) else PROTOCOL.other_band
    by_weight = Fraction(band.mg_per_kg_per_day) * kg
    cap = Fraction(band.max_mg_per_day)
    return DoseCase(placement, years, band, min(by_weight, cap), by_weight > cap)


def _dose_id(what: str, case: DoseCase) -> str:
    p = case.placement
    outcome = f"{case.band.key}{'-capped' if case.capped else ''}"
    return f"dosing/{what}/age{case.years}/{p.unit}/{p.side}={p.value:f}->{outcome}"


def _dose_cases() -> Iterator[Any]:
    limit = PROTOCOL.band_limit_kg
    # The band limit, for a child. 40.01 kg as well: a scale's 10 g step, finer than the limit's last stated digit.
    edge = [
        *placements(A.WEIGHT, limit, "kg"),
        Placement("+0.01", limit + Decimal("0.01"), "kg", Fraction(limit) + Fraction(1, 100)),
    ]
    for placement in edge:
        case = _dose_case(placement, CHILD_YEARS)
        yield pytest.param(case, id=_dose_id(f"band-limit@{limit}kg", case))
    # Each band's daily cap: the weight at which mg/kg/day reaches it (a child in the low band, an adult in the high).
    for band, years in ((PROTOCOL.child_band, CHILD_YEARS), (PROTOCOL.other_band, ADULT_YEARS)):
        at = band.max_mg_per_day / band.mg_per_kg_per_day
        for placement in placements(A.WEIGHT, at, "kg"):
            case = _dose_case(placement, years)
            assert case.band is band, "the cap's weight must lie inside its own band"
            yield pytest.param(case, id=_dose_id(f"{band.key}-cap@{at}kg", case))


@pytest.mark.parametrize("case", list(_dose_cases()))
def test_dose_on_each_side_of_the_band_limit_and_each_cap(case: DoseCase) -> None:
    case.placement.require_oracle()
    measurements, patient = decoded(
        [(A.WEIGHT, case.placement.value, case.placement.unit)], age_days=_years(case.years)
    )
    weight = measurements.latest_any_time(A.WEIGHT)
    result = calculate_protocol_dose(weight=weight, patient=patient, now=NOW, rules=RULES)
    assert isinstance(result, ProtocolDose), result
    assert result.band.key == case.band.key
    assert (result.interval_hours, result.doses_per_day) == (case.band.interval_hours, 24 // case.band.interval_hours)
    assert Fraction(result.exact_per_day_mg) == case.per_day
    assert result.capped is case.capped
    assert result.per_day_mg <= case.band.max_mg_per_day
    assert result.per_dose_mg <= PROTOCOL.max_mg_per_dose
