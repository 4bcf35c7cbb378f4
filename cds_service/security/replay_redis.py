"""The shared `jti` replay store for several instances: Redis SET NX with an expiry."""

from __future__ import annotations

import time

import redis.asyncio as redis


class RedisReplayStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.from_url(url)

    async def first_use(self, key: str, expires_at: float) -> bool:
        ttl = max(1, int(expires_at - time.time()) + 1)
        created = await self._redis.set(f"cds:jti:{key}", b"1", nx=True, ex=ttl)
        return bool(created)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
