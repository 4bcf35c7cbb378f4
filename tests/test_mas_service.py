"""Scenarios through the HTTP app for `mas-screen` (patient-view), over the fixture patients."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import respx
from fastapi.testclient import TestClient
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.cards.explanation import explain
from cds_service.evaluation.mas import evaluate_mas, load_rules, record_from_resources
from cds_service.fhir.model import decode_payload
from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import build_request, load_patients, store_for
from cds_service.settings import PROJECT_ROOT
from tests.builders import FHIR_BASE
from tests.conftest import FIXED_NOW, make_settings

PATIENTS = load_patients()
SERVICE = load_registry(PROJECT_ROOT / "hooks").get("mas-screen")
URL = "/cds-services/mas-screen"


@pytest.fixture
def client(make_client: Any) -> TestClient:
    result: TestClient = make_client()
    return result


def screen(client: TestClient, patient: str, **kwargs: Any) -> list[dict[str, Any]]:
    assert SERVICE is not None
    body = build_request(PATIENTS[patient], SERVICE, hook="patient-view", now=FIXED_NOW, **kwargs)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def resources_of(card: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        a["resource"]
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a["resource"]["resourceType"] == kind
    ]


def document(patient: str) -> dict[str, Any]:
    """The full work-up document (what the app renders) for a fixture patient, from the same evaluation."""
    fixture = PATIENTS[patient]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in fixture.resources(FIXED_NOW)]}
    resources = decode_payload(orjson.dumps(bundle)).resources
    rules = load_rules(make_settings("sqlite://"))
    evaluation = evaluate_mas(record_from_resources(fixture.patient_id, resources), now=FIXED_NOW, rules=rules)
    return explain(evaluation, timezone=UTC, timezone_name="UTC")


def set_of(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(s for s in doc["sets"] if s["key"] == key)


def row(result: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in result["criteria"] if r["key"] == key)


def test_adult_sepsis_mas_critical_card_with_protocol_anakinra(client: TestClient) -> None:
    (card,) = screen(client, "adult-sepsis-mas-82kg")
    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Possible MAS: ferritin 8,450 ng/mL, platelets 62 ×10⁹/L — trial criteria and HScore ≥ 169 met"
    )
    detail = card["detail"]
    assert detail.startswith("**MAS likely:** trial criteria and HScore ≥ 169 (226 to 299) met.")
    assert "| Ferritin | 8,450 ng/mL | 10 Mar 09:00 |" in detail
    assert "**Anakinra (NCT02780583):** 100 mg SC every 6 h (400 mg/day, 82 kg)" in detail
    (order,) = resources_of(card, "MedicationRequest")
    MedicationRequest.model_validate(order)
    assert (order["status"], order["intent"]) == ("draft", "order")
    assert order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 100
    assert order["dosageInstruction"][0]["timing"]["repeat"]["period"] == 6
    assert order["subject"] == {"reference": "Patient/adult-sepsis-mas-82kg"}
    assert card["selectionBehavior"] == "any"
    smart = [link for link in card["links"] if link["type"] == "smart"]
    assert smart and smart[0]["url"].endswith("/app/launch")
    assert {link["url"] for link in card["links"]} >= {"https://clinicaltrials.gov/study/NCT02780583"}
    assert {reason["code"] for reason in card["overrideReasons"]} >= {"not-mas", "data-wrong"}
    # Everything else is in the work-up document the app renders.
    doc = document("adult-sepsis-mas-82kg")
    ferritin = row(set_of(doc, "trial-no-sjia"), "ferritin")
    assert (ferritin["status"], ferritin["value"], ferritin["threshold"]) == ("met", "8,450 ng/mL", "> 2,000 ng/mL")
    assert ferritin["source"] == "Observation/adult-sepsis-mas-82kg-ferritin-1"
    assert set_of(doc, "hscore")["summary"].startswith("score 226 to 299 (cutoff ≥ 169)")
    falling = row(doc["trends"], "platelets-falling")
    assert falling["status"] == "met" and "−55.7 % in 47 h" in falling["value"]
    assert "400 mg/day ÷ 4 doses = 100 mg every 6 h" in " ".join(doc["dose"]["lines"])


def test_child_sjia_gets_the_q12h_band(client: TestClient) -> None:
    (card,) = screen(client, "child-sjia-mas-22kg")
    (order,) = resources_of(card, "MedicationRequest")
    dosage = order["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 100
    assert dosage["timing"]["repeat"]["period"] == 12
    doc = document("child-sjia-mas-22kg")
    assert set_of(doc, "trial-sjia")["outcome"] == "met"
    assert set_of(doc, "eular2016")["outcome"] == "met"
    assert not set_of(doc, "hscore")["applicable"]  # a child: HScore was derived in adults


def test_stills_disease_notes_lower_specificity() -> None:
    assert "specificity is about 70 %" in " ".join(set_of(document("adult-stills-70kg"), "eular2016")["notes"])


def test_high_ferritin_alone_is_a_warning_with_grouped_workup_orders(client: TestClient) -> None:
    (card,) = screen(client, "adult-high-ferritin-alone")
    assert card["indicator"] == "warning"
    assert not resources_of(card, "MedicationRequest")
    requests = resources_of(card, "ServiceRequest")
    codes = {r["code"]["coding"][0]["code"] for r in requests}
    # Panels as clinicians order them: CBC with differential, hepatic panel, coagulation tests, triglycerides.
    assert {"57021-8", "24325-3", "3255-7", "2571-8"} <= codes
    assert "2276-4" not in codes  # ferritin was measured
    assert len(requests) <= 7  # a handful of buttons, not one per analyte
    for request in requests:
        ServiceRequest.model_validate(request)
        assert request["code"]["coding"][0]["system"] == "http://loinc.org"


def test_normal_labs_give_no_card(client: TestClient) -> None:
    assert screen(client, "adult-normal-labs") == []


def test_stale_and_cancelled_results_are_ignored_and_listed(client: TestClient) -> None:
    assert screen(client, "adult-stale-and-cancelled") == []


def test_mixed_units_are_converted() -> None:
    doc = document("child-mixed-units-30kg")
    rows = [r for result in doc["sets"] for r in result["criteria"]]
    values = {r["value"] for r in rows if r["value"]}
    assert "10,000 ng/mL" in values  # ferritin given in pmol/L
    assert "130 mg/dL" in values  # fibrinogen 1.3 g/L
    assert "283.424 mg/dL" in values  # triglycerides 3.2 mmol/L × 88.57
    assert "39.222 °C" in values  # 102.6 °F


def test_missing_weight_offers_no_anakinra_and_asks_for_weight(client: TestClient) -> None:
    (card,) = screen(client, "adult-sepsis-mas-missing-weight")
    assert not resources_of(card, "MedicationRequest")
    assert (
        "**Anakinra not suggested:** no usable body weight on record; please record a current body weight"
        in card["detail"]
    )


def test_already_on_anakinra_offers_no_new_order(client: TestClient) -> None:
    (card,) = screen(client, "adult-sepsis-mas-on-anakinra")
    assert not resources_of(card, "MedicationRequest")
    assert "**Anakinra:** already ordered; no new order suggested." in card["detail"]


def test_malignancy_is_noted_as_a_trial_exclusion(client: TestClient) -> None:
    (card,) = screen(client, "adult-lymphoma-hlh-75kg")
    assert not resources_of(card, "MedicationRequest")
    assert "**Anakinra not suggested:** active malignancy coded" in card["detail"]


def test_prefetch_absent_falls_back_to_the_fhir_server(client: TestClient) -> None:
    patient = PATIENTS["adult-sepsis-mas-82kg"]
    store = store_for(patient, FIXED_NOW)
    assert SERVICE is not None
    body = build_request(patient, SERVICE, hook="patient-view", now=FIXED_NOW, prefetch=False, fhir_server=FHIR_BASE)
    body["fhirAuthorization"] = {
        "access_token": "tok-1",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "mas-cds",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok-1"
        relative = request.url.path.removeprefix("/r4/")
        query = "&".join(f"{k}={v}" for k, v in parse_qsl(request.url.query.decode()))
        document = store.query(f"{relative}?{query}" if query else relative)
        return httpx.Response(200, json=document) if document else httpx.Response(404)

    with respx.mock() as mock:
        route = mock.get(url__startswith=FHIR_BASE).mock(side_effect=answer)
        response = client.post(URL, json=body)
    assert route.call_count == 5  # patient, labs, vitals, conditions, medications, in parallel
    (card,) = response.json()["cards"]
    assert card["summary"].startswith("Possible MAS: ferritin 8,450 ng/mL, platelets 62 ×10⁹/L — trial criteria")


def test_without_labs_and_without_server_the_answer_is_412(client: TestClient) -> None:
    assert SERVICE is not None
    body = build_request(PATIENTS["adult-sepsis-mas-82kg"], SERVICE, hook="patient-view", now=FIXED_NOW)
    del body["prefetch"]["labs"]
    response = client.post(URL, json=body)
    assert response.status_code == 412
    assert "'labs'" in response.json()["issue"][0]["diagnostics"]


def test_unavailable_conditions_are_said_on_the_card(client: TestClient) -> None:
    assert SERVICE is not None
    body = build_request(PATIENTS["child-sjia-mas-22kg"], SERVICE, hook="patient-view", now=FIXED_NOW)
    del body["prefetch"]["conditions"]
    (card,) = client.post(URL, json=body).json()["cards"]
    assert "**Not checked:** conditions could not be read" in card["detail"]
    assert "trial criteria met" in card["summary"]  # without the condition, the path without sJIA applies
