"""A test SMART App Launch 2.x authorization server for the sandbox (sandbox mode only): it plays the EHR
for the SMART app. Discovery at `<fixture FHIR base>/.well-known/smart-configuration`, an authorize
endpoint (EHR launch with `launch`, standalone launch with a patient picker), a token endpoint
(authorization code + PKCE S256, client_secret_basic), and a guard on the fixture FHIR server that holds
every bearer token to its patient and its granted resource types.

Requests without a bearer token still reach the fixture FHIR server unchanged: the sandbox's own hook
calls use it as an open `fhirServer`. Everything lives in memory and is lost on restart, as befits a test
server; codes are single use and short-lived, launches single use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cds_service.sandbox.fixtures import load_patients
from cds_service.security.mode import is_loopback
from cds_service.smart_app.config import AppClient
from cds_service.transport.errors import HttpProblem

CALLBACK_PATH = "/app/callback"
CODE_LIFETIME = timedelta(seconds=60)
LAUNCH_LIFETIME = timedelta(minutes=10)
TOKEN_LIFETIME = timedelta(hours=1)
READABLE_TYPES = ("Patient", "Observation", "Condition", "MedicationRequest", "Medication")
MAX_FORM_BYTES = 16 * 1024
CONTEXT_SCOPES = frozenset({"launch", "launch/patient", "openid", "fhirUser"})


@dataclass(frozen=True)
class RegisteredClient:
    """A confidential client. Without a fixed redirect URI, any loopback `http(s)://.../app/callback` is
    accepted (the sandbox runs on a free port chosen at start)."""

    client_id: str
    secret: str
    redirect_uri: str | None = None

    def accepts_redirect(self, uri: str) -> bool:
        if self.redirect_uri is not None:
            return uri == self.redirect_uri
        parts = urlsplit(uri)
        return (
            parts.scheme in ("http", "https")
            and is_loopback(parts.hostname or "")
            and parts.path == CALLBACK_PATH
            and not parts.query
            and not parts.fragment
        )


@dataclass(frozen=True)
class PendingLaunch:
    patient: str
    created: datetime
    refuse: frozenset[str]  # scopes the simulated user or policy will not grant
    decline: bool  # the simulated user declines the whole authorization


@dataclass(frozen=True)
class CodeGrant:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    patient: str
    created: datetime


@dataclass(frozen=True)
class TokenGrant:
    client_id: str
    patient: str
    scopes: tuple[str, ...]
    expires: datetime

    def can_read(self, resource_type: str) -> bool:
        return any(_scope_reads(scope, resource_type) for scope in self.scopes)


class LaunchSpec(BaseModel):
    patient: str
    refuse: list[str] = Field(default_factory=list, max_length=20)
    decline: bool = False


@dataclass
class SmartAuthServer:
    clients: Mapping[str, RegisteredClient]
    patients: frozenset[str]
    clock: Callable[[], datetime]
    fhir_base_path: str  # e.g. /sandbox/fhir
    auth_path: str = "/sandbox/auth"
    launches: dict[str, PendingLaunch] = field(default_factory=dict)
    codes: dict[str, CodeGrant] = field(default_factory=dict)
    tokens: dict[str, TokenGrant] = field(default_factory=dict)

    def iss(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + self.fhir_base_path

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(f"{self.fhir_base_path}/.well-known/smart-configuration", self.configuration)
        router.add_api_route(f"{self.auth_path}/authorize", self.authorize)
        router.add_api_route(f"{self.auth_path}/token", self.token, methods=["POST"])
        router.add_api_route("/sandbox/api/launch", self.new_launch, methods=["POST"])
        return router

    async def configuration(self, request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": self.iss(request),
                "authorization_endpoint": f"{base}{self.auth_path}/authorize",
                "token_endpoint": f"{base}{self.auth_path}/token",
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "grant_types_supported": ["authorization_code"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": [
                    "launch",
                    "launch/patient",
                    *(f"patient/{kind}.rs" for kind in READABLE_TYPES),
                    *(f"patient/{kind}.read" for kind in READABLE_TYPES),
                ],
                "capabilities": [
                    "launch-ehr",
                    "launch-standalone",
                    "client-confidential-symmetric",
                    "context-ehr-patient",
                    "context-standalone-patient",
                    "context-banner",
                    "permission-patient",
                    "permission-v1",
                    "permission-v2",
                ],
            },
            headers={"Cache-Control": "no-store"},
        )

    async def new_launch(self, spec: LaunchSpec, request: Request) -> dict[str, str]:
        """The sandbox page (the "EHR") starts an EHR launch for the chosen fixture patient."""
        if spec.patient not in self.patients:
            raise HttpProblem(404, f"no fixture patient '{spec.patient}'", code="not-found")
        self._forget_old()
        launch = secrets.token_urlsafe(16)
        self.launches[launch] = PendingLaunch(spec.patient, self.clock(), frozenset(spec.refuse), spec.decline)
        return {"iss": self.iss(request), "launch": launch}

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        # RFC 6749 §4.1.2.1: with an unknown client or redirect URI the user is told here, never redirected.
        if client is None:
            return _page(400, "Unknown client", "The client_id is not registered with this EHR.")
        if not client.accepts_redirect(redirect_uri):
            return _page(400, "Bad redirect URI", "The redirect_uri is not registered for this client.")
        state = params.get("state")

        def fail(error: str, description: str) -> Response:
            query = {"error": error, "error_description": description} | ({"state": state} if state else {})
            return RedirectResponse(f"{redirect_uri}?{urlencode(query)}", status_code=302)

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        if not state:
            return fail("invalid_request", "state is required")
        if params.get("aud") != self.iss(request):
            return fail("invalid_request", "aud must be this EHR's FHIR base URL")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            return fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        requested = params.get("scope", "").split()
        self._forget_old()
        launch_id = params.get("launch")
        if launch_id is not None:
            launch = self.launches.pop(launch_id, None)
            if launch is None or "launch" not in requested:
                return fail("invalid_request", "unknown or expired launch (or scope 'launch' missing)")
            if launch.decline:
                return fail("access_denied", "the user declined to authorize the app")
            patient, refuse = launch.patient, launch.refuse
        elif "launch/patient" in requested:
            if params.get("decision") == "decline":
                return fail("access_denied", "the user declined to authorize the app")
            patient = params.get("patient", "")
            if patient not in self.patients:
                return self._patient_picker(request)
            refuse = frozenset()
        else:
            return fail("invalid_scope", "scope must include 'launch' (EHR launch) or 'launch/patient' (standalone)")
        granted = tuple(s for s in requested if s not in refuse and _grantable(s))
        if not any(s.startswith("patient/") for s in granted):
            return fail("invalid_scope", "none of the requested data scopes can be granted")
        code = secrets.token_urlsafe(32)
        self.codes[code] = CodeGrant(client.client_id, redirect_uri, challenge, granted, patient, self.clock())
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302)

    async def token(self, request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "the token request must be form-urlencoded")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _oauth_error(400, "invalid_request", "the token request is too large")
        try:
            values = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError):
            return _oauth_error(400, "invalid_request", "the token request is not form-urlencoded")
        client = self._client_from_basic(request.headers.get("authorization", ""))
        if client is None:
            return _oauth_error(401, "invalid_client", "client authentication failed (client_secret_basic)")
        if values.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "only authorization_code is supported")
        grant = self.codes.pop(values.get("code", ""), None)  # single use, whatever happens next
        if grant is None or grant.client_id != client.client_id:
            return _oauth_error(400, "invalid_grant", "unknown or already used authorization code")
        if self.clock() - grant.created > CODE_LIFETIME:
            return _oauth_error(400, "invalid_grant", "the authorization code has expired")
        if values.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error(400, "invalid_grant", "redirect_uri differs from the authorization request")
        verifier = values.get("code_verifier", "")
        if not verifier:
            return _oauth_error(400, "invalid_request", "code_verifier is required (PKCE)")
        if not hmac.compare_digest(_s256(verifier), grant.challenge):
            return _oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        access_token = secrets.token_urlsafe(32)
        self.tokens[access_token] = TokenGrant(
            client.client_id, grant.patient, grant.scopes, self.clock() + TOKEN_LIFETIME
        )
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(TOKEN_LIFETIME.total_seconds()),
                "scope": " ".join(grant.scopes),
                "patient": grant.patient,
                "need_patient_banner": True,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def fhir_access(self, request: Request) -> None:
        """Dependency of the fixture FHIR routes: a bearer token reads only its patient's granted types."""
        header = request.headers.get("authorization")
        if header is None:
            return  # the sandbox's open fhirServer for hook calls
        scheme, _, value = header.partition(" ")
        grant = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if grant is None or self.clock() >= grant.expires:
            raise HttpProblem(401, "unknown or expired access token", code="security")
        resource_type = request.path_params.get("resource_type")
        if resource_type is None:
            return  # metadata
        if not grant.can_read(resource_type):
            raise HttpProblem(403, f"the access token does not grant reading {resource_type}", code="security")
        resource_id = request.path_params.get("resource_id")
        if resource_id is not None:
            if resource_type != "Patient" or resource_id != grant.patient:
                raise HttpProblem(403, "a patient-scoped token reads only its own Patient by id", code="security")
            return
        query = request.query_params
        target = query.get("_id") if resource_type == "Patient" else query.get("patient") or query.get("subject")
        if target is None or target.removeprefix("Patient/") != grant.patient:
            raise HttpProblem(403, "a patient-scoped token searches within its own patient only", code="security")

    def _client_from_basic(self, header: str) -> RegisteredClient | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        # RFC 6749 §2.3.1: both parts were form-urlencoded before they were joined.
        client_id, _, secret = (unquote_plus(part) for part in decoded.partition(":"))
        client = self.clients.get(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client

    def _patient_picker(self, request: Request) -> HTMLResponse:
        kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("patient", "decision")]
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in kept)
        options = "".join(f'<option value="{html.escape(p)}">{html.escape(p)}</option>' for p in sorted(self.patients))
        body = (
            f'<form method="get" action="{html.escape(self.auth_path)}/authorize">{hidden}'
            f'<label for="patient">Patient</label> <select id="patient" name="patient">{options}</select> '
            '<button type="submit" id="approve">Authorize the app for this patient</button> '
            '<button type="submit" name="decision" value="decline" id="decline">Decline</button></form>'
        )
        return _page(200, "Sandbox EHR: choose a patient", body, raw=True)

    def _forget_old(self) -> None:
        now = self.clock()
        for launch_id in [k for k, v in self.launches.items() if now - v.created > LAUNCH_LIFETIME]:
            del self.launches[launch_id]
        for code in [k for k, v in self.codes.items() if now - v.created > CODE_LIFETIME * 5]:
            del self.codes[code]
        for token in [k for k, v in self.tokens.items() if now >= v.expires]:
            del self.tokens[token]


def sandbox_smart_auth(
    app_client: AppClient | None,
    *,
    clock: Callable[[], datetime],
    fhir_base_path: str,
    patients: Iterable[str] | None = None,
) -> SmartAuthServer:
    """The test EHR's authorization server, with the app registered as its one confidential client."""
    names = patients if patients is not None else (p.patient_id for p in load_patients().values())
    clients = {}
    if app_client is not None:
        registered = RegisteredClient(app_client.client_id, app_client.client_secret, app_client.redirect_uri)
        clients[registered.client_id] = registered
    return SmartAuthServer(clients, frozenset(names), clock, fhir_base_path)


def _grantable(scope: str) -> bool:
    if scope in CONTEXT_SCOPES:
        return True
    return any(_scope_reads(scope, kind) for kind in READABLE_TYPES)


def _scope_reads(scope: str, resource_type: str) -> bool:
    """`patient/<type>.<permissions>`: SMART v2 (`rs`, `r`, `s`) or v1 (`read`), read-only."""
    context, _, rest = scope.partition("/")
    kind, _, permissions = rest.partition(".")
    if context != "patient" or kind not in (resource_type, "*"):
        return False
    return permissions == "read" or (bool(permissions) and set(permissions) <= {"r", "s"} and "r" in permissions)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _page(status: int, title: str, body: str, *, raw: bool = False) -> HTMLResponse:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"</head><body><h1>{html.escape(title)}</h1>{content}</body></html>",
        status_code=status,
    )
