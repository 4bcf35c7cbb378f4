"""Which mode the service may start in. Authentication is on whenever trusted issuers are configured;
without them the service is a sandbox, which is only allowed on a loopback address."""

from __future__ import annotations

import ipaddress

from cds_service.settings import Settings
from cds_service.startup import StartupError


class ConfigurationError(StartupError):
    """The service refuses to start; the message says why and what to set."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_startup(settings: Settings) -> None:
    issuers = settings.trusted_issuers_file is not None
    if settings.sandbox and issuers:
        raise ConfigurationError(
            "CDS_SANDBOX=true disables authentication but CDS_TRUSTED_ISSUERS_FILE is set: choose one."
        )
    if not issuers and not settings.sandbox:
        raise ConfigurationError(
            "no trusted issuers: set CDS_TRUSTED_ISSUERS_FILE (and CDS_PUBLIC_BASE_URL) for EHR use, "
            "or CDS_SANDBOX=true on a loopback address for local testing."
        )
    if settings.sandbox and not is_loopback(settings.host):
        raise ConfigurationError(
            f"sandbox mode has no authentication and may only bind to a loopback address, not {settings.host!r}."
        )
    if issuers and not settings.public_base_url:
        raise ConfigurationError("CDS_PUBLIC_BASE_URL is required with trusted issuers: it defines the JWT aud.")
    if "*" in settings.cors_origins:
        raise ConfigurationError("CDS_CORS_ORIGINS must list explicit origins, never '*'.")
