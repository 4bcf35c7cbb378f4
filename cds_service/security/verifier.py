"""Verify the EHR's bearer JWT (CDS Hooks 2.0 §Trusting CDS Clients; cds-hooks best practices):

known `iss`; `alg` asymmetric and allowed for that issuer (never `none`, never HMAC); signature by the
issuer's key for `kid`; `aud` = the endpoint URL under CDS_PUBLIC_BASE_URL (or the issuer's override);
`exp`, `iat`, `nbf` with a small leeway; a bounded lifetime; `jti` never seen before. Any failure is
an AuthenticationError, answered with a bare 401; the reason goes to the log (never the token).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import jwt

from cds_service.security.issuers import TrustedIssuer
from cds_service.security.jwks import JwksCache
from cds_service.security.replay import ReplayStore


class AuthenticationError(Exception):
    """Why a token was refused; logged, never sent to the client."""


@dataclass(frozen=True)
class VerifiedCaller:
    iss: str
    tenant: str | None
    fhir_servers: tuple[str, ...]


class TokenVerifier:
    def __init__(
        self,
        issuers: dict[str, TrustedIssuer],
        jwks: JwksCache,
        replay: ReplayStore,
        *,
        public_base_url: str,
        leeway_seconds: int,
        max_lifetime_seconds: int,
    ) -> None:
        self._issuers = issuers
        self._jwks = jwks
        self._replay = replay
        self._base = public_base_url.rstrip("/")
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds

    async def verify(self, authorization: str | None, endpoint_path: str) -> VerifiedCaller:
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"malformed token: {type(error).__name__}") from error
        _check_time_claims(unverified)
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise AuthenticationError("unknown issuer")
        algorithm = header.get("alg")
        if algorithm not in issuer.algorithms:
            raise AuthenticationError(f"algorithm {algorithm!r} not allowed for this issuer")
        key = await self._jwks.key(issuer.iss, header.get("kid"))
        if key is None:
            raise AuthenticationError("no key for this kid")
        audience = issuer.audience or f"{self._base}{endpoint_path}"
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience,
                issuer=issuer.iss,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"token rejected: {type(error).__name__}") from error
        now = time.time()
        issued, expires = float(claims["iat"]), float(claims["exp"])
        if issued > now + self._leeway:
            raise AuthenticationError("token issued in the future")
        if expires - issued > self._max_lifetime:
            raise AuthenticationError("token lifetime too long")
        if issuer.tenant is not None and claims.get("tenant") not in (None, issuer.tenant):
            raise AuthenticationError("tenant not allowed")
        jti = str(claims["jti"])
        if not jti or not await self._replay.first_use(f"{issuer.iss}|{jti}", expires + self._leeway):
            raise AuthenticationError("jti replayed")
        return VerifiedCaller(iss=issuer.iss, tenant=issuer.tenant, fhir_servers=issuer.fhir_servers)


def _check_time_claims(claims: dict[str, Any]) -> None:
    """RFC 7519 §2: NumericDate is a JSON number. PyJWT would take "exp": "9999999999" (a string) and fail with
    an OverflowError on 1e999 (an infinite float): both are refused here, before any key is fetched."""
    for name in ("exp", "iat", "nbf"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise AuthenticationError(f"claim {name} is not a NumericDate")
        if abs(value) > _LARGEST_NUMERIC_DATE:
            raise AuthenticationError(f"claim {name} is out of range")


# Year 9999 in seconds: any later NumericDate is not a time the service can compare (datetime overflows).
_LARGEST_NUMERIC_DATE = 253_402_300_799


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError("no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("not a bearer token")
    return token.strip()
