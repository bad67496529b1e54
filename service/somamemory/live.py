"""The stores in use right now: one object, which failover switches in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .embeddings import Embedder
from .embeddings.base import EmbedderInfo
from .gate import Gate
from .stores import Cache, GraphStore, KeyValueStore, PolicyStore, TokenStore, VectorStore
from .stores.collection_identity import shown
from .stores.outbox import Outbox


@dataclass(frozen=True)
class PreviousIndex:
    """The collection search answers from until the configured embedder's is complete."""

    vectors: VectorStore
    dim: int
    identity: EmbedderInfo | None  # what filled it (None: unknown)
    target: EmbedderInfo  # the configured embedder, whose collection is being built
    embedder: Embedder | None  # for query texts; None: see ``why_not``
    why_not: str
    progress: Callable[[], str]  # the rebuild's progress, in words
    gone: Callable[[], Awaitable[bool]]  # the collection is gone (another replica switched)

    def refusal(self, vector: Sequence[float] | None) -> str | None:
        """Why a vector search cannot answer from this collection now; None when it can."""
        if vector is not None and len(vector) == self.dim:
            return None
        if vector is None and self.embedder is not None:
            return None
        head = (
            f"the embedding model is changing from {shown(self.identity)} to "
            f"{shown(self.target)} ({self.progress()}), and searches answer from the previous "
            "collection until the new one is complete"
        )
        if vector is not None:
            return f"{head}: a query vector needs {self.dim} values until then, not {len(vector)}"
        return f"{head}, but {self.why_not}: search with mode 'keyword', or again after the switch"


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
    # while the embedding model changes, the collection searches answer from (reembed/); None:
    # the configured embedder's, which writes always go to. Read once per search.
    previous: PreviousIndex | None = None

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
