"""context.patientId is the truth: data about another patient is never used, never shown, always audited.

The HealthChain 0.16.1 capture (../shared/captures) sent context.patientId "6506911" with a prefetch built
from another patient's record; before this check the service put that patient's critical MAS card and an
anakinra order into 6506911's chart.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import respx
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from cds_service.registry import load_registry
from cds_service.sandbox.fixtures import build_request, load_order, load_patients
from cds_service.settings import PROJECT_ROOT
from cds_service.storage.database import audit
from tests.builders import FHIR_BASE, searchset
from tests.conftest import FIXED_NOW

CAPTURES = Path(__file__).parent / "captures"  # copied from ../shared/captures (requests real clients sent)
PATIENTS = load_patients()
REGISTRY = load_registry(PROJECT_ROOT / "hooks")
MAS_PATIENT = "adult-sepsis-mas-82kg"


def _capture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CAPTURES / name).read_text())
    return document


def _relabel(document: Any, old: str, new: str) -> Any:
    """The same record, about patient `new` (every id and reference)."""
    return json.loads(json.dumps(document).replace(f'"{old}"', f'"{new}"').replace(f"Patient/{old}", f"Patient/{new}"))


def _patient_references(document: Any) -> set[str]:
    return set(re.findall(r"Patient/([A-Za-z0-9\-.]+)", json.dumps(document)))


def _audit_outcomes(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(audit.c.outcome)).scalars().all()
    engine.dispose()
    return list(rows)


def test_healthchain_capture_with_another_patients_prefetch_gets_no_card_for_that_patient(
    make_client: Callable[..., TestClient], sqlite_url: str
) -> None:
    body = _capture("healthchain-0.16.1--patient-view--request.json")
    assert body["context"]["patientId"] == "6506911"
    response = make_client().post("/cds-services/mas-screen", json=body)
    # The prefetch is all about another patient, so the required data is missing and there is no FHIR server.
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert MAS_PATIENT not in response.text
    assert any("identity mismatch" in outcome for outcome in _audit_outcomes(sqlite_url))
    assert not any(MAS_PATIENT in outcome for outcome in _audit_outcomes(sqlite_url))


def test_other_patients_prefetch_is_replaced_by_the_context_patients_data_from_the_fhir_server(
    make_client: Callable[..., TestClient],
) -> None:
    body = _capture("healthchain-0.16.1--patient-view--request.json")
    body["fhirServer"] = FHIR_BASE
    own = _relabel(
        PATIENTS["adult-normal-labs"].resources(FIXED_NOW), PATIENTS["adult-normal-labs"].patient_id, "6506911"
    )
    own_patient = next(r for r in own if r["resourceType"] == "Patient")
    own_observations = [r for r in own if r["resourceType"] == "Observation"]
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{FHIR_BASE}/Patient/6506911").respond(json=own_patient)
        labs = mock.get(f"{FHIR_BASE}/Observation").respond(json=searchset(*own_observations))
        mock.get(f"{FHIR_BASE}/Condition").respond(json=searchset())
        mock.get(f"{FHIR_BASE}/MedicationRequest").respond(json=searchset())
        response = make_client().post("/cds-services/mas-screen", json=body)
    assert response.status_code == 200, response.text
    assert labs.called  # the other patient's labs were not used: this patient's were fetched
    assert response.json() == {"cards": []}  # this patient's labs are normal


def test_a_mixed_prefetch_uses_only_the_context_patients_resources(make_client: Callable[..., TestClient]) -> None:
    ours = PATIENTS["adult-normal-labs"]
    theirs = PATIENTS[MAS_PATIENT]
    body = build_request(ours, REGISTRY.get("mas-screen"), hook="patient-view", now=FIXED_NOW)  # type: ignore[arg-type]
    their_request = build_request(theirs, REGISTRY.get("mas-screen"), hook="patient-view", now=FIXED_NOW)  # type: ignore[arg-type]
    # Their abnormal labs are appended to our labs bundle (an EHR interface mixing two charts).
    body["prefetch"]["labs"]["entry"] += their_request["prefetch"]["labs"]["entry"]
    response = make_client().post("/cds-services/mas-screen", json=body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}
    assert theirs.patient_id not in response.text


def test_a_draft_order_for_another_patient_is_not_checked_and_says_so(make_client: Callable[..., TestClient]) -> None:
    patient = PATIENTS["child-sjia-mas-22kg"]
    order = load_order("anakinra-150mg-q6h-overdose")
    body = build_request(
        patient,
        REGISTRY.get("anakinra-dose"),
        hook="order-sign",
        now=FIXED_NOW,
        order=order,  # type: ignore[arg-type]
    )
    body["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/someone-else"}
    response = make_client().post("/cds-services/anakinra-dose", json=body)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert [card["source"]["topic"]["code"] for card in cards] == ["anakinra-other-patient"]
    assert "someone-else" not in response.text
    assert "suggestions" not in cards[0]


ids = st.from_regex(r"\A[a-z][a-z0-9]{5,12}\Z")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    context_id=ids,
    other_id=ids,
    own_record=st.sampled_from([None, "adult-normal-labs", "child-sjia-mas-22kg", MAS_PATIENT]),
    other_record=st.sampled_from(["adult-sepsis-mas-82kg", "child-sjia-mas-52kg", "adult-ebv-hlh-65kg"]),
    mix=st.booleans(),
    hook=st.sampled_from(["patient-view", "order-sign"]),
)
def test_no_card_ever_names_a_patient_other_than_the_context_patient(
    make_client: Callable[..., TestClient],
    context_id: str,
    other_id: str,
    own_record: str | None,
    other_record: str,
    mix: bool,
    hook: str,
) -> None:
    if context_id in other_id or other_id in context_id:
        return
    service = REGISTRY.get("mas-screen" if hook == "patient-view" else "anakinra-dose")
    assert service is not None
    order = load_order("anakinra-100mg-q6h") if hook != "patient-view" else None
    other = PATIENTS[other_record]
    body = _relabel(build_request(other, service, hook=hook, now=FIXED_NOW, order=order), other.patient_id, other_id)
    body["context"]["patientId"] = context_id
    if own_record is not None:
        own = PATIENTS[own_record]
        own_body = _relabel(
            build_request(own, service, hook=hook, now=FIXED_NOW, order=order), own.patient_id, context_id
        )
        for key, value in own_body["prefetch"].items():
            theirs = body["prefetch"][key]
            if mix and isinstance(value, dict) and value.get("resourceType") == "Bundle":
                value = copy.deepcopy(value)
                value["entry"] = value.get("entry", []) + theirs.get("entry", [])
            body["prefetch"][key] = value
        if hook != "patient-view" and mix:
            body["context"]["draftOrders"] = own_body["context"]["draftOrders"]
    response = make_client().post(f"/cds-services/{service.id}", json=body)
    assert response.status_code in (200, 412), response.text
    assert other_id not in response.text
    assert _patient_references(response.json()) <= {context_id}
