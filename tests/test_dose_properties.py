"""Property tests: no suggested dose ever exceeds a protocol cap, over weights 0.5-300 kg and all ages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.facts.analytes import A
from cds_service.facts.fhir_time import FhirTime
from cds_service.facts.observations import Measurement
from cds_service.facts.patient import PatientFacts
from cds_service.rules.dosing.calculator import DoseNotCalculated, DosingRules, ProtocolDose, calculate_protocol_dose
from cds_service.rules.dosing.protocol import MAX_MG_PER_DOSE, MG_PER_ML
from cds_service.rules.dosing.rounding import ROUNDING_POLICIES

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
weights = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(300), places=3, allow_nan=False)
birth_dates = st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1), max_value=NOW.date()))
policies = st.sampled_from(sorted(ROUNDING_POLICIES))
adult_ages = st.integers(min_value=16, max_value=21)


@settings(max_examples=600, deadline=None)
@given(weight=weights, born=birth_dates, policy=policies, adult_age=adult_ages)
def test_no_dose_above_any_cap(weight: Decimal, born: date | None, policy: str, adult_age: int) -> None:
    rules = DosingRules(adult_age, timedelta(days=7), timedelta(days=30), ROUNDING_POLICIES[policy])  # type: ignore[index]
    when = NOW - timedelta(hours=1)
    measurement = Measurement(A.WEIGHT, weight, FhirTime(when, when), "w", False, f"{weight} kg")
    patient = PatientFacts("p", (born, born) if born else None, None)
    result = calculate_protocol_dose(weight=measurement, patient=patient, now=NOW, rules=rules)
    if isinstance(result, DoseNotCalculated):
        assert born is None and weight <= 40  # the only case without a dose: band undecidable
        return
    assert isinstance(result, ProtocolDose)
    band = result.band
    assert 0 <= result.per_dose_mg <= MAX_MG_PER_DOSE
    assert result.per_dose_mg <= result.exact_per_dose_mg
    assert result.per_day_mg <= band.max_mg_per_day
    assert result.per_day_mg <= band.mg_per_kg_per_day * weight
    assert result.per_day_mg == result.per_dose_mg * band.doses_per_day
    assert result.volume_ml * MG_PER_ML <= result.per_dose_mg  # the volume never delivers more
    assert result.interval_hours == (12 if band.key == "child-le-40kg" else 6)


@given(value=st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False), policy=policies)
def test_rounding_never_rounds_up(value: Decimal, policy: str) -> None:
    rounded = ROUNDING_POLICIES[policy].apply(value)  # type: ignore[index]
    assert rounded <= value
    assert value - rounded < ROUNDING_POLICIES[policy].step_mg  # type: ignore[index]
