"""Rate limits per token: at most N requests per window, shared by every replica through Redis.

A fixed window (``SOMA_RATE_LIMIT_MAX`` requests per ``SOMA_RATE_LIMIT_WINDOW`` seconds): one
atomic INCR per request, the counter expiring with its window. Without Redis (not configured, or
away for a while) each replica counts on its own, so the limit then holds per replica.
"""

from __future__ import annotations

import logging
import math
import time

from ..errors import BackendUnavailable
from .driver_errors import unavailable
from .redis_client import REDIS_DOWN, Client

log = logging.getLogger(__name__)

# Count this request in the current window; answer the count and the window's remaining time.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


class InProcessRateLimiter:
    """Counts per key in this process; stale windows are dropped as keys come back."""

    name = "in-process"

    def __init__(self, limit: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window_seconds
        self._max_keys = max_keys
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)

    async def hit(self, key: str) -> float | None:
        now = time.monotonic()
        window = int(now // self._window)
        number, count = self._counts.get(key, (window, 0))
        count = count + 1 if number == window else 1
        if len(self._counts) >= self._max_keys and key not in self._counts:
            self._counts.clear()  # bounded memory: forgetting counts errs on the client's side
        self._counts[key] = (window, count)
        if count <= self._limit:
            return None
        return (window + 1) * self._window - now


class RedisRateLimiter:
    """The same windows in Redis, under ``{prefix}:rate:{key}:{window}``, shared by replicas."""

    name = "redis"

    def __init__(self, client: Client, *, prefix: str, limit: int, window_seconds: float) -> None:
        self._prefix = prefix
        self._limit = limit
        self._window = window_seconds
        self._hit = client.register_script(_HIT)

    @unavailable("redis", REDIS_DOWN)
    async def hit(self, key: str) -> float | None:
        window = int(time.time() // self._window)
        count, remaining_ms = await self._hit(
            keys=[f"{self._prefix}:rate:{key}:{window}"],
            args=[math.ceil(self._window * 1000)],
        )
        if int(count) <= self._limit:
            return None
        return max(int(remaining_ms), 0) / 1000


class FallbackRateLimiter:
    """Redis first; this replica's own counts for as long as Redis does not answer."""

    name = "redis"

    def __init__(self, primary: RedisRateLimiter, fallback: InProcessRateLimiter) -> None:
        self._primary = primary
        self._fallback = fallback

    async def hit(self, key: str) -> float | None:
        try:
            return await self._primary.hit(key)
        except BackendUnavailable:  # Redis away: limits hold per replica meanwhile
            log.warning("Redis does not answer: rate limits count per replica meanwhile")
            return await self._fallback.hit(key)
