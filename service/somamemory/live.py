"""The stores in use right now: one object, which failover switches in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from .gate import Gate
from .stores import Cache, GraphStore, KeyValueStore, PolicyStore, TokenStore
from .stores.outbox import Outbox


@dataclass
class LiveStores:
    """The canonical store, the cache and the outbox in use now, and the mode they make.

    The memory service, the write path and the reconciler read them here at every use and keep
    no copy, so a mode switch reaches all of them at once. Writes pass ``gate``, which a switch
    closes while it swaps the stores, so none lands on a store being swapped out.
    """

    store: KeyValueStore
    cache: Cache | None
    outbox: Outbox
    mode: str  # one of backends.MODES
    postgres: str  # external | embedded | down
    tokens: TokenStore | None = None  # minted API tokens; None while PostgreSQL is away
    graph: GraphStore | None = None  # the memory graph; None without PostgreSQL
    policies: PolicyStore | None = None  # namespaces' own policies; None while PostgreSQL is away
    gate: Gate = field(default_factory=Gate)

    @property
    def degraded(self) -> bool:
        return self.mode != "normal"

    def switch(
        self,
        *,
        store: KeyValueStore,
        cache: Cache | None,
        outbox: Outbox,
        tokens: TokenStore | None,
        mode: str,
        postgres: str,
        graph: GraphStore | None = None,
        policies: PolicyStore | None = None,
    ) -> None:
        """Use other stores from now on: all of them in one step (no await, so no reader sees
        half a switch). The caller holds ``gate`` closed."""
        self.store, self.cache, self.outbox, self.tokens = store, cache, outbox, tokens
        self.mode, self.postgres = mode, postgres
        self.graph = graph
        self.policies = policies
