"""Who is calling: a verified EHR (JWT) or, in sandbox mode, a loopback client. Transport-level only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog
from starlette.requests import Request

from cds_service.security.mode import is_loopback
from cds_service.transport.errors import HttpProblem

log = structlog.get_logger("cds_service.auth")


@dataclass(frozen=True)
class Caller:
    issuer: str | None  # None in sandbox mode
    tenant: str | None
    fhir_servers: tuple[str, ...] | None  # None: any (sandbox mode only)
    https_only: bool


class Authenticator(Protocol):
    async def authenticate(self, request: Request, endpoint_path: str) -> Caller: ...


class SandboxAuthenticator:
    """No JWT; only loopback clients, so a sandbox bound elsewhere by mistake still serves nobody."""

    async def authenticate(self, request: Request, endpoint_path: str) -> Caller:
        client = request.client.host if request.client else ""
        if not is_loopback(client) and client != "testclient":
            log.warning("auth_failed", reason="sandbox mode serves loopback clients only", path=endpoint_path)
            raise HttpProblem(401, "unauthorized", code="security")
        return Caller(issuer=None, tenant=None, fhir_servers=None, https_only=False)
