"""Property tests: no suggested dose ever exceeds a protocol cap, over weights 0.5-300 kg and all ages."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.facts.analytes import A
from cds_service.facts.fhir_time import FhirTime
from cds_service.facts.observations import Measurement
from cds_service.facts.patient import PatientFacts
from cds_service.rulepack import default_pack
from cds_service.rulepack.selection import dosing_rules
from cds_service.rules.dosing.calculator import DoseNotCalculated, ProtocolDose, calculate_protocol_dose
from cds_service.rules.dosing.rounding import RoundDown

PACK = default_pack()
# The registry's own numbers (NCT02780583 Detailed Description), typed here from the source, not from the pack:
# "10 mg/kg/day to a maximum of dose of 200 mg/day divided every 12 hours (for children [≤]40 kg) or 5 mg/kg/day up
# to a maximum dose of 400 mg/day divided every 6 hours (children > 40 kg and adults)".
REGISTRY_CAP_PER_DAY = {"child-le-40kg": Decimal(200), "gt-40kg-or-adult": Decimal(400)}
REGISTRY_MG_PER_KG = {"child-le-40kg": Decimal(10), "gt-40kg-or-adult": Decimal(5)}
REGISTRY_INTERVAL = {"child-le-40kg": 12, "gt-40kg-or-adult": 6}
CAP_PER_DOSE = Decimal(100)  # 200 / 2 = 400 / 4
ROUNDING_STEPS = [Decimal(step) for step in PACK.parameter_entries["dose_rounding_mg"].spec.allowed or ()]

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
weights = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(300), places=3, allow_nan=False)
birth_dates = st.one_of(st.none(), st.dates(min_value=date(1900, 1, 1), max_value=NOW.date()))
policies = st.sampled_from(ROUNDING_STEPS)
adult_ages = st.integers(min_value=16, max_value=21)


@settings(max_examples=600, deadline=None)
@given(weight=weights, born=birth_dates, policy=policies, adult_age=adult_ages)
def test_no_dose_above_any_cap(weight: Decimal, born: date | None, policy: Decimal, adult_age: int) -> None:
    rules = replace(dosing_rules(PACK, UTC), adult_age_years=adult_age, rounding=RoundDown(policy))
    when = NOW - timedelta(hours=1)
    measurement = Measurement(A.WEIGHT, weight, FhirTime(when, when), "w", False, f"{weight} kg")
    patient = PatientFacts("p", (born, born) if born else None, None)
    result = calculate_protocol_dose(weight=measurement, patient=patient, now=NOW, rules=rules)
    if isinstance(result, DoseNotCalculated):
        assert born is None and weight <= 40  # the only case without a dose: band undecidable
        return
    assert isinstance(result, ProtocolDose)
    band = result.band
    assert 0 <= result.per_dose_mg <= CAP_PER_DOSE
    assert result.per_dose_mg <= result.exact_per_dose_mg
    assert result.per_day_mg <= REGISTRY_CAP_PER_DAY[band.key]
    assert result.per_day_mg <= REGISTRY_MG_PER_KG[band.key] * weight
    assert result.per_day_mg == result.per_dose_mg * band.doses_per_day
    assert result.volume_ml * PACK.product.mg_per_ml <= result.per_dose_mg  # the volume never delivers more
    assert result.interval_hours == REGISTRY_INTERVAL[band.key]


@given(value=st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False), policy=policies)
def test_rounding_never_rounds_up(value: Decimal, policy: Decimal) -> None:
    rounded = RoundDown(policy).apply(value)
    assert rounded <= value
    assert value - rounded < policy


def test_the_packs_protocol_is_the_registrys() -> None:
    protocol = PACK.protocol
    assert protocol.band_limit_kg == 40
    assert protocol.max_mg_per_dose == CAP_PER_DOSE
    for band in protocol.bands:
        assert band.max_mg_per_day == REGISTRY_CAP_PER_DAY[band.key]
        assert band.mg_per_kg_per_day == REGISTRY_MG_PER_KG[band.key]
        assert band.interval_hours == REGISTRY_INTERVAL[band.key]
