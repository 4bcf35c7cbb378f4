"""The app against what the SMART reference launcher (smart-launcher-v2) actually sent and checked when
our app was launched from it (recorded in tests/captures/smart-launcher-v2): its discovery document,
its launch redirect, the authorize parameters it validates, its token response and errors, and its FHIR
proxy's URL normalisation."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from cds_service.fhir.templates import encoded_query
from cds_service.smart_app.oauth import discover, s256
from tests.smart_support import BASE, harness, query

CAPTURES = Path(__file__).parent / "captures" / "smart-launcher-v2"
LAUNCHER_ISS = "http://launcher.test/v/r4/fhir"
CLIENT_ID, CLIENT_SECRET = "mas-workup", "launcher-client-secret"  # as registered in the launch options


def capture(name: str) -> Any:
    return json.loads((CAPTURES / name).read_text())


def launcher_proxy(url: httpx.URL) -> httpx.URL:
    r"""What its FHIR proxy forwards: `new URL(server + path).href.replace(/\/\s*\//g, "/")`, whose
    `http:/host` the WHATWG URL parser of its fetch reads as `http://host` again."""
    path_and_query = str(url).removeprefix(LAUNCHER_ISS)
    collapsed = re.sub(r"/\s*/", "/", f"{BASE}/sandbox/fhir{path_and_query}")
    return httpx.URL(re.sub(r"^(https?):/(?!/)", r"\1://", collapsed))


def launcher(token_response: httpx.Response | None = None) -> tuple[Callable[..., Any], list[dict[str, str]]]:
    """The launcher as the app's outbound HTTP sees it: discovery, token endpoint (checking what the
    launcher checks for a confidential-symmetric client with PKCE "always") and the FHIR proxy."""
    challenges: list[dict[str, str]] = []

    def route(request: httpx.Request) -> httpx.Response | httpx.Request | None:
        if request.url.host != "launcher.test":
            return None
        if request.url.path == "/v/r4/fhir/.well-known/smart-configuration":
            return httpx.Response(200, json=capture("smart-configuration.json"))
        if request.url.path == "/v/r4/auth/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            user, _, secret = base64.b64decode(request.headers["authorization"].split()[1]).decode().partition(":")
            expected = challenges[-1]
            if token_response is not None:
                return token_response
            if (user, secret) != (CLIENT_ID, CLIENT_SECRET):
                return httpx.Response(401, json=capture("exchange.json")["errors"]["wrong_client_secret"]["body"])
            if form["redirect_uri"] != expected["redirect_uri"] or s256(form["code_verifier"]) != expected["challenge"]:
                return httpx.Response(401, json=capture("exchange.json")["errors"]["code_verifier_mismatch"]["body"])
            body = capture("token-response.json") | {"access_token": "launcher-token"}
            return httpx.Response(200, json=body, headers=capture("exchange.json")["token_response_headers"])
        if request.url.path.startswith("/v/r4/fhir/"):
            assert request.headers["authorization"] == "Bearer launcher-token"
            return httpx.Request("GET", launcher_proxy(request.url))  # the proxy drops the token
        return httpx.Response(404)

    return route, challenges


def start_from_launcher(app: Any, challenges: list[dict[str, str]]) -> dict[str, str]:
    """Follow the launcher's recorded redirect into the app; check what its authorize endpoint checks."""
    redirect = capture("exchange.json")["launcher_redirect"].replace("http://app.test", BASE)
    answer = app.get(redirect)
    assert answer.status_code == 302
    target = answer.headers["location"]
    assert target.startswith("http://launcher.test/v/r4/auth/authorize?")
    params = query(target)
    recorded_launch = query(redirect)["launch"]
    assert params["launch"] == recorded_launch  # passed through untouched
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert urlsplit(params["redirect_uri"]).scheme in ("http", "https")
    assert params["aud"] == LAUNCHER_ISS  # the launcher compares aud with its FHIR base
    assert params["code_challenge_method"] == "S256" and params["code_challenge"]
    assert "launch" in params["scope"].split()
    assert params["state"]
    challenges.append({"redirect_uri": params["redirect_uri"], "challenge": params["code_challenge"]})
    return params


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"app_issuers": [LAUNCHER_ISS], "app_client_id": CLIENT_ID, "app_client_secret": CLIENT_SECRET}


def test_discovery_document_of_the_launcher_is_accepted() -> None:
    document = capture("smart-configuration.json")

    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=document)

    import asyncio

    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await discover(http, LAUNCHER_ISS, allow_http=True, timeout=1)

    configuration = asyncio.run(run())
    assert configuration.authorization_endpoint == "http://launcher.test/v/r4/auth/authorize"
    assert configuration.token_endpoint == "http://launcher.test/v/r4/auth/token"
    assert configuration.scope_syntax_v2  # it lists permission-v2: the app asks for `.rs`


def test_ehr_launch_from_the_launcher_end_to_end(sqlite_url: str, settings_overrides: dict[str, Any]) -> None:
    route, challenges = launcher()
    with harness(sqlite_url, extra_routes=route, **settings_overrides) as app:
        params = start_from_launcher(app, challenges)
        # The launcher redirects back with exactly `code` and `state`.
        landed = app.get(f"{params['redirect_uri']}?code=recorded-code&state={params['state']}")
        assert landed.status_code == 303, landed.text
        document = app.client.get("/app/api/workup", params={"s": query(landed.headers["location"])["s"]}).json()
    assert document["patient"]["id"] == "adult-sepsis-mas-82kg"  # the token response's patient
    assert document["needPatientBanner"] is True
    # Through the launcher's proxy the labs are still found: the decision is the hook's.
    assert document["workup"]["decision"]["indicator"] == "critical"
    assert document["workup"]["decision"]["setsMet"][0] == "trial-no-sjia"


@pytest.mark.parametrize("error", ["code_verifier_mismatch", "wrong_client_secret"])
def test_launcher_token_errors_are_shown(sqlite_url: str, settings_overrides: dict[str, Any], error: str) -> None:
    recorded = capture("exchange.json")["errors"][error]
    route, challenges = launcher(httpx.Response(recorded["status"], json=recorded["body"]))
    with harness(sqlite_url, extra_routes=route, **settings_overrides) as app:
        params = start_from_launcher(app, challenges)
        answer = app.get(f"{params['redirect_uri']}?code=c&state={params['state']}")
    assert answer.status_code == 400
    assert recorded["body"]["error"] in answer.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("error", ["wrong_aud", "no_pkce_with_pkce_always"])
def test_launcher_authorize_errors_are_shown(sqlite_url: str, settings_overrides: dict[str, Any], error: str) -> None:
    recorded = capture("exchange.json")["errors"][error]["redirect_query"]
    route, challenges = launcher()
    with harness(sqlite_url, extra_routes=route, **settings_overrides) as app:
        params = start_from_launcher(app, challenges)
        back = httpx.URL(params["redirect_uri"], params={**recorded, "state": params["state"]})
        answer = app.client.get(str(back), headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 403
    assert "did not authorize the app" in answer.text and "invalid_request" in answer.text


def test_the_launcher_proxy_hides_unencoded_token_searches(sqlite_url: str) -> None:
    template = "Observation?patient=adult-sepsis-mas-82kg&code=http://loinc.org|2276-4&_sort=-date&_count=5"
    with harness(sqlite_url) as app:
        raw = launcher_proxy(httpx.URL(f"{LAUNCHER_ISS}/{template}"))
        assert "code=http:/loinc.org" in str(raw)
        assert (
            app.client.get(str(raw)).json()["total"] == capture("exchange.json")["proxy_query_normalisation"]["total"]
        )
        encoded = launcher_proxy(httpx.URL(f"{LAUNCHER_ISS}/{encoded_query(template)}"))
        assert app.client.get(str(encoded)).json()["total"] == 2
