"""Discovery and service-call status codes (CDS Hooks 2.0 §Discovery, §Calling a CDS Service)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient

from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS


def _issue_text(response_body: bytes) -> str:
    document = json.loads(response_body)
    assert document["resourceType"] == "OperationOutcome"
    return " ".join(issue["diagnostics"] for issue in document["issue"])


def test_discovery_lists_one_entry_per_hook_with_prefetch_and_version(core_client: TestClient) -> None:
    response = core_client.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("prefetch-probe-patient-view", "patient-view"),
        ("prefetch-probe-order-select", "order-select"),
    ]
    assert services[0]["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert services[0]["version"] == "2.0.1"
    assert "_config" not in services[0]


def test_call_answers_cards(core_client: TestClient) -> None:
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    response = core_client.post("/cds-services/prefetch-probe", json=body)
    assert response.status_code == 200
    assert response.json()["cards"][0]["summary"] == "prefetch report"


def test_unknown_top_level_keys_such_as_epic_extension_are_accepted(core_client: TestClient) -> None:
    body = hook_request(
        prefetch={"patient": patient(), "labs": None, "encounter": None},
        extension={"com.epic.cdshooks.request.bpa-trigger-action": "60"},
        futureField=[1, 2],
    )
    body["context"]["com.example.unknown"] = {"x": 1}
    assert core_client.post("/cds-services/prefetch-probe", json=body).status_code == 200


def test_unknown_service_is_404_with_operation_outcome(core_client: TestClient) -> None:
    response = core_client.post("/cds-services/no-such-service", json=hook_request())
    assert response.status_code == 404
    assert "no-such-service" in _issue_text(response.content)


def test_hook_not_served_by_the_id_is_400(core_client: TestClient) -> None:
    response = core_client.post("/cds-services/prefetch-probe", json=hook_request("order-sign"))
    assert response.status_code == 400
    assert "hook: expected patient-view or order-select at /cds-services/prefetch-probe, got 'order-sign'" in (
        _issue_text(response.content)
    )


def test_malformed_json_is_400(core_client: TestClient) -> None:
    response = core_client.post(
        "/cds-services/prefetch-probe",
        content=b'{"hook": "patient-view",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in _issue_text(response.content)


def test_each_missing_envelope_field_is_400(core_client: TestClient) -> None:
    for field in ("hook", "hookInstance", "context"):
        body = hook_request()
        del body[field]
        response = core_client.post("/cds-services/prefetch-probe", json=body)
        assert response.status_code == 400, field
        assert field in _issue_text(response.content)


def test_missing_required_context_field_is_400(core_client: TestClient) -> None:
    body = hook_request()
    del body["context"]["patientId"]
    response = core_client.post("/cds-services/prefetch-probe", json=body)
    assert response.status_code == 400
    assert "patientId" in _issue_text(response.content)


def test_wrong_types_are_400_not_500(core_client: TestClient) -> None:
    for body in (
        [],
        "text",
        {"hook": 1, "hookInstance": "x", "context": {}},
        {"hook": "patient-view", "hookInstance": "x", "context": []},
        {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "u", "patientId": 7}},
        {**hook_request(), "prefetch": []},
        {**hook_request(), "fhirAuthorization": {"access_token": "t"}},
    ):
        response = core_client.post("/cds-services/prefetch-probe", json=body)
        assert response.status_code == 400, body


def test_body_over_the_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, max_body_bytes=2000)
    body = hook_request(prefetch={"patient": patient(text={"div": "x" * 5000})})
    response = client.post("/cds-services/prefetch-probe", json=body)
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: the limit is enforced while streaming
        yield json.dumps(body).encode()

    response = client.post("/cds-services/prefetch-probe", content=chunks())
    assert response.status_code == 413


def test_wrong_method_and_unknown_path_answer_with_operation_outcome(core_client: TestClient) -> None:
    assert core_client.get("/cds-services/prefetch-probe").status_code == 405
    assert core_client.get("/nothing-here").status_code == 404


def test_health_and_readiness(core_client: TestClient) -> None:
    assert core_client.get("/healthz").json() == {"status": "ok"}
    deadline = time.monotonic() + 10  # ready once the background warm-up has run
    while core_client.get("/readyz").status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert core_client.get("/readyz").json() == {"status": "ready"}


def test_draft_orders_must_be_a_bundle_object(core_client: TestClient) -> None:
    body = hook_request("order-select")
    for bad in ([], "Bundle", 3):
        body["context"]["draftOrders"] = bad
        response = core_client.post("/cds-services/prefetch-probe", json=body)
        assert response.status_code == 400
        assert "context.draftOrders: expected a FHIR Bundle (an object)" in _issue_text(response.content)
