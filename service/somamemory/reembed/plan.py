"""Which collection the configured embedder writes, and which one search answers from meanwhile.

The target is the collection whose recorded identity is the configured embedder's (created when
missing). Any other collection of the family holding vectors is older: the fullest one serves
searches until the target is complete, the rest are dropped with it at the switch. A legacy
collection (no recorded identity) is identified by re-embedding a few memories PostgreSQL holds
and comparing with its stored vectors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..embeddings import Embedder, HashEmbedder, text_of
from ..embeddings.base import EmbedderInfo
from ..embeddings.bundled import BUNDLED_MODEL
from ..embeddings.choice import load_local_model
from ..stores import VectorStore
from ..stores.collection_identity import CollectionFacts, Collections, physical_name, shown

log = logging.getLogger(__name__)
SAMPLE_SIZE = 8
SAME_VECTOR = 0.999  # cosine above which a stored vector is the candidate's own
SAME_SHARE = 0.8  # of the samples that must match (a memory rewritten since may not)


class Samples(Protocol):
    async def samples(self, limit: int) -> list[tuple[str, str, dict[str, Any]]]:
        """Recent memories whose vector an embedder made: (namespace, coord, payload)."""
        ...


@dataclass(frozen=True, slots=True)
class CollectionPlan:
    target: str  # the configured embedder's collection
    target_rows: int  # vectors it holds already (0: new, or empty)
    previous: CollectionFacts | None  # what search answers from until the target is complete
    leftovers: tuple[str, ...]  # other collections of the family, dropped with the previous


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _candidates(dim: int, configured: Embedder) -> Iterator[Embedder]:
    """What may have filled a legacy collection of ``dim``: the configured embedder, the hash
    embedder of that dimension, the bundled model; each only where its dimension fits."""
    if configured.dim == dim:
        yield configured
    if configured.info != EmbedderInfo("hash", None, dim):
        yield HashEmbedder(dim)
    if configured.info.model != BUNDLED_MODEL:
        try:
            bundled = load_local_model(BUNDLED_MODEL)
        except Exception:  # not loadable here: not a candidate
            return
        if bundled.dim == dim:
            yield bundled


async def identify_legacy(
    store: VectorStore, dim: int, configured: Embedder, samples: Samples
) -> EmbedderInfo | None:
    """The embedder whose vectors ``store`` holds for a few sampled memories; None when none of
    the candidates made them (or no sample has a vector there)."""
    pairs: list[tuple[str, list[float]]] = []
    for namespace, coord, payload in await samples.samples(SAMPLE_SIZE):
        stored = await store.get_vector(namespace, coord)
        if stored is not None and len(stored) == dim:
            pairs.append((text_of(payload), stored))
    if not pairs:
        return None
    candidates = await asyncio.to_thread(lambda: list(_candidates(dim, configured)))
    for candidate in candidates:
        computed = await candidate.embed([text for text, _ in pairs])
        same = sum(
            _cosine(mine, stored) > SAME_VECTOR
            for mine, (_, stored) in zip(computed, pairs, strict=True)
        )
        if same >= SAME_SHARE * len(pairs):
            return candidate.info
    return None


async def _identified(
    facts: CollectionFacts,
    configured: Embedder,
    collections: Collections,
    samples: Samples | None,
    open_collection: Callable[[CollectionFacts], Awaitable[VectorStore]],
) -> CollectionFacts:
    """``facts`` with the identity of a legacy collection found (and recorded) where it can be."""
    if facts.identity is not None:
        return facts
    info = configured.info
    if facts.rows == 0:
        found = info if facts.dim == info.dim else None  # empty: adopt it where it fits
    elif samples is None:
        found = None
    else:
        found = await identify_legacy(await open_collection(facts), facts.dim, configured, samples)
    if found is not None:
        await collections.record(facts.name, found)
        log.info("collection %s was filled by %s: recorded", facts.name, shown(found))
        return dataclasses.replace(facts, identity=found)
    if facts.dim == info.dim:
        # as before identities were recorded: a collection of the right dimension is trusted
        log.warning(
            "collection %s records no embedder and none could be told from its vectors: "
            "trusted as %s's, as its dimension matches (reindex if it is not)",
            facts.name,
            shown(info),
        )
        return dataclasses.replace(facts, identity=info)
    return facts


async def plan_collections(
    collections: Collections,
    *,
    base: str,
    embedder: Embedder,
    samples: Samples | None,
    open_collection: Callable[[CollectionFacts], Awaitable[VectorStore]],
) -> CollectionPlan:
    """The target, the previous collection (if any) and the leftovers of ``base``'s family."""
    info = embedder.info
    family = [
        await _identified(facts, embedder, collections, samples, open_collection)
        for facts in await collections.family(base)
    ]
    mine = [facts for facts in family if facts.identity == info]
    mine.sort(key=lambda facts: facts.name == base)  # an identity's own name first
    target = mine[0] if mine else None
    name = target.name if target else physical_name(base, info)
    others = [facts for facts in family if facts.name != name]
    filled = [facts for facts in others if facts.rows > 0]
    previous = max(filled, key=lambda facts: facts.rows, default=None)
    return CollectionPlan(
        target=name,
        target_rows=target.rows if target else 0,
        previous=previous,
        leftovers=tuple(facts.name for facts in others if facts is not previous),
    )
