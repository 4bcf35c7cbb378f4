"""The synthetic-case generator: deterministic, exactly n cases, valid FHIR R4(B), and dense enough that every
criteria set reaches each of its outcomes in one pass over the catalogue."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from random import Random
from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from tests.independent.gen_model import SURFACE_TEMPERATURE_SITES, TEMPERATURE_SITES
from tests.independent.generator import Case, catalogue, generate
from tests.independent.oracle import evaluate

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Observation": Observation,
    "Condition": Condition,
    "MedicationRequest": MedicationRequest,
}


@pytest.fixture(scope="module")
def one_pass() -> list[Case]:
    size = len(catalogue(Random(11), NOW))
    return generate(11, size, NOW)


def test_same_seed_same_cases() -> None:
    first, second = generate(5, 40, NOW), generate(5, 40, NOW)
    assert [(c.name, c.resources) for c in first] == [(c.name, c.resources) for c in second]
    assert [c.resources for c in generate(6, 40, NOW)] != [c.resources for c in first]


@pytest.mark.parametrize("n", [0, 1, 37])
def test_exactly_n_cases_with_unique_patients(n: int) -> None:
    cases = generate(2, n, NOW)
    assert len(cases) == n
    assert len({c.patient_id for c in cases}) == n
    for case in cases:
        patients = [r for r in case.resources if r["resourceType"] == "Patient"]
        assert [p["id"] for p in patients] == [case.patient_id]
        assert case.now == NOW


def test_more_cases_than_the_catalogue_repeat_probes_with_new_details() -> None:
    size = len(catalogue(Random(3), NOW))
    cases = generate(3, size + 10, NOW)
    assert len(cases) == size + 10
    assert any(c.name.endswith("#1") for c in cases)


def test_resources_are_valid_fhir(one_pass: list[Case]) -> None:
    for case in one_pass:
        for resource in case.resources:
            MODELS[resource["resourceType"]].model_validate(resource)


def test_every_set_reaches_each_outcome(one_pass: list[Case]) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    indicators: set[str | None] = set()
    for case in one_pass:
        result = evaluate(case.resources, case.patient_id, case.now)
        for key, outcome in result.sets.items():
            seen[key].add(outcome)
        indicators.add(result.indicator)
    everything = {"met", "not met", "unknown", "not applicable"}
    for key in ("trial", "eular2016", "hscore", "ms-score", "ferritin-esr", "sepsis-mas-features"):
        assert seen[key] == everything, key
    assert seen["hlh2004"] == {"met", "not met", "unknown"}  # HLH-2004 has no population gate
    assert indicators == {"critical", "warning", None}


def test_threshold_values_and_units_are_present(one_pass: list[Case]) -> None:
    written: set[tuple[str, float | int, str]] = set()
    for case in one_pass:
        for resource in case.resources:
            quantity = resource.get("valueQuantity")
            if quantity is not None and "code" in quantity:
                code = resource["code"]["coding"][0]["code"]
                written.add((code, quantity["value"], quantity["code"]))
    ferritin = {"2276-4", "20567-4", "24373-3"}
    expected: list[tuple[set[str], float, str]] = [
        (ferritin, 684, "ng/mL"),  # ferritin, 2016 criteria
        (ferritin, 2001, "ug/L"),
        ({"14927-8"}, 2.992, "mmol/L"),  # triglycerides near 265 mg/dL
        ({"14927-8"}, 1.5, "mmol/L"),  # HScore band
        ({"3255-7"}, 250, "mg/dL"),  # fibrinogen 2.5 g/L
        ({"48065-7", "48067-3"}, 0.5, "ug/mL{FEU}"),  # D-dimer 500 ng/mL
        ({"751-8", "26499-4"}, 1000, "/uL"),  # ANC 1.0 x 10^9/L
    ]
    for codes, value, unit in expected:
        assert any(w[0] in codes and w[1] == value and w[2] == unit for w in written), (codes, value, unit)
    temperature_codes = {w[0] for w in written if w[2] in ("Cel", "[degF]")}
    assert set(TEMPERATURE_SITES) | set(SURFACE_TEMPERATURE_SITES) <= temperature_codes
    assert any(w[2] == "[degF]" and w[1] == 101 for w in written)
