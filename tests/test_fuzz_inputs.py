"""Hypothesis-generated bodies never produce a 5xx: errors are 4xx answers with an OperationOutcome
(the contract hook on the client checks every response)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.app import create_app
from tests.clinical_builders import anakinra_order, dose_prefetch, order_request, patient
from tests.conftest import FIXED_NOW, contract_client, make_settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
fhir_like = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Observation", "Patient", "Bundle", "MedicationRequest", "Medication", "X"])},
    optional={
        "id": json_values,
        "status": json_values,
        "code": json_values,
        "valueQuantity": json_values,
        "effectiveDateTime": json_values,
        "entry": st.lists(st.fixed_dictionaries({"resource": json_values}), max_size=3),
        "birthDate": json_values,
        "dosageInstruction": json_values,
        "medicationReference": json_values,
        "subject": json_values,
        "link": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = tmp_path_factory.mktemp("fuzz") / "cds.sqlite3"
    with contract_client(create_app(make_settings(f"sqlite:///{database}"), clock=lambda: FIXED_NOW)) as client:
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_arbitrary_json_bodies(fuzz_client: TestClient, body: Any) -> None:
    response = fuzz_client.post("/cds-services/anakinra-dose", json=body)
    assert response.status_code in (400, 404)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weights=st.lists(fhir_like, max_size=3),
    order=fhir_like,
    patient_value=st.one_of(fhir_like, json_values),
    hook=st.sampled_from(["order-select", "order-sign"]),
)
def test_hostile_prefetch_and_orders(
    fuzz_client: TestClient, weights: list[Any], order: Any, patient_value: Any, hook: str
) -> None:
    client = fuzz_client
    prefetch = dose_prefetch(patient_resource=patient(), weights=weights)
    prefetch["patient"] = patient_value
    body = order_request(hook, [anakinra_order(100), order], prefetch=prefetch)
    response = client.post("/cds-services/anakinra-dose", json=body)
    assert response.status_code in (200, 400, 412)
