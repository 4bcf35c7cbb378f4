"""Scenarios through the HTTP app for `anakinra-dose` on order-select and order-sign."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import respx
from fastapi.testclient import TestClient
from fhir.resources.R4B.medicationrequest import MedicationRequest as FhirMedicationRequest

from tests.builders import FHIR_BASE
from tests.clinical_builders import (
    anakinra_order,
    born_years_ago,
    bundle,
    dose_prefetch,
    measurement,
    normal_safety_labs,
    order_request,
    other_order,
    patient,
    weight,
)

URL = "/cds-services/anakinra-dose"
ADULT = patient(born_years_ago(45), "male")
CHILD = patient(born_years_ago(9), "female")


@pytest.fixture
def client(make_client: Any) -> TestClient:
    result: TestClient = make_client()
    return result


def call(client: TestClient, hook: str, orders: list[dict[str, Any]], **prefetch: Any) -> list[dict[str, Any]]:
    labs = prefetch.pop("labs", normal_safety_labs())
    body = order_request(hook, orders, prefetch=dose_prefetch(labs=labs, **prefetch))
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def dose_card(cards: list[dict[str, Any]]) -> dict[str, Any]:
    matching = [c for c in cards if c["source"]["topic"]["code"] == "anakinra-dose-check"]
    assert len(matching) == 1, [c["summary"] for c in cards]
    return matching[0]


def topics(cards: list[dict[str, Any]]) -> list[str]:
    return [card["source"]["topic"]["code"] for card in cards]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_correct_order_with_complete_data_gives_no_card(client: TestClient, hook: str) -> None:
    cards = call(client, hook, [anakinra_order(100, every_hours=6)], patient_resource=ADULT, weights=[weight(82)])
    assert cards == []


def test_overdose_is_critical_on_sign_and_warning_on_select(client: TestClient) -> None:
    order = anakinra_order(150, every_hours=6)
    signed = dose_card(call(client, "order-sign", [order], patient_resource=ADULT, weights=[weight(82)]))
    selected = dose_card(call(client, "order-select", [order], patient_resource=ADULT, weights=[weight(82)]))
    assert signed["indicator"] == "critical"
    assert selected["indicator"] == "warning"
    assert signed["summary"].startswith("Anakinra 150 mg q6h: above protocol max 100 mg/dose")
    assert "MedicationRequest/" not in signed["detail"]  # no raw resource ids on a card (issue #13)
    assert "would be placed as written" in signed["detail"] and "critical if signed unchanged" in selected["detail"]
    assert "5 mg/kg/day × 82 kg = 410 mg/day, cap 400 → 400 ÷ 4 = 100 mg every 6 h (0.67 mL)" in signed["detail"]


def test_overdose_suggests_the_same_order_with_the_protocol_dosage(client: TestClient) -> None:
    order = anakinra_order(
        150,
        every_hours=6,
        encounter={"reference": "Encounter/e1"},
        extension=[{"url": "http://ehr.example/x", "valueString": "keep me"}],
    )
    card = dose_card(call(client, "order-sign", [order], patient_resource=ADULT, weights=[weight(60)]))
    assert card["selectionBehavior"] == "any"
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    resource = action["resource"]
    assert action["type"] == "update"
    assert resource["id"] == "mr-anakinra"
    assert resource["encounter"] == {"reference": "Encounter/e1"}
    assert resource["extension"][0]["valueString"] == "keep me"
    (dosage,) = resource["dosageInstruction"]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 75,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 6, "periodUnit": "h"}
    assert dosage["route"]["coding"][0]["code"] == "34206005"
    FhirMedicationRequest.model_validate(resource)  # what we emit is valid FHIR


def test_wrong_interval_warns_and_suggests_q12h_for_a_child(client: TestClient) -> None:
    cards = call(
        client,
        "order-sign",
        [anakinra_order(50, every_hours=6)],
        patient_resource=CHILD,
        weights=[weight(20)],
        heights=[measurement("8302-2", 130, "cm")],
    )
    card = dose_card(cards)
    assert card["indicator"] == "warning"
    assert "wrong interval" in card["summary"]
    assert card["suggestions"][0]["label"] == "Change to 100 mg every 12 h subcutaneously (200 mg/day)"


def test_ml_based_order_is_converted_and_accepted(client: TestClient) -> None:
    cards = call(
        client,
        "order-sign",
        [anakinra_order(0.67, "mL", every_hours=12)],
        patient_resource=CHILD,
        weights=[weight(25)],
        heights=[measurement("8302-2", 130, "cm")],
    )
    assert cards == []


def test_ml_based_overdose_shows_the_conversion(client: TestClient) -> None:
    cards = call(
        client,
        "order-sign",
        [anakinra_order(1, "mL", every_hours=12)],
        patient_resource=CHILD,
        weights=[weight(25)],
        heights=[measurement("8302-2", 130, "cm")],
    )
    card = dose_card(cards)
    assert card["indicator"] == "critical"
    assert "1 mL (= 149.2 mg at 100 mg/0.67 mL)" in card["detail"]


def test_missing_weight_asks_for_one_and_offers_no_dose(client: TestClient) -> None:
    card = dose_card(call(client, "order-sign", [anakinra_order(100, every_hours=6)], patient_resource=ADULT))
    assert card["indicator"] == "warning"
    assert card["summary"] == "Anakinra 100 mg q6h: dose not verifiable, needs a current body weight"
    assert "suggestions" not in card


def test_stale_weight_is_not_used(client: TestClient) -> None:
    stale = weight(82, ago=timedelta(days=31))
    card = dose_card(
        call(client, "order-sign", [anakinra_order(100, every_hours=6)], patient_resource=ADULT, weights=[stale])
    )
    assert "older than 30 days" in card["detail"]
    assert "suggestions" not in card


def test_cancelled_weight_is_never_used(client: TestClient) -> None:
    card = dose_card(
        call(
            client,
            "order-sign",
            [anakinra_order(100, every_hours=6)],
            patient_resource=ADULT,
            weights=[weight(82, status="entered-in-error")],
        )
    )
    assert "no usable body weight" in card["detail"]


def test_non_anakinra_order_gets_no_card_and_no_fhir_query(client: TestClient) -> None:
    body = order_request("order-sign", [other_order()])
    body["fhirServer"] = FHIR_BASE
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(url__startswith=FHIR_BASE).respond(json=bundle())
        response = client.post(URL, json=body)
    assert response.json() == {"cards": []}
    assert not route.called


def test_order_select_checks_only_the_selected_order(client: TestClient) -> None:
    orders = [other_order("mr-other"), anakinra_order(150, every_hours=6)]
    body = order_request(
        "order-select",
        orders,
        selections=["MedicationRequest/mr-other"],
        prefetch=dose_prefetch(patient_resource=ADULT, weights=[weight(82)], labs=normal_safety_labs()),
    )
    # The clinician selected another drug: the unsigned anakinra draft gets no card now (it will at signing).
    assert client.post(URL, json=body).json()["cards"] == []
    body["context"]["selections"] = ["MedicationRequest/mr-anakinra"]
    assert dose_card(client.post(URL, json=body).json()["cards"])["indicator"] == "warning"
    body["context"]["selections"] = ["MedicationRequest/not-in-the-drafts"]  # inconsistent: check every draft
    assert dose_card(client.post(URL, json=body).json()["cards"])["indicator"] == "warning"
    body["context"]["selections"] = []
    assert dose_card(client.post(URL, json=body).json()["cards"])["indicator"] == "warning"


@pytest.mark.parametrize("where", ["contained", "bundle", "fhir"])
def test_medication_reference_is_resolved(client: TestClient, where: str) -> None:
    medication = {
        "resourceType": "Medication",
        "id": "med1",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "385549000"}]},
    }
    reference = "#med1" if where == "contained" else "Medication/med1"
    order = anakinra_order(150, every_hours=6, medication={"medicationReference": {"reference": reference}})
    extra: list[dict[str, Any]] = []
    if where == "contained":
        order["contained"] = [medication]
    elif where == "bundle":
        extra = [medication]
    body = order_request(
        "order-sign",
        [order],
        extra_entries=extra,
        prefetch=dose_prefetch(patient_resource=ADULT, weights=[weight(82)], labs=normal_safety_labs()),
    )
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(f"{FHIR_BASE}/Medication/med1").respond(json=medication)
        if where == "fhir":
            body["fhirServer"] = FHIR_BASE
            body["fhirAuthorization"] = {
                "access_token": "tok",
                "token_type": "Bearer",
                "expires_in": 60,
                "scope": "patient/*.read",
                "subject": "svc",
            }
        response = client.post(URL, json=body)
    assert dose_card(response.json()["cards"])["indicator"] == "critical"
    assert route.called is (where == "fhir")


def test_renal_warning_for_an_adult(client: TestClient) -> None:
    labs = [measurement("2160-0", 4.0, "mg/dL"), measurement("751-8", 4.0, "10*3/uL")]
    cards = call(
        client,
        "order-sign",
        [anakinra_order(100, every_hours=6)],
        patient_resource=ADULT,
        weights=[weight(82)],
        labs=labs,
    )
    assert topics(cards) == ["anakinra-renal"]
    assert "every-other-day" in cards[0]["summary"]
    assert "Cockcroft-Gault" in cards[0]["detail"]


def test_renal_warning_for_a_child_uses_schwartz(client: TestClient) -> None:
    labs = [measurement("14682-9", 200, "umol/L"), measurement("751-8", 4.0, "10*3/uL")]
    cards = call(
        client,
        "order-sign",
        [anakinra_order(100, every_hours=12)],
        patient_resource=CHILD,
        weights=[weight(30)],
        heights=[measurement("8302-2", 130, "cm")],
        labs=labs,
    )
    assert topics(cards) == ["anakinra-renal"]
    assert "bedside Schwartz" in cards[0]["detail"]


def test_anc_warning(client: TestClient) -> None:
    labs = [measurement("2160-0", 0.8, "mg/dL"), measurement("751-8", 1200, "/uL")]
    cards = call(
        client,
        "order-sign",
        [anakinra_order(100, every_hours=6)],
        patient_resource=ADULT,
        weights=[weight(82)],
        labs=labs,
    )
    assert topics(cards) == ["anakinra-neutropenia"]
    assert "ANC 1.2" in cards[0]["summary"]


def test_tnf_inhibitor_and_duplicate_anakinra_warnings(client: TestClient) -> None:
    active = [
        other_order("mr-eta", "etanercept 50 mg/mL", status="active"),
        anakinra_order(100, every_hours=6, order_id="mr-old", status="active"),
    ]
    cards = call(
        client,
        "order-sign",
        [anakinra_order(100, every_hours=6)],
        patient_resource=ADULT,
        weights=[weight(82)],
        medications=active,
    )
    assert sorted(topics(cards)) == ["anakinra-duplicate", "anakinra-tnf-inhibitor"]
    duplicate = next(c for c in cards if c["source"]["topic"]["code"] == "anakinra-duplicate")
    assert "(active order)" in duplicate["summary"]
    assert "MedicationRequest/" not in duplicate["summary"] + duplicate["detail"]  # names, never raw ids


def test_missing_safety_data_is_listed(client: TestClient) -> None:
    cards = call(
        client,
        "order-sign",
        [anakinra_order(100, every_hours=6)],
        patient_resource=ADULT,
        weights=[weight(82)],
        labs=[],
    )
    (card,) = cards
    assert card["indicator"] == "info"
    assert "serum creatinine" in card["detail"] and "absolute neutrophil count" in card["detail"]


def test_weight_is_fetched_from_the_fhir_server_when_not_prefetched(client: TestClient) -> None:
    order = anakinra_order(150, every_hours=6)
    body = order_request(
        "order-sign",
        [order],
        prefetch={
            "patient": ADULT,
            "heights": None,
            "safety_labs": bundle(*normal_safety_labs()),
            "medications": bundle(),
        },
    )
    body["fhirServer"] = FHIR_BASE
    with respx.mock() as mock:
        route = mock.get(f"{FHIR_BASE}/Observation").respond(json=bundle(weight(60)))
        cards = client.post(URL, json=body).json()["cards"]
    assert route.calls.last.request.url.params["code"] == "http://loinc.org|29463-7,http://loinc.org|3141-9"
    assert "5 mg/kg/day × 60 kg = 300 mg/day" in dose_card(cards)["detail"]


def test_missing_patient_without_server_is_412(client: TestClient) -> None:
    body = order_request("order-sign", [anakinra_order(100)], prefetch={})
    response = client.post(URL, json=body)
    assert response.status_code == 412


def test_implausible_weight_is_named_on_the_card(client: TestClient) -> None:
    card = dose_card(
        call(
            client,
            "order-sign",
            [anakinra_order(100, every_hours=6)],
            patient_resource=ADULT,
            weights=[weight(820, obs_id="w-typo")],
        )
    )
    assert "no usable body weight" in card["detail"]
    assert "820 kg is outside the plausible range" in card["detail"]
    assert "w-typo" not in card["detail"]


def test_medication_reference_by_urn_uuid_full_url(client: TestClient) -> None:
    medication = {"resourceType": "Medication", "code": {"text": "Kineret 100 mg/0.67 mL"}}
    order = anakinra_order(150, every_hours=6, medication={"medicationReference": {"reference": "urn:uuid:5b1f"}})
    body = order_request(
        "order-sign",
        [order],
        prefetch=dose_prefetch(patient_resource=ADULT, weights=[weight(82)], labs=normal_safety_labs()),
    )
    body["context"]["draftOrders"]["entry"].append({"fullUrl": "urn:uuid:5b1f", "resource": medication})
    with respx.mock(assert_all_mocked=True, assert_all_called=False):  # nothing may be fetched
        response = client.post(URL, json=body)
    assert dose_card(response.json()["cards"])["indicator"] == "critical"
