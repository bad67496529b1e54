"""Namespaces' own policies in this process, for the in-process mode: they die with it, as
memories do."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ..models import POLICY_FIELDS, MemoryType, NamespacePolicy

_TTL_FIELDS: dict[str, MemoryType] = {
    "episodic_ttl_seconds": "episodic",
    "semantic_ttl_seconds": "semantic",
}


class InProcessPolicyStore:
    name = "in-process"

    def __init__(self) -> None:
        self._policies: dict[str, NamespacePolicy] = {}

    async def get(self, namespace: str) -> NamespacePolicy | None:
        return self._policies.get(namespace)

    async def update(self, namespace: str, changes: Mapping[str, int | None]) -> NamespacePolicy:
        old = self._policies.get(namespace) or NamespacePolicy(namespace, {})
        ttls = dict(old.default_ttl_seconds)
        for name, kind in _TTL_FIELDS.items():
            if name in changes:
                value = changes[name]
                if value is None:
                    ttls.pop(kind, None)
                else:
                    ttls[kind] = value
        cap = changes.get("max_memories", old.max_memories)
        assert set(changes) <= set(POLICY_FIELDS)
        new = NamespacePolicy(namespace, ttls, cap, datetime.now(UTC))
        self._policies[namespace] = new
        return new

    async def delete(self, namespace: str) -> bool:
        return self._policies.pop(namespace, None) is not None
