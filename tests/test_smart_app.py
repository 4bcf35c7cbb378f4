"""The SMART app's OAuth steps against the sandbox's test authorization server, in process: EHR and
standalone launch, state, PKCE, wrong iss, expired code, refused scopes, the bearer guard on the fixture
FHIR server, and the work-up agreeing with the hook for every fixture patient."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.sandbox.fixtures import build_request, load_patients
from cds_service.settings import PROJECT_ROOT
from cds_service.smart_app.oauth import readable_types, requested_scopes, s256
from tests.smart_support import BASE, ISS, Harness, harness, query


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Harness]:
    with harness(sqlite_url) as running:
        yield running


def workup(app: Harness, redirect: httpx.Response) -> httpx.Response:
    assert redirect.status_code == 303, redirect.text
    handle = query(redirect.headers["location"])["s"]
    return app.client.get("/app/api/workup", params={"s": handle})


def test_ehr_launch_sends_the_smart_parameters_and_shows_the_launch_patient(app: Harness) -> None:
    launch = app.launch("adult-sepsis-mas-82kg")
    assert launch["iss"] == ISS
    to_authorize = app.start(launch)
    assert to_authorize.status_code == 302
    discovery = app.outbound[0]
    assert str(discovery.url) == f"{ISS}/.well-known/smart-configuration"
    url = to_authorize.headers["location"]
    assert url.startswith(f"{BASE}/sandbox/auth/authorize?")
    params = query(url)
    assert set(params) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "aud",
        "code_challenge",
        "code_challenge_method",
        "launch",
    }
    assert params["response_type"] == "code"
    assert params["client_id"] == "mas-workup-sandbox"
    assert params["redirect_uri"] == f"{BASE}/app/callback"
    assert params["aud"] == ISS
    assert params["launch"] == launch["launch"]
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256 digest, unpadded
    assert len(params["state"]) >= 32
    assert params["scope"].split() == [
        "launch",
        "patient/Patient.rs",
        "patient/Observation.rs",
        "patient/Condition.rs",
        "patient/MedicationRequest.rs",
    ]

    callback = app.get(to_authorize.headers["location"])
    assert callback.status_code == 302 and callback.headers["location"].startswith(f"{BASE}/app/callback?code=")
    landed = app.get(callback.headers["location"])
    token_request = next(r for r in app.outbound if r.url.path == "/sandbox/auth/token")
    form = dict(httpx.QueryParams(token_request.content.decode()))
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == f"{BASE}/app/callback"
    assert s256(form["code_verifier"]) == params["code_challenge"]  # the verifier behind the challenge
    client_id, secret = base64.b64decode(token_request.headers["authorization"].split()[1]).decode().split(":")
    assert client_id == "mas-workup-sandbox" and len(secret) >= 32  # client_secret_basic

    answer = workup(app, landed)
    assert answer.status_code == 200
    document = answer.json()
    assert document["patient"]["id"] == "adult-sepsis-mas-82kg"
    assert document["patient"]["name"] == "Adult Synthetic"
    assert document["workup"]["decision"]["indicator"] == "critical"
    # The FHIR reads carried the app's own token; the browser never saw it.
    (token,) = app.auth.tokens
    fhir_reads = [r for r in app.outbound if r.url.path.startswith("/sandbox/fhir/") and "well-known" not in r.url.path]
    assert fhir_reads and all(r.headers["authorization"] == f"Bearer {token}" for r in fhir_reads)
    for response in (to_authorize, callback, landed, answer):
        assert token not in response.text and token not in str(response.headers)
        assert secret not in response.text and secret not in str(response.headers)
    assert "httponly" in landed.headers["set-cookie"].lower()


def test_standalone_launch_picks_a_patient_at_the_ehr(app: Harness) -> None:
    to_authorize = app.client.get("/app/launch", params={"iss": ISS}, follow_redirects=False)
    params = query(to_authorize.headers["location"])
    assert "launch" not in params and params["scope"].split()[0] == "launch/patient"
    picker = app.get(to_authorize.headers["location"])
    assert picker.status_code == 200 and 'name="patient"' in picker.text
    chosen = app.get(to_authorize.headers["location"] + "&patient=child-sjia-mas-22kg")
    landed = app.get(chosen.headers["location"])
    assert workup(app, landed).json()["patient"]["id"] == "child-sjia-mas-22kg"


def test_state_must_be_known_unused_and_from_the_browser_that_launched(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg"))
    callback_url = app.get(to_authorize.headers["location"]).headers["location"]
    state = query(callback_url)["state"]

    forged = app.get(callback_url.replace(state, "x" * len(state)))
    assert forged.status_code == 400
    assert "state" in forged.json()["issue"][0]["diagnostics"]

    # Another browser (no launch cookie) brings the code back: refused, and the state is spent.
    other_browser = httpx.Client(transport=app.client._transport, base_url=BASE)
    assert other_browser.get(callback_url).status_code == 400
    assert app.get(callback_url).status_code == 400
    assert not app.auth.tokens  # no code was ever exchanged


def test_state_is_single_use(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg"))
    callback_url = app.get(to_authorize.headers["location"]).headers["location"]
    assert app.get(callback_url).status_code == 303
    replay = app.client.get(callback_url, follow_redirects=False, headers={"Accept": "text/html"})
    assert replay.status_code == 400
    assert 'id="launch-error"' in replay.text and "already used" in replay.text


def test_pkce_verifier_must_match_and_s256_is_required(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg"))
    params = query(to_authorize.headers["location"])
    code = query(app.get(to_authorize.headers["location"]).headers["location"])["code"]
    client = app.auth.clients["mas-workup-sandbox"]
    wrong = app.client.post(
        "/sandbox/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": "a" * 64,
        },
        auth=(client.client_id, client.secret),
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert "code_verifier" in wrong.json()["error_description"]

    # Plain PKCE (or none) is refused by the EHR...
    plain = dict(params, code_challenge_method="plain", state="s" * 40)
    refused = app.client.get("/sandbox/auth/authorize", params=plain, follow_redirects=False)
    assert query(refused.headers["location"])["error"] == "invalid_request"

    # ...and the app will not launch against an EHR that does not offer S256.
    def no_s256(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/.well-known/smart-configuration"):
            return httpx.Response(
                200,
                json={
                    "authorization_endpoint": f"{BASE}/a",
                    "token_endpoint": f"{BASE}/t",
                    "code_challenge_methods_supported": ["plain"],
                },
            )
        return None

    with harness(app.client.app.state.settings.database_url, extra_routes=no_s256) as other:
        answer = other.start(other.launch("adult-sepsis-mas-82kg"))
        assert answer.status_code == 502
        assert "S256" in answer.json()["issue"][0]["diagnostics"]


def test_wrong_iss_is_refused_before_anything_is_sent(app: Harness) -> None:
    launch = app.launch("adult-sepsis-mas-82kg")
    for iss in ("https://evil.example/fhir", f"{BASE}/sandbox/fhirx", "javascript:alert(1)"):
        answer = app.start({"iss": iss, "launch": launch["launch"]})
        assert answer.status_code == 400
        assert "iss" in answer.json()["issue"][0]["diagnostics"]
    assert app.outbound == []
    # The EHR, for its part, refuses an authorization request whose aud is not its FHIR base.
    to_authorize = app.start(launch)
    params = dict(query(to_authorize.headers["location"]), aud="https://evil.example/fhir")
    refused = app.client.get("/sandbox/auth/authorize", params=params, follow_redirects=False)
    assert query(refused.headers["location"])["error"] == "invalid_request"


def test_configured_issuer_is_allowed(sqlite_url: str) -> None:
    def ehr(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "ehr.example":
            return httpx.Response(404)
        return None

    with harness(sqlite_url, extra_routes=ehr, app_issuers=["https://ehr.example/fhir/"]) as app:
        answer = app.start({"iss": "https://ehr.example/fhir", "launch": "abc"})
        assert answer.status_code == 502  # allowed, so discovery was tried; the EHR had none
        assert [str(r.url) for r in app.outbound] == ["https://ehr.example/fhir/.well-known/smart-configuration"]


def test_expired_code_is_refused(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg"))
    callback_url = app.get(to_authorize.headers["location"]).headers["location"]
    app.clock.advance(61)
    answer = app.get(callback_url)
    assert answer.status_code == 400
    assert "expired" in answer.json()["issue"][0]["diagnostics"]
    assert not app.auth.tokens


def test_expired_launch_is_refused(app: Harness) -> None:
    launch = app.launch("adult-sepsis-mas-82kg")
    app.clock.advance(11 * 60)
    to_authorize = app.start(launch)
    assert query(app.get(to_authorize.headers["location"]).headers["location"])["error"] == "invalid_request"


def test_refused_observation_scope_means_no_evaluation(app: Harness) -> None:
    landed = app.run("adult-sepsis-mas-82kg", refuse=["patient/Observation.rs"])
    (grant,) = app.auth.tokens.values()
    assert "patient/Observation.rs" not in grant.scopes
    answer = workup(app, landed)
    assert answer.status_code == 403
    assert "Observation" in answer.json()["issue"][0]["diagnostics"]
    assert not any(r.url.path.endswith("/Observation") for r in app.outbound)  # not even tried


def test_refused_condition_scope_is_reported_not_assumed(app: Harness) -> None:
    answer = workup(app, app.run("adult-sepsis-mas-82kg", refuse=["patient/Condition.rs"]))
    assert answer.status_code == 200
    assert any("conditions" in note and "not granted" in note for note in answer.json()["notes"])
    assert not any(r.url.path.endswith("/Condition") for r in app.outbound)


def test_declined_authorization_is_shown(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg", decline=True))
    callback = app.get(to_authorize.headers["location"])
    assert query(callback.headers["location"])["error"] == "access_denied"
    answer = app.client.get(callback.headers["location"], headers={"Accept": "text/html"})
    assert answer.status_code == 403
    assert "did not authorize the app" in answer.text and "access_denied" in answer.text


def test_workup_needs_the_session_cookie(app: Harness) -> None:
    landed = app.run("adult-sepsis-mas-82kg")
    handle = query(landed.headers["location"])["s"]
    other_browser = httpx.Client(transport=app.client._transport, base_url=BASE)
    assert other_browser.get("/app/api/workup", params={"s": handle}).status_code == 401
    assert app.client.get("/app/api/workup", params={"s": "nope"}).status_code == 401
    app.clock.advance(3601)
    assert app.client.get("/app/api/workup", params={"s": handle}).status_code == 401


def test_two_tabs_two_patients_never_mix(app: Harness) -> None:
    first = app.run("adult-sepsis-mas-82kg")
    second = app.run("child-sjia-mas-22kg")
    assert workup(app, first).json()["patient"]["id"] == "adult-sepsis-mas-82kg"
    assert workup(app, second).json()["patient"]["id"] == "child-sjia-mas-22kg"


def test_bearer_tokens_read_only_their_patient_and_granted_types(app: Harness) -> None:
    app.run("adult-sepsis-mas-82kg", refuse=["patient/Condition.rs"])
    (token,) = app.auth.tokens
    bearer = {"Authorization": f"Bearer {token}"}
    fhir = app.client
    assert fhir.get("/sandbox/fhir/Observation?patient=adult-sepsis-mas-82kg", headers=bearer).status_code == 200
    assert fhir.get("/sandbox/fhir/Patient/adult-sepsis-mas-82kg", headers=bearer).status_code == 200
    for url in (
        "/sandbox/fhir/Observation?patient=child-sjia-mas-22kg",
        "/sandbox/fhir/Observation?code=2276-4",
        "/sandbox/fhir/Patient/child-sjia-mas-22kg",
        "/sandbox/fhir/Observation/adult-sepsis-mas-82kg-ferritin-1",
        "/sandbox/fhir/Condition?patient=adult-sepsis-mas-82kg",
    ):
        answer = fhir.get(url, headers=bearer)
        assert answer.status_code == 403, url
        assert answer.json()["resourceType"] == "OperationOutcome"
    assert fhir.get("/sandbox/fhir/Observation?patient=x", headers={"Authorization": "Bearer nope"}).status_code == 401
    # Without a token the fixture server stays open, as the sandbox's hook calls need it.
    assert fhir.get("/sandbox/fhir/Observation?patient=child-sjia-mas-22kg").status_code == 200


def test_token_endpoint_authenticates_the_client(app: Harness) -> None:
    to_authorize = app.start(app.launch("adult-sepsis-mas-82kg"))
    params = query(to_authorize.headers["location"])
    code = query(app.get(to_authorize.headers["location"]).headers["location"])["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
        "code_verifier": "v" * 64,
    }
    answer = app.client.post("/sandbox/auth/token", data=form, auth=("mas-workup-sandbox", "wrong"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert app.client.post("/sandbox/auth/token", data=form).status_code == 401


@pytest.mark.parametrize("patient", sorted(load_patients()))
def test_app_decision_is_the_hooks_for_every_fixture_patient(app: Harness, patient: str) -> None:
    fixture = load_patients()[patient]
    registry_service = app.client.app.state.registry.get("mas-screen")
    body = build_request(fixture, registry_service, hook="patient-view", now=app.clock(), order=None, prefetch=True)
    cards = app.client.post("/cds-services/mas-screen", json=body).json()["cards"]
    document = workup(app, app.run(patient)).json()["workup"]
    assert document["patientId"] == fixture.patient_id
    assert document["decision"]["indicator"] == (cards[0]["indicator"] if cards else None)
    if cards:
        assert document["decision"]["summary"] == cards[0]["summary"]


def test_app_settings_outside_sandbox() -> None:
    from cds_service.security.mode import ConfigurationError
    from cds_service.settings import Settings
    from cds_service.smart_app.config import client_registration

    base: dict[str, Any] = {"hooks_dir": PROJECT_ROOT / "hooks", "sandbox": False}
    assert client_registration(Settings(**base), sandbox_fhir_path="/s") is None  # not configured: not mounted
    with pytest.raises(ConfigurationError, match="SECRET"):
        client_registration(Settings(**base, app_client_id="c"), sandbox_fhir_path="/s")
    with pytest.raises(ConfigurationError, match="ISSUERS"):
        client_registration(Settings(**base, app_client_id="c", app_client_secret="s"), sandbox_fhir_path="/s")
    with pytest.raises(ConfigurationError, match="https"):
        client_registration(
            Settings(**base, app_client_id="c", app_client_secret="s", app_issuers=["http://ehr/fhir"]),
            sandbox_fhir_path="/s",
        )
    registered = client_registration(
        Settings(
            **base,
            app_client_id="c",
            app_client_secret="s",
            app_issuers=["https://ehr/fhir/"],
            public_base_url="https://cds.example.org",
        ),
        sandbox_fhir_path="/s",
    )
    assert registered is not None
    assert registered.redirect_uri == "https://cds.example.org/app/callback"
    assert registered.issuers == {"https://ehr/fhir"} and not registered.allow_http


def test_scope_helpers() -> None:
    assert requested_scopes(ehr_launch=False, v2=False).split() == [
        "launch/patient",
        "patient/Patient.read",
        "patient/Observation.read",
        "patient/Condition.read",
        "patient/MedicationRequest.read",
    ]
    assert readable_types(["patient/*.rs"]) == {"Patient", "Observation", "Condition", "MedicationRequest"}
    assert readable_types(["patient/Observation.cud", "patient/Condition.read", "launch"]) == {"Condition"}
    assert readable_types(["user/Observation.rs", "system/Patient.rs"]) == {"Observation"}
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"abc").digest()).rstrip(b"=").decode()
    assert s256("abc") == digest


def test_outside_sandbox_the_app_is_mounted_when_registered_and_the_test_ehr_never(
    make_client: Any, tmp_path: Path
) -> None:
    from tests.jwt_helpers import auth_settings, es384

    production = auth_settings(tmp_path, es384())
    plain = make_client(**production, benchmark_endpoints=True)
    assert plain.get("/app/launch", params={"iss": "https://ehr.example/fhir"}).status_code == 404
    registered = make_client(
        **production,
        benchmark_endpoints=True,
        app_client_id="mas-workup",
        app_client_secret="s",
        app_issuers=["https://ehr.example/fhir"],
    )
    refused = registered.get("/app/launch", params={"iss": "https://other.example/fhir", "launch": "x"})
    assert refused.status_code == 400  # mounted, and the unknown iss refused
    for sandbox_only in ("/sandbox/fhir/.well-known/smart-configuration", "/sandbox/auth/authorize", "/sandbox"):
        assert registered.get(sandbox_only).status_code == 404
    assert registered.post("/bench/decode-only/mas-screen", json={}).status_code == 404  # sandbox only
