"""Audit records for every authenticated call, metrics, and logs that never carry tokens or patient data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from cds_service.observability.metrics import Metrics
from cds_service.storage.database import audit, audit_card, feedback
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS
from tests.jwt_helpers import PUBLIC_BASE, auth_settings, claims, es384
from tests.servers import running_server

KEY = es384("k1")


def rows(database_url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        found = [dict(r._mapping) for r in connection.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    return found


def test_every_call_is_audited_and_feedback_links_by_card(
    make_client: Callable[..., TestClient], database_url: str, tmp_path: Path
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, database_url=database_url, **auth_settings(tmp_path, KEY))
    path = "/cds-services/prefetch-probe"
    body = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
    ok = client.post(path, json=body, headers={"Authorization": f"Bearer {KEY.sign(claims(path))}"})
    card = ok.json()["cards"][0]
    missing = hook_request(prefetch={"labs": None})
    failed = client.post(path, json=missing, headers={"Authorization": f"Bearer {KEY.sign(claims(path))}"})
    assert failed.status_code == 412
    records = rows(database_url, audit)
    assert [(r["status"], r["hook"], r["hook_instance"]) for r in records] == [
        (200, "patient-view", body["hookInstance"]),
        (412, "patient-view", missing["hookInstance"]),
    ]
    assert records[0]["issuer"] == "https://ehr.example.org/fhir"
    assert json.loads(records[0]["rule_versions"]) == {"probe": "1"}
    assert records[0]["latency_ms"] > 0
    assert "required data 'patient'" in records[1]["outcome"]
    (linked,) = rows(database_url, audit_card)
    assert (linked["audit_id"], linked["card_uuid"], linked["indicator"]) == (records[0]["id"], card["uuid"], "info")
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-10T12:00:00Z"}
    token = KEY.sign(claims(f"{path}/feedback"))
    client.post(f"{path}/feedback", json={"feedback": [item]}, headers={"Authorization": f"Bearer {token}"})
    (stored,) = rows(database_url, feedback)
    assert stored["card_uuid"] == linked["card_uuid"]  # feedback -> audit card -> audit record
    for record in records:
        assert "Bearer" not in json.dumps(record, default=str)


def test_metrics_expose_latency_cards_fallback_and_errors(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    from tests.clinical_builders import anakinra_order, dose_prefetch, order_request, weight
    from tests.clinical_builders import patient as p

    body = order_request(
        "order-sign",
        [anakinra_order(150, every_hours=6)],
        prefetch=dose_prefetch(patient_resource=p("1980-01-01"), weights=[weight(80)]),
    )
    assert client.post("/cds-services/anakinra-dose", json=body).status_code == 200
    client.post("/cds-services/anakinra-dose", content=b"{")
    text = client.get("/metrics").text
    assert 'cds_hook_call_seconds_bucket{hook="order-sign",le="0.25",service="anakinra-dose",status="200"}' in text
    assert 'cds_cards_total{indicator="critical",service="anakinra-dose"} 1.0' in text
    assert 'cds_http_responses_total{status_class="4xx"} 1.0' in text
    assert "cds_fhir_fallback_requests_total" in text or "cds_fhir_fallback_requests" in text


def test_logs_never_carry_tokens_jwts_or_patient_names(tmp_path: Path) -> None:
    issuers = auth_settings(tmp_path, KEY)
    env = {
        "CDS_HOOKS_DIR": str(CORE_HOOKS),
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'logs.sqlite3'}",
        "CDS_TRUSTED_ISSUERS_FILE": str(issuers["trusted_issuers_file"]),
        "CDS_PUBLIC_BASE_URL": PUBLIC_BASE,
    }
    secret_name = "Zebulon Quintessa-Marchetti"
    fhir_token = "fhir-access-token-6f1b9c"
    path = "/cds-services/prefetch-probe"
    with running_server(env) as server:
        jwt_token = KEY.sign(claims(path))
        body = hook_request(
            prefetch={"patient": patient(name=[{"text": secret_name}]), "labs": None, "encounter": None},
            fhirServer="https://fhir.example.org/r4",
            fhirAuthorization={"access_token": fhir_token, "token_type": "Bearer"},
        )
        ok = httpx.post(f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {jwt_token}"}, timeout=10)
        assert ok.status_code == 200
        replay = httpx.post(
            f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {jwt_token}"}, timeout=10
        )
        assert replay.status_code == 401
        bad = dict(body, context={"patientId": secret_name})
        httpx.post(
            f"{server.url}{path}", json=bad, headers={"Authorization": f"Bearer {KEY.sign(claims(path))}"}, timeout=10
        )
        server.kill()
        output = server.output()
    assert body["hookInstance"] in output  # the calls were logged, keyed by hookInstance
    assert '"event": "hook_call"' in output and '"event": "auth_failed"' in output
    for secret in (jwt_token, jwt_token.split(".")[2], fhir_token, secret_name, "Zebulon"):
        assert secret not in output


def test_metrics_count_every_call_of_the_same_labels() -> None:
    metrics = Metrics()
    metrics.observe_call("mas-screen", "patient-view", "200", 0.002, ["warning"])
    metrics.observe_call("mas-screen", "patient-view", "200", 0.004, ["warning", "critical"])
    text = metrics.exposition().decode()
    assert 'cds_hook_call_seconds_count{hook="patient-view",service="mas-screen",status="200"} 2.0' in text
    assert 'cds_cards_total{indicator="warning",service="mas-screen"} 2.0' in text
    assert 'cds_cards_total{indicator="critical",service="mas-screen"} 1.0' in text
