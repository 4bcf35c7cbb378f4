"""The app's client registration, from the CDS_APP_* settings, checked at start-up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from cds_service.security.mode import ConfigurationError
from cds_service.settings import Settings

SANDBOX_CLIENT_ID = "mas-workup-sandbox"
CALLBACK_PATH = "/app/callback"


@dataclass(frozen=True)
class AppClient:
    client_id: str
    client_secret: str
    redirect_uri: str | None  # None: the request's own base URL + /app/callback (sandbox only)
    issuers: frozenset[str]  # allowed launch `iss` values, without a trailing slash
    sandbox_fhir_path: str | None  # the sandbox's FHIR server, always allowed in sandbox mode
    allow_http: bool  # plain http to the EHR: sandbox and loopback testing only
    launch_lifetime: timedelta
    session_lifetime: timedelta


def client_registration(settings: Settings, *, sandbox_fhir_path: str) -> AppClient | None:
    """The registration, or None when the app is not mounted (no client id outside sandbox mode)."""
    secret = settings.app_client_secret.get_secret_value() if settings.app_client_secret else None
    issuers = frozenset(iss.rstrip("/") for iss in settings.app_issuers)
    launch_lifetime = timedelta(seconds=settings.app_launch_seconds)
    session_lifetime = timedelta(seconds=settings.app_session_seconds)
    if settings.sandbox:
        return AppClient(
            client_id=settings.app_client_id or SANDBOX_CLIENT_ID,
            client_secret=secret or secrets.token_urlsafe(32),  # known only to this process and its test EHR
            redirect_uri=settings.app_redirect_uri,
            sandbox_fhir_path=sandbox_fhir_path,
            allow_http=True,
            issuers=issuers,
            launch_lifetime=launch_lifetime,
            session_lifetime=session_lifetime,
        )
    if settings.app_client_id is None:
        return None
    if not secret:
        raise ConfigurationError("CDS_APP_CLIENT_ID is set but CDS_APP_CLIENT_SECRET is not (confidential client).")
    if not issuers:
        raise ConfigurationError("CDS_APP_ISSUERS must list the EHR FHIR base URLs the app may launch against.")
    if any(urlsplit(iss).scheme != "https" for iss in issuers):
        raise ConfigurationError("CDS_APP_ISSUERS must be https URLs outside sandbox mode.")
    redirect = settings.app_redirect_uri or (
        settings.public_base_url.rstrip("/") + CALLBACK_PATH if settings.public_base_url else None
    )
    if redirect is None or urlsplit(redirect).scheme != "https":
        raise ConfigurationError("the app needs an https CDS_APP_REDIRECT_URI (or CDS_PUBLIC_BASE_URL).")
    return AppClient(
        client_id=settings.app_client_id,
        client_secret=secret,
        redirect_uri=redirect,
        sandbox_fhir_path=None,
        allow_http=False,
        issuers=issuers,
        launch_lifetime=launch_lifetime,
        session_lifetime=session_lifetime,
    )
