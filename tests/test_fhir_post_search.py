"""`POST [type]/_search` on the fixture FHIR server (FHIR R4 http.html#search): the form-encoded body is
the query. The official CDS Hooks sandbox tries it first for every prefetch search
(src/retrieve-data-helpers/service-exchange.js) and falls back to GET only when it fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from cds_service.registry import load_registry
from cds_service.sandbox.fhir_server import create_fhir_app
from cds_service.settings import PROJECT_ROOT

FORM = {"content-type": "application/x-www-form-urlencoded"}
PATIENT = "adult-sepsis-mas-82kg"
# Every search template the services declare, as the sandbox turns it into a body: URLSearchParams(query).
TEMPLATES = sorted(
    {
        spec.template.replace("{{context.patientId}}", PATIENT)
        for service in load_registry(PROJECT_ROOT / "hooks").services.values()
        for spec in service.prefetch
        if "?" in spec.template
    }
)


@pytest.fixture
def sandbox(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def _entries(bundle: dict[str, Any]) -> list[Any]:
    return list(bundle.get("entry", []))


@pytest.mark.parametrize("template", TEMPLATES)
def test_post_search_answers_exactly_what_the_get_search_answers(sandbox: TestClient, template: str) -> None:
    resource_type, _, query = template.partition("?")
    by_get = sandbox.get(f"/sandbox/fhir/{resource_type}?{query}")
    body = urlencode([tuple(pair.split("=", 1)) for pair in query.split("&")])  # percent-encoded, as a browser
    by_post = sandbox.post(f"/sandbox/fhir/{resource_type}/_search", content=body, headers=FORM)
    assert by_post.status_code == 200, by_post.text
    assert by_post.headers["content-type"].startswith("application/fhir+json")
    assert by_post.json()["type"] == "searchset"
    assert _entries(by_post.json()) == _entries(by_get.json())
    assert by_post.json()["total"] == by_get.json()["total"]


def test_url_and_body_parameters_combine_and_paging_links_are_get_urls(sandbox: TestClient) -> None:
    query = f"patient={PATIENT}&_sort=-date&_count=2"
    by_get = sandbox.get(f"/sandbox/fhir/Observation?{query}").json()
    assert by_get["total"] > 2  # the fixture has enough results to page
    by_post = sandbox.post(
        "/sandbox/fhir/Observation/_search?_count=2", content=f"patient={PATIENT}&_sort=-date", headers=FORM
    ).json()
    assert _entries(by_post) == _entries(by_get)
    next_url = next(link["url"] for link in by_post["link"] if link["relation"] == "next")
    assert urlsplit(next_url).path == "/sandbox/fhir/Observation"  # a plain GET search on the same base
    second = sandbox.get(httpx.URL(next_url).raw_path.decode())
    assert second.status_code == 200 and _entries(second.json())


def test_an_empty_body_searches_with_the_url_parameters_alone(sandbox: TestClient) -> None:
    response = sandbox.post(f"/sandbox/fhir/Patient/_search?_id={PATIENT}", headers=FORM)
    assert [entry["resource"]["id"] for entry in response.json()["entry"]] == [PATIENT]


def test_post_search_errors_are_operation_outcomes(sandbox: TestClient) -> None:
    json_body = sandbox.post("/sandbox/fhir/Observation/_search", json={"patient": PATIENT})
    assert json_body.status_code == 415
    assert json_body.json()["issue"][0]["diagnostics"] == (
        "Content-Type: expected application/x-www-form-urlencoded, got application/json"
    )
    unsupported = sandbox.post("/sandbox/fhir/Observation/_search", content="bogus=1", headers=FORM)
    assert unsupported.status_code == 400
    assert "bogus" in unsupported.json()["issue"][0]["diagnostics"]
    unknown_type = sandbox.post("/sandbox/fhir/Encounter/_search", content=f"patient={PATIENT}", headers=FORM)
    assert unknown_type.status_code == 400
    too_big = sandbox.post("/sandbox/fhir/Observation/_search", content="a=" + "x" * 70000, headers=FORM)
    assert too_big.status_code == 413


def test_the_standalone_fhir_server_answers_post_search_too() -> None:
    with TestClient(create_fhir_app()) as client:
        response = client.post("/Patient/_search", content=f"_id={PATIENT}", headers=FORM)
        assert response.status_code == 200
        assert [entry["resource"]["id"] for entry in response.json()["entry"]] == [PATIENT]
