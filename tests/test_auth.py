"""EHR authentication with keys generated in the test (ES384 and RS384): every failure is a bare 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.security.issuers import IssuerConfigError, TrustedIssuer, load_trusted_issuers
from cds_service.security.jwks import JwksCache
from cds_service.security.mode import ConfigurationError
from tests.builders import hook_request, patient
from tests.conftest import CORE_HOOKS, make_settings
from tests.jwt_helpers import ALLOWED_FHIR, ISSUER, PUBLIC_BASE, SigningKey, auth_settings, claims, es384, jwks, rs384

PATH = "/cds-services/prefetch-probe"
BODY = hook_request(prefetch={"patient": patient(), "labs": None, "encounter": None})
ES, RS = es384("es-1"), rs384("rs-1")


@pytest.fixture
def client(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    return make_client(hooks_dir=CORE_HOOKS, **auth_settings(tmp_path, ES, RS))


def post(client: TestClient, token: str | None, path: str = PATH, body: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(path, json=body or BODY, headers=headers)


def assert_bare_401(response: Any) -> None:
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize("key", [ES, RS], ids=["ES384", "RS384"])
def test_valid_token_is_accepted(client: TestClient, key: SigningKey) -> None:
    assert post(client, key.sign(claims(PATH))).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 120},  # expired (beyond the 30 s leeway)
        {"nbf": int(time.time()) + 300},  # not yet valid
        {"iat": int(time.time()) + 300, "exp": int(time.time()) + 600},  # issued in the future
        {"aud": f"{PUBLIC_BASE}/cds-services/other-service"},  # wrong aud
        {"aud": "https://attacker.example/cds-services/prefetch-probe"},
        {"iss": "https://unknown-ehr.example/fhir"},  # wrong iss
        {"jti": None},  # jti is required
        {"exp": int(time.time()) + 7200},  # lifetime above the 1 h maximum
    ],
    ids=["expired", "future-nbf", "future-iat", "wrong-aud", "foreign-aud", "wrong-iss", "no-jti", "too-long"],
)
def test_bad_claims_are_refused(client: TestClient, change: dict[str, Any]) -> None:
    assert_bare_401(post(client, ES.sign(claims(PATH, **change))))


def test_missing_or_malformed_authorization(client: TestClient) -> None:
    assert_bare_401(post(client, None))
    assert_bare_401(client.post(PATH, json=BODY, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_bare_401(post(client, "not.a.jwt"))


def test_replayed_jti_is_refused(client: TestClient) -> None:
    token = ES.sign(claims(PATH))
    assert post(client, token).status_code == 200
    assert_bare_401(post(client, token))


def test_alg_none_and_hmac_are_refused(client: TestClient) -> None:
    unsigned = jwt.encode(claims(PATH), None, algorithm="none", headers={"kid": ES.kid})
    assert_bare_401(post(client, unsigned))
    # HMAC signed with the *public* key as secret: the classic algorithm-confusion attack.
    public_pem = ES.jwk()["x"]
    hmac = jwt.encode(claims(PATH), public_pem, algorithm="HS384", headers={"kid": ES.kid})
    assert_bare_401(post(client, hmac))


def test_wrong_key_for_the_kid_is_refused(client: TestClient) -> None:
    impostor = es384("es-1")  # same kid, different key
    assert_bare_401(post(client, impostor.sign(claims(PATH))))


def test_feedback_needs_a_token_for_the_feedback_url(client: TestClient) -> None:
    feedback = {
        "feedback": [
            {
                "card": "5f3c1e2a-8d4b-4c6e-9a7f-1b2c3d4e5f60",
                "outcome": "overridden",
                "outcomeTimestamp": "2026-03-10T12:00:00Z",
            }
        ]
    }
    assert_bare_401(post(client, None, f"{PATH}/feedback", feedback))
    assert_bare_401(post(client, ES.sign(claims(PATH)), f"{PATH}/feedback", feedback))
    ok = post(client, ES.sign(claims(f"{PATH}/feedback")), f"{PATH}/feedback", feedback)
    assert ok.status_code == 200


def test_discovery_is_open(client: TestClient) -> None:
    assert client.get("/cds-services").status_code == 200


def test_issuer_audience_override(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, **auth_settings(tmp_path, ES, audience="https://cds.example.org"))
    assert post(client, ES.sign(claims(PATH, aud="https://cds.example.org"))).status_code == 200
    assert_bare_401(post(client, ES.sign(claims(PATH))))  # the per-endpoint aud is no longer what Epic sends


def test_unknown_kid_refetches_the_jwks_once_per_cooldown(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    old, new, other = es384("old"), rs384("new"), es384("other")
    jwks_url = "https://ehr.example.org/jwks.json"
    with respx.mock(assert_all_called=False) as mock:
        route = mock.get(jwks_url).respond(json=jwks(old))
        client = make_client(
            hooks_dir=CORE_HOOKS, jwks_refresh_cooldown_seconds=60, **auth_settings(tmp_path, jwks_url=jwks_url)
        )
        assert post(client, old.sign(claims(PATH))).status_code == 200
        assert route.call_count == 1
        route.respond(json=jwks(old, new))  # the EHR rotates in a new key
        assert post(client, new.sign(claims(PATH))).status_code == 200
        assert route.call_count == 2
        assert_bare_401(post(client, other.sign(claims(PATH))))  # unknown kid again, within the cooldown
        assert route.call_count == 2  # no refetch: a flood of unknown kids cannot hammer the EHR


def test_disallowed_fhir_server_is_never_called(client: TestClient) -> None:
    body = hook_request(prefetch={"labs": None, "encounter": None})
    body["fhirServer"] = "https://elsewhere.example/fhir"
    body["fhirAuthorization"] = {"access_token": "ehr-token", "token_type": "Bearer"}
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(json=patient())
        response = post(client, ES.sign(claims(PATH)), body=body)
    assert response.status_code == 412
    assert "not allowed for this issuer" in response.text
    assert not route.called


def test_plain_http_fhir_server_is_refused_outside_sandbox(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(
        hooks_dir=CORE_HOOKS, **auth_settings(tmp_path, ES, fhir_servers=["http://fhir.example.org/r4"])
    )
    body = hook_request(prefetch={"labs": None, "encounter": None}, fhirServer="http://fhir.example.org/r4")
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().respond(json=patient())
        response = post(client, ES.sign(claims(PATH)), body=body)
    assert response.status_code == 412 and "https is required" in response.text
    assert not route.called


def test_allowed_fhir_server_is_called_with_the_token(client: TestClient) -> None:
    body = hook_request(
        prefetch={"labs": None, "encounter": None},
        fhirServer=ALLOWED_FHIR,
        fhirAuthorization={"access_token": "ehr-token", "token_type": "Bearer"},
    )
    with respx.mock() as mock:
        route = mock.get(f"{ALLOWED_FHIR}/Patient/pat1").respond(json=patient())
        assert post(client, ES.sign(claims(PATH)), body=body).status_code == 200
    assert route.calls.last.request.headers["authorization"] == "Bearer ehr-token"


def test_cors_allows_only_listed_origins_without_credentials(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(hooks_dir=CORE_HOOKS, cors_origins=["https://sandbox.cds-hooks.org"])
    allowed = client.options(
        "/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert "access-control-allow-credentials" not in allowed.headers
    other = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sandbox": False}, "no trusted issuers"),
        ({"sandbox": True, "host": "0.0.0.0"}, "loopback"),  # noqa: S104 (the point of the test)
        ({"sandbox": True, "cors_origins": ["*"]}, "never '\\*'"),
    ],
)
def test_unsafe_configurations_refuse_to_start(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_app(make_settings(f"sqlite:///{tmp_path / 'x.sqlite3'}", **overrides))


def test_issuers_need_a_public_base_url_and_exclude_sandbox(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, ES)
    with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
        create_app(make_settings(f"sqlite:///{tmp_path / 'x.sqlite3'}", **{**settings, "public_base_url": None}))
    with pytest.raises(ConfigurationError, match="choose one"):
        create_app(make_settings(f"sqlite:///{tmp_path / 'x.sqlite3'}", **{**settings, "sandbox": True}))
    assert create_app(make_settings(f"sqlite:///{tmp_path / 'x.sqlite3'}", **{**settings, "host": "0.0.0.0"}))  # noqa: S104


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"iss": ISSUER, "jwks": {"keys": []}, "algorithms": ["HS256"]}, "asymmetric"),
        ({"iss": ISSUER, "jwks": {"keys": []}, "algorithms": ["none"]}, "asymmetric"),
        ({"iss": ISSUER, "jwks_url": "http://ehr.example/jwks"}, "https"),
        ({"iss": ISSUER, "jwks_url": "https://ehr.example/jwks", "jwks": {"keys": []}}, "exactly one"),
        ({"iss": ISSUER}, "exactly one"),
    ],
)
def test_bad_issuer_files_are_refused(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = tmp_path / "issuers.yaml"
    import yaml

    path.write_text(yaml.safe_dump({"issuers": [entry]}))
    with pytest.raises(IssuerConfigError, match=message):
        load_trusted_issuers(path)


def test_jwks_outage_keeps_the_last_good_keys_and_retries_after_the_cooldown() -> None:
    key = es384("k")
    jwks_url = "https://ehr.example.org/jwks.json"
    now = [0.0]
    issuer = TrustedIssuer(iss=ISSUER, jwks_url=jwks_url)

    async def scenario() -> list[int]:
        counts = []
        async with httpx.AsyncClient() as http:
            cache = JwksCache(
                {ISSUER: issuer}, lambda: http, cache_seconds=10, cooldown_seconds=60, clock=lambda: now[0]
            )
            with respx.mock() as mock:
                route = mock.get(jwks_url).respond(json=jwks(key))
                assert await cache.key(ISSUER, "k") is not None
                counts.append(route.call_count)
                route.respond(status_code=503)  # the EHR's key endpoint goes down
                now[0] = 11  # cache expired: one refetch, which fails; the last good key still verifies
                assert await cache.key(ISSUER, "k") is not None
                counts.append(route.call_count)
                now[0] = 12  # no refetch on every request during the outage
                assert await cache.key(ISSUER, "k") is not None
                counts.append(route.call_count)
                now[0] = 11 + 61  # after one cooldown it tries again
                await cache.key(ISSUER, "k")
                counts.append(route.call_count)
        return counts

    assert asyncio.run(scenario()) == [1, 2, 2, 3]
