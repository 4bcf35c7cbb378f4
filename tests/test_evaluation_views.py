"""The hook, the app document and the worklist row come from one evaluation: they must agree."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from cds_service.cards.explanation import explain, screen_row
from cds_service.evaluation.mas import evaluate_mas, load_rules, record_from_resources
from cds_service.fhir.model import decode_payload
from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import build_request, load_patients
from cds_service.settings import PROJECT_ROOT
from tests.conftest import FIXED_NOW, make_settings

PATIENTS = load_patients()
REGISTRY = load_registry(PROJECT_ROOT / "hooks")


def _evaluate(name: str) -> Any:
    patient = PATIENTS[name]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in patient.resources(FIXED_NOW)]}
    resources = decode_payload(orjson.dumps(bundle)).resources
    rules = load_rules(make_settings("sqlite://"))
    return evaluate_mas(record_from_resources(patient.patient_id, resources), now=FIXED_NOW, rules=rules)


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_worklist_row_and_app_document_agree_with_the_patient_view_card(name: str, make_client: Any) -> None:
    client: TestClient = make_client()
    service = REGISTRY.get("mas-screen")
    assert service is not None
    body = build_request(PATIENTS[name], service, hook="patient-view", now=FIXED_NOW)
    cards = client.post("/cds-services/mas-screen", json=body).json()["cards"]
    evaluation = _evaluate(name)
    row = screen_row(evaluation)
    document = explain(evaluation, timezone=UTC, timezone_name="UTC")
    assert row.indicator == (cards[0]["indicator"] if cards else None)
    assert document["decision"]["indicator"] == row.indicator
    assert row.summary == (cards[0]["summary"] if cards else None)
    assert document["decision"]["setsMet"] == list(row.sets_met)
    met = [s["key"] for s in document["sets"] if s["applicable"] and s["outcome"] == "met"]
    assert sorted(met) == sorted(row.sets_met)
