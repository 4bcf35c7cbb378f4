"""`jti` replay store: a token id is accepted once within its lifetime. In memory for one process;
Redis (SET NX with expiry) when several instances serve the same EHR."""

from __future__ import annotations

import time
from typing import Protocol


class ReplayStore(Protocol):
    async def first_use(self, key: str, expires_at: float) -> bool: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryReplayStore:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def first_use(self, key: str, expires_at: float) -> bool:
        now = time.time()
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        if self._seen.get(key, 0) > now:
            return False
        self._seen[key] = expires_at
        return True

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
