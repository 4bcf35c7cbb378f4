"""CORS: in sandbox mode (loopback only) a browser client served from this machine may call discovery, the
hook endpoints, feedback and the fixture FHIR server; production allows only CDS_CORS_ORIGINS. Never `*`,
never credentials (CDS Hooks 2.0 §Cross-Origin Resource Sharing; the OWASP advice it points to)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.jwt_helpers import auth_settings, es384

LOCAL_ORIGINS = [
    "http://127.0.0.1:3000",
    "http://localhost:8080",
    "http://[::1]:5173",
    "http://localhost",
]
FOREIGN_ORIGINS = [
    "https://evil.example",
    "http://127.0.0.1.evil.example",
    "http://localhost.evil.example:3000",
    "http://evil.example/http://localhost:3000",
    "null",
    "http://10.0.0.5:3000",
]
# What the official sandbox calls, with the headers that make its browser send a preflight.
PREFLIGHTS = [
    ("/cds-services", "GET", "authorization"),
    ("/cds-services/anakinra-dose-order-select", "POST", "authorization,content-type"),
    ("/cds-services/mas-screen/feedback", "POST", "authorization,content-type"),
    ("/sandbox/fhir/Observation/_search", "POST", "content-type"),
    ("/sandbox/fhir/Patient/adult-sepsis-mas-82kg", "GET", "accept"),
]


def _preflight(client: TestClient, path: str, origin: str, method: str, headers: str) -> dict[str, str]:
    response = client.options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )
    return dict(response.headers)


@pytest.mark.parametrize("origin", LOCAL_ORIGINS)
@pytest.mark.parametrize(("path", "method", "headers"), PREFLIGHTS)
def test_sandbox_allows_loopback_origins_on_every_endpoint_a_browser_client_calls(
    make_client: Callable[..., TestClient], origin: str, path: str, method: str, headers: str
) -> None:
    answer = _preflight(make_client(), path, origin, method, headers)
    assert answer["access-control-allow-origin"] == origin
    assert method in answer["access-control-allow-methods"]
    for header in headers.split(","):
        assert header in answer["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in answer


@pytest.mark.parametrize("origin", LOCAL_ORIGINS)
def test_sandbox_answers_carry_the_loopback_origin(make_client: Callable[..., TestClient], origin: str) -> None:
    client = make_client()
    answers = [
        client.get("/cds-services", headers={"Origin": origin}),
        client.get("/sandbox/fhir/metadata", headers={"Origin": origin}),
        client.post(
            "/sandbox/fhir/Patient/_search",
            content="_id=adult-sepsis-mas-82kg",
            headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
        ),
        client.post("/cds-services/mas-screen/feedback", json={"feedback": []}, headers={"Origin": origin}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in answer.headers


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_sandbox_refuses_other_origins(make_client: Callable[..., TestClient], origin: str) -> None:
    client = make_client()
    assert "access-control-allow-origin" not in client.get("/cds-services", headers={"Origin": origin}).headers
    assert "access-control-allow-origin" not in _preflight(
        client, "/cds-services/mas-screen", origin, "POST", "authorization"
    )


def test_production_allows_only_the_listed_origins(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client(**auth_settings(tmp_path, es384()), cors_origins=["https://ehr.example.org"])
    listed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert listed.headers["access-control-allow-origin"] == "https://ehr.example.org"
    for origin in LOCAL_ORIGINS:
        assert "access-control-allow-origin" not in client.get("/cds-services", headers={"Origin": origin}).headers
        answer = _preflight(client, "/cds-services/mas-screen", origin, "POST", "authorization")
        assert "access-control-allow-origin" not in answer


def test_production_without_a_list_sends_no_cors_headers(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(**auth_settings(tmp_path, es384()))
    for origin in [*LOCAL_ORIGINS, "https://ehr.example.org"]:
        answer = client.get("/cds-services", headers={"Origin": origin})
        assert not [name for name in answer.headers if name.startswith("access-control-")]
