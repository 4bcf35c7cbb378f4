"""Authentication of EHR calls by their bearer JWT (imported only when trusted issuers are configured)."""

from __future__ import annotations

import structlog
from starlette.requests import Request

from cds_service.security.verifier import AuthenticationError, TokenVerifier
from cds_service.transport.auth import Caller
from cds_service.transport.errors import HttpProblem

log = structlog.get_logger("cds_service.auth")


class JwtAuthenticator:
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def authenticate(self, request: Request, endpoint_path: str) -> Caller:
        try:
            caller = await self._verifier.verify(request.headers.get("authorization"), endpoint_path)
        except AuthenticationError as error:
            log.warning("auth_failed", reason=str(error), path=endpoint_path)
            raise HttpProblem(401, "unauthorized", code="security") from error
        return Caller(issuer=caller.iss, tenant=caller.tenant, fhir_servers=caller.fhir_servers, https_only=True)
