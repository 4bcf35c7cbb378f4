"""FHIR Bulk Data $export: the sandbox server's side (in-process), the client against it over real HTTP on
127.0.0.1 (`cds-service screen URL`), and the client's protocol details with respx (Retry-After, SMART
Backend Services client assertion, errors)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import orjson
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.cli import main
from cds_service.population.bulk_client import BackendAuth, BulkClient, BulkExportError, retry_after
from cds_service.population.codes import export_request
from cds_service.sandbox.bulk_export import build_bulk_router
from cds_service.sandbox.fhir_server import build_fhir_router
from cds_service.sandbox.fixtures import load_cases, load_patients
from tests.conftest import FIXED_NOW
from tests.servers import running_server

ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@pytest.fixture
def bulk() -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(
        build_bulk_router(clock=lambda: FIXED_NOW, generated=30, delay_seconds=1.0, lines_per_file=500), prefix="/fhir"
    )
    with TestClient(app) as client:
        yield client


def _complete(client: TestClient, location: str) -> dict[str, Any]:
    first = client.get(location)
    assert first.status_code == 202 and int(first.headers["retry-after"]) >= 1 and "x-progress" in first.headers
    deadline = time.monotonic() + 30
    done = first
    while done.status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.2)
        done = client.get(location)
    assert done.status_code == 200
    manifest: dict[str, Any] = done.json()
    return manifest


def test_kick_off_status_manifest_and_files(bulk: TestClient) -> None:
    kicked = bulk.get("/fhir/Patient/$export", params={"_type": "Patient,Observation"}, headers=ASYNC)
    assert kicked.status_code == 202
    manifest = _complete(bulk, kicked.headers["content-location"])
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Observation"}
    assert sum(1 for o in manifest["output"] if o["type"] == "Observation") >= 2  # several files per type
    patients = 0
    for output in manifest["output"]:
        body = bulk.get(output["url"])
        assert body.status_code == 200 and body.headers["content-type"].startswith("application/fhir+ndjson")
        lines = body.content.splitlines()
        assert len(lines) == output["count"]
        kinds = {orjson.loads(line)["resourceType"] for line in lines}
        assert kinds == {output["type"]}
        patients += len(lines) if output["type"] == "Patient" else 0
    assert patients == 15 + 30  # fixtures and the generated population


def test_type_filter_keeps_only_the_codes_asked_for(bulk: TestClient) -> None:
    query = "Observation?code=http://loinc.org|2276-4"
    kicked = bulk.get("/fhir/Group/all/$export", params={"_type": "Observation", "_typeFilter": query}, headers=ASYNC)
    manifest = _complete(bulk, kicked.headers["content-location"])
    codes = {
        coding["code"]
        for output in manifest["output"]
        for line in bulk.get(output["url"]).content.splitlines()
        for coding in orjson.loads(line)["code"]["coding"]
    }
    assert codes == {"2276-4"}


@pytest.mark.parametrize(
    ("path", "params", "headers", "status"),
    [
        ("/fhir/Patient/$export", {}, {"Accept": "application/fhir+json"}, 400),  # no Prefer: respond-async
        ("/fhir/Patient/$export", {"_type": "Encounter"}, ASYNC, 400),
        ("/fhir/Patient/$export", {"_outputFormat": "text/csv"}, ASYNC, 400),
        ("/fhir/Patient/$export", {"includeAssociatedData": "_custom"}, ASYNC, 400),
        ("/fhir/Patient/$export", {"_since": "2999-01-01T00:00:00Z"}, ASYNC, 400),  # in the future
        ("/fhir/Patient/$export", {}, {"Prefer": "respond-async", "Accept": "application/json"}, 400),
        ("/fhir/Patient/$export", {"_typeFilter": "Patient?gender=male"}, ASYNC, 400),  # a search not supported
        ("/fhir/Patient/$export", {"_since": "2026-01-01"}, ASYNC, 400),  # not an instant
        ("/fhir/Group/nobody/$export", {}, ASYNC, 404),
        ("/fhir/$export-status/unknown", {}, {}, 404),
        ("/fhir/$export-file/unknown/Patient.0.ndjson", {}, {}, 404),
    ],
)
def test_bad_requests_are_operation_outcomes(
    bulk: TestClient, path: str, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    response = bulk.get(path, params=params, headers=headers)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_delete_cancels_the_job(bulk: TestClient) -> None:
    location = bulk.post("/fhir/Patient/$export", headers=ASYNC).headers["content-location"]
    assert bulk.delete(location).status_code == 202
    assert bulk.get(location).status_code == 404


def test_post_kick_off_reads_a_parameters_body(bulk: TestClient) -> None:
    body = {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Condition"}]}
    kicked = bulk.post("/fhir/Patient/$export", json=body, headers=ASYNC)
    manifest = _complete(bulk, kicked.headers["content-location"])
    assert {o["type"] for o in manifest["output"]} == {"Condition"}
    assert bulk.post("/fhir/Patient/$export", content=b"[]", headers=ASYNC).status_code == 400


def test_screen_runs_the_export_against_the_sandbox_server(tmp_path: Path) -> None:
    with running_server({"CDS_SANDBOX": "true", "CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}) as server:
        out = tmp_path / "out"
        code = main(
            [
                "screen",
                f"{server.url}/sandbox/fhir",
                "--out",
                str(out),
                "--quiet",
                "--download-dir",
                str(tmp_path / "download"),
            ]
        )
    assert code == 0
    downloaded = sorted(p.name for p in (tmp_path / "download").iterdir())
    assert "Patient.0.ndjson" in downloaded and any(n.startswith("Observation.") for n in downloaded)
    with (out / "worklist.csv").open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    indicators = {row["patient_id"]: row["indicator"] for row in rows}
    # Every fixture patient-view case (fixtures/cases.json) gets, from the export, the card the hook gives.
    patients = load_patients()
    cases = [case for case in load_cases() if case.hook == "patient-view"]
    assert len(cases) == 15
    for case in cases:
        expected = case.expected[0].indicator if case.expected else None
        assert indicators.get(patients[case.patient].patient_id) == expected, case.name
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "215" in report  # 15 fixture + 200 generated patients screened


# --- the client's protocol, with respx -------------------------------------------------------------------------

BASE = "https://fhir.example.org/r4"


def _manifest(requires_token: bool = False) -> dict[str, Any]:
    return {
        "transactionTime": "2026-03-10T12:00:00Z",
        "request": f"{BASE}/Patient/$export",
        "requiresAccessToken": requires_token,
        "output": [
            {"type": "Patient", "url": f"{BASE}/files/p.ndjson"},
            {"type": "Observation", "url": f"{BASE}/files/o1.ndjson"},
            {"type": "Observation", "url": f"{BASE}/files/o2.ndjson"},
            {"type": "Encounter", "url": f"{BASE}/files/e.ndjson"},  # not needed: not downloaded
        ],
        "error": [],
    }


@respx.mock
def test_client_polls_with_retry_after_and_downloads_in_parallel(tmp_path: Path) -> None:
    kick = respx.get(f"{BASE}/Patient/$export").mock(
        return_value=httpx.Response(202, headers={"Content-Location": f"{BASE}/status/1"})
    )
    respx.get(f"{BASE}/status/1").mock(
        side_effect=[
            httpx.Response(202, headers={"Retry-After": "7"}),
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json=_manifest()),
        ]
    )
    deleted = respx.delete(f"{BASE}/status/1").mock(return_value=httpx.Response(202))
    respx.get(f"{BASE}/files/p.ndjson").mock(return_value=httpx.Response(200, content=b'{"resourceType":"Patient"}\n'))
    for name in ("o1", "o2"):
        respx.get(f"{BASE}/files/{name}.ndjson").mock(return_value=httpx.Response(200, content=b"{}\n{}\n"))
    encounter = respx.get(f"{BASE}/files/e.ndjson").mock(return_value=httpx.Response(200, content=b"{}\n"))
    waits: list[float] = []
    result = BulkClient(BASE, sleep=waits.append).run(tmp_path)
    assert waits == [7.0, 3.0]
    assert result.counts == {"Patient": 1, "Observation": 4}
    assert len(result.files) == 3 and not encounter.called and deleted.called
    params = parse_qs(str(kick.calls[0].request.url).split("?", 1)[1])
    assert params["_type"] == [",".join(export_request().types)]
    assert params["_typeFilter"] == list(export_request().type_filters)
    assert kick.calls[0].request.headers["prefer"] == "respond-async, handling=lenient"


@respx.mock
def test_smart_backend_services_token_with_a_signed_client_assertion(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    token_url = "https://auth.example.org/token"
    respx.get(f"{BASE}/.well-known/smart-configuration").mock(
        return_value=httpx.Response(200, json={"token_endpoint": token_url})
    )
    token = respx.post(token_url).mock(
        return_value=httpx.Response(200, json={"access_token": "tok-123", "expires_in": 300, "token_type": "bearer"})
    )
    kick = respx.get(f"{BASE}/Group/g1/$export").mock(
        return_value=httpx.Response(202, headers={"Content-Location": f"{BASE}/status/2"})
    )
    respx.get(f"{BASE}/status/2").mock(return_value=httpx.Response(200, json=_manifest(requires_token=True)))
    respx.delete(f"{BASE}/status/2").mock(return_value=httpx.Response(202))
    files = respx.get(url__regex=rf"{BASE}/files/(p|o1|o2)\.ndjson").mock(
        return_value=httpx.Response(200, content=b"{}\n")
    )
    auth = BackendAuth(client_id="cds-screen", private_key_pem=pem, key_id="k1", scope="system/Observation.read")
    BulkClient(BASE, auth=auth, sleep=lambda _: None).run(tmp_path, group="g1")

    form = parse_qs(token.calls[0].request.content.decode())
    assert form["grant_type"] == ["client_credentials"] and form["scope"] == ["system/Observation.read"]
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assertion = form["client_assertion"][0]
    assert jwt.get_unverified_header(assertion)["kid"] == "k1"
    claims = jwt.decode(assertion, key.public_key(), algorithms=["ES384"], audience=token_url)
    assert claims["iss"] == claims["sub"] == "cds-screen" and claims["exp"] - claims["iat"] == 300
    assert kick.calls[0].request.headers["authorization"] == "Bearer tok-123"
    assert all(call.request.headers["authorization"] == "Bearer tok-123" for call in files.calls)


@respx.mock
def test_a_refused_kick_off_says_why(tmp_path: Path) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "_typeFilter is not supported"}],
    }
    respx.get(f"{BASE}/Patient/$export").mock(return_value=httpx.Response(400, json=outcome))
    with pytest.raises(BulkExportError, match="_typeFilter is not supported"):
        BulkClient(BASE).run(tmp_path)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("5") == 5.0
    assert retry_after(None) == 2.0
    assert retry_after("100000") == 120.0
    later = datetime.fromtimestamp(time.time() + 30, UTC)
    assert 25 <= retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT")) <= 31


def test_lenient_handling_ignores_and_reports_unsupported_parameters(bulk: TestClient) -> None:
    headers = {**ASYNC, "Prefer": "respond-async, handling=lenient"}
    params = {"_type": "Patient", "includeAssociatedData": "_custom", "_typeFilter": "Patient?gender=male"}
    kicked = bulk.get("/fhir/Patient/$export", params=params, headers=headers)
    assert kicked.status_code == 202
    manifest = _complete(bulk, kicked.headers["content-location"])
    assert [e["type"] for e in manifest["error"]] == ["OperationOutcome"]
    outcomes = [orjson.loads(line) for line in bulk.get(manifest["error"][0]["url"]).content.splitlines()]
    texts = " ".join(o["issue"][0]["diagnostics"] for o in outcomes)
    assert "includeAssociatedData _custom" in texts and "gender" in texts
    assert all(o["resourceType"] == "OperationOutcome" for o in outcomes)


def test_elements_and_patient_parameters(bulk: TestClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Observation"},
            {"name": "_elements", "valueString": "Observation.code,status"},
            {"name": "patient", "valueReference": {"reference": "Patient/pop0000003"}},
        ],
    }
    kicked = bulk.post("/fhir/Group/generated/$export", json=body, headers=ASYNC)
    manifest = _complete(bulk, kicked.headers["content-location"])
    lines = [orjson.loads(line) for o in manifest["output"] for line in bulk.get(o["url"]).content.splitlines()]
    assert lines and all(set(r) == {"resourceType", "id", "meta", "code", "status"} for r in lines)
    assert all(r["meta"]["tag"][0]["code"] == "SUBSETTED" for r in lines)
    assert all(r["id"].startswith("pop0000003-") for r in lines)


@respx.mock
def test_an_export_without_patients_is_run_again_without_type_filters(tmp_path: Path) -> None:
    """Some servers answer a _typeFilter they cannot run with nothing at all (seen with the SMART reference
    server): a patient-level export without Patient resources is asked again, unfiltered."""
    kick = respx.get(f"{BASE}/Patient/$export").mock(
        side_effect=[
            httpx.Response(202, headers={"Content-Location": f"{BASE}/status/a"}),
            httpx.Response(202, headers={"Content-Location": f"{BASE}/status/b"}),
        ]
    )
    empty = {**_manifest(), "output": [{"type": "Condition", "url": f"{BASE}/files/c.ndjson"}]}
    respx.get(f"{BASE}/status/a").mock(return_value=httpx.Response(200, json=empty))
    respx.get(f"{BASE}/status/b").mock(return_value=httpx.Response(200, json=_manifest()))
    respx.delete(url__regex=rf"{BASE}/status/.").mock(return_value=httpx.Response(202))
    respx.get(url__regex=rf"{BASE}/files/.*").mock(return_value=httpx.Response(200, content=b"{}\n"))
    result = BulkClient(BASE, sleep=lambda _: None).run(tmp_path)
    assert result.counts == {"Patient": 1, "Observation": 2}
    first, second = (parse_qs(str(call.request.url).split("?", 1)[1]) for call in kick.calls)
    assert "_typeFilter" in first and "_typeFilter" not in second


def test_the_sandbox_capability_statement_declares_the_export(make_client: Callable[..., TestClient]) -> None:
    """Bulk Data IG 2.0 (and the bdt test kit's CapabilityStatement checks): a server offering $export instantiates
    the bulk-data CapabilityStatement and lists the patient- and group-level operations. The standalone fixture
    FHIR server, which has no $export, declares neither."""
    statement = make_client().get("/sandbox/fhir/metadata").json()
    assert statement["instantiates"] == ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]
    assert {op["definition"].rsplit("/", 1)[1] for op in statement["rest"][0]["operation"]} == {
        "patient-export",
        "group-export",
    }
    standalone = FastAPI()
    standalone.include_router(build_fhir_router(clock=lambda: FIXED_NOW))
    with TestClient(standalone) as client:
        plain = client.get("/metadata").json()
    assert "instantiates" not in plain and "operation" not in plain["rest"][0]
