"""The shared `jti` replay store for several instances: Redis SET NX with an expiry.

Redis down or unreachable: StoreUnavailableError (the call is answered 503, never let through unchecked).
A pooled connection that went stale while Redis restarted fails once; the command is sent again on a fresh
connection, with the same value, so a first SET whose reply was lost is recognised as ours, not as a replay.
"""

from __future__ import annotations

import secrets
import time

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cds_service.storage.errors import StoreUnavailableError

# Seconds: a Redis that does not answer costs a call this much, not the client's 5 s defaults.
_SOCKET_TIMEOUT = 1.0


class RedisReplayStore:
    def __init__(self, url: str) -> None:
        # No built-in retries (redis-py's default: 10, with back-off, per command): an outage answers 503 within
        # a second, and the one retry below knows whether a SET NX it repeats had landed.
        self._redis = redis.from_url(
            url,
            socket_timeout=_SOCKET_TIMEOUT,
            socket_connect_timeout=_SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )

    async def first_use(self, key: str, expires_at: float) -> bool:
        ttl = max(1, int(expires_at - time.time()) + 1)
        name = f"cds:jti:{key}"
        mark = secrets.token_hex(8).encode()
        try:
            try:
                created = await self._redis.set(name, mark, nx=True, ex=ttl)
            except (RedisConnectionError, RedisTimeoutError):
                created = await self._redis.set(name, mark, nx=True, ex=ttl)  # once more, on a fresh connection
                if not created:
                    return bool(await self._redis.get(name) == mark)  # our first SET did land
        except RedisError as error:
            raise StoreUnavailableError(f"replay store unavailable ({type(error).__name__})") from error
        return bool(created)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._redis.aclose()
