"""Expiry: when a write expires (``ttl_seconds``, ``expires_at`` or the type's default TTL)
and the sweeper that deletes expired memories in bounded batches (README, "Expiry and decay").

Reads never answer an expired memory, swept or not: every store filters on ``expires_at`` with
the service's clock. The sweeper only reclaims the space: it deletes expired rows in batches of
``SOMA_SWEEP_BATCH_SIZE`` (``FOR UPDATE SKIP LOCKED``, so every replica may sweep at once without
taking the same rows or waiting), with their versions, drops their cache entries, and queues
their vectors' removal in the outbox, which the reconciler drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .clock import Clock
from .errors import BackendUnavailable, InvalidInput
from .live import LiveStores
from .metrics import Metrics
from .models import MemoryType
from .stores import VectorStore
from .stores.outbox import NoOutbox
from .stores.protocols import Expiring

log = logging.getLogger(__name__)

DEFAULT_MAX_TTL_SECONDS = 10 * 365 * 86_400


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """Default TTLs by memory type (all namespaces) and the longest TTL a write may ask for."""

    default_ttl_seconds: Mapping[MemoryType, int] = field(default_factory=dict)
    max_ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS

    def resolve(
        self,
        memory_type: MemoryType,
        now: datetime,
        *,
        ttl_seconds: object = None,
        expires_at: object = None,
        refresh_on_read: bool = False,
        default_ttl_seconds: Mapping[MemoryType, int] | None = None,
    ) -> tuple[datetime | None, int | None]:
        """``(expires_at, ttl kept for refresh_on_read)`` of a write; 400 on bad input.

        ``ttl_seconds``: whole seconds from now, 1 to ``max_ttl_seconds``. ``expires_at``: an ISO
        8601 time with a zone, in the future, within ``max_ttl_seconds``. Not both. Neither:
        the type's default TTL, if any (``default_ttl_seconds``, the namespace's defaults over
        the settings', else the settings'). ``refresh_on_read`` needs a TTL (with
        ``expires_at``, the time from now to it)."""
        if ttl_seconds is not None and expires_at is not None:
            raise InvalidInput("give ttl_seconds or expires_at, not both")
        if expires_at is not None:
            moment = self._moment(expires_at, now)
            ttl = max(1, round((moment - now).total_seconds()))
        else:
            if ttl_seconds is None:
                defaults = self.default_ttl_seconds
                if default_ttl_seconds is not None:
                    defaults = default_ttl_seconds
                ttl_seconds = defaults.get(memory_type)
                if ttl_seconds is None:
                    if refresh_on_read:
                        raise InvalidInput("refresh_on_read needs ttl_seconds or expires_at")
                    return None, None
            ttl = self._seconds(ttl_seconds)
            moment = now + timedelta(seconds=ttl)
        return moment, ttl if refresh_on_read else None

    def _seconds(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput("ttl_seconds must be a whole number of seconds")
        if not 1 <= value <= self.max_ttl_seconds:
            raise InvalidInput(
                f"ttl_seconds must be between 1 and {self.max_ttl_seconds} "
                f"(SOMA_MAX_TTL_SECONDS), not {value}"
            )
        return value

    def _moment(self, value: object, now: datetime) -> datetime:
        if not isinstance(value, str):
            raise InvalidInput("expires_at must be an ISO 8601 time, e.g. 2026-12-31T23:59:59Z")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"expires_at must be an ISO 8601 time, e.g. 2026-12-31T23:59:59Z, not {value!r}"
            ) from None
        if moment.tzinfo is None:
            raise InvalidInput("expires_at needs a time zone (a Z or an offset such as +02:00)")
        if moment <= now:
            raise InvalidInput("expires_at must be in the future")
        if moment - now > timedelta(seconds=self.max_ttl_seconds):
            raise InvalidInput(
                f"expires_at must be within {self.max_ttl_seconds} seconds "
                "(SOMA_MAX_TTL_SECONDS) from now"
            )
        return moment


class Sweeper:
    """Deletes expired memories in bounded batches, on every replica at once safely."""

    def __init__(
        self,
        *,
        live: LiveStores,
        vectors: VectorStore,
        metrics: Metrics,
        clock: Clock,
        batch_size: int = 500,
        max_batches: int = 20,
    ) -> None:
        self._live = live  # the store in use (failover switches it)
        self._vectors = vectors
        self._metrics = metrics
        self._clock = clock
        self.batch_size = batch_size
        self.max_batches = max_batches

    async def run_once(self) -> int:
        """One round: batches until one comes back short or ``max_batches``; how many swept."""
        store = self._live.store
        if not isinstance(store, Expiring):
            return 0  # Redis-only mode: filtered on read, swept in PostgreSQL after replay
        swept = 0
        for _ in range(self.max_batches):
            gone = await store.sweep_expired(self._clock(), self.batch_size)
            swept += len(gone)
            if gone:
                self._metrics.memories_expired.inc(len(gone))
                await self._forget(gone)
            if len(gone) < self.batch_size:
                break
        return swept

    async def _forget(self, gone: list[tuple[str, str]]) -> None:
        """Drop cache entries; without an outbox (in-process mode) remove vectors directly."""
        cache = self._live.cache
        if cache is not None:
            try:
                await cache.invalidate_many(gone)
            except BackendUnavailable:
                log.warning("cache entries of expired memories not dropped", exc_info=True)
        if isinstance(self._live.outbox, NoOutbox):
            by_namespace: dict[str, list[str]] = {}
            for namespace, coord in gone:
                by_namespace.setdefault(namespace, []).append(coord)
            for namespace, coords in by_namespace.items():
                await self._vectors.delete(namespace, coords)

    async def run_forever(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("expiry sweep failed; retrying next round", exc_info=True)
