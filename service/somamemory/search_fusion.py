"""Search modes and the fusion of the vector list with the keyword list (hybrid search).

Hybrid search ranks by reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009): a memory
scores ``weight / (k + rank)`` for each list it is in (ranks from 1), summed, with ``k = 60``.
Ranks, not scores, so neither list's scale matters. Each list is fetched
``candidate_depth(top_k)`` deep, deeper than ``top_k``, so a memory ranked modestly in both lists
still meets itself in the fusion.

Plain RRF lets any memory that shares one common word with a question outrank the memory that
answers it in other words: being in both lists beats being first in one. So a keyword hit takes
part only when it matches the query well: it holds at least :data:`MIN_COVERAGE` of the query's
term weight (``coverage``, see ``stores/postgres_keyword.py``), or a query term with a digit (an
id or a code, which a long question would otherwise dilute). It then weighs twice its coverage
(``KEYWORD_WEIGHT``; coverage counted as at least :data:`MIN_COVERAGE`), the vector list 1: a
memory holding the whole query first in the keyword list outranks the vector list's first, as an
exact id should, and a memory holding the query's code outranks vector neighbours of its rank.
A memory sharing "team" with a paraphrase does not take part. On the labelled set of
``bench/recall_modes.py`` this keeps recall@10 and MRR of paraphrases at the vector list's and
brings exact-token queries near the keyword list's, where plain RRF (k=60) lost half the
paraphrases' MRR (README, "Hybrid search", has the table and the variants tried).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from .models import Memory

SearchMode = Literal["vector", "keyword", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
# The default with a query text: see the README, "Hybrid search", for the measurements behind it.
DEFAULT_MODE: SearchMode = "hybrid"
RRF_K = 60
MIN_COVERAGE = 0.5  # share of the query's term weight a keyword hit needs to take part
KEYWORD_WEIGHT = 2.0  # a keyword hit holding the whole query counts twice a vector hit
MIN_DEPTH = 50  # candidates fetched per list, at least
MAX_DEPTH = 1000


def candidate_depth(top_k: int) -> int:
    """How deep each list is fetched for a fusion of ``top_k`` results."""
    return min(max(MIN_DEPTH, 3 * top_k), MAX_DEPTH)


@dataclass(frozen=True, slots=True)
class RankedHit:
    """A search result: the memory, its score in the mode asked for, and its rank in each list."""

    memory: Memory
    score: float
    ranks: dict[str, int | None]
    similarity: float | None = None  # cosine similarity, where the memory is in the vector list


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a search found, and the mode that found it (hybrid without PostgreSQL: vector)."""

    mode: SearchMode
    hits: list[RankedHit]


@dataclass(slots=True)
class Fused:
    """A memory's place in the fused list: its score and its rank in each list (None: absent)."""

    coord: str
    score: float = 0.0
    ranks: dict[str, int | None] = field(default_factory=lambda: {"vector": None, "keyword": None})


def reciprocal_rank_fusion(
    lists: dict[str, Sequence[tuple[str, float]]], *, k: int = RRF_K
) -> list[Fused]:
    """Every coord of ``lists`` (each ``(coord, weight)``, best first), best first by the sum of
    ``weight / (k + rank)`` over the lists it is in. An entry of weight 0 keeps its rank in its
    list but takes no part (no score, no rank in the answer).

    Ties go to the memory with the better best rank, then to the lower coordinate, so the order
    is deterministic.
    """
    fused: dict[str, Fused] = {}
    for name, ranked in lists.items():
        for rank, (coord, weight) in enumerate(ranked, start=1):
            if weight <= 0:
                continue
            hit = fused.setdefault(coord, Fused(coord))
            if hit.ranks.get(name) is None:
                hit.ranks[name] = rank
                hit.score += weight / (k + rank)

    def order(hit: Fused) -> tuple[float, int, str]:
        best = min(rank for rank in hit.ranks.values() if rank is not None)
        return (-hit.score, best, hit.coord)

    return sorted(fused.values(), key=order)


def keyword_weight(coverage: float, code: bool) -> float:
    """A keyword hit's weight in the fusion: 0 (no part) unless it holds :data:`MIN_COVERAGE` of
    the query's term weight or a term with a digit; then :data:`KEYWORD_WEIGHT` times its
    coverage, counted as at least :data:`MIN_COVERAGE`."""
    if coverage < MIN_COVERAGE and not code:
        return 0.0
    return KEYWORD_WEIGHT * max(coverage, MIN_COVERAGE)
