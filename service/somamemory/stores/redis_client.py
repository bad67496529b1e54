"""The Redis connection the cache, the locks, the journal and the Redis-only store share: how it
is opened, and which of its errors mean Redis is away."""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from ..errors import BackendUnavailable
from .driver_errors import Kinds

Client: TypeAlias = aioredis.Redis

# Redis went away or does not answer in time (an authentication failure is a ConnectionError too).
REDIS_DOWN: Kinds = (
    OSError,
    TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def create_client(host: str, port: int, *, password: str | None, db: int, timeout: float) -> Client:
    """A pooled client that fails fast instead of hanging on a dead server."""
    return aioredis.Redis(
        host=host,
        port=port,
        password=password,
        db=db,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        # one quick retry: a cache that stalls for seconds is worse than a cache miss
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
    )


async def open_client(
    host: str, port: int, *, password: str | None, db: int, timeout: float
) -> Client:
    """A client whose server answered a ping; BackendUnavailable (nothing left open) if not."""
    client = create_client(host, port, password=password, db=db, timeout=timeout)
    try:
        await client.ping()
    except REDIS_DOWN as exc:
        await client.aclose()
        raise BackendUnavailable("redis", type(exc).__name__) from exc
    return client


async def ping(client: Client) -> None:
    """Raise BackendUnavailable unless Redis answers (``/health``)."""
    try:
        await client.ping()
    except REDIS_DOWN as exc:
        raise BackendUnavailable("redis", type(exc).__name__) from exc
