"""JWKS per trusted issuer: inline keys, or fetched from the configured jwks_url (never from a token's
`jku`: that would let a token name its own key). Cached; refetched on an unknown `kid` at most once per
cooldown; the last good key set is kept when a fetch fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from cds_service.security.issuers import TrustedIssuer

MAX_JWKS_BYTES = 256 * 1024


@dataclass
class _IssuerKeys:
    keys: dict[str, PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    last_kid_refetch: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    def __init__(
        self,
        issuers: dict[str, TrustedIssuer],
        http: Callable[[], httpx.AsyncClient],
        *,
        cache_seconds: float,
        cooldown_seconds: float,
        clock: Any = time.monotonic,
    ) -> None:
        self._issuers = issuers
        self._http = http
        self._cache_seconds = cache_seconds
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._state: dict[str, _IssuerKeys] = {iss: _IssuerKeys() for iss in issuers}
        for iss, issuer in issuers.items():
            if issuer.jwks is not None:
                self._state[iss].keys = _keys(issuer.jwks)
                self._state[iss].fetched_at = float("inf")  # inline keys never expire

    async def key(self, iss: str, kid: str | None) -> PyJWK | None:
        issuer = self._issuers[iss]
        state = self._state[iss]
        if issuer.jwks_url is not None:
            async with state.lock:
                now = self._clock()
                stale = now - state.fetched_at > self._cache_seconds
                # An unknown kid (key rotation) refetches at most once per cooldown, so a flood of
                # tokens with invented kids cannot hammer the EHR's JWKS endpoint.
                rotation = kid not in state.keys and now - state.last_kid_refetch >= self._cooldown
                if stale or rotation:
                    if not stale:
                        state.last_kid_refetch = now
                    fetched = await self._fetch(issuer.jwks_url)
                    if fetched is not None:
                        state.keys = fetched
                        state.fetched_at = self._clock()
                    elif stale:
                        # Keep the last good keys; try again after one cooldown, not on every request.
                        state.fetched_at = now - self._cache_seconds + self._cooldown
        if kid is None:
            return next(iter(state.keys.values())) if len(state.keys) == 1 else None
        return state.keys.get(kid)

    async def _fetch(self, url: str) -> dict[str, PyJWK] | None:
        try:
            response = await self._http().get(url, timeout=5.0, headers={"Accept": "application/json"})
            if response.status_code != httpx.codes.OK or len(response.content) > MAX_JWKS_BYTES:
                return None
            return _keys(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError):
            return None  # keep the last good set


def _keys(document: dict[str, Any]) -> dict[str, PyJWK]:
    usable = {"keys": [k for k in document.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]}
    key_set = PyJWKSet.from_dict(usable)
    return {key.key_id or "": key for key in key_set.keys}
