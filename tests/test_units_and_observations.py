"""Unit conversions (explicit factors only) and which results count."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from cds_service.facts.analytes import A
from cds_service.facts.fhir_time import parse_fhir_time
from cds_service.facts.observations import Measurements, extract_measurements
from cds_service.facts.units import UnitError, normalise
from cds_service.fhir.model import Observation, Quantity
from cds_service.rulepack import default_pack
from tests.clinical_builders import measurement
from tests.conftest import FIXED_NOW

CATALOGUE = default_pack().catalogue


def q(value: str, unit: str, *, ucum: bool = True, **extra: Any) -> Quantity:
    if ucum:
        return Quantity(value=Decimal(value), unit=unit, system="http://unitsofmeasure.org", code=unit, **extra)
    return Quantity(value=Decimal(value), unit=unit, **extra)


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        (A.WEIGHT, "100", "[lb_av]", "45.359237"),
        (A.WEIGHT, "22000", "g", "22"),
        (A.FERRITIN, "2247", "pmol/L", "1000"),
        (A.FERRITIN, "684", "ug/L", "684"),
        (A.FIBRINOGEN, "1.5", "g/L", "150"),
        (A.FIBRINOGEN, "3.6", "g/L", "360"),
        (A.TRIGLYCERIDES, "3", "mmol/L", "265.71"),
        (A.PLATELETS, "62", "10*9/L", "62"),
        (A.PLATELETS, "62", "10*3/uL", "62"),
        (A.PLATELETS, "62000", "/uL", "62"),
        (A.HEMOGLOBIN, "90", "g/L", "9"),
        (A.AST, "1", "ukat/L", "60"),
        (A.CREATININE, "88.4", "umol/L", "1"),
        (A.CRP, "5", "mg/dL", "50"),
        (A.DDIMER_FEU, "0.5", "ug/mL{FEU}", "500"),
    ],
)
def test_conversions(analyte: A, value: str, unit: str, expected: str) -> None:
    assert normalise(CATALOGUE[analyte], q(value, unit)).value == Decimal(expected)


def test_fahrenheit_converts_with_its_offset() -> None:
    assert normalise(CATALOGUE[A.TEMPERATURE], q("104", "[degF]")).value == Decimal(40)
    celsius = normalise(CATALOGUE[A.TEMPERATURE], q("101", "[degF]")).value
    assert round(celsius, 2) == Decimal("38.33")


def test_aliases_and_micro_sign_in_the_unit_text() -> None:
    assert normalise(CATALOGUE[A.PLATELETS], q("62", "K/uL", ucum=False)).value == 62
    assert normalise(CATALOGUE[A.CREATININE], q("88.4", "µmol/L", ucum=False)).value == 1
    assert normalise(CATALOGUE[A.WEIGHT], q("10", "lbs", ucum=False)).value == Decimal("4.5359237")
    assert normalise(CATALOGUE[A.INR], Quantity(value=Decimal("1.6"))).value == Decimal("1.6")


@pytest.mark.parametrize(
    ("analyte", "quantity", "message"),
    [
        (A.WEIGHT, q("70", "stone", ucum=False), "not a known unit"),
        (A.FERRITIN, q("8000", "mg/dL"), "not a known unit"),
        (A.WEIGHT, Quantity(value=Decimal(70)), "no unit"),
        (A.WEIGHT, q("700", "kg"), "outside the plausible range"),
        (A.FERRITIN, q("100000", "ng/mL", comparator=">"), "not an exact value"),
    ],
)
def test_unknown_units_implausible_and_censored_values_are_refused(
    analyte: A, quantity: Quantity, message: str
) -> None:
    with pytest.raises(UnitError, match=message):
        normalise(CATALOGUE[analyte], quantity)


def _extract(*observations: dict[str, Any]) -> Measurements:
    typed = [msgspec.convert(o, type=Observation) for o in observations]
    pack = default_pack()
    return extract_measurements(
        typed,
        patient_id="pat1",
        now=FIXED_NOW,
        catalogue=pack.catalogue,
        future_tolerance=pack.parameters.future_tolerance,
    )


def test_status_rules() -> None:
    result = _extract(
        measurement("2276-4", 9000, "ng/mL", status="cancelled", obs_id="c"),
        measurement("2276-4", 9000, "ng/mL", status="entered-in-error", obs_id="e"),
        measurement("2276-4", 9000, "ng/mL", status="registered", obs_id="r"),
        measurement("2276-4", 800, "ng/mL", status="preliminary", obs_id="p", ago=timedelta(hours=1)),
        measurement("2276-4", 700, "ng/mL", status="amended", obs_id="a", ago=timedelta(hours=3)),
    )
    values = result.all(A.FERRITIN)
    assert [(m.observation_id, m.preliminary) for m in values] == [("p", True), ("a", False)]
    assert {s.observation_id for s in result.skipped} == {"c", "e", "r"}


def test_other_patients_future_and_zoneless_results_are_not_used() -> None:
    zoneless = measurement("2276-4", 1, "ng/mL", obs_id="z")
    zoneless["effectiveDateTime"] = "2026-03-10T08:00:00"
    result = _extract(
        measurement("2276-4", 1, "ng/mL", obs_id="other", pid="someone-else"),
        measurement("2276-4", 1, "ng/mL", obs_id="future", ago=-timedelta(hours=2)),
        zoneless,
    )
    assert result.all(A.FERRITIN) == ()
    reasons = {s.observation_id: s.reason for s in result.skipped}
    assert reasons == {
        "other": "belongs to another patient",
        "future": "dated in the future",
        "z": "no usable time (effective[x] or issued, with a time zone)",
    }


def test_latest_within_window_is_newest_first() -> None:
    result = _extract(
        measurement("29463-7", 20, "kg", obs_id="old", ago=timedelta(days=3)),
        measurement("29463-7", 21, "kg", obs_id="new", ago=timedelta(hours=5)),
    )
    assert result.latest(A.WEIGHT, now=FIXED_NOW, window=timedelta(days=1)).observation_id == "new"  # type: ignore[union-attr]
    assert result.latest(A.WEIGHT, now=FIXED_NOW, window=timedelta(hours=1)) is None


def test_partial_dates_are_intervals() -> None:
    day = parse_fhir_time("2026-03-09")
    month = parse_fhir_time("2026-02")
    assert day is not None and month is not None
    assert (day.earliest.isoformat(), day.latest.day) == ("2026-03-09T00:00:00+00:00", 9)
    assert (month.earliest.day, month.latest.day) == (1, 28)
    assert parse_fhir_time("2026-03-10T08:00:00") is None
    assert parse_fhir_time("2026-13") is None
