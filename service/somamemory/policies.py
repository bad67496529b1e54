"""Per-namespace policies: a namespace's own default TTL per memory type and memory cap, over
the service's settings (SOMA_DEFAULT_TTL_SECONDS, SOMA_MAX_MEMORIES) (README, "Expiry and decay").

Writes read them often, so each replica keeps a namespace's policy for ``cache_seconds``
(SOMA_POLICY_CACHE_SECONDS): a change reaches the other replicas within it, this one at once.
While the policy store is away (Redis-only mode), writes use the policy last read for the
namespace, or the settings if none was; the admin routes answer 503.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .errors import BackendUnavailable, InvalidInput
from .live import LiveStores
from .models import MemoryType, NamespacePolicy
from .recent import RecentAnswers
from .stores import PolicyStore

log = logging.getLogger(__name__)

MAX_NAMESPACE_CAP = 1_000_000_000  # the largest max_memories a namespace may set
MEMORY_TYPES: tuple[MemoryType, ...] = ("episodic", "semantic")
Source = Literal["namespace", "settings"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective value and where it comes from (None: no TTL, or no cap)."""

    value: int | None
    source: Source


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    namespace: str
    default_ttl_seconds: dict[MemoryType, Setting]
    max_memories: Setting
    updated_at: datetime | None = None  # the namespace's last change, if it has a policy


def effective(
    namespace: str,
    own: NamespacePolicy | None,
    default_ttl_seconds: Mapping[MemoryType, int],
    max_memories: int,
) -> EffectivePolicy:
    """The namespace's values where it has them, else the settings' (``max_memories`` 0: none)."""
    ttls = own.default_ttl_seconds if own is not None else {}
    cap = own.max_memories if own is not None else None
    return EffectivePolicy(
        namespace=namespace,
        default_ttl_seconds={
            kind: Setting(ttls[kind], "namespace")
            if kind in ttls
            else Setting(default_ttl_seconds.get(kind), "settings")
            for kind in MEMORY_TYPES
        },
        max_memories=Setting(cap, "namespace")
        if cap is not None
        else Setting(max_memories or None, "settings"),
        updated_at=own.updated_at if own is not None else None,
    )


def checked_changes(
    default_ttl_seconds: Mapping[str, object] | None,
    max_memories: object,
    given: set[str],
    *,
    max_ttl_seconds: int,
) -> dict[str, int | None]:
    """A PUT's fields as ``PolicyStore.update`` changes: only those ``given`` (None clears);
    400 for a TTL outside 1..``max_ttl_seconds`` or a cap outside 1..``MAX_NAMESPACE_CAP``."""
    changes: dict[str, int | None] = {}
    if "default_ttl_seconds" in given:
        ttls = default_ttl_seconds
        for kind in MEMORY_TYPES if ttls is None else [k for k in MEMORY_TYPES if k in ttls]:
            value = None if ttls is None else ttls[kind]
            changes[f"{kind}_ttl_seconds"] = _bounded(
                value, max_ttl_seconds, f"default_ttl_seconds.{kind}", "SOMA_MAX_TTL_SECONDS"
            )
    if "max_memories" in given:
        changes["max_memories"] = _bounded(max_memories, MAX_NAMESPACE_CAP, "max_memories", None)
    if not changes:
        raise InvalidInput("give default_ttl_seconds or max_memories (null clears one)")
    return changes


def _bounded(value: object, top: int, name: str, setting: str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        limit = f"{top} ({setting})" if setting else str(top)
        raise InvalidInput(f"{name} must be a whole number from 1 to {limit}, or null to clear it")
    return value


class Policies:
    """Namespaces' own policies: read (kept ``cache_seconds``) by writes, changed by admins."""

    def __init__(self, live: LiveStores, *, cache_seconds: float) -> None:
        self._live = live
        self._seen: RecentAnswers[str, NamespacePolicy | None] = RecentAnswers(cache_seconds)
        self._unknown_warned: set[str] = set()

    async def of(self, namespace: str) -> NamespacePolicy | None:
        """The namespace's policy as this replica last read it (at most ``cache_seconds``
        ago); while the store is away and it was never read, None (the settings apply)."""
        try:
            return await self._seen.get(namespace, lambda: self._store().get(namespace))
        except BackendUnavailable:
            if namespace not in self._unknown_warned and len(self._unknown_warned) < 10_000:
                self._unknown_warned.add(namespace)
                log.warning(
                    "namespace policy unreadable; the settings' defaults apply",
                    extra={"namespace": namespace},
                )
            return None

    async def read(self, namespace: str) -> NamespacePolicy | None:
        """The namespace's policy from the store itself (503 while it is away)."""
        policy = await self._store().get(namespace)
        self._seen.put(namespace, policy)
        return policy

    async def update(self, namespace: str, changes: Mapping[str, int | None]) -> NamespacePolicy:
        """Apply checked ``changes``; in effect on this replica at once."""
        policy = await self._store().update(namespace, changes)
        self._seen.put(namespace, policy)
        return policy

    async def clear(self, namespace: str) -> bool:
        """Remove the namespace's policy (the settings apply again); whether it had one."""
        had = await self._store().delete(namespace)
        self._seen.put(namespace, None)
        return had

    def _store(self) -> PolicyStore:
        store = self._live.policies
        if store is None:
            raise BackendUnavailable(
                "postgres", "namespace policies are kept in PostgreSQL, which is down"
            )
        return store
