"""The pre-filter never drops a patient who could get a card.

1. Screening with and without the pre-filter gives the same cards on generated populations (with many MAS-like
   and borderline patients), over a range of as-of times whose windows cut through the data.
2. A property test against the rules themselves: for random patients without a coded underlying disease or
   finding, whenever the pre-filter says "cannot get a card", `evaluate_mas` gives no card — with the
   product's rule pack and with altered packs (a lower HScore cutoff, HLH-2004 at 4 of 8, a lower warning
   ferritin, longer windows), because the filter is derived from the pack, not written beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.evaluation.mas import MasRules, evaluate_mas, load_rules, record_from_resources
from cds_service.fhir.model import Observation, Patient
from cds_service.population.engine import LocalEngine, screen
from cds_service.population.generate import Mix
from cds_service.population.light import LightObservation
from cds_service.population.prefilter import Event, Prefilter
from cds_service.rulepack.model import RulePack
from cds_service.rules.mas.definitions import Group
from cds_service.settings import Settings
from tests.conftest import FIXED_NOW
from tests.population_data import generated_patients, write_ndjson

RULES = load_rules(Settings())
PREFILTER = Prefilter(RULES.pack)


def _altered_pack(pack: RulePack) -> RulePack:
    """The product's pack with thresholds and rules moved the way a site or a new paper might move them."""
    sets = []
    for definition in pack.sets:
        if definition.key == "hscore" and definition.score is not None:
            definition = replace(definition, score=replace(definition.score, cutoff=Decimal(120)))
        if definition.key == "hlh2004" and isinstance(definition.rule, Group):
            definition = replace(definition, rule=replace(definition.rule, k=4))
        if definition.key == "trial-no-sjia" and isinstance(definition.rule, Group):
            # Without its ferritin > 2,000 requirement the set no longer needs the warning ferritin, so the filter
            # must read its other items, including "ALT or AST > 2 × the reported upper limit".
            definition = replace(definition, rule=definition.rule.items[1])
        sets.append(definition)
    warning = pack.decision.warning_ferritin
    parameters = replace(pack.parameters, lab_window=timedelta(hours=120), temperature_window=timedelta(hours=48))
    return replace(
        pack,
        sets=tuple(sets),
        parameters=parameters,
        decision=replace(pack.decision, warning_ferritin=replace(warning, value=Decimal(300), canonical=Decimal(300))),
    )


ALTERED = MasRules(_altered_pack(RULES.pack), RULES.zone)
PACKS = {"product": (RULES, PREFILTER), "altered": (ALTERED, Prefilter(ALTERED.pack))}


def _events(prefilter: Prefilter, lines: list[bytes]) -> list[Event]:
    decoded = (prefilter.observation_event(msgspec.json.decode(line, type=LightObservation)) for line in lines)
    return [event for event in decoded if event is not None]


def _cards(folder: Path, as_of: list[datetime], prefilter: bool) -> dict[tuple[str, int], tuple[Any, ...]]:
    with LocalEngine(2) as engine:
        outcome = screen(folder, as_of=as_of, rules=RULES, engine=engine, prefilter=prefilter, chunk_bytes=200_000)
    return {
        (rows.patient_id, index): (row.indicator, row.summary, row.sets_met)
        for rows in outcome.cards
        for index, row in rows.rows
    }


def test_prefiltered_and_unfiltered_screens_agree(tmp_path: Path) -> None:
    mix = Mix(single_abnormal=0.35, mas=0.15, sepsis_only=0.05, malignancy_only=0.05)
    patients = generated_patients(160, seed=5, mix=mix)
    folder = write_ndjson(patients, FIXED_NOW, tmp_path / "ndjson", files_per_type=3)
    as_of = [FIXED_NOW - timedelta(hours=h) for h in (0, 20, 50, 90)]
    with_filter = _cards(folder, as_of, prefilter=True)
    without = _cards(folder, as_of, prefilter=False)
    assert len({key for key, value in without.items() if value[0] == "critical"}) >= 10
    assert len({key for key, value in without.items() if value[0] == "warning"}) >= 5
    assert with_filter == without


# --- the property test ---------------------------------------------------------------------------------------

ANALYTES: dict[str, tuple[str, list[tuple[str, float, float]]]] = {
    # LOINC, [(unit, low, high)] spanning normal and abnormal values in several units
    "ferritin": ("2276-4", [("ng/mL", 5, 3000), ("ug/L", 5, 3000), ("pmol/L", 10, 5000)]),
    "temperature": ("8310-5", [("Cel", 35, 41), ("[degF]", 95, 106)]),
    "triglycerides": ("2571-8", [("mg/dL", 40, 500), ("mmol/L", 0.4, 6)]),
    "fibrinogen": ("3255-7", [("mg/dL", 50, 500), ("g/L", 0.5, 5)]),
    "ast": ("1920-8", [("U/L", 5, 400)]),
    "alt": ("1742-6", [("U/L", 5, 400)]),
    "hemoglobin": ("718-7", [("g/dL", 6, 16), ("g/L", 60, 160)]),
    "wbc": ("6690-2", [("10*9/L", 1, 15), ("10*3/uL", 1, 15)]),
    "platelets": ("777-3", [("10*9/L", 20, 400), ("/uL", 20000, 400000)]),
    "anc": ("751-8", [("10*9/L", 0.2, 8)]),
    "ldh": ("2532-0", [("U/L", 100, 3000)]),
    "esr": ("4537-7", [("mm/h", 1, 60)]),
    "inr": ("6301-6", [("{INR}", 0.8, 3)]),
}


@st.composite
def observation(draw: st.DrawFn, number: int) -> dict[str, Any]:
    analyte = draw(st.sampled_from(sorted(ANALYTES)))
    loinc, units = ANALYTES[analyte]
    unit, low, high = draw(st.sampled_from(units))
    value = draw(st.decimals(min_value=Decimal(str(low)), max_value=Decimal(str(high)), places=2))
    hours = draw(st.floats(min_value=-0.5, max_value=100))
    when = (FIXED_NOW - timedelta(hours=hours)).astimezone(UTC).isoformat()
    found: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{number}",
        "status": draw(st.sampled_from(["final", "final", "preliminary", "amended", "cancelled"])),
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": float(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    if draw(st.booleans()):  # a reported upper limit: the trial's "> 2 × upper limit" reads it
        upper = draw(st.decimals(min_value=Decimal(str(low)), max_value=Decimal(str(high)), places=1))
        found["referenceRange"] = [{"high": {"value": float(upper), "unit": unit}}]
    return found


@st.composite
def patient_observations(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=25))
    return [draw(observation(i)) for i in range(count)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patient_observations(),
    st.sampled_from(["2020-01-01", "2025-12-20", "1950-06-01"]),
    st.sampled_from(sorted(PACKS)),
)
def test_a_patient_the_prefilter_drops_gets_no_card(observations: list[dict[str, Any]], born: str, pack: str) -> None:
    rules, prefilter = PACKS[pack]
    lines = [orjson.dumps(o) for o in observations]
    events = _events(prefilter, lines)
    resources: list[Any] = [Patient(id="p", birthDate=born)]
    resources += [msgspec.json.decode(line, type=Observation) for line in lines]
    record = record_from_resources("p", resources)
    evaluation = evaluate_mas(record, now=FIXED_NOW, rules=rules)
    if not prefilter.is_candidate(events, FIXED_NOW):
        assert evaluation.indicator is None, [msgspec.json.decode(line) for line in lines]


@settings(max_examples=300, deadline=None)
@given(st.lists(observation(0), min_size=1, max_size=1), st.sampled_from(sorted(PACKS)))
def test_the_fast_look_never_passes_over_a_value_the_exact_reading_counts(
    observations: list[dict[str, Any]], pack: str
) -> None:
    _, prefilter = PACKS[pack]
    item = observations[0]
    exact = prefilter.observation_event(msgspec.json.decode(orjson.dumps(item), type=LightObservation))
    quantity = item["valueQuantity"]
    check = prefilter.fast_check()
    analyte = check.analyte(orjson.dumps(item["code"]))
    assert analyte is not None
    if exact is not None:
        ranged = "referenceRange" in item
        assert not check.clearly_normal(
            analyte, quantity["value"], quantity["system"], quantity["code"], quantity["unit"], ranged=ranged
        )


HSCORE_ITEMS: dict[str, tuple[str, str, list[float]]] = {
    # analyte: (LOINC, unit, values around the HScore and other thresholds)
    "temperature": ("8310-5", "Cel", [37.0, 38.39, 38.4, 39.4, 39.41, 40.5]),
    "hemoglobin": ("718-7", "g/dL", [9.19, 9.2, 9.21, 12.0]),
    "wbc": ("6690-2", "10*9/L", [4.99, 5.0, 5.01, 8.0]),
    "platelets": ("777-3", "10*9/L", [90, 109.9, 110, 110.1, 250]),
    "triglycerides": ("2571-8", "mg/dL", [100, 132.6, 132.7, 354, 354.1, 500]),
    "fibrinogen": ("3255-7", "mg/dL", [120, 249.9, 250, 250.1, 350]),
    "ast": ("1920-8", "U/L", [20, 29.9, 30, 130]),
    "ferritin": ("2276-4", "ng/mL", [100, 499.9, 500, 2100]),
}


@st.composite
def hscore_patient(draw: st.DrawFn) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for number, (analyte, (loinc, unit, values)) in enumerate(sorted(HSCORE_ITEMS.items())):
        if not draw(st.booleans()) and analyte != "temperature":
            continue
        hours = draw(st.sampled_from([1.0, 23.9, 24.1, 71.9, 72.1]))
        found.append(
            {
                "resourceType": "Observation",
                "id": f"h{number}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": "Patient/p"},
                "effectiveDateTime": (FIXED_NOW - timedelta(hours=hours)).isoformat(),
                "valueQuantity": {
                    "value": draw(st.sampled_from(values)),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    return found


LONG_TERM_STEROID = {
    "resourceType": "MedicationRequest",
    "id": "m1",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {"text": "prednisone 20 MG Oral Tablet"},
    "subject": {"reference": "Patient/p"},
    "authoredOn": (FIXED_NOW - timedelta(days=90)).isoformat(),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hscore_patient(), st.booleans(), st.sampled_from(sorted(PACKS)))
def test_the_hscore_bound_holds_near_every_threshold(
    observations: list[dict[str, Any]], steroid: bool, pack: str
) -> None:
    from cds_service.fhir.model import MedicationRequest

    rules, prefilter = PACKS[pack]
    lines = [orjson.dumps(o) for o in observations]
    events = _events(prefilter, lines)
    resources: list[Any] = [Patient(id="p", birthDate="1970-01-01")]
    resources += [msgspec.json.decode(line, type=Observation) for line in lines]
    if steroid:
        resources.append(msgspec.json.decode(orjson.dumps(LONG_TERM_STEROID), type=MedicationRequest))
    evaluation = evaluate_mas(record_from_resources("p", resources), now=FIXED_NOW, rules=rules)
    if not prefilter.is_candidate(events, FIXED_NOW):
        assert evaluation.indicator is None


def test_an_hscore_card_at_the_cutoff_without_high_ferritin_is_a_candidate() -> None:
    """The HScore path of the bound is needed and tight: 18 (long-term steroid) + 33 (38.4-39.4 °C) + 24 (two
    lineages) + 64 (TG > 354) + 30 (fibrinogen ≤ 250) = 169, with ferritin below 500."""
    from cds_service.fhir.model import MedicationRequest

    values = {
        "temperature": 39.0,
        "hemoglobin": 8.0,
        "wbc": 3.0,
        "platelets": 250,
        "triglycerides": 500,
        "fibrinogen": 100,
        "ast": 20,
        "ferritin": 400,
    }
    lines = [
        orjson.dumps(
            {
                "resourceType": "Observation",
                "id": f"x{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": HSCORE_ITEMS[name][0]}]},
                "subject": {"reference": "Patient/p"},
                "effectiveDateTime": (FIXED_NOW - timedelta(hours=2)).isoformat(),
                "valueQuantity": {"value": value, "unit": HSCORE_ITEMS[name][1]},
            }
        )
        for i, (name, value) in enumerate(values.items())
    ]
    resources: list[Any] = [Patient(id="p", birthDate="1970-01-01")]
    resources += [msgspec.json.decode(line, type=Observation) for line in lines]
    resources.append(msgspec.json.decode(orjson.dumps(LONG_TERM_STEROID), type=MedicationRequest))
    evaluation = evaluate_mas(record_from_resources("p", resources), now=FIXED_NOW, rules=RULES)
    assert evaluation.indicator == "critical"
    hscore_result = next(s for s in evaluation.assessment.sets if s.key == "hscore")
    assert hscore_result.score is not None and hscore_result.score[0] == 169
    assert [s.key for s in evaluation.assessment.met_sets] == ["hscore"]
    assert PREFILTER.is_candidate(_events(PREFILTER, lines), FIXED_NOW)


def test_a_patient_with_only_normal_results_is_not_a_candidate() -> None:
    """The filter filters: ferritin 100 ng/mL, platelets 250 ×10⁹/L, 37.0 °C, fibrinogen 350 mg/dL, AST 20 U/L
    move no rule of the pack."""
    values = {"ferritin": 100, "platelets": 250, "temperature": 37.0, "fibrinogen": 350, "ast": 20}
    lines = [
        orjson.dumps(
            {
                "resourceType": "Observation",
                "id": f"n{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": HSCORE_ITEMS[name][0]}]},
                "subject": {"reference": "Patient/p"},
                "effectiveDateTime": (FIXED_NOW - timedelta(hours=2)).isoformat(),
                "valueQuantity": {"value": value, "unit": HSCORE_ITEMS[name][1]},
            }
        )
        for i, (name, value) in enumerate(values.items())
    ]
    assert _events(PREFILTER, lines) == []
    assert not PREFILTER.is_candidate([], FIXED_NOW)
    # The trial's path without sJIA needs ferritin > 2,000, which makes a candidate by itself: the filter drops the
    # set and need not read its "2 × upper limit" AST. Where a pack's set does not need it, an AST reported with a
    # reference range is kept whatever its value (the limit is the report's), and cannot make a card on its own.
    assert "trial-no-sjia" not in {definition.key for definition in PREFILTER.sets}
    ast = orjson.loads(lines[-1])
    ast["referenceRange"] = [{"high": {"value": 40, "unit": "U/L"}}]
    assert _events(PREFILTER, [orjson.dumps(ast)]) == []
    altered = PACKS["altered"][1]
    ranged = _events(altered, [orjson.dumps(ast)])
    assert [(event.analyte.value, event.ranged) for event in ranged] == [("ast", True)]
    assert not altered.is_candidate(ranged, FIXED_NOW)


def test_the_warning_ferritin_edge_comes_from_the_pack() -> None:
    """HLH-2004's ferritin ≥ 500 µg/L (the pack's warning threshold): 499.9 moves nothing, 500 makes a
    candidate; with the altered pack's 300, 300 does."""

    def ferritin(value: float) -> list[bytes]:
        return [
            orjson.dumps(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
                    "subject": {"reference": "Patient/p"},
                    "effectiveDateTime": (FIXED_NOW - timedelta(hours=1)).isoformat(),
                    "valueQuantity": {"value": value, "unit": "ng/mL"},
                }
            )
        ]

    assert not PREFILTER.is_candidate(_events(PREFILTER, ferritin(499.9)), FIXED_NOW)
    assert PREFILTER.is_candidate(_events(PREFILTER, ferritin(500)), FIXED_NOW)
    altered = PACKS["altered"][1]
    assert not altered.is_candidate(_events(altered, ferritin(299.9)), FIXED_NOW)
    assert altered.is_candidate(_events(altered, ferritin(300)), FIXED_NOW)
