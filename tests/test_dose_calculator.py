"""Protocol calculator at every boundary (NCT02780583): 40 vs 40.01 kg, 17 vs 18 years, the caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cds_service.facts.analytes import A
from cds_service.facts.fhir_time import FhirTime
from cds_service.facts.observations import Measurement
from cds_service.facts.patient import PatientFacts
from cds_service.rulepack import default_pack
from cds_service.rulepack.selection import dosing_rules
from cds_service.rules.dosing.calculator import DoseNotCalculated, DosingRules, ProtocolDose, calculate_protocol_dose
from cds_service.rules.dosing.rounding import RoundDown

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RULES = dosing_rules(default_pack(), UTC)
CHILD_UP_TO_40_KG = RULES.protocol.child_band
OVER_40_KG_OR_ADULT = RULES.protocol.other_band


def kg(value: str, *, ago: timedelta = timedelta(hours=1)) -> Measurement:
    when = NOW - ago
    return Measurement(A.WEIGHT, Decimal(value), FhirTime(when, when), "w1", False, f"{value} kg")


def aged(years: int, *, sex: str = "female") -> PatientFacts:
    born = NOW.date().replace(year=NOW.year - years)
    return PatientFacts("p", (born, born), sex)


def dose(weight: str, years: int | None, rules: DosingRules = RULES) -> ProtocolDose:
    patient = aged(years) if years is not None else PatientFacts("p", None, None)
    result = calculate_protocol_dose(weight=kg(weight), patient=patient, now=NOW, rules=rules)
    assert isinstance(result, ProtocolDose), result
    return result


def test_child_of_exactly_40_kg_is_in_the_q12h_band() -> None:
    result = dose("40", 12)
    assert result.band is CHILD_UP_TO_40_KG
    assert (result.per_dose_mg, result.interval_hours, result.per_day_mg) == (100, 12, 200)
    assert result.volume_ml == Decimal("0.67")


def test_child_of_40_01_kg_is_in_the_q6h_band() -> None:
    result = dose("40.01", 12)
    assert result.band is OVER_40_KG_OR_ADULT
    assert result.exact_per_day_mg == Decimal("200.05")
    assert result.exact_per_dose_mg == Decimal("50.0125")
    assert (result.per_dose_mg, result.interval_hours, result.per_day_mg) == (50, 6, 200)


def test_41_kg_child_gets_5_mg_per_kg() -> None:
    result = dose("41", 10)
    assert result.exact_per_day_mg == 205
    assert result.per_dose_mg == 51  # 51.25 rounded down, never up
    assert result.per_day_mg == 204


def test_17_year_old_of_35_kg_is_a_child_and_18_year_old_an_adult() -> None:
    child = dose("35", 17)
    adult = dose("35", 18)
    assert child.band is CHILD_UP_TO_40_KG
    assert (child.per_dose_mg, child.interval_hours, child.capped) == (100, 12, True)  # 350 capped at 200
    assert adult.band is OVER_40_KG_OR_ADULT  # "children > 40 kg and adults": adults at any weight
    assert adult.exact_per_day_mg == 175
    assert (adult.per_dose_mg, adult.interval_hours) == (43, 6)


def test_adult_age_is_configurable() -> None:
    rules = replace(RULES, adult_age_years=21)
    assert dose("35", 20, rules).band is CHILD_UP_TO_40_KG
    assert dose("35", 21, rules).band is OVER_40_KG_OR_ADULT


def test_the_200_mg_cap_starts_above_20_kg() -> None:
    at_20 = dose("20", 8)
    at_21 = dose("21", 8)
    assert (at_20.exact_per_day_mg, at_20.capped) == (200, False)
    assert (at_21.exact_per_day_mg, at_21.capped, at_21.per_dose_mg) == (200, True, 100)


def test_the_400_mg_cap_starts_above_80_kg() -> None:
    at_80 = dose("80", 40)
    at_81 = dose("81", 40)
    assert (at_80.exact_per_day_mg, at_80.capped, at_80.per_dose_mg) == (400, False, 100)
    assert (at_81.exact_per_day_mg, at_81.capped, at_81.per_dose_mg) == (400, True, 100)
    assert dose("79", 40).per_dose_mg == 98  # 395 / 4 = 98.75 -> 98


def test_doses_under_20_mg_are_flagged_as_not_measurable() -> None:
    assert dose("4", 0).per_dose_mg == 20
    assert dose("4", 0).measurable is True
    small = dose("3.9", 0)
    assert small.per_dose_mg == 19
    assert small.measurable is False


def test_rounding_policies_only_round_down() -> None:
    rules = replace(RULES, rounding=RoundDown(Decimal(10)))
    result = dose("41", 10, rules)
    assert result.per_dose_mg == 50
    assert result.per_day_mg == 200
    assert "rounded down to a multiple of 10 mg" in result.reasoning[-1]


def test_no_weight_means_no_dose_and_asks_for_one() -> None:
    result = calculate_protocol_dose(weight=None, patient=aged(30), now=NOW, rules=RULES)
    assert isinstance(result, DoseNotCalculated)
    assert result.needed == "a current body weight"


@pytest.mark.parametrize(
    ("years", "age_of_weight", "calculated"),
    [
        (10, timedelta(days=7), True),
        (10, timedelta(days=7, seconds=1), False),
        (30, timedelta(days=30), True),
        (30, timedelta(days=30, seconds=1), False),
    ],
)
def test_weight_recency_window_depends_on_age(years: int, age_of_weight: timedelta, calculated: bool) -> None:
    result = calculate_protocol_dose(weight=kg("50", ago=age_of_weight), patient=aged(years), now=NOW, rules=RULES)
    assert isinstance(result, ProtocolDose) is calculated
    if not calculated:
        assert isinstance(result, DoseNotCalculated)
        assert "older than" in result.reason


def test_unknown_age_uses_the_child_weight_window() -> None:
    patient = PatientFacts("p", None, None)
    result = calculate_protocol_dose(weight=kg("60", ago=timedelta(days=8)), patient=patient, now=NOW, rules=RULES)
    assert isinstance(result, DoseNotCalculated)


def test_unknown_age_at_40_kg_or_less_cannot_choose_a_band() -> None:
    result = calculate_protocol_dose(weight=kg("40"), patient=PatientFacts("p", None, None), now=NOW, rules=RULES)
    assert isinstance(result, DoseNotCalculated)
    assert result.needed == "the patient's birth date"
    assert dose("40.5", None).band is OVER_40_KG_OR_ADULT  # over 40 kg the age does not matter


def test_partial_birth_date_straddling_18_is_unknown_age() -> None:
    patient = PatientFacts(
        "p", (NOW.date().replace(year=2008, month=1, day=1), NOW.date().replace(year=2008, month=12, day=31)), None
    )
    assert patient.is_adult(NOW.date(), 18) is None
    result = calculate_protocol_dose(weight=kg("30"), patient=patient, now=NOW, rules=RULES)
    assert isinstance(result, DoseNotCalculated)


def test_reasoning_shows_the_arithmetic() -> None:
    text = " ".join(dose("22", 6).reasoning)
    assert "10 mg/kg/day × 22 kg = 220 mg/day, capped at 200 mg/day" in text
    assert "200 mg/day ÷ 2 doses = 100 mg every 12 h" in text


def test_infants_are_flagged_as_outside_the_trial_population() -> None:
    infant = PatientFacts("p", (NOW.date() - timedelta(days=200), NOW.date() - timedelta(days=200)), None)
    one_year = aged(1)
    infant_dose = calculate_protocol_dose(weight=kg("8"), patient=infant, now=NOW, rules=RULES)
    yearling = calculate_protocol_dose(weight=kg("8"), patient=one_year, now=NOW, rules=RULES)
    assert isinstance(infant_dose, ProtocolDose) and isinstance(yearling, ProtocolDose)
    assert "outside the trial's population" in infant_dose.reasoning[-1]
    assert not any("outside the trial" in line for line in yearling.reasoning)
