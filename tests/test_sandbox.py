"""Sandbox: the fixture FHIR server, the page's API, and the CLI (in-process and against real servers)."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds_service import cli
from cds_service.cli import main
from cds_service.sandbox.fixtures import FIXTURE_EPOCH, ExpectedCard, load_cases
from tests.conftest import FIXED_NOW
from tests.jwt_helpers import auth_settings, es384
from tests.servers import running_server


@pytest.fixture
def sandbox(make_client: Any) -> TestClient:
    client: TestClient = make_client()
    return client


def test_fhir_server_read_search_paging_and_metadata(sandbox: TestClient) -> None:
    metadata = sandbox.get("/sandbox/fhir/metadata").json()
    assert metadata["resourceType"] == "CapabilityStatement" and metadata["fhirVersion"] == "4.0.1"
    patient = sandbox.get("/sandbox/fhir/Patient/adult-sepsis-mas-82kg").json()
    shift = (FIXED_NOW - FIXTURE_EPOCH).days
    assert patient["birthDate"] == (date(1980, 6, 15) + timedelta(days=shift)).isoformat()  # moved with "now"
    query = "patient=adult-sepsis-mas-82kg&code=http://loinc.org|2276-4,http://loinc.org|777-3&_sort=-date&_count=3"
    first = sandbox.get(f"/sandbox/fhir/Observation?{query}").json()
    assert first["total"] == 4
    assert [e["resource"]["id"] for e in first["entry"]][:2] == [
        "adult-sepsis-mas-82kg-ferritin-1",
        "adult-sepsis-mas-82kg-platelets-1",
    ]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = sandbox.get(httpx.URL(next_url).raw_path.decode()).json()
    assert len(second["entry"]) == 1
    assert not [link for link in second["link"] if link["relation"] == "next"]
    dated = sandbox.get("/sandbox/fhir/Observation?patient=adult-sepsis-mas-82kg&code=2276-4&date=ge2026-03-09").json()
    assert [e["resource"]["id"] for e in dated["entry"]] == ["adult-sepsis-mas-82kg-ferritin-1"]
    active = sandbox.get("/sandbox/fhir/MedicationRequest?patient=adult-sepsis-mas-on-anakinra&status=active").json()
    assert active["total"] == 1
    assert sandbox.get("/sandbox/fhir/Patient/nobody").status_code == 404
    assert sandbox.get("/sandbox/fhir/Observation?bogus=1").status_code == 400
    assert sandbox.get("/sandbox/fhir/Encounter?patient=x").status_code == 400


def test_page_and_api(sandbox: TestClient) -> None:
    page = sandbox.get("/sandbox")
    assert page.status_code == 200 and "MAS CDS Hooks sandbox" in page.text
    assert sandbox.get("/sandbox/static/app.js").status_code == 200
    assert sandbox.get("/sandbox/static/../settings.py").status_code == 404
    patients = sandbox.get("/sandbox/api/patients").json()
    assert len(patients) >= 15
    sepsis = next(p for p in patients if p["id"] == "adult-sepsis-mas-82kg")
    assert (sepsis["age"], sepsis["weight_kg"]) == ("45 years", 82.0)
    series = sandbox.get("/sandbox/api/patients/adult-sepsis-mas-82kg/series").json()
    assert [p["value"] for p in series["ferritin"]["points"]] == [3100.0, 8450.0]
    built = sandbox.post(
        "/sandbox/api/requests",
        json={
            "patient": "child-sjia-mas-22kg",
            "hook": "order-sign",
            "order": {"dose": 100, "unit": "mg", "every_hours": 6, "route": "subcutaneous"},
        },
    ).json()
    assert built["service"] == "anakinra-dose-order-sign"  # the id discovery lists for order-sign
    cards = sandbox.post("/cds-services/anakinra-dose-order-sign", json=built["request"]).json()["cards"]
    assert cards[0]["indicator"] == "critical"
    assert sandbox.post("/sandbox/api/requests", json={"patient": "nobody", "hook": "patient-view"}).status_code == 404
    assert (
        sandbox.post("/sandbox/api/requests", json={"patient": "child-sjia-mas-22kg", "hook": "order-sign"}).status_code
        == 400
    )


def test_sandbox_routes_do_not_exist_outside_sandbox_mode(make_client: Any, tmp_path: Any) -> None:
    client = make_client(**auth_settings(tmp_path, es384()))
    assert client.get("/sandbox").status_code == 404
    assert client.get("/sandbox/fhir/metadata").status_code == 404


def test_cli_check_runs_every_case_in_process() -> None:
    out = io.StringIO()
    assert main(["check"], out) == 0
    text = out.getvalue()
    assert "30 passed, 0 failed" in text


def test_cli_fire_reports_match_and_mismatch(tmp_path: Any) -> None:
    out = io.StringIO()
    assert main(["fire", "--case", "sepsis-82kg-overdose-sign", "--brief"], out) == 0
    assert "[CRITICAL] Anakinra 150 mg q6h" in out.getvalue() and "MATCH: as expected" in out.getvalue()
    out = io.StringIO()
    # The same patient and order on order-select matches its own case (warning), not the order-sign one.
    assert (
        main(["fire", "adult-sepsis-mas-82kg", "--hook", "order-select", "--order", "anakinra-150mg-q6h-overdose"], out)
        == 0
    )
    assert "[WARNING]" in out.getvalue()
    out = io.StringIO()
    assert main(["fire", "adult-normal-labs"], out) == 0
    assert "no cards" in out.getvalue()
    err = io.StringIO()
    assert main(["fire", "--case", "no-such-case"], io.StringIO(), err) == 2
    assert "unknown case 'no-such-case'" in err.getvalue()


def test_cli_fire_exits_1_when_the_cards_do_not_match(monkeypatch: pytest.MonkeyPatch) -> None:
    real = next(case for case in load_cases() if case.name == "pv-normal-labs")
    wrong = dataclasses.replace(real, expected=(ExpectedCard("mas-likely", "critical"),))
    monkeypatch.setattr(cli, "load_cases", lambda: [wrong])
    out = io.StringIO()
    assert main(["fire", "--case", "pv-normal-labs"], out) == 1
    assert "MISMATCH: expected [('mas-likely', 'critical')], got no cards" in out.getvalue()


def test_cli_fire_at_a_real_server_with_fallback_to_the_real_fhir_server(tmp_path: Any) -> None:
    service_env = {"CDS_SANDBOX": "true", "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    with running_server(service_env) as service:
        out = io.StringIO()
        code = main(
            [
                "fire",
                "child-sjia-mas-22kg",
                "--url",
                service.url,
                "--no-prefetch",
                "--fhir-server",
                f"{service.url}/sandbox/fhir",
                "--brief",
            ],
            out,
        )
        assert code == 0, out.getvalue()
        assert "[CRITICAL] Possible MAS: ferritin 12,000 ng/mL" in out.getvalue()
        assert "MATCH" in out.getvalue()


def test_cli_reports_an_unreachable_url() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["fire", "adult-normal-labs", "--url", "http://127.0.0.1:9"], out, err) == 2
    assert "could not reach" in err.getvalue() and not out.getvalue()
