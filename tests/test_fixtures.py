"""Every fixture is valid FHIR R4 (fhir.resources R4B), matches its generator, and every case's cards
match its expectation through the HTTP app."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import (
    FIXTURE_EPOCH,
    FIXTURES_DIR,
    build_request,
    load_cases,
    load_order,
    load_patients,
    shift_times,
)
from cds_service.settings import PROJECT_ROOT
from tests.card_budget import budget_problems
from tests.conftest import FIXED_NOW

PATIENTS = load_patients()
CASES = load_cases()
REGISTRY = load_registry(PROJECT_ROOT / "hooks")


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_patient_fixture_is_valid_fhir(name: str) -> None:
    Bundle.model_validate(PATIENTS[name].bundle)
    Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in PATIENTS[name].resources(FIXED_NOW)],
        }
    )


@pytest.mark.parametrize("path", sorted((FIXTURES_DIR / "orders").glob("*.json")), ids=lambda p: p.stem)
def test_order_fixture_is_valid_fhir(path: Path) -> None:
    MedicationRequest.model_validate(json.loads(path.read_text()))


def test_fixture_files_are_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES_DIR / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, document in module.documents().items():
        assert json.loads(path.read_text()) == document, f"{path.name} is stale: run fixtures/make_fixtures.py"


def test_times_shift_to_now_and_ages_stay() -> None:
    patient = PATIENTS["child-sjia-mas-22kg"]
    later = FIXTURE_EPOCH + timedelta(days=400, hours=5)
    moved = {r["id"]: r for r in patient.resources(later)}
    original = {e["resource"]["id"]: e["resource"] for e in patient.bundle["entry"]}
    ferritin = "child-sjia-mas-22kg-ferritin-1"
    assert original[ferritin]["effectiveDateTime"] == "2026-01-01T08:00:00Z"
    assert moved[ferritin]["effectiveDateTime"] == "2027-02-05T13:00:00Z"
    assert moved["child-sjia-mas-22kg"]["birthDate"] == "2018-10-07"  # 400 days later
    assert shift_times({"x": ["2026-01-01"]}, timedelta(days=1)) == {"x": ["2026-01-01"]}


def test_every_case_names_existing_things() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert case.patient in PATIENTS
        assert REGISTRY.get(case.service) is not None
        if case.order:
            load_order(case.order)


def actual_cards(client: TestClient, case: Any) -> list[dict[str, Any]]:
    service = REGISTRY.get(case.service)
    assert service is not None
    order = load_order(case.order) if case.order else None
    body = build_request(PATIENTS[case.patient], service, hook=case.hook, now=FIXED_NOW, order=order)
    response = client.post(f"/cds-services/{REGISTRY.endpoint_id(case.service, case.hook)}", json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_cards_match_expectations(make_client: Any, case: Any) -> None:
    client = make_client()
    cards = actual_cards(client, case)
    actual = sorted((c["source"]["topic"]["code"], c["indicator"]) for c in cards)
    expected = sorted((e.topic, e.indicator) for e in case.expected)
    assert actual == expected, [c["summary"] for c in cards]
    for expectation in case.expected:
        if expectation.summary_contains:
            card = next(c for c in cards if c["source"]["topic"]["code"] == expectation.topic)
            assert expectation.summary_contains in card["summary"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_card_of_every_case_keeps_the_card_budget(make_client: Any, case: Any) -> None:
    """Issue #13: read in seconds in a 400 px panel (tests/card_budget.py states the budget)."""
    for card in actual_cards(make_client(), case):
        assert budget_problems(card) == [], (card["summary"], card.get("detail"))
