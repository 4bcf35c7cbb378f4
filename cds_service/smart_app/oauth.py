"""The app's side of SMART App Launch 2.x: discovery, PKCE, the authorize URL, the code-for-token exchange
and what the granted scopes allow. Transport only: no clinical words.

The app is a *confidential* client (client_secret_basic) whose OAuth steps all run on this server: the
access token and the client secret never reach the browser, which holds only an opaque session cookie.
PKCE (S256) is used as well, as SMART 2.x requires of every client.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

DATA_TYPES = ("Patient", "Observation", "Condition", "MedicationRequest")
MAX_DISCOVERY_BYTES = 256 * 1024


class LaunchError(Exception):
    """A launch step failed. The message is safe to show (no token, no secret, no patient data)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SmartConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]

    @property
    def scope_syntax_v2(self) -> bool:
        """SMART v2 scopes (`.rs`) unless the server says it knows only v1 (`.read`)."""
        return "permission-v2" in self.capabilities or "permission-v1" not in self.capabilities


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    patient: str
    scopes: tuple[str, ...]
    expires_in: int | None
    need_patient_banner: bool


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)  # 86 characters from the unreserved set (RFC 7636 §4.1)
        return cls(verifier, s256(verifier))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def checked_url(url: str, *, allow_http: bool) -> str:
    """An absolute http(s) URL without credentials; https unless plain http is allowed (sandbox)."""
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise LaunchError(400, f"not an acceptable URL ({'http(s)' if allow_http else 'https'} required)")
    return url


async def discover(http: httpx.AsyncClient, iss: str, *, allow_http: bool, timeout: float) -> SmartConfiguration:
    """`{iss}/.well-known/smart-configuration` (SMART App Launch 2.x §Discovery)."""
    url = iss.rstrip("/") + "/.well-known/smart-configuration"
    try:
        response = await http.get(url, headers={"Accept": "application/json"}, timeout=timeout)
    except httpx.HTTPError as error:
        raise LaunchError(502, f"the EHR's SMART configuration could not be read ({type(error).__name__})") from error
    if response.status_code != httpx.codes.OK or len(response.content) > MAX_DISCOVERY_BYTES:
        raise LaunchError(502, f"the EHR's SMART configuration could not be read (HTTP {response.status_code})")
    document = _json_object(response.content)
    if document is None:
        raise LaunchError(502, "the EHR's SMART configuration is not a JSON object")
    authorize = document.get("authorization_endpoint")
    token = document.get("token_endpoint")
    if not isinstance(authorize, str) or not isinstance(token, str):
        raise LaunchError(502, "the EHR's SMART configuration names no authorization or token endpoint")
    # No PKCE S256, no launch: the app never falls back to plain PKCE or to none (downgrade).
    if "S256" not in _strings(document.get("code_challenge_methods_supported")):
        raise LaunchError(502, "the EHR does not support PKCE with S256, which this app requires")
    methods = _strings(document.get("token_endpoint_auth_methods_supported"))
    if methods and "client_secret_basic" not in methods:
        raise LaunchError(502, "the EHR's token endpoint does not accept client_secret_basic")
    return SmartConfiguration(
        authorization_endpoint=checked_url(authorize, allow_http=allow_http),
        token_endpoint=checked_url(token, allow_http=allow_http),
        capabilities=frozenset(_strings(document.get("capabilities"))),
    )


def requested_scopes(*, ehr_launch: bool, v2: bool) -> str:
    permission = "rs" if v2 else "read"
    context = "launch" if ehr_launch else "launch/patient"
    return " ".join([context, *(f"patient/{kind}.{permission}" for kind in DATA_TYPES)])


def authorize_url(
    configuration: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    aud: str,
    challenge: str,
    launch: str | None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    separator = "&" if urlsplit(configuration.authorization_endpoint).query else "?"
    return f"{configuration.authorization_endpoint}{separator}{urlencode(params)}"


async def exchange_code(
    http: httpx.AsyncClient,
    *,
    token_endpoint: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    verifier: str,
    timeout: float,
) -> TokenResponse:
    """Authorization code + code_verifier for an access token, authenticated with client_secret_basic."""
    try:
        response = await http.post(
            token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
            auth=httpx.BasicAuth(_form(client_id), _form(client_secret)),
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as error:
        raise LaunchError(502, f"the EHR's token endpoint could not be reached ({type(error).__name__})") from error
    document = _json_object(response.content)
    if response.status_code != httpx.codes.OK:
        error_code = _short(document.get("error")) if document else None
        description = _short(document.get("error_description")) if document else None
        detail = (
            f"{error_code}: {description}"
            if error_code and description
            else error_code or f"HTTP {response.status_code}"
        )
        raise LaunchError(400, f"the EHR refused the authorization code ({detail}); launch the app again")
    if document is None:
        raise LaunchError(502, "the EHR's token response is not a JSON object")
    access_token = document.get("access_token")
    token_type = document.get("token_type")
    if not isinstance(access_token, str) or not access_token or not isinstance(token_type, str):
        raise LaunchError(502, "the EHR's token response has no access token")
    if token_type.lower() != "bearer":
        raise LaunchError(502, "the EHR's token is not a bearer token")
    patient = document.get("patient")
    if not isinstance(patient, str) or not patient:
        # The launch context's patient is the only patient the app shows: no patient, nothing to show.
        raise LaunchError(403, "the EHR gave no patient in the launch context")
    scope = document.get("scope")
    expires_in = document.get("expires_in")
    return TokenResponse(
        access_token=access_token,
        patient=patient,
        scopes=tuple(scope.split()) if isinstance(scope, str) else (),
        expires_in=expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
        need_patient_banner=document.get("need_patient_banner") is not False,
    )


def readable_types(scopes: Iterable[str]) -> frozenset[str]:
    """Resource types the granted scopes let the app read (v2 `r`, v1 `read`/`*`; patient/ or user/)."""
    readable: set[str] = set()
    for scope in scopes:
        context, _, rest = scope.partition("/")
        kind, _, permissions = rest.partition(".")
        if context not in ("patient", "user"):
            continue
        v1 = permissions in ("read", "*")
        v2 = bool(permissions) and set(permissions) <= set("cruds") and "r" in permissions
        if v1 or v2:
            readable.update(DATA_TYPES if kind == "*" else (kind,))
    return frozenset(readable & set(DATA_TYPES))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _short(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _form(value: str) -> str:
    return urlencode({"": value})[1:]
