"""What ``/health`` and ``/readyz`` report: each backend's state, the mode, the vector backlog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .embeddings import Embedder
from .embeddings.base import EmbedderInfo
from .errors import cause_text
from .live import LiveStores
from .metrics import Metrics
from .stores import KeyValueStore, VectorStore
from .stores.driver_errors import within
from .stores.outbox import Outbox, ParkedVectors

PING_TIMEOUT = 2.0  # seconds each probe waits for a backend
# A backend that answered a request this recently answers: readiness does not ping it. Under
# saturation a ping waits behind the requests in flight (for a pool connection, for a thread)
# and misses its budget, which would take a busy but healthy replica out of its Service.
ANSWERED_RECENTLY = 2.0
_SHOWN = {"postgres": "PostgreSQL", "redis": "Redis", "milvus": "Milvus"}


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the wiring chose at startup, reported beside the live stores."""

    redis: str  # external | in-process | down
    vectors: str  # the vector store's kind (Milvus: lite | server)
    ping_redis: Callable[[], Awaitable[Any]] | None = None  # None: no Redis connection


@dataclass(frozen=True, slots=True)
class BackendState:
    ok: bool
    kind: str
    detail: str | None = None  # why it does not answer


@dataclass(frozen=True, slots=True)
class Health:
    kv_store: bool
    vector_store: bool
    cache: bool
    mode: str
    degraded: bool
    reconcile_backlog: int | None  # None: the outbox does not answer
    reconcile_parked: int | None
    parked_examples: list[dict[str, object]]
    backends: dict[str, BackendState]
    embedder: EmbedderInfo


async def _ping(name: str, check: Callable[[], Awaitable[Any]]) -> str | None:
    """None when the backend answers within the probe's budget, else the reason it did not.

    Bounded without waiting for the driver's cleanup (``within``): a probe answers in time even
    when a backend accepts connections and never answers (a frozen server).
    """
    try:
        await within(check(), PING_TIMEOUT, name, _SHOWN.get(name, name))
    except Exception as exc:
        return cause_text(exc)[:300]
    return None


async def _outbox_state(outbox: Outbox) -> tuple[int, ParkedVectors] | None:
    """The backlog and the parked entries; None when the outbox does not answer in time."""

    async def read() -> tuple[int, ParkedVectors]:
        return await outbox.backlog(), await outbox.parked()

    try:
        return await within(read(), PING_TIMEOUT, "postgres", "PostgreSQL")
    except Exception:
        return None


async def _unchecked() -> None:
    return None


async def _answers(backend: KeyValueStore | VectorStore) -> str | None:
    """None when ``backend`` answered a call within ``ANSWERED_RECENTLY`` or answers a ping."""
    if time.monotonic() - backend.answered_at < ANSWERED_RECENTLY:
        return None
    return await _ping(backend.name, backend.ping)


async def ready(live: LiveStores, vectors: VectorStore) -> bool:
    """Whether the canonical store and the vector store both answer."""
    errors = await asyncio.gather(_answers(live.store), _answers(vectors))
    return not any(errors)


async def check(
    live: LiveStores,
    vectors: VectorStore,
    embedder: Embedder,
    deployment: Deployment,
    metrics: Metrics,
) -> Health:
    """Ping every backend, read the outbox, and update the matching metrics."""
    store, outbox = live.store, live.outbox
    ping_redis = deployment.ping_redis
    # all at once: each is bounded, so /health answers within one probe budget
    store_error, vector_error, redis_error, outbox_state = await asyncio.gather(
        _ping(store.name, store.ping),
        _ping(vectors.name, vectors.ping),
        _ping("redis", ping_redis) if ping_redis is not None else _unchecked(),
        _outbox_state(outbox),
    )
    states = {
        "postgres": BackendState(
            store.name == "postgres" and store_error is None, live.postgres, store_error
        ),
        "redis": BackendState(
            deployment.redis != "down" and redis_error is None, deployment.redis, redis_error
        ),
        vectors.name: BackendState(vector_error is None, deployment.vectors, vector_error),
    }
    for name, state in states.items():
        metrics.backend_up.labels(backend=name).set(1 if state.ok else 0)
    backlog: int | None = None
    parked: ParkedVectors | None = None
    if outbox_state is not None:
        backlog, parked = outbox_state
        metrics.reconcile_backlog.set(backlog)
        metrics.reconcile_parked.set(parked.count)
    return Health(
        kv_store=store_error is None,
        vector_store=vector_error is None,
        cache=live.cache is not None,
        mode=live.mode,
        degraded=live.degraded,
        reconcile_backlog=backlog,
        reconcile_parked=parked.count if parked else None,
        parked_examples=parked.examples if parked else [],
        backends=states,
        embedder=embedder.info,
    )
