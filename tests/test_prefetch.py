"""Prefetch provided / missing / null / OperationOutcome / paged, FHIR fallback and 412 (respx)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from tests.builders import FHIR_BASE, hook_request, observation, outcome, patient, searchset
from tests.conftest import CORE_HOOKS

TOKEN = "secret-access-token-123"
LABS_URL = f"{FHIR_BASE}/Observation"


def _report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    report: dict[str, Any] = json.loads(response.json()["cards"][0]["detail"])
    return report


def _with_server(body: dict[str, Any]) -> dict[str, Any]:
    body["fhirServer"] = FHIR_BASE
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    return body


def test_provided_keys_are_used_and_null_means_no_data(core_client: TestClient) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        body = hook_request(prefetch={"patient": patient(), "labs": searchset(observation("o1")), "encounter": None})
        report = _report(core_client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert report["patient"] == {"status": "provided", "ids": ["pat1"], "notes": [], "complete": True}
    assert report["labs"]["ids"] == ["o1"]
    assert report["encounter"]["status"] == "no data"
    assert mock.calls.call_count == 0  # null is not fetched


def test_missing_keys_are_fetched_in_parallel_with_the_bearer_token(core_client: TestClient) -> None:
    with respx.mock(assert_all_called=True) as mock:
        patient_route = mock.get(f"{FHIR_BASE}/Patient/pat1").respond(json=patient())
        labs_route = mock.get(LABS_URL).respond(json=searchset(observation("o9")))
        encounter_route = mock.get(f"{FHIR_BASE}/Encounter/enc1").respond(
            json={"resourceType": "Encounter", "id": "enc1"}
        )
        body = hook_request()
        body["context"]["encounterId"] = "enc1"
        report = _report(core_client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert report["patient"]["status"] == "fetched"
    assert report["labs"]["ids"] == ["o9"]
    assert report["encounter"]["status"] == "fetched"  # a type no rule reads is skipped, not an error
    for route in (patient_route, labs_route, encounter_route):
        request = route.calls.last.request
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/fhir+json"
    query = labs_route.calls.last.request.url.params
    assert query["patient"] == "pat1"
    assert query["code"] == "http://loinc.org|2276-4"


def test_fallback_without_token_sends_no_authorization_header(core_client: TestClient) -> None:
    with respx.mock() as mock:
        route = mock.get(f"{FHIR_BASE}/Patient/pat1").respond(json=patient())
        body = hook_request(fhirServer=FHIR_BASE, prefetch={"labs": None, "encounter": None})
        _report(core_client.post("/cds-services/prefetch-probe", json=body))
    assert "authorization" not in route.calls.last.request.headers


def test_required_key_without_fhir_server_is_412(core_client: TestClient) -> None:
    response = core_client.post("/cds-services/prefetch-probe", json=hook_request(prefetch={"labs": None}))
    assert response.status_code == 412
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert "'patient'" in diagnostics and "no fhirServer" in diagnostics


def test_optional_key_unavailable_is_reported_not_fatal(core_client: TestClient) -> None:
    report = _report(
        core_client.post("/cds-services/prefetch-probe", json=hook_request(prefetch={"patient": patient()}))
    )
    assert report["labs"]["status"] == "unavailable"
    assert report["labs"]["notes"] == ["no fhirServer in the request"]
    # encounterId is not in the context, so its query cannot be made (and is not guessed)
    assert report["encounter"]["status"] == "unavailable"


def test_prefetched_operation_outcome_counts_as_missing_and_is_fetched(core_client: TestClient) -> None:
    with respx.mock() as mock:
        route = mock.get(f"{FHIR_BASE}/Patient/pat1").respond(json=patient())
        body = hook_request(prefetch={"patient": outcome("timeout"), "labs": None, "encounter": None})
        report = _report(core_client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert route.called
    assert report["patient"]["status"] == "fetched"
    assert report["patient"]["notes"] == ["prefetch: OperationOutcome: timeout"]


def test_prefetched_operation_outcome_without_server_is_412(core_client: TestClient) -> None:
    body = hook_request(prefetch={"patient": outcome("no access"), "labs": None, "encounter": None})
    assert core_client.post("/cds-services/prefetch-probe", json=body).status_code == 412


def test_operation_outcome_entries_in_a_searchset_are_notes_not_data(core_client: TestClient) -> None:
    labs = searchset(observation("o1"))
    labs["entry"].append({"resource": outcome("Resource request returns no results."), "search": {"mode": "outcome"}})
    body = hook_request(prefetch={"patient": patient(), "labs": labs, "encounter": None})
    report = _report(core_client.post("/cds-services/prefetch-probe", json=body))
    assert report["labs"]["ids"] == ["o1"]
    assert report["labs"]["notes"] == ["OperationOutcome: Resource request returns no results."]


def test_next_pages_of_a_prefetched_bundle_are_followed_with_the_token(core_client: TestClient) -> None:
    page2 = f"{FHIR_BASE}/Observation?page=2"
    page3 = f"{FHIR_BASE}/Observation?page=3"
    with respx.mock() as mock:
        route2 = mock.get(page2).respond(json=searchset(observation("o2"), next_url=page3))
        mock.get(page3).respond(json=searchset(observation("o3")))
        body = hook_request(
            prefetch={
                "patient": patient(),
                "labs": searchset(observation("o1"), next_url=page2),
                "encounter": None,
            }
        )
        report = _report(core_client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert report["labs"] == {"status": "provided", "ids": ["o1", "o2", "o3"], "notes": [], "complete": True}
    assert route2.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


def test_paging_stops_at_the_cap_and_says_so(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, fhir_max_pages=2)
    with respx.mock(assert_all_called=False) as mock:
        mock.get(LABS_URL, params={"page": "2"}).respond(
            json=searchset(observation("o2"), next_url=f"{LABS_URL}?page=3")
        )
        mock.get(LABS_URL, params={"page": "3"}).respond(
            json=searchset(observation("o3"), next_url=f"{LABS_URL}?page=4")
        )
        page4 = mock.get(LABS_URL, params={"page": "4"}).respond(json=searchset(observation("o4")))
        body = hook_request(
            prefetch={
                "patient": patient(),
                "labs": searchset(observation("o1"), next_url=f"{LABS_URL}?page=2"),
                "encounter": None,
            }
        )
        report = _report(client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert report["labs"]["ids"] == ["o1", "o2", "o3"]
    assert report["labs"]["complete"] is False
    assert "stopped after 2 pages" in report["labs"]["notes"][0]
    assert not page4.called


def test_next_link_to_another_host_is_not_followed_and_gets_no_token(core_client: TestClient) -> None:
    with respx.mock(assert_all_called=False) as mock:
        elsewhere = mock.get("https://attacker.example/steal").respond(json=searchset())
        body = hook_request(
            prefetch={
                "patient": patient(),
                "labs": searchset(observation("o1"), next_url="https://attacker.example/steal"),
                "encounter": None,
            }
        )
        report = _report(core_client.post("/cds-services/prefetch-probe", json=_with_server(body)))
    assert not elsewhere.called
    assert report["labs"]["ids"] == ["o1"]
    assert report["labs"]["complete"] is False


@pytest.mark.parametrize("failure", [httpx.Response(500), httpx.Response(401), httpx.ConnectError("down")])
def test_fhir_server_failure_on_required_data_is_412(core_client: TestClient, failure: Any) -> None:
    with respx.mock() as mock:
        route = mock.get(f"{FHIR_BASE}/Patient/pat1")
        if isinstance(failure, Exception):
            route.side_effect = failure
        else:
            route.return_value = failure
        body = hook_request(prefetch={"labs": None, "encounter": None})
        response = core_client.post("/cds-services/prefetch-probe", json=_with_server(body))
    assert response.status_code == 412
    assert TOKEN not in response.text


def test_fhir_server_timing_out_gives_412_within_the_deadline(make_client: Callable[..., TestClient]) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, fhir_deadline_seconds=0.3)

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, json=patient())

    with respx.mock(assert_all_called=False) as mock:  # cancelled calls are not recorded
        mock.get(f"{FHIR_BASE}/Patient/pat1").mock(side_effect=hang)
        mock.get(LABS_URL).mock(side_effect=hang)
        started = time.monotonic()
        response = client.post(
            "/cds-services/prefetch-probe", json=_with_server(hook_request(prefetch={"encounter": None}))
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert "did not answer within the deadline" in response.text
    assert elapsed < 1.5


def test_malformed_entries_are_reported_and_the_rest_is_used(core_client: TestClient) -> None:
    labs = searchset(
        observation("good"),
        {"resourceType": "Observation", "id": "bad", "valueQuantity": {"value": "high"}},
        {"resourceType": "Provenance", "id": "p"},
    )
    body = hook_request(prefetch={"patient": patient(), "labs": labs, "encounter": None})
    report = _report(core_client.post("/cds-services/prefetch-probe", json=body))
    assert report["labs"]["ids"] == ["good"]
    assert len(report["labs"]["notes"]) == 1 and report["labs"]["notes"][0].startswith("entry 1:")


def test_a_prefetch_value_that_is_not_fhir_does_not_fail_the_call(core_client: TestClient) -> None:
    body = hook_request(prefetch={"patient": patient(), "labs": [1, 2], "encounter": "text"})
    report = _report(core_client.post("/cds-services/prefetch-probe", json=body))
    assert report["labs"]["ids"] == [] and report["labs"]["notes"]


def test_fallback_query_values_are_percent_encoded(core_client: TestClient) -> None:
    """`code=http://loinc.org|2276-4` goes out as `http%3A%2F%2Floinc.org%7C2276-4`: the same search to any FHIR
    server, and a proxy that collapses "//" (the SMART reference launcher's does) cannot turn it into http:/..."""
    with respx.mock() as mock:
        mock.get(f"{FHIR_BASE}/Patient/pat1").respond(json=patient())
        labs = mock.get(LABS_URL).respond(json=searchset(observation("o1")))
        body = hook_request(fhirServer=FHIR_BASE, prefetch={"encounter": None})
        _report(core_client.post("/cds-services/prefetch-probe", json=body))
    sent = labs.calls.last.request.url
    assert b"code=http%3A%2F%2Floinc.org%7C2276-4" in sent.raw_path
    assert "//loinc" not in sent.raw_path.decode()
    assert sent.params["code"] == "http://loinc.org|2276-4"  # decoded, the meaning is unchanged
